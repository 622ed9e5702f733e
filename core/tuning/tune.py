"""Tuning follow-up weights on labelled examples, validated by grouped nested cross-validation.

`tune(examples, followups, options)`:
1. groups the rows (pairs sharing a prompt or a reply, `core.tuning.folds`) and deals the groups
   to k folds;
2. for each fold, chooses the penalty by an inner grouped cross-validation on the other folds
   (`core.tuning.model.choose_strength`), fits there, and predicts the held-out fold;
3. compares, on the same held-out rows, the tuned score with the plain FLR and the length
   baseline (and with `control_length`, the follow-up part of a model fitted beside length):
   pairwise accuracy or rating correlation, per fold and pooled, with 95% intervals from a
   bootstrap over groups (so rows that share a prompt are resampled together);
4. fits once more on every row (penalty chosen the same way) for the weights it writes.

The written weights are the follow-up coefficients times the side's sign (a complaint that is
likely counts against the reply), scaled so their absolute values sum to 2 as a plain set's do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from core.engine.followups import FollowupSet
from core.names import PAIRWISE
from core.tuning.features import Examples
from core.tuning.folds import connected_groups, grouped_folds
from core.tuning.model import Fitted, choose_strength, fit

TUNED, TUNED_CONTROLLED, PLAIN, LENGTH_SIGNAL = "tuned", "tuned, length-controlled", "plain", "length"
BOOTSTRAP = 1000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class TuneOptions:
    folds: int = 5
    control_length: bool = False  # fit length beside the follow-ups; write the follow-up part
    seed: int = 0  # fold dealing and bootstrap
    bootstrap: int = BOOTSTRAP


@dataclass
class Figure:
    """One signal's cross-validated figure on the held-out rows."""

    value: float
    ci: tuple[float, float]
    per_fold: list[float]
    length_correlation: float  # Pearson with the length (difference); NaN without lengths

    def to_dict(self, metric: str) -> dict[str, Any]:
        return {metric: _num(self.value), f"{metric}_ci": [_num(c) for c in self.ci],
                "per_fold": [_num(v) for v in self.per_fold],
                "length_correlation": _num(self.length_correlation)}


@dataclass
class TuneResult:
    kind: str
    metric: str  # accuracy / pearson
    n: int
    n_groups: int
    folds: int
    fold_sizes: list[int]
    figures: dict[str, Figure]  # by signal
    strengths: list[float]  # chosen penalty per outer fold
    final: Fitted
    weights: np.ndarray  # written weights, in `utterances()` order
    tuned_set: FollowupSet
    control: Fitted | None = None  # final model with the length covariate
    notes: list[str] = field(default_factory=list)


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def signed_weights(followups: FollowupSet, coef: np.ndarray, examples: Examples) -> np.ndarray:
    """Follow-up coefficients as set weights: times the side's sign, |w| summing to 2."""
    signs = np.array([u.sign for u in examples.utterances], dtype=float)
    w = coef * signs
    total = np.abs(w).sum()
    return w * (2.0 / total) if total > 0 else w


def metric_of(kind: str, score: np.ndarray, target: np.ndarray) -> float:
    """Pairwise: share of pairs whose score difference is positive (ties count half);
    rating: Pearson correlation with the target."""
    if len(score) == 0:
        return float("nan")
    if kind == PAIRWISE:
        return float(np.mean((score > 0) + 0.5 * (score == 0)))
    if len(score) < 3 or np.std(score) == 0 or np.std(target) == 0:
        return float("nan")
    return float(stats.pearsonr(score, target)[0])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def metric_interval(kind: str, score: np.ndarray, target: np.ndarray, groups: np.ndarray,
                    samples: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap over groups: whole groups are drawn with replacement."""
    unique = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in unique]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(unique), len(unique))])
        values.append(metric_of(kind, score[rows], target[rows]))
    arr = np.array(values)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(arr, [alpha, 1 - alpha])
    return float(low), float(high)


def tune(examples: Examples, followups: FollowupSet, options: TuneOptions = TuneOptions()) -> TuneResult:
    """Cross-validate, then fit on everything; see the module docstring."""
    kind = examples.kind
    x, y = examples.features, examples.target
    length = examples.length if examples.has_length else None
    notes = list(examples.notes)
    if options.control_length and length is None:
        notes.append("no reply lengths in these files (precomputed values without text): "
                     "--control-length was not applied")
    control = options.control_length and length is not None
    groups = connected_groups(examples.keys)
    folds = grouped_folds(groups, options.folds, options.seed)
    oof = np.full(examples.n, np.nan)
    oof_controlled = np.full(examples.n, np.nan)
    strengths = []
    for f in range(options.folds):
        train, test = folds != f, folds == f
        strength = choose_strength(kind, x[train], y[train], None, groups[train], options.seed + 1 + f)
        strengths.append(strength)
        oof[test] = fit(kind, x[train], y[train], None, strength).followup_score(x[test])
        if control:
            assert length is not None
            s = choose_strength(kind, x[train], y[train], length[train], groups[train], options.seed + 1 + f)
            model = fit(kind, x[train], y[train], length[train], s)
            oof_controlled[test] = model.followup_score(x[test])
    signals = {TUNED: oof, PLAIN: examples.plain}
    if control:
        signals[TUNED_CONTROLLED] = oof_controlled
    if length is not None:
        signals[LENGTH_SIGNAL] = length
    figures = {}
    for name, score in signals.items():
        figures[name] = Figure(
            metric_of(kind, score, y),
            metric_interval(kind, score, y, groups, options.bootstrap, options.seed),
            [metric_of(kind, score[folds == f], y[folds == f]) for f in range(options.folds)],
            _corr(score, length) if length is not None else float("nan"))
    final = fit(kind, x, y, None, choose_strength(kind, x, y, None, groups, options.seed))
    control_fit = None
    written = final
    if control:
        assert length is not None
        control_fit = fit(kind, x, y, length, choose_strength(kind, x, y, length, groups, options.seed))
        written = control_fit
    weights = signed_weights(followups, written.coef, examples)
    tuned_set = followups.unweighted().with_weights([float(w) for w in weights])
    return TuneResult(kind, "accuracy" if kind == PAIRWISE else "pearson", examples.n,
                      int(len(np.unique(groups))), options.folds,
                      [int((folds == f).sum()) for f in range(options.folds)], figures, strengths,
                      final, weights, tuned_set, control_fit, notes)
