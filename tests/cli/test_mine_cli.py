"""`flr mine`: argument handling, outputs, resume, and one-line errors (fake scorer)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import core.mining.policy
import core.engine.scorer
from core.cli import mine as mine_cli
from tests.fakes import FakeScorer
from tests.llamafactory_schema import check_llamafactory_dataset
from tests.mining.test_mining import ScriptedPolicy


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core")
    mine_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["mine", *argv])


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict:
    made: dict = {"policies": [], "scorers": []}

    def load_scorer(config):
        made["scorers"].append(FakeScorer(config))
        return made["scorers"][-1]

    def load_policy(config):
        made["policies"].append(ScriptedPolicy())
        made["policy_config"] = config
        return made["policies"][-1]

    monkeypatch.setattr(core.engine.scorer, "load_scorer", load_scorer)
    monkeypatch.setattr(core.mining.policy, "load_policy", load_policy)
    return made


def test_mine_writes_datasets_and_resumes(tmp_path: Path, fakes: dict, capsys: pytest.CaptureFixture) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"question": f"Question {i}?"}) for i in range(4)))
    out = tmp_path / "out"
    args = parse("--prompts", str(prompts), "--output-dir", str(out), "--samples", "3", "--limit", "3",
                 "--seed", "5", "--min-margin", "0.01", "--categories", "relevance,correctness", "--no-progress")
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "DPO pairs" in printed and "flr_dpo_sharegpt" in printed
    assert fakes["policies"][0].asked == [0, 1, 2] and fakes["policy_config"].model == "embedded"
    info = json.loads((out / "dataset_info.json").read_text())
    assert len(info) == 6
    for name in info:
        check_llamafactory_dataset(out, name)
    summary = json.loads((out / "flr_summary.json").read_text())
    assert summary["prompts"] == 3 and summary["samples"] == 9
    assert summary["run"]["seed"] == 5 and summary["run"]["categories"] == ["relevance", "correctness"]
    samples = [json.loads(x) for x in (out / "flr_samples.jsonl").read_text().splitlines()]
    assert {x["response"].split(" (seed")[0] for x in samples} >= {"reply 0 to Question 0?"}
    assert len(samples) == 9 and all(set(x["rewards"]) == {"relevance", "correctness"} for x in samples)

    assert args.func(args) == 0  # same settings: everything comes from the cache
    assert fakes["policies"][1].asked == []
    assert json.loads((out / "flr_summary.json").read_text())["dpo"] == summary["dpo"]


def test_finished_only_flag(tmp_path: Path, fakes: dict) -> None:
    prompts = tmp_path / "p.json"
    prompts.write_text('["One?", "Two?"]')
    args = parse("--prompts", str(prompts), "--output-dir", str(tmp_path / "o"), "--samples", "4",
                 "--finished-only", "--no-progress")
    assert args.func(args) == 0
    kto = json.loads((tmp_path / "o" / "flr_kto_sharegpt.json").read_text())
    # ScriptedPolicy: odd-numbered samples are cut at max tokens, so only samples 0 and 2 remain.
    assert len(kto) == 4 and {r["conversations"][1]["value"][:7] for r in kto} == {"reply 0", "reply 2"}
    assert json.loads((tmp_path / "o" / "flr_summary.json").read_text())["unfinished_left_out"] is True


def test_feedback_triples_mode(tmp_path: Path, fakes: dict, capsys: pytest.CaptureFixture) -> None:
    triples = tmp_path / "t.json"
    triples.write_text(json.dumps([{"question": "Q?", "answer": "A.", "feedback": "Good."}]))
    args = parse("--feedback-triples", str(triples), "--output-dir", str(tmp_path / "fb"))
    assert args.func(args) == 0
    assert fakes["scorers"] == []  # no model is loaded for this
    check_llamafactory_dataset(tmp_path / "fb", "flr_feedback_sharegpt")
    assert "1 (question, answer, feedback) triples" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--samples", "0"], "samples per prompt must be a positive integer"),
    (["--limit", "0"], "--limit must be a positive number"),
    (["--categories", "nope"], "unknown category nope"),
    (["--min-margin", "-1"], "min margin must be a non-negative number"),
])
def test_bad_settings_are_one_line_errors(tmp_path: Path, fakes: dict, capsys: pytest.CaptureFixture,
                                          extra: list[str], message: str) -> None:
    prompts = tmp_path / "p.json"
    prompts.write_text('["Hi?"]')
    args = parse("--prompts", str(prompts), "--output-dir", str(tmp_path / "o"), *extra)
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_prompt_file_names_it(tmp_path: Path, fakes: dict, capsys: pytest.CaptureFixture) -> None:
    args = parse("--prompts", str(tmp_path / "missing.jsonl"), "--output-dir", str(tmp_path / "o"))
    assert args.func(args) == 2
    assert "missing.jsonl: cannot read the file (No such file" in capsys.readouterr().err


def test_prompts_or_triples_required() -> None:
    with pytest.raises(SystemExit):
        parse("--output-dir", "x")


@pytest.mark.embedded
def test_mine_on_the_embedded_model(tmp_path: Path) -> None:
    """The whole loop on SmolLM2-135M (one model as policy and scorer): same seed, same data."""
    from core.engine.config import ScoringConfig
    from core.engine.followups import default_followups
    from core.mining.mining import MiningConfig, mine
    from core.mining.policy import TransformersPolicy
    from core.mining.preferences import export_preferences
    from core.mining.prompts import MiningPrompt

    scorer = core.engine.scorer.load_scorer(ScoringConfig())
    policy = TransformersPolicy.from_loaded(scorer.loaded)
    prompts = [MiningPrompt("0", ("Name one planet of the solar system.",))]
    followups = default_followups().select(["relevance"])
    config = MiningConfig(samples=3, max_new_tokens=12, seed=11)
    first = mine(prompts, policy, scorer, followups, config, tmp_path / "cache")
    again = mine(prompts, policy, scorer, followups, config)  # no cache: sampled and scored anew
    assert first == again
    assert all(s.response and s.flr is not None for s in first[0].samples)
    export_preferences(first, tmp_path / "out")
    rows = [json.loads(x) for x in (tmp_path / "out" / "flr_samples.jsonl").read_text().splitlines()]
    flr = {r["response"]: r["flr"] for r in rows}
    for pair in json.loads((tmp_path / "out" / "flr_dpo_sharegpt.json").read_text()):
        assert flr[pair["chosen"]["value"]] > flr[pair["rejected"]["value"]]
    check_llamafactory_dataset(tmp_path / "out", "flr_sft_sharegpt")
