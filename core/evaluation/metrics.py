"""Statistics of a reward signal against ground truth: pure functions on arrays.

- Pairwise accuracy: the share of pairs where the preferred reply gets the higher value; a
  tie counts one half.
- Correlations (Pearson, Spearman, Kendall tau-b) with scipy's p-values.
- Model ranking: per-model mean of the signal, correlated with a reference ELO.
- Pairwise accuracy's 95% interval is the Wilson score interval (`ACCURACY_INTERVAL`), honest
  at small n; comparing two runs on the same rows uses a paired bootstrap (`paired_difference`).
- Correlations' 95% confidence intervals by the percentile bootstrap over rows (pairs, rated rows, or for
  rankings over prompts, so every model is re-evaluated on the same resampled prompts), with
  a seeded `numpy.random.Generator`, so a report is reproducible to the last digit.

Shortcut taken on purpose: a correlation is undefined (NaN) when either side is constant or
fewer than 3 rows remain; bootstrap resamples where that happens are left out of the interval
rather than counted as zero.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from core.names import BOOTSTRAP_SAMPLES, CORRELATIONS, RANK_CORRELATIONS

BOOTSTRAP_SEED = 0  # fixed, so a report is reproducible
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval (NaN where undefined) and p-value if any."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float = math.nan
    n: int = 0

    def to_dict(self) -> dict[str, float | int | list[float] | None]:
        return {"value": _json_float(self.value), "ci": [_json_float(self.ci_low), _json_float(self.ci_high)],
                "p_value": _json_float(self.p_value), "n": self.n}


def _json_float(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _generator(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(BOOTSTRAP_SEED if seed is None else seed)


# --------------------------------------------------------------------------- pairwise

def pair_outcomes(chosen: Sequence[float], rejected: Sequence[float]) -> np.ndarray:
    """Per pair: 1 if the chosen reply scores higher, 0.5 on a tie, 0 otherwise."""
    a = np.asarray(chosen, dtype=float)
    b = np.asarray(rejected, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"chosen and rejected need the same length; got {a.size} and {b.size}")
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


ACCURACY_INTERVAL = "wilson"  # how an accuracy's interval is computed (named in every report)


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float], *,
                      samples: int = BOOTSTRAP_SAMPLES, seed: int | None = None) -> Estimate:
    """Accuracy with a Wilson score 95% interval (`wilson_interval`).

    The Wilson interval is honest at any n, where a percentile bootstrap degenerates (5 of 5
    correct gives [1, 1] by resampling; Wilson gives [0.57, 1]). `samples` and `seed` are kept
    for callers that pass them; the interval needs neither."""
    outcomes = pair_outcomes(chosen, rejected)
    n = outcomes.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, n=0)
    value = float(outcomes.mean())
    low, high = wilson_interval(float(outcomes.sum()), n)
    return Estimate(value, low, high, n=n)


def accuracy_of(outcomes: Sequence[float]) -> Estimate:
    """Mean of per-pair outcomes (1, 0.5 or 0) with its Wilson score 95% interval."""
    o = np.asarray(outcomes, dtype=float)
    if o.size == 0:
        return Estimate(math.nan, math.nan, math.nan, n=0)
    low, high = wilson_interval(float(o.sum()), int(o.size))
    return Estimate(float(o.mean()), low, high, n=int(o.size))


def wilson_interval(successes: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion (a tie counted one half is half a success)."""
    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(a: Sequence[float], b: Sequence[float], *, samples: int = BOOTSTRAP_SAMPLES,
                      seed: int | None = None) -> Estimate:
    """Mean of a - b over the same rows with a paired percentile-bootstrap 95% interval (the
    same resampled rows on both sides)."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if x.size == 0:
        return Estimate(math.nan, math.nan, math.nan, n=0)
    rng = _generator(seed)
    idx = rng.integers(0, x.size, size=(samples, x.size))
    low, high = _percentile_ci(x[idx].mean(axis=1))
    return Estimate(float(x.mean()), low, high, n=int(x.size))


# --------------------------------------------------------------------------- correlations

def _corr_value(method: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(coefficient, p-value), NaN when undefined."""
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "pearson":
            res = stats.pearsonr(x, y)
        elif method == "spearman":
            res = stats.spearmanr(x, y)
        elif method == "kendall":
            res = stats.kendalltau(x, y)
        else:
            raise ValueError(f"unknown correlation {method!r}; use one of {', '.join(CORRELATIONS)}")
    return float(res.statistic), float(res.pvalue)


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two (samples, n) arrays, NaN where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / den
    r[den == 0] = np.nan
    return r


def _bootstrap_corr(method: str, x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    xs, ys = x[idx], y[idx]
    if method == "pearson":
        return pearson_rows(xs, ys)
    if method == "spearman":
        return pearson_rows(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
    return _kendall_rows(xs, ys)


def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of two (samples, n) arrays, NaN where undefined.

    Small n: all pairs at once (sign products, ties counted as tau-b does); large n: scipy's
    O(n log n) per row, where the per-call overhead no longer matters."""
    samples, n = x.shape
    if n > 400:
        return np.array([_corr_value("kendall", x[i], y[i])[0] for i in range(samples)])
    out = np.empty(samples)
    iu = np.triu_indices(n, k=1)
    n0 = n * (n - 1) / 2
    step = max(1, 2_000_000 // max(1, iu[0].size))
    for start in range(0, samples, step):
        xs, ys = x[start:start + step], y[start:start + step]
        sx = np.sign(xs[:, iu[0]] - xs[:, iu[1]])
        sy = np.sign(ys[:, iu[0]] - ys[:, iu[1]])
        tx = (sx == 0).sum(axis=1)
        ty = (sy == 0).sum(axis=1)
        den = np.sqrt((n0 - tx) * (n0 - ty))
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = (sx * sy).sum(axis=1) / den
        tau[den == 0] = np.nan
        out[start:start + step] = tau
    return out


def correlation(method: str, x: Sequence[float], y: Sequence[float], *,
                samples: int = BOOTSTRAP_SAMPLES, seed: int | None = None) -> Estimate:
    """Pearson / Spearman / Kendall tau-b with scipy's p-value and a bootstrap 95% interval."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ValueError(f"both sides need the same length; got {xa.size} and {ya.size}")
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    value, p = _corr_value(method, xa, ya)
    if math.isnan(value):
        return Estimate(value, math.nan, math.nan, p, n=int(xa.size))
    rng = _generator(seed)
    idx = rng.integers(0, xa.size, size=(samples, xa.size))
    low, high = _percentile_ci(_bootstrap_corr(method, xa, ya, idx))
    return Estimate(value, low, high, p, n=int(xa.size))


def correlations(x: Sequence[float], y: Sequence[float], *, samples: int = BOOTSTRAP_SAMPLES,
                 seed: int | None = None) -> dict[str, Estimate]:
    """Pearson, Spearman and Kendall of the same rows."""
    return {m: correlation(m, x, y, samples=samples, seed=seed) for m in CORRELATIONS}


# --------------------------------------------------------------------------- ranking



def ranking_correlations(values: np.ndarray, reference: Sequence[float], *,
                         samples: int = BOOTSTRAP_SAMPLES,
                         seed: int | None = None) -> dict[str, Estimate]:
    """Spearman and Kendall between per-model mean values and a reference (ELO).

    `values` is a (models, prompts) array with NaN where a model has no value for a prompt;
    the bootstrap resamples prompts (columns), the same ones for every model.
    """
    matrix = np.asarray(values, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != ref.size:
        raise ValueError(f"need one row of values per reference model; got {matrix.shape} and {ref.size}")
    means = _nanmean_rows(matrix)
    out: dict[str, Estimate] = {}
    rng = _generator(seed)
    n_prompts = matrix.shape[1]
    idx = rng.integers(0, n_prompts, size=(samples, n_prompts)) if n_prompts else None
    boot_means = None
    if idx is not None:
        boot_means = np.stack([_nanmean_rows(matrix[:, cols]) for cols in idx])  # (samples, models)
    for method in RANK_CORRELATIONS:
        keep = ~np.isnan(means)
        value, p = _corr_value(method, means[keep], ref[keep])
        low = high = math.nan
        if not math.isnan(value) and boot_means is not None:
            low, high = _percentile_ci(_bootstrap_ranking(method, boot_means, ref))
        out[method] = Estimate(value, low, high, p, n=int(keep.sum()))
    return out


def _bootstrap_ranking(method: str, boot_means: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The correlation of each resample's model means with the reference (models with no
    value in a resample are left out of that resample)."""
    out = np.empty(boot_means.shape[0])
    complete = ~np.isnan(boot_means).any(axis=1)
    if complete.any():
        full = boot_means[complete]
        refs = np.broadcast_to(ref, full.shape)
        if method == "spearman":
            out[complete] = pearson_rows(stats.rankdata(full, axis=1), stats.rankdata(refs, axis=1))
        else:
            out[complete] = _kendall_rows(full, np.array(refs))
    for i in np.flatnonzero(~complete):
        row = boot_means[i]
        ok = ~np.isnan(row)
        out[i] = _corr_value(method, row[ok], ref[ok])[0]
    return out


def _nanmean_rows(matrix: np.ndarray) -> np.ndarray:
    counts = (~np.isnan(matrix)).sum(axis=1)
    sums = np.nansum(matrix, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    means[counts == 0] = np.nan
    return means


# --------------------------------------------------------------------------- summaries

def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """Mean of the defined values weighted by their row counts (RewardBench's section score)."""
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = ~np.isnan(v) & (w > 0)
    if not keep.any():
        return math.nan
    return float((v[keep] * w[keep]).sum() / w[keep].sum())


def plain_mean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan

