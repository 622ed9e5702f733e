"""`flr compare`: two reports on the same rows, with a paired interval of the difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli.main import main
from core.engine.config import ScoringConfig
from core.engine.followups import followups_from_mapping
from core.evaluation.compare import compare_reports
from core.evaluation.detect import detect_benchmarks
from core.evaluation.runner import EvaluationOptions, run_evaluation
from tests.fakes import FakeScorer

FOLLOWUPS = followups_from_mapping({"relevance": {"positive": ["Great."], "negative": ["Bad."]}})


def run(path: Path, value, limit=None):
    config = ScoringConfig(model="fake")
    return run_evaluation(detect_benchmarks([path]), scorer_factory=lambda: FakeScorer(config, value),
                          config=config, followups=FOLLOWUPS, cache_path=None,
                          options=EvaluationOptions(bootstrap_samples=200, limit=limit))


def test_paired_difference_on_the_shared_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"poor {i}"}) + "\n"
                            for i in range(20)))
    always = run(path, lambda t: 1.0 if "good" in t else 0.0)  # 20 of 20
    half = run(path, lambda t: float(("good" in t) == (int(t.split()[-1]) % 2 == 0)), limit=10)  # 5 of 10
    frame = compare_reports(always, half, samples=500)
    (row,) = frame.to_dict(orient="records")
    assert row["n"] == 10 and row["A"] == 1.0 and row["B"] == 0.5 and row["B - A"] == -0.5
    assert row["ci_low"] < -0.1 and row["ci_high"] <= 0.0
    assert "20 in A, 10 in B" in row["note"]
    (tmp_path / "a.json").write_text(always.to_json())
    (tmp_path / "b.json").write_text(half.to_json())
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--signals", "flr,direct"]) == 0
    out = capsys.readouterr().out
    assert "-0.500 [" in out and "direct" in out


def test_compare_of_a_file_that_is_no_report_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.json").write_text('{"x": 1}')
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an evaluation report" in err  # the one load_report's words
