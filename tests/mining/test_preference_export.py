"""LLaMA-Factory exports (DPO, KTO, SFT) and the summary, from hand-made mining results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError, InputError
from core.mining.mining import PromptSamples, Sample
from core.mining.preferences import (ExportConfig, export_preferences, format_summary,
                                    kto_examples, preference_pairs, samples_frame, sft_examples)
from core.mining.prompts import MiningPrompt
from tests.llamafactory_schema import check_llamafactory_dataset


def sample(index: int, flr: float | None, text: str | None = None) -> Sample:
    rewards = {} if flr is None else {"relevance": flr + 0.5, "correctness": flr - 0.5}
    return Sample(index, text or f"reply {index} ({flr})", flr, rewards,
                  note=None if flr is not None else "empty reply")


# Hand-made results: prompt 0 margin 0.9, prompt 1 margin 0.2, prompt 2 all equal,
# prompt 3 one scored sample, prompt 4 multi-turn with a system prompt (margin 2.0, odd K = 3).
RESULTS = [
    PromptSamples(0, MiningPrompt("q0", ("Question zero?",)),
                  (sample(0, 0.1), sample(1, 1.0), sample(2, 0.4), sample(3, 0.5))),
    PromptSamples(1, MiningPrompt("q1", ("Question one?",)), (sample(0, 0.3), sample(1, 0.1))),
    PromptSamples(2, MiningPrompt("q2", ("Question two?",)), (sample(0, 0.2), sample(1, 0.2))),
    PromptSamples(3, MiningPrompt("q3", ("Question three?",)), (sample(0, 0.7), sample(1, None, ""))),
    PromptSamples(4, MiningPrompt("q4", ("Hi", "Hello!", "And now?"), system="Be kind."),
                  (sample(0, -1.0), sample(1, 0.0), sample(2, 1.0))),
]


def test_pairs_take_best_and_worst_and_filter_by_margin() -> None:
    pairs, dropped = preference_pairs(RESULTS)
    assert [(p.prompt_index, p.chosen.index, p.rejected.index) for p in pairs] == [(0, 1, 0), (1, 0, 1), (4, 2, 0)]
    assert [round(p.margin, 10) for p in pairs] == [0.9, 0.2, 2.0]
    assert dropped == {"fewer than 2 scored samples": 1, "equal rewards": 1, "margin below minimum": 0}
    pairs, dropped = preference_pairs(RESULTS, min_margin=0.5)
    assert [p.prompt_index for p in pairs] == [0, 4]
    assert dropped["margin below minimum"] == 1
    assert all(p.chosen.flr > p.rejected.flr for p in pairs)


def test_kto_by_median_and_by_threshold() -> None:
    examples, at_median = kto_examples(RESULTS)
    tags = {(e.prompt_index, e.sample.index): e.desirable for e in examples}
    # prompt 0: median 0.45 -> 1.0 and 0.5 desirable; prompt 2: both at the median (left out);
    # prompt 3: its single scored sample is the median; prompt 4: 0.0 is the median.
    assert tags == {(0, 0): False, (0, 1): True, (0, 2): False, (0, 3): True, (1, 0): True, (1, 1): False,
                    (4, 0): False, (4, 2): True}
    assert at_median == 4
    examples, at_median = kto_examples(RESULTS, threshold=0.3)
    assert at_median == 0 and len(examples) == 12  # every scored sample
    assert {(e.prompt_index, e.sample.index) for e in examples if e.desirable} == {(0, 1), (0, 2), (0, 3), (1, 0),
                                                                                  (3, 0), (4, 2)}


def test_finished_only_leaves_cut_replies_out() -> None:
    from dataclasses import replace

    from core.mining.preferences import select

    cut = [replace(r, samples=tuple(replace(s, finished=s.index != 1) for s in r.samples)) for r in RESULTS]
    selection = select(cut, ExportConfig(finished_only=True))
    assert [(p.prompt_index, p.chosen.index, p.rejected.index) for p in selection.pairs] == [(0, 3, 0), (4, 2, 0)]
    assert all(e.sample.finished for e in selection.kto) and all(s.finished for _, _, s in selection.sft)
    assert select(cut, ExportConfig()).pairs[0].chosen.index == 1  # off by default


def test_sft_takes_the_best_scored_sample() -> None:
    assert [(i, s.index) for i, _, s in sft_examples(RESULTS)] == [(0, 1), (1, 0), (2, 0), (3, 0), (4, 2)]


def test_export_files_follow_the_llamafactory_schema(tmp_path: Path) -> None:
    result = export_preferences(RESULTS, tmp_path, ExportConfig(min_margin=0.5))
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {f"flr_{k}_{f}" for k in ("dpo", "kto", "sft") for f in ("alpaca", "sharegpt")}
    # Entries exactly as the README's examples, plus the system / history columns in use here.
    assert info["flr_dpo_alpaca"] == {"file_name": "flr_dpo_alpaca.json", "ranking": True, "columns": {
        "prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected",
        "history": "history", "system": "system"}}
    assert info["flr_dpo_sharegpt"] == {"file_name": "flr_dpo_sharegpt.json", "formatting": "sharegpt",
                                        "ranking": True, "columns": {"messages": "conversations", "chosen": "chosen",
                                                                     "rejected": "rejected", "system": "system"}}
    assert info["flr_kto_sharegpt"]["columns"] == {"messages": "conversations", "kto_tag": "kto_tag",
                                                   "system": "system"}
    assert "ranking" not in info["flr_kto_alpaca"] and "ranking" not in info["flr_sft_sharegpt"]
    records = {name: check_llamafactory_dataset(tmp_path, name) for name in info}

    dpo = records["flr_dpo_sharegpt"]
    assert len(dpo) == 2 and len(records["flr_dpo_alpaca"]) == 2
    assert dpo[1] == {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                                        {"from": "human", "value": "And now?"}],
                      "system": "Be kind.",
                      "chosen": {"from": "gpt", "value": "reply 2 (1.0)"},
                      "rejected": {"from": "gpt", "value": "reply 0 (-1.0)"}}
    assert records["flr_dpo_alpaca"][1] == {"instruction": "And now?", "input": "", "system": "Be kind.",
                                            "history": [["Hi", "Hello!"]], "chosen": "reply 2 (1.0)",
                                            "rejected": "reply 0 (-1.0)"}
    assert records["flr_dpo_alpaca"][0]["history"] == [] and records["flr_dpo_alpaca"][0]["system"] == ""
    assert records["flr_kto_alpaca"][0] == {"instruction": "Question zero?", "input": "", "system": "",
                                            "history": [], "output": "reply 0 (0.1)", "kto_tag": False}
    assert len(records["flr_kto_sharegpt"]) == 8 and len(records["flr_sft_alpaca"]) == 5
    assert records["flr_sft_sharegpt"][0]["conversations"][-1] == {"from": "gpt", "value": "reply 1 (1.0)"}
    assert result.files["flr_dpo_alpaca"] == tmp_path / "flr_dpo_alpaca.json"


def test_chosen_beats_rejected_in_every_exported_pair(tmp_path: Path) -> None:
    export_preferences(RESULTS, tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "flr_samples.jsonl").read_text().splitlines()]
    assert len(lines) == sum(len(r.samples) for r in RESULTS)
    flr = {(x["prompt_index"], x["response"]): x["flr"] for x in lines}
    prompts = {tuple(x["conversation"]): x["prompt_index"] for x in lines}
    for record in json.loads((tmp_path / "flr_dpo_sharegpt.json").read_text()):
        index = prompts[tuple(m["value"] for m in record["conversations"])]
        assert flr[(index, record["chosen"]["value"])] > flr[(index, record["rejected"]["value"])]
    roles = {(x["prompt_index"], x["sample"]): x["dpo"] for x in lines if x["dpo"]}
    assert roles == {(0, 1): "chosen", (0, 0): "rejected", (1, 0): "chosen", (1, 1): "rejected",
                     (4, 2): "chosen", (4, 0): "rejected"}
    empty = [x for x in lines if x["flr"] is None]
    assert len(empty) == 1 and empty[0]["note"] == "empty reply" and empty[0]["kto_tag"] is None


def test_plain_prompts_write_no_system_or_history_columns(tmp_path: Path) -> None:
    export_preferences(RESULTS[:2], tmp_path, ExportConfig(flavours=("alpaca",)))
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["flr_sft_alpaca"] == {"file_name": "flr_sft_alpaca.json", "columns": {
        "prompt": "instruction", "query": "input", "response": "output"}}
    assert info["flr_kto_alpaca"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output",
                                                 "kto_tag": "kto_tag"}
    assert not (tmp_path / "flr_dpo_sharegpt.json").exists()
    for name in info:
        check_llamafactory_dataset(tmp_path, name)


def test_summary_numbers_and_table(tmp_path: Path) -> None:
    result = export_preferences(RESULTS, tmp_path, ExportConfig(min_margin=0.5), run_info={"seed": 3})
    summary = json.loads((tmp_path / "flr_summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert (summary["prompts"], summary["samples"], summary["scored_samples"], summary["empty_replies"]) == (5, 13, 12, 1)
    reward = summary["reward"]
    assert reward["min"] == -1.0 and reward["max"] == 1.0 and reward["count"] == 12
    assert reward["mean"] == pytest.approx((0.1 + 1.0 + 0.4 + 0.5 + 0.3 + 0.1 + 0.2 + 0.2 + 0.7 - 1.0 + 0.0 + 1.0) / 12)
    assert summary["category_reward_means"]["relevance"] == pytest.approx(reward["mean"] + 0.5)
    dpo = summary["dpo"]
    assert (dpo["prompts_kept"], dpo["prompts_dropped"]) == (2, 3)
    assert dpo["margin"]["min"] == pytest.approx(0.9) and dpo["margin"]["max"] == pytest.approx(2.0)
    assert dpo["chosen_mean_flr"] == pytest.approx(1.0) and dpo["rejected_mean_flr"] == pytest.approx(-0.45)
    assert summary["kto"]["desirable"] == 4 and summary["kto"]["undesirable"] == 4
    assert summary["sft"]["examples"] == 5 and summary["run"] == {"seed": 3}
    table = format_summary(summary)
    assert "DPO pairs  2 prompts kept, 3 dropped" in table and "1 margin below minimum" in table
    assert "FLR" in table and "0.9000" in table


def test_existing_dataset_info_is_merged(tmp_path: Path) -> None:
    (tmp_path / "dataset_info.json").write_text(json.dumps({"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}))
    export_preferences(RESULTS, tmp_path, ExportConfig(prefix="mined"))
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["alpaca_en_demo"] == {"file_name": "alpaca_en_demo.json"} and "mined_dpo_alpaca" in info
    (tmp_path / "dataset_info.json").write_text("{broken")
    with pytest.raises(InputError, match="dataset_info.json: existing file is not valid JSON"):
        export_preferences(RESULTS, tmp_path)


def test_export_config_validation() -> None:
    with pytest.raises(ConfigError, match="min margin"):
        ExportConfig(min_margin=-1)
    with pytest.raises(ConfigError, match="flavours"):
        ExportConfig(flavours=("openai",))


def test_samples_frame_marks_pairs() -> None:
    from core.mining.preferences import select

    frame = samples_frame(RESULTS, select(RESULTS, ExportConfig()))
    assert list(frame.columns[:6]) == ["prompt id", "prompt", "sample", "response", "FLR", "role"]
    assert len(frame) == 13
    assert frame.loc[(frame["prompt id"] == "q0") & (frame["sample"] == 1), "role"].item() == "chosen"
    assert frame["relevance"].iloc[0] == pytest.approx(0.6)
