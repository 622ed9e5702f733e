"""Two evaluation reports side by side, on the rows they share, with a paired interval of the
difference: `compare_reports`.

Pairwise benchmarks are compared pair by pair: each report stores one outcome per pair and
signal with a key made from the pair's conversations (`BenchmarkResult.outcomes`), so only the
pairs both runs judged are compared, and the 95% interval of B - A is a paired percentile
bootstrap (the same resampled pairs on both sides, `metrics.paired_difference`). Rating
benchmarks are compared on the rows both judged (their `points`): the Pearson and Spearman
difference with the same paired resampling. Ranking benchmarks, and reports written before
per-row outcomes were stored, are shown side by side without an interval, and say so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import InputError
from core.evaluation import metrics as M
from core.evaluation.report import BenchmarkResult, EvaluationReport
from core.names import (ACCURACY, BOOTSTRAP_SAMPLES, COL_BENCHMARK, COL_CI_HIGH, COL_CI_LOW, COL_KIND, COL_METRIC,
                        COL_N, COL_ROW, COL_SIGNAL, COL_TRUTH, FLR, HEADLINE, PAIRWISE, PEARSON, RATING,
                        SPEARMAN)

COLUMNS = [COL_BENCHMARK, COL_KIND, COL_SIGNAL, COL_METRIC, COL_N, "A", "B", "B - A", COL_CI_LOW, COL_CI_HIGH, "note"]


def compare_reports(a: EvaluationReport, b: EvaluationReport, *, samples: int = BOOTSTRAP_SAMPLES,
                    seed: int = M.BOOTSTRAP_SEED, signals: tuple[str, ...] = (FLR,)) -> pd.DataFrame:
    """One row per benchmark both reports hold (matched by name) and signal."""
    rows: list[dict[str, Any]] = []
    theirs = {x.name: x for x in b.benchmarks}
    for mine in a.benchmarks:
        other = theirs.get(mine.name)
        if other is None or other.kind != mine.kind:
            continue
        for signal in signals:
            if mine.kind == PAIRWISE:
                rows.append(_pairwise(mine, other, signal, samples, seed))
            elif mine.kind == RATING and signal == FLR:
                rows += _rating(mine, other, samples, seed)
            elif signal == FLR:
                rows.append(_side_by_side(mine, other, "per-row values are not stored for rankings"))
    if not rows:
        raise InputError("the two reports share no benchmark (by name and kind); compare runs "
                         "of the same benchmark files")
    return pd.DataFrame(rows, columns=COLUMNS)


def _pairwise(a: BenchmarkResult, b: BenchmarkResult, signal: str, samples: int, seed: int) -> dict[str, Any]:
    if signal not in a.outcomes or signal not in b.outcomes:
        return _side_by_side(a, b, "a report has no per-pair outcomes (written by an older version)",
                             signal)
    left = dict(zip(a.outcomes["keys"], a.outcomes[signal]))
    right = dict(zip(b.outcomes["keys"], b.outcomes[signal]))
    common = [k for k in left if k in right]
    x = np.array([left[k] for k in common], dtype=float)
    y = np.array([right[k] for k in common], dtype=float)
    est = M.paired_difference(y, x, samples=samples, seed=seed)
    note = "paired bootstrap over the pairs both runs judged"
    if len(common) < max(len(left), len(right)):
        note += f" ({len(left)} in A, {len(right)} in B)"
    return {COL_BENCHMARK: a.name, COL_KIND: a.kind, COL_SIGNAL: signal, COL_METRIC: ACCURACY,
            COL_N: len(common), "A": _mean(x), "B": _mean(y), "B - A": est.value,
            COL_CI_LOW: est.ci_low, COL_CI_HIGH: est.ci_high, "note": note}


def _rating(a: BenchmarkResult, b: BenchmarkResult, samples: int, seed: int) -> list[dict[str, Any]]:
    left = {p[COL_ROW]: (p[FLR], p[COL_TRUTH]) for p in a.points if p.get(FLR) is not None}
    right = {p[COL_ROW]: (p[FLR], p[COL_TRUTH]) for p in b.points if p.get(FLR) is not None}
    common = [r for r in left if r in right and left[r][1] == right[r][1]]
    if len(common) < 3:
        return [_side_by_side(a, b, "fewer than 3 rows in common")]
    x = np.array([left[r][0] for r in common])
    y = np.array([right[r][0] for r in common])
    truth = np.array([left[r][1] for r in common])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(common), size=(samples, len(common)))
    out = []
    for metric, f in ((PEARSON, M.pearson_rows), (SPEARMAN, lambda u, v: M.pearson_rows(_ranks(u), _ranks(v)))):
        va, vb = f(x[None, :], truth[None, :])[0], f(y[None, :], truth[None, :])[0]
        diffs = f(y[idx], truth[idx]) - f(x[idx], truth[idx])
        diffs = diffs[~np.isnan(diffs)]
        low, high = (np.quantile(diffs, [0.025, 0.975]) if diffs.size else (math.nan, math.nan))
        out.append({COL_BENCHMARK: a.name, COL_KIND: a.kind, COL_SIGNAL: FLR, COL_METRIC: metric,
                    COL_N: len(common), "A": va, "B": vb, "B - A": vb - va, COL_CI_LOW: float(low),
                    COL_CI_HIGH: float(high), "note": "paired bootstrap over the rows both runs judged"})
    return out


def _side_by_side(a: BenchmarkResult, b: BenchmarkResult, why: str, signal: str = FLR) -> dict[str, Any]:
    metric = HEADLINE[a.kind]
    fa = a.metrics if signal == FLR else a.baselines.get(signal, {})
    fb = b.metrics if signal == FLR else b.baselines.get(signal, {})
    va, vb = _num(fa.get(metric)), _num(fb.get(metric))
    return {COL_BENCHMARK: a.name, COL_KIND: a.kind, COL_SIGNAL: signal, COL_METRIC: metric,
            COL_N: min(a.n, b.n), "A": va, "B": vb, "B - A": vb - va, COL_CI_LOW: math.nan,
            COL_CI_HIGH: math.nan, "note": f"no paired interval: {why}"}


def _ranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, axis=1)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)
