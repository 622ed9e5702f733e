"""`flr align`: DPO on what `flr mine` wrote raises the chosen/rejected margin, the report compares
base and aligned replies drawn with the same seeds. Tiny model, a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.engine.config import ScoringConfig
from core.engine.models import load_model
from core.errors import FLRError
from core.training.align import AlignOptions, dpo_rows, held_out_prompts, kto_rows, read_mined, train_policy
from core.training.comparison import length_controlled

PROMPTS = ["What is the capital of France?", "Write a short poem about the sea.", "Could you explain that?",
           "What is the weather today?", "Name a colour.", "Tell me a joke.", "What is two plus two?",
           "Describe the sky.", "Say thanks.", "Explain it in simple words."]


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("mine")
    prompts = folder / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS))
    out = folder / "mined"
    assert main(["mine", "--prompts", str(prompts), "--output-dir", str(out), "--policy", str(tiny_model_dir),
                 "--scorer", str(tiny_model_dir), "--samples", "4", "--max-new-tokens", "8",
                 "--device", "cpu", "--no-progress"]) == 0
    return out


def test_rows_are_the_pairs_mine_exported_minus_the_held_out(mined: Path) -> None:
    data = read_mined(mined)
    exported = json.loads((mined / "flr_dpo_sharegpt.json").read_text())
    held = held_out_prompts(sorted({p.id for p in data.prompts.values()}), 0.3)
    assert held and len(held) < len(PROMPTS)
    rows = dpo_rows(data, set())
    assert [r["chosen"][0]["content"] for r in rows] == [e["chosen"]["value"] for e in exported]
    assert len(dpo_rows(data, held)) == len(rows) - sum(
        1 for s in data.samples if s.dpo == "chosen" and s.prompt.id in held)
    assert all(isinstance(r["label"], bool) for r in kto_rows(data, held))


def test_dpo_margin_rises(mined: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = read_mined(mined)
    loaded = load_model(ScoringConfig(model=str(tiny_model_dir), device="cpu"))
    options = AlignOptions(max_steps=8, batch_size=4, learning_rate=1e-2, logging_steps=1, lora_rank=8)
    result = train_policy(dpo_rows(data, set()), loaded, tmp_path / "a", options)
    margins = [log["rewards/margins"] for log in result.logs]
    assert len(margins) == 8 and abs(margins[0]) < 1e-6  # step 1 runs the untouched policy
    assert np.mean(margins[-3:]) > 0.05
    assert (tmp_path / "a" / "adapter_config.json").is_file()


def test_align_command_writes_the_report(mined: Path, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "aligned"
    assert main(["align", str(mined), "--output", str(out), "--policy", str(tiny_model_dir),
                 "--scorer", str(tiny_model_dir), "--max-steps", "3", "--batch-size", "2",
                 "--max-new-tokens", "8", "--held-out", "0.3", "--device", "cpu"]) == 0
    report = json.loads((out / "align_report.json").read_text())
    judges = report["comparison"]["judges"]
    assert [j["mode"] for j in judges] == ["base", "feedback"]
    replies = report["comparison"]["replies"]
    assert len(replies) == report["comparison"]["prompts"] > 0
    for j in judges:
        assert j["rows"] + j["left_out_empty"] == len(replies)
        lo, hi = j["win_rate"]["ci"]
        assert lo <= j["win_rate"]["value"] <= hi
    assert "win rate of aligned" in (out / "align_report.md").read_text()
    assert json.loads((out / "flr-adapter.json").read_text())["base_model"] == str(tiny_model_dir.resolve())
    assert "wrote the adapter" in capsys.readouterr().out


def test_a_folder_that_is_not_mined_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FLRError, match="pass the folder `flr mine --output-dir` wrote"):
        read_mined(tmp_path)


def test_length_controlled_win_rate_discounts_length() -> None:
    # the aligned reply is usually longer and wins when it is longer (10% of outcomes flipped):
    # the raw win rate is well above 0.5, the win rate at equal length close to it
    rng = np.random.default_rng(0)
    diff = rng.normal(size=300) + 0.6
    outcomes = (diff > 0).astype(float)
    flip = rng.random(300) < 0.1
    outcomes[flip] = 1 - outcomes[flip]
    raw = outcomes.mean()
    lc = length_controlled(outcomes, diff, samples=50)
    assert raw > 0.6 and abs(lc["value"] - 0.5) < 0.1 and lc["ci"][0] <= lc["value"] <= lc["ci"][1]
    ties = length_controlled(np.full(50, 0.5), rng.normal(size=50), samples=20)
    assert ties["value"] == pytest.approx(0.5, abs=1e-6)


def test_a_rerun_resumes_its_own_checkpoints_and_refuses_another_run_s(mined: Path, tiny_model_dir: Path,
                                                                       tmp_path: Path) -> None:
    rows = dpo_rows(read_mined(mined), set())
    config = ScoringConfig(model=str(tiny_model_dir), device="cpu")
    options = AlignOptions(max_steps=2, batch_size=4, learning_rate=1e-2, logging_steps=1, save_steps=1,
                           lora_rank=4)
    out = tmp_path / "a"
    train_policy(rows, load_model(config), out, options)
    lines: list[str] = []
    again = train_policy(rows, load_model(config), out, options, report=lines.append)
    assert again.steps == 2 and any("checkpoint-2 already holds all 2 steps" in line for line in lines)
    assert [log["step"] for log in again.logs] == [1, 2]  # the run's margins, read from the checkpoint

    other = AlignOptions(**{**vars(options), "method": "kto"})  # another run's settings: refused
    with pytest.raises(FLRError, match="checkpoints of a different run"):
        train_policy(kto_rows(read_mined(mined), set()), load_model(config), out, other)
    lines.clear()
    fresh = train_policy(kto_rows(read_mined(mined), set()), load_model(config), out, other,
                         report=lines.append, restart=True)
    assert fresh.steps == 2 and not any(line.startswith("resuming") for line in lines)
    assert len(fresh.logs) == 2  # trained both steps anew
