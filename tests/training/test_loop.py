"""`flr loop`: prompts to mined pairs to an aligned adapter and its report in one command, the
mined folder being exactly what `flr mine` writes with the same settings. Tiny model, 3 steps."""

from __future__ import annotations

import json
from pathlib import Path

from core.cli.main import main
from core.engine.config import ScoringConfig
from core.engine.models import load_model
from tests.training.test_align import PROMPTS


def test_loop_mines_aligns_and_reports(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS))
    out = tmp_path / "loop"
    models = ["--policy", str(tiny_model_dir), "--scorer", str(tiny_model_dir), "--device", "cpu"]
    assert main(["loop", str(prompts), "--output", str(out), *models, "--samples", "4", "--max-new-tokens", "8",
                 "--max-steps", "3", "--batch-size", "2", "--held-out", "0.3"]) == 0
    printed = capsys.readouterr().out
    aligned = out / "aligned"
    assert f"adapter: {aligned}" in printed
    assert f"report: {aligned / 'align_report.md'} and {aligned / 'align_report.json'}" in printed

    # step 1 is `flr mine`: the same samples, scores and DPO/KTO selection
    assert main(["mine", "--prompts", str(prompts), "--output-dir", str(tmp_path / "mine"), "--policy",
                 str(tiny_model_dir), "--scorer", str(tiny_model_dir), "--samples", "4", "--max-new-tokens",
                 "8", "--device", "cpu", "--no-progress"]) == 0
    assert (out / "mined" / "flr_samples.jsonl").read_text() == (tmp_path / "mine" / "flr_samples.jsonl").read_text()
    assert (out / "mined" / "flr_dpo_sharegpt.json").read_text() == \
        (tmp_path / "mine" / "flr_dpo_sharegpt.json").read_text()

    # steps 2 and 3 are `flr align`: trained on the mined pairs, held-out replies judged twice
    report = json.loads((aligned / "align_report.json").read_text())
    assert report["mined_dir"] == str(out / "mined") and report["training"]["steps"] == 3
    assert report["training"]["examples"] > 0
    assert [j["role"] for j in report["comparison"]["judges"]] == ["training scorer", "second scorer"]
    assert len(report["comparison"]["replies"]) == report["comparison"]["prompts"] > 0
    assert "win rate of aligned" in (aligned / "align_report.md").read_text()
    adapter = load_model(ScoringConfig(model=str(aligned), device="cpu"))
    assert adapter.identity.startswith(f"adapter:{aligned.resolve()}:")


def test_loop_refuses_bad_flags_before_loading_a_model(tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hi"}) + "\n")
    assert main(["loop", str(prompts), "--output", str(tmp_path / "o"), "--policy", "/nonexistent/model",
                 "--held-out", "1.5"]) == 2
    assert "--held-out must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
