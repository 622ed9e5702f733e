"""`flr tune --objective rating`: ridge on rated replies names the signal follow-ups and its
held-out correlation beats plain FLR's."""

from __future__ import annotations

import json
import random
from pathlib import Path

from core.tuning.features import examples_from_results
from core.tuning.report import weights_frame
from core.tuning.tune import PLAIN, TUNED, TuneOptions, tune
from tests.tuning.synthetic import BAD, GOOD, SET
from tests.tuning.test_tune import evaluate


def write_ratings(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        q = rng.uniform(0, 1)
        rows.append({"conversation": [f"Question {i}?", f"Answer {i} q={q:.4f}"], "score": 1 + 4 * q})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rating_objective(tmp_path: Path) -> None:
    report = evaluate(write_ratings(tmp_path / "ratings.jsonl", 150, seed=3))
    examples = examples_from_results(report.benchmarks, SET, "rating")
    result = tune(examples, SET, TuneOptions(folds=5, bootstrap=200))
    assert result.metric == "pearson" and result.n == 150
    assert result.figures[TUNED].value > result.figures[PLAIN].value + 0.1
    top = set(weights_frame(result, examples)["follow-up"].head(3))
    assert {GOOD, BAD} <= top
