"""From scores to a benchmark's figures: the signals compared on the same rows, and their metrics.

Signals: the overall FLR (mean of category rewards; with a weighted follow-up set, their
weighted sums, `core.engine.results`), each category's reward, and three
baselines: the reply's length in characters, the positive-only likelihood (mean of the positive
follow-up values) and the negative-only likelihood (minus the mean of the negative follow-up
values, so that higher means better for every signal). A row that cannot be judged is skipped
with its reason and leaves every signal alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore, category_reward, overall_reward
from core.evaluation import metrics as M
from core.evaluation import pairs as P
from core.evaluation.benchmark import Benchmark
from core.evaluation.elo import EloTable, match_models
from core.evaluation.rewardbench import summary_score
from core.evaluation.score_cache import conversation_hash
from core.names import (
    BASELINES,
    COL_CONVERSATION,
    COL_ERROR,
    COL_LENGTH,
    COL_MODEL,
    COL_PRECOMPUTED,
    COL_PROMPT,
    COL_ROW,
    COL_SIDE,
    COL_SKIPPED,
    COL_SOURCE,
    COL_SUBSET,
    COL_TRUTH,
    COL_VALUES,
    DIRECT,
    FLR,
    LENGTH,
    NEGATIVE_ONLY,
    OVERALL,
    PAIRWISE,
    POSITIVE_ONLY,
    RANKING,
    RATING,
)

from core.evaluation.report import BenchmarkResult, category_column, finite_or_none

CANCELLED = "not scored: the run was cancelled"
NOT_FINITE = "follow-up values are not finite (NaN or infinite); the row is left out of every figure"
# Signals a benchmark may lack for some rows; each is reported only when every judged row has it.
_OPTIONAL = {LENGTH: "rows without a conversation (precomputed values only)",
             DIRECT: "rows without the reply's own likelihood (precomputed values, a reply cut "
                     "to fit the context, or a scorer that does not compute it)"}


@dataclass
class _RowValues:
    """Per frame row: follow-up values by category (or None), the Direct value, why not."""

    values: list[dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None]
    direct: list[float]
    reasons: list[str | None]
    truncated: int


def _row_values(b: Benchmark, scores: dict[str, ConversationScore], failures: dict[str, str]) -> _RowValues:
    out = _RowValues([], [], [], 0)
    for conv, err, pre in zip(b.frame[COL_CONVERSATION], b.frame[COL_ERROR], b.frame[COL_PRECOMPUTED]):
        value, direct, reason = None, math.nan, None
        if isinstance(err, str):
            reason = err
        elif b.precomputed:
            value = pre
        else:
            h = conversation_hash(conv)
            if h in scores:
                s = scores[h]
                out.truncated += s.truncated
                value = {c.name: (c.positive, c.negative) for c in s.categories}
                direct = math.nan if s.direct is None else float(s.direct)
            else:
                reason = failures.get(h, CANCELLED)
        out.values.append(value)
        out.direct.append(direct)
        out.reasons.append(reason)
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


Weights = dict[str, tuple[tuple[float, ...], tuple[float, ...]]]


def set_weights(b: Benchmark, values: list, followups: FollowupSet,
                categories: Sequence[str]) -> tuple[Weights | None, str | None]:
    """The weighted set's (positive, negative) weights per category, or None for plain FLR,
    and a warning when a weighted set cannot apply to a precomputed file's value lists."""
    if not followups.weighted:
        return None, None
    weights = {c.name: (c.positive_weights, c.negative_weights) for c in followups}
    missing = [c for c in categories if c not in weights]
    if missing:
        return None, (f"the weighted follow-up set has no categor{'y' if len(missing) == 1 else 'ies'} "
                      f"{', '.join(missing)}; plain FLR is reported")
    for v in values:
        if v is None:
            continue
        for c in categories:
            pos, neg = v[c]
            if (len(pos), len(neg)) != tuple(len(w) for w in weights[c]):
                return None, (f"category {c!r}: the precomputed lists hold {len(pos)} positive and "
                              f"{len(neg)} negative values but the weighted set has "
                              f"{len(weights[c][0])} and {len(weights[c][1])}; plain FLR is reported")
    return weights, None


def _rows_table(b: Benchmark, found: _RowValues, categories: tuple[str, ...],
                weights: Weights | None = None) -> pd.DataFrame:
    """One row per frame row with every signal; a row whose FLR signals are not all finite is
    marked skipped, so that every figure is computed on exactly the same rows."""
    f = b.frame
    table = pd.DataFrame({
        COL_ROW: f[COL_ROW].to_numpy(), COL_SIDE: f[COL_SIDE].to_numpy(),
        COL_SOURCE: f[COL_SOURCE].to_numpy(), COL_MODEL: f[COL_MODEL].to_numpy(),
        COL_PROMPT: f[COL_PROMPT].to_numpy(), COL_TRUTH: f[COL_TRUTH].to_numpy(dtype=float),
        COL_SUBSET: f[COL_SUBSET].to_numpy(),
    })
    reasons = list(found.reasons)
    table[COL_LENGTH] = [float(len(c.reply)) if isinstance(c, Conversation) else math.nan
                         for c in f[COL_CONVERSATION]]
    cat_values: dict[str, list[float]] = {c: [] for c in categories}
    flr, pos_only, neg_only = [], [], []
    with np.errstate(invalid="ignore", over="ignore"):
        for i, v in enumerate(found.values):
            row = [math.nan] * (len(categories) + 3)
            if v is not None:
                # plain sets keep exactly the arithmetic they always had (sum / len)
                rewards = [category_reward(*v[c], *weights[c]) if weights else _mean(v[c][0]) - _mean(v[c][1])
                           for c in categories]
                row = rewards + [overall_reward(rewards, True) if weights else _mean(rewards),
                                 _mean([_mean(v[c][0]) for c in categories]),
                                 -_mean([_mean(v[c][1]) for c in categories])]
                if reasons[i] is None and not all(math.isfinite(x) for x in row):
                    reasons[i] = NOT_FINITE
            for c, x in zip(categories, row):
                cat_values[c].append(x)
            flr.append(row[-3])
            pos_only.append(row[-2])
            neg_only.append(row[-1])
    table[COL_SKIPPED] = pd.Series(reasons, dtype=object)
    table[FLR] = flr
    for c in categories:
        table[category_column(c)] = cat_values[c]
    table[POSITIVE_ONLY] = pos_only
    table[NEGATIVE_ONLY] = neg_only
    table[DIRECT] = found.direct
    table[COL_VALUES] = pd.Series(found.values, dtype=object)
    table[COL_CONVERSATION] = pd.Series(list(f[COL_CONVERSATION]), dtype=object)
    return table


def judge_benchmark(b: Benchmark, scores: dict[str, ConversationScore], failures: dict[str, str],
              followups: FollowupSet, elo: EloTable, samples: int, seed: int,
              elo_map: Mapping[str, str] | None = None,
              sections: Mapping[str, Sequence[str]] | None = None) -> BenchmarkResult:
    categories = b.categories if b.precomputed else followups.names
    found = _row_values(b, scores, failures)
    weights, weight_warning = set_weights(b, found.values, followups, categories)
    rows = _rows_table(b, found, categories, weights)
    signals = [(OVERALL, FLR, FLR)] + [(c, FLR, category_column(c)) for c in categories] + [
        (OVERALL, s, s) for s in BASELINES]
    result = BenchmarkResult(b.name, b.kind, 0, {}, categories=tuple(categories),
                             files=tuple(str(p.name) for p in b.paths),
                             source_format=b.source_format, precomputed=b.precomputed,
                             warnings=list(b.warnings), rows=rows)
    if weight_warning:
        result.warnings.append(weight_warning)
    if found.truncated:
        result.warnings.append(f"{found.truncated} conversation(s) were cut from the left to fit the "
                               "model's context")
    if b.kind == PAIRWISE:
        _pairwise(result, rows, signals, samples, seed)
        result.rewardbench = summary_score(result.subsets, b.source_format, sections)
    elif b.kind == RATING:
        _rating(result, rows, signals, samples, seed)
    else:
        _ranking(result, rows, signals, elo, samples, seed, elo_map)
    return result


def _complete(result: BenchmarkResult, signal: str, values: np.ndarray) -> bool:
    """Whether an optional baseline has a value on every judged row; if not it is left out
    (never computed on a subset and printed beside FLR as if on the same rows), and why."""
    if signal not in _OPTIONAL or not values.size:
        return True
    missing = int(np.isnan(values).sum())
    if missing:
        result.baselines_missing[signal] = f"{missing} of {values.size} {_OPTIONAL[signal]}"
    return missing == 0


def _figures(kind: str, estimates: dict[str, M.Estimate], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, est in estimates.items():
        out[metric] = finite_or_none(est.value)
        out[f"{metric}_ci"] = [finite_or_none(est.ci_low), finite_or_none(est.ci_high)]
        if kind != PAIRWISE:
            out[f"{metric}_p"] = finite_or_none(est.p_value)
    out["n"] = n
    return out


def _store(result: BenchmarkResult, category: str, signal: str, figures: dict[str, Any]) -> None:
    if category == OVERALL and signal == FLR:
        result.metrics = figures
    elif signal == FLR:
        result.per_category[category] = figures
    else:
        result.baselines[signal] = figures


def _pairwise(result: BenchmarkResult, rows: pd.DataFrame, signals: list, samples: int, seed: int) -> None:
    ok, skipped = P.usable_pairs(rows)
    result.skipped += skipped
    result.n = len(ok)
    good = rows[rows[COL_ROW].isin(ok)]
    if P.best_of_n(good):
        result.warnings.append("best-of-N pairs (RewardBench 2 layout): a pair counts as won when "
                               "every chosen reply scores above every rejected one")
    kept: dict[str, np.ndarray] = {}
    for category, signal, column in signals:
        if not _complete(result, signal, good[column].to_numpy(dtype=float)):
            continue
        won, ties = P.outcomes(good, ok, column)
        figures = _figures(PAIRWISE, {"accuracy": M.accuracy_of(won)}, len(ok))
        figures["accuracy_interval"] = M.ACCURACY_INTERVAL
        if category == OVERALL and signal == FLR:
            figures["ties"] = ties
        if category == OVERALL:
            kept[signal] = won
        _store(result, category, signal, figures)
    subsets = P.subsets_of(good, ok)
    if FLR in kept and any(subsets):
        result.subsets = P.subset_figures(subsets, kept, FLR)
    if FLR in kept:
        result.outcomes = {"keys": P.pair_keys(good, ok), **{s: v.tolist() for s, v in kept.items()}}


def _skip_rows(result: BenchmarkResult, rows: pd.DataFrame) -> pd.DataFrame:
    bad = rows[rows[COL_SKIPPED].notna()]
    result.skipped += [{"row": int(r), "source": s, "reason": str(x)}
                       for r, s, x in zip(bad[COL_ROW], bad[COL_SOURCE], bad[COL_SKIPPED])]
    return rows[rows[COL_SKIPPED].isna()]


def _rating(result: BenchmarkResult, rows: pd.DataFrame, signals: list, samples: int, seed: int) -> None:
    good = _skip_rows(result, rows)
    result.n = len(good)
    truth = good[COL_TRUTH].to_numpy(dtype=float)
    for category, signal, column in signals:
        x = good[column].to_numpy(dtype=float)
        if not _complete(result, signal, x):
            continue
        est = M.correlations(x, truth, samples=samples, seed=seed)
        _store(result, category, signal, _figures(RATING, est, len(good)))
    result.points = [{"row": int(r), "model": m, FLR: finite_or_none(v), "truth": finite_or_none(t)}
                     for r, m, v, t in zip(good[COL_ROW], good[COL_MODEL], good[FLR], truth)]


def _ranking(result: BenchmarkResult, rows: pd.DataFrame, signals: list, elo: EloTable,
             samples: int, seed: int, elo_map: Mapping[str, str] | None) -> None:
    good = _skip_rows(result, rows).copy()
    result.n = len(good)
    models = list(dict.fromkeys(rows[COL_MODEL]))  # every model, also ones fully skipped
    matches = {m.model: m for m in match_models(models, elo, elo_map)}
    unused = sorted(set(elo_map or {}) - set(models))
    if unused:
        result.warnings.append("--elo-map names models not in this benchmark: " + ", ".join(unused))
    result.unmatched = [m for m in models if matches[m].elo_name is None]
    if good[COL_PROMPT].nunique() <= 1 and len(good) > len(models):
        # no prompt ids: the i-th response of each model stands for prompt i
        good[COL_PROMPT] = good.groupby(COL_MODEL).cumcount().astype(str)
    else:
        # a model answering one prompt twice keeps both answers (a model's FLR is the plain
        # mean over its rows), as the k-th answer to that prompt
        nth = good.groupby([COL_MODEL, COL_PROMPT]).cumcount()
        good[COL_PROMPT] = [p if k == 0 else f"{p}#{k}" for p, k in zip(good[COL_PROMPT], nth)]
    means = good.groupby(COL_MODEL)[FLR].mean()
    counts = good.groupby(COL_MODEL)[FLR].size()
    result.models = [
        {"model": m, "flr": finite_or_none(float(means.get(m, math.nan))),
         "elo": matches[m].elo, "elo model": matches[m].elo_name or "",
         "matched by": matches[m].how, "responses": int(counts.get(m, 0))}
        for m in models]
    matched = [m for m in models if matches[m].elo_name is not None and m in means.index]
    if result.unmatched:
        hints = [f"{m} (did you mean {matches[m].hint}? map it with --elo-map)" if matches[m].hint
                 else m for m in result.unmatched]
        result.warnings.append("no ELO for: " + ", ".join(hints) + " (left out of the correlation)")
    ref = [matches[m].elo for m in matched]
    sub = good[good[COL_MODEL].isin(matched)]
    for category, signal, column in signals:
        if not _complete(result, signal, sub[column].to_numpy(dtype=float)):
            continue
        matrix = sub.pivot_table(index=COL_MODEL, columns=COL_PROMPT, values=column,
                                 aggfunc="mean", dropna=False).reindex(matched)
        est = M.ranking_correlations(matrix.to_numpy(dtype=float), ref, samples=samples, seed=seed)
        figures = _figures(RANKING, est, len(matched))
        if category == OVERALL and signal == FLR:
            figures["n_models"] = len(models)
            figures["n_matched"] = len(matched)
        _store(result, category, signal, figures)
