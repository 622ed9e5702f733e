"""Batch evaluation: score benchmark rows (through the cache), compute metrics, report, export.

`run_evaluation` takes benchmarks from `core.evaluation.detect`, finds every conversation that still
needs a score, looks it up in the SQLite cache (`core.evaluation.score_cache`), and only if something is
missing calls `scorer_factory()` (so a rerun never loads the model). New scores are committed
chunk by chunk; a killed run resumes where it stopped and ends with the same report, because
nothing in the report depends on what was cached.

Signals compared on the same rows: the overall FLR (mean of category rewards), each
category's reward, and three baselines: the reply's length in characters, the positive-only
likelihood (mean of the positive follow-up values) and the negative-only likelihood (minus the
mean of the negative follow-up values, so that higher means better for every signal).

The report's JSON (`EvaluationReport.to_dict`) is `{"benchmarks": [{"name", "kind", "n",
"metrics": {...}, ...}], "summary": {...}, "settings": {...}}`; `metrics` holds the overall
FLR's figures (`accuracy` / `accuracy_ci` for pairwise; `pearson`, `spearman`, `kendall` with
`_ci` and `_p` for rating; `spearman`, `kendall` for ranking); `per_category` and `baselines`
hold the same figures for the other signals. DataFrame accessors feed the UI's dashboards.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.evaluation import metrics as M
from core.evaluation.benchmark import Benchmark
from core.names import (BOOTSTRAP_SAMPLES, BASELINES, CHOSEN, COL_CONVERSATION, COL_ERROR, COL_LENGTH, COL_MODEL, COL_PRECOMPUTED,
                        COL_PROMPT, COL_ROW, COL_SIDE, COL_SKIPPED, COL_SOURCE, COL_TRUTH, COL_VALUES, FLR,
                        LENGTH, METRICS_BY_KIND, NEGATIVE_ONLY, OVERALL, PAIRWISE, POSITIVE_ONLY,
                        RANKING, RATING, REJECTED)
from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.evaluation.elo import EloTable, default_elo, match_models
from core.errors import ConversationError
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.evaluation.score_cache import ScoreCache, conversation_hash, model_key, settings_key

if TYPE_CHECKING:
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, message)

CHUNK = 4  # conversations scored per cache commit: a killed run loses at most this many
CANCELLED = "not scored: the run was cancelled"



def category_column(category: str) -> str:
    return f"{FLR}: {category}"


@dataclass
class BenchmarkResult:
    """One benchmark's figures, skipped rows and (for a live run) its per-row table."""

    name: str
    kind: str
    n: int  # pairs / rated rows / responses evaluated (skipped ones excluded)
    metrics: dict[str, Any]
    per_category: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    source_format: str = ""
    precomputed: bool = False
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)  # ranking: per model
    unmatched: list[str] = field(default_factory=list)  # ranking: names without an ELO
    points: list[dict[str, Any]] = field(default_factory=list)  # rating: FLR vs truth per row
    rows: pd.DataFrame | None = None  # per-row values (live runs only, not in the JSON)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "n": self.n, "metrics": self.metrics,
            "per_category": self.per_category, "baselines": self.baselines,
            "categories": list(self.categories), "files": list(self.files),
            "format": self.source_format, "precomputed": self.precomputed,
            "skipped_rows": len(self.skipped), "skipped": self.skipped, "warnings": self.warnings,
        }
        if self.kind == RANKING:
            out["models"] = self.models
            out["unmatched_models"] = self.unmatched
        if self.kind == RATING:
            out["points"] = self.points
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchmarkResult":
        return cls(name=data["name"], kind=data["kind"], n=int(data.get("n", 0)),
                   metrics=dict(data.get("metrics", {})),
                   per_category=dict(data.get("per_category", {})),
                   baselines=dict(data.get("baselines", {})),
                   categories=tuple(data.get("categories", ())), files=tuple(data.get("files", ())),
                   source_format=data.get("format", ""), precomputed=bool(data.get("precomputed", False)),
                   skipped=list(data.get("skipped", [])), warnings=list(data.get("warnings", [])),
                   models=list(data.get("models", [])),
                   unmatched=list(data.get("unmatched_models", [])),
                   points=list(data.get("points", [])))


@dataclass
class EvaluationReport:
    benchmarks: list[BenchmarkResult]
    settings: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    stats: dict[str, Any] = field(default_factory=dict)  # timings and cache counts; not in the JSON

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmarks": [b.to_dict() for b in self.benchmarks],
            "summary": self.summary(),
            "settings": self.settings,
            "skipped_rows": sum(len(b.skipped) for b in self.benchmarks),
            "cancelled": self.cancelled,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvaluationReport":
        """Rebuild a report (for dashboards) from `to_dict()` output, e.g. an uploaded file."""
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            raise ValueError('a report is a JSON object with a "benchmarks" list')
        return cls([BenchmarkResult.from_dict(b) for b in data["benchmarks"]],
                   dict(data.get("settings", {})), bool(data.get("cancelled", False)))

    def to_json(self) -> str:
        """`to_dict()` as JSON text (NaN written as null)."""
        return json.dumps(_json_safe(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    def write_report(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    def benchmark(self, name: str) -> BenchmarkResult:
        for b in self.benchmarks:
            if b.name == name:
                return b
        raise KeyError(f"no benchmark named {name!r}; have {', '.join(b.name for b in self.benchmarks)}")

    # -- summary --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """RewardBench-style: each set's headline figure, then the mean weighted by rows."""
        out: dict[str, Any] = {}
        for kind in (PAIRWISE, RATING, RANKING):
            group = [b for b in self.benchmarks if b.kind == kind]
            if not group:
                continue
            entry: dict[str, Any] = {"sets": {b.name: {m: b.metrics.get(m) for m in METRICS_BY_KIND[kind]}
                                              for b in group},
                                     "n": sum(b.n for b in group)}
            for m in METRICS_BY_KIND[kind]:
                values = [_nan(b.metrics.get(m)) for b in group]
                weights = [b.n for b in group]
                entry[f"weighted_{m}"] = _none(M.weighted_mean(values, weights))
                entry[f"mean_{m}"] = _none(M.plain_mean(values))
            out[kind] = entry
        return out

    def summary_frame(self) -> pd.DataFrame:
        rows = []
        for kind, entry in self.summary().items():
            for name, figures in entry["sets"].items():
                for metric, value in figures.items():
                    rows.append({"kind": kind, "benchmark": name, "metric": metric, "value": value})
            for metric in METRICS_BY_KIND[kind]:
                rows.append({"kind": kind, "benchmark": "weighted mean", "metric": metric,
                             "value": entry[f"weighted_{metric}"]})
        return pd.DataFrame(rows, columns=["kind", "benchmark", "metric", "value"])

    # -- frames for dashboards ------------------------------------------------------------
    def metrics_frame(self) -> pd.DataFrame:
        """One row per benchmark x category x signal x metric, with value, CI and p-value."""
        rows = []
        for b in self.benchmarks:
            blocks = [(OVERALL, FLR, b.metrics)]
            blocks += [(cat, FLR, figures) for cat, figures in b.per_category.items()]
            blocks += [(OVERALL, sig, figures) for sig, figures in b.baselines.items()]
            for category, signal, figures in blocks:
                for metric in METRICS_BY_KIND[b.kind]:
                    ci = figures.get(f"{metric}_ci") or [None, None]
                    rows.append({"benchmark": b.name, "kind": b.kind, "category": category,
                                 "signal": signal, "metric": metric,
                                 "value": _nan(figures.get(metric)),
                                 "ci_low": _nan(ci[0]), "ci_high": _nan(ci[1]),
                                 "p_value": _nan(figures.get(f"{metric}_p")),
                                 "n": figures.get("n", b.n)})
        return pd.DataFrame(rows, columns=["benchmark", "kind", "category", "signal", "metric",
                                           "value", "ci_low", "ci_high", "p_value", "n"])

    def rating_points(self, name: str) -> pd.DataFrame:
        """FLR against the ground-truth score, one row per rated row."""
        b = self.benchmark(name)
        return pd.DataFrame(b.points, columns=["row", "model", FLR, "truth"])

    def ranking_frame(self, name: str) -> pd.DataFrame:
        """Per model: mean FLR, the matched ELO entry and how it was matched."""
        b = self.benchmark(name)
        return pd.DataFrame(b.models, columns=["model", "flr", "elo", "elo model", "matched by",
                                               "responses"])

    def skipped_frame(self) -> pd.DataFrame:
        rows = [{"benchmark": b.name, **s} for b in self.benchmarks for s in b.skipped]
        return pd.DataFrame(rows, columns=["benchmark", "row", "source", "reason"])

    # -- exports --------------------------------------------------------------------------
    def export(self, directory: str | Path) -> list[Path]:
        """Scored rows as JSONL in the paper's layout (one file per category, and for pairs
        per side) and as one CSV per benchmark; plus REPORT.json. Returns the files written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for b in self.benchmarks:
            if b.rows is None:
                continue
            written += _export_paper_layout(b, directory)
            written.append(_export_csv(b, directory))
        written.append(self.write_report(directory / "REPORT.json"))
        return written


# --------------------------------------------------------------------------- the runner

def run_evaluation(benchmarks: Sequence[Benchmark], *, scorer_factory: Callable[[], "Scorer"],
                   config: ScoringConfig, followups: FollowupSet, cache_path: Path | None,
                   progress: Progress | None = None, cancel: threading.Event | None = None,
                   limit: int | None = None, elo: EloTable | None = None,
                   bootstrap_samples: int = BOOTSTRAP_SAMPLES, seed: int = M.BOOTSTRAP_SEED,
                   chunk_size: int = CHUNK) -> EvaluationReport:
    """Score what is not cached yet, then compute every benchmark's metrics."""
    started = time.perf_counter()
    benchmarks = [b.limited(limit) for b in benchmarks]
    elo = elo or default_elo()
    needed: dict[str, Conversation] = {}
    for b in benchmarks:
        if b.precomputed:
            continue
        for conv in b.frame[COL_CONVERSATION]:
            if isinstance(conv, Conversation):
                needed.setdefault(conversation_hash(conv), conv)

    scores: dict[str, ConversationScore] = {}
    failures: dict[str, str] = {}
    stats: dict[str, Any] = {"to_score": len(needed), "from_cache": 0, "scored": 0,
                             "failed": 0, "model_loaded": False}
    cancelled = False
    if needed:
        settings = settings_key(config)
        mkey = model_key(config)
        with ScoreCache(cache_path) as cache:
            identity = cache.known_identity(mkey)
            if identity is not None:
                scores, failures = cache.get_many(identity, settings, followups, needed)
            missing = [h for h in needed if h not in scores and h not in failures]
            stats["from_cache"] = len(scores) + len(failures)
            if missing and cancel is not None and cancel.is_set():
                cancelled = True
            elif missing:
                if progress is not None:
                    progress(0, len(missing), "loading the model")
                scorer = scorer_factory()
                stats["model_loaded"] = True
                if scorer.identity != identity:
                    identity = scorer.identity
                    cache.remember_identity(mkey, identity)
                    scores, failures = cache.get_many(identity, settings, followups, needed)
                    missing = [h for h in needed if h not in scores and h not in failures]
                cancelled = _score_missing(scorer, cache, identity, settings, followups, needed,
                                           missing, scores, failures, stats, progress, cancel,
                                           chunk_size)
    results = [_evaluate(b, scores, failures, followups, elo, bootstrap_samples, seed)
               for b in benchmarks]
    stats["seconds"] = time.perf_counter() - started
    report_settings = {**config.as_dict(), "followups": followups.fingerprint(),
                       "followup_categories": list(followups.names), "elo_table": elo.name,
                       "limit": limit, "bootstrap_samples": bootstrap_samples, "seed": seed}
    log.info("evaluated %d benchmark(s): %d conversations scored, %d from the cache",
             len(results), stats["scored"], stats["from_cache"])
    return EvaluationReport(results, report_settings, cancelled, stats)


def _score_missing(scorer: "Scorer", cache: ScoreCache, identity: str, settings: str,
                   followups: FollowupSet, needed: dict[str, Conversation], missing: list[str],
                   scores: dict[str, ConversationScore], failures: dict[str, str],
                   stats: dict[str, Any], progress: Progress | None,
                   cancel: threading.Event | None, chunk_size: int) -> bool:
    """Score in chunks, committing each; True if cancelled before the end."""
    total = len(missing)
    done = 0
    for start in range(0, total, chunk_size):
        if cancel is not None and cancel.is_set():
            return True
        chunk = missing[start:start + chunk_size]
        convs = [needed[h] for h in chunk]
        new_scores: dict[str, ConversationScore] = {}
        new_failures: dict[str, str] = {}

        def step(i: int, _n: int, base: int = done) -> None:
            if progress is not None:
                progress(base + i, total, f"scored {base + i} of {total} conversations")

        try:
            new_scores = dict(zip(chunk, scorer.score_many(convs, followups, progress=step)))
        except ConversationError:
            for h, conv in zip(chunk, convs):  # find which row the engine refuses
                try:
                    new_scores[h] = scorer.score(conv, followups)
                except ConversationError as err:
                    new_failures[h] = str(err)
        cache.put_many(identity, settings, followups, new_scores, new_failures)
        scores.update(new_scores)
        failures.update(new_failures)
        stats["scored"] += len(new_scores)
        stats["failed"] += len(new_failures)
        done += len(chunk)
        if progress is not None:
            progress(done, total, f"scored {done} of {total} conversations")
    return False


# --------------------------------------------------------------------------- per benchmark

def _row_values(b: Benchmark, scores: dict[str, ConversationScore], failures: dict[str, str]
                ) -> tuple[list[dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None], list[str | None], int]:
    """Per frame row: the follow-up values by category (or None) and why not."""
    values: list[dict | None] = []
    reasons: list[str | None] = []
    truncated = 0
    for conv, err, pre in zip(b.frame[COL_CONVERSATION], b.frame[COL_ERROR], b.frame[COL_PRECOMPUTED]):
        if isinstance(err, str):
            values.append(None)
            reasons.append(err)
        elif b.precomputed:
            values.append(pre)
            reasons.append(None)
        else:
            h = conversation_hash(conv)
            if h in scores:
                s = scores[h]
                truncated += s.truncated
                values.append({c.name: (c.positive, c.negative) for c in s.categories})
                reasons.append(None)
            elif h in failures:
                values.append(None)
                reasons.append(failures[h])
            else:
                values.append(None)
                reasons.append(CANCELLED)
    return values, reasons, truncated


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _rows_table(b: Benchmark, values: list, reasons: list[str | None],
                categories: tuple[str, ...]) -> pd.DataFrame:
    f = b.frame
    table = pd.DataFrame({
        COL_ROW: f[COL_ROW].to_numpy(), COL_SIDE: f[COL_SIDE].to_numpy(),
        COL_SOURCE: f[COL_SOURCE].to_numpy(), COL_MODEL: f[COL_MODEL].to_numpy(),
        COL_PROMPT: f[COL_PROMPT].to_numpy(), COL_TRUTH: f[COL_TRUTH].to_numpy(dtype=float),
    })
    table[COL_SKIPPED] = pd.Series(reasons, dtype=object)
    table[COL_LENGTH] = [float(len(c.reply)) if isinstance(c, Conversation) else math.nan
                         for c in f[COL_CONVERSATION]]
    cat_values = {c: [] for c in categories}
    flr, pos_only, neg_only = [], [], []
    for v in values:
        if v is None:
            for c in categories:
                cat_values[c].append(math.nan)
            flr.append(math.nan)
            pos_only.append(math.nan)
            neg_only.append(math.nan)
            continue
        rewards = []
        for c in categories:
            pos, neg = v[c]
            reward = _mean(pos) - _mean(neg)
            cat_values[c].append(reward)
            rewards.append(reward)
        flr.append(_mean(rewards))
        pos_only.append(_mean([_mean(v[c][0]) for c in categories]))
        neg_only.append(-_mean([_mean(v[c][1]) for c in categories]))
    table[FLR] = flr
    for c in categories:
        table[category_column(c)] = cat_values[c]
    table[POSITIVE_ONLY] = pos_only
    table[NEGATIVE_ONLY] = neg_only
    table[COL_VALUES] = pd.Series(values, dtype=object)
    table[COL_CONVERSATION] = pd.Series(list(f[COL_CONVERSATION]), dtype=object)
    return table


def _evaluate(b: Benchmark, scores: dict[str, ConversationScore], failures: dict[str, str],
              followups: FollowupSet, elo: EloTable, samples: int, seed: int) -> BenchmarkResult:
    categories = b.categories if b.precomputed else followups.names
    values, reasons, truncated = _row_values(b, scores, failures)
    rows = _rows_table(b, values, reasons, categories)
    signals = [(OVERALL, FLR, FLR)] + [(c, FLR, category_column(c)) for c in categories] + [
        (OVERALL, s, s) for s in BASELINES]
    result = BenchmarkResult(b.name, b.kind, 0, {}, categories=tuple(categories),
                             files=tuple(str(p.name) for p in b.paths),
                             source_format=b.source_format, precomputed=b.precomputed,
                             warnings=list(b.warnings), rows=rows)
    if truncated:
        result.warnings.append(f"{truncated} conversation(s) were cut from the left to fit the "
                               "model's context")
    if b.kind == PAIRWISE:
        _pairwise(result, rows, signals, samples, seed)
    elif b.kind == RATING:
        _rating(result, rows, signals, samples, seed)
    else:
        _ranking(result, rows, signals, elo, samples, seed)
    return result


def _figures(kind: str, estimates: dict[str, M.Estimate], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, est in estimates.items():
        out[metric] = _none(est.value)
        out[f"{metric}_ci"] = [_none(est.ci_low), _none(est.ci_high)]
        if kind != PAIRWISE:
            out[f"{metric}_p"] = _none(est.p_value)
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
    chosen = rows[rows[COL_SIDE] == CHOSEN].set_index(COL_ROW)
    rejected = rows[rows[COL_SIDE] == REJECTED].set_index(COL_ROW)
    pair_ids = [r for r in chosen.index if r in rejected.index]
    ok = []
    for r in pair_ids:
        reasons = [x for x in (chosen.at[r, COL_SKIPPED], rejected.at[r, COL_SKIPPED])
                   if isinstance(x, str)]
        if reasons:
            result.skipped.append({"row": int(r), "source": chosen.at[r, COL_SOURCE].removesuffix(" (chosen)"),
                                   "reason": "; ".join(dict.fromkeys(reasons))})
        else:
            ok.append(r)
    result.n = len(ok)
    c, j = chosen.loc[ok], rejected.loc[ok]
    for category, signal, column in signals:
        a, b = c[column].to_numpy(dtype=float), j[column].to_numpy(dtype=float)
        keep = ~(np.isnan(a) | np.isnan(b))
        if signal == LENGTH and not keep.any():
            continue  # precomputed files without conversations have no length
        est = M.pairwise_accuracy(a[keep], b[keep], samples=samples, seed=seed)
        figures = _figures(PAIRWISE, {"accuracy": est}, int(keep.sum()))
        if category == OVERALL and signal == FLR:
            figures["ties"] = int((a[keep] == b[keep]).sum())
        _store(result, category, signal, figures)


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
        keep = ~np.isnan(x)
        if signal == LENGTH and not keep.any():
            continue
        est = M.correlations(x[keep], truth[keep], samples=samples, seed=seed)
        _store(result, category, signal, _figures(RATING, est, int(keep.sum())))
    result.points = [{"row": int(r), "model": m, FLR: _none(v), "truth": _none(t)}
                     for r, m, v, t in zip(good[COL_ROW], good[COL_MODEL], good[FLR], truth)]


def _ranking(result: BenchmarkResult, rows: pd.DataFrame, signals: list, elo: EloTable,
             samples: int, seed: int) -> None:
    good = _skip_rows(result, rows).copy()
    result.n = len(good)
    models = list(dict.fromkeys(rows[COL_MODEL]))  # every model, also ones fully skipped
    matches = {m.model: m for m in match_models(models, elo)}
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
        {"model": m, "flr": _none(float(means.get(m, math.nan))),
         "elo": matches[m].elo, "elo model": matches[m].elo_name or "",
         "matched by": matches[m].how, "responses": int(counts.get(m, 0))}
        for m in models]
    matched = [m for m in models if matches[m].elo_name is not None and m in means.index]
    if result.unmatched:
        result.warnings.append("no ELO for: " + ", ".join(result.unmatched)
                               + " (left out of the correlation)")
    ref = [matches[m].elo for m in matched]
    sub = good[good[COL_MODEL].isin(matched)]
    for category, signal, column in signals:
        if sub[column].isna().all():
            continue
        matrix = sub.pivot_table(index=COL_MODEL, columns=COL_PROMPT, values=column,
                                 aggfunc="mean", dropna=False).reindex(matched)
        est = M.ranking_correlations(matrix.to_numpy(dtype=float), ref, samples=samples, seed=seed)
        figures = _figures(RANKING, est, len(matched))
        if category == OVERALL and signal == FLR:
            figures["n_models"] = len(models)
            figures["n_matched"] = len(matched)
        _store(result, category, signal, figures)


# --------------------------------------------------------------------------- exports

def _safe(text: str, keep_separators: bool = True) -> str:
    pattern = r"[^A-Za-z0-9.+_-]+" if keep_separators else r"[^A-Za-z0-9]+"
    return re.sub(pattern, "-" if keep_separators else "", text).strip("-") or "x"


def _paper_entry(conv: Any, pos: Sequence[float], neg: Sequence[float]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if isinstance(conv, Conversation):
        entry["conversation"] = list(conv.utterances)
        if conv.system:
            entry["system"] = conv.system
    entry["positive"] = list(pos)
    entry["negative"] = list(neg)
    return entry


def _export_paper_layout(b: BenchmarkResult, directory: Path) -> list[Path]:
    rows = b.rows
    assert rows is not None
    name = _safe(b.name)
    written = []
    for category in b.categories:
        cat = _safe(category, keep_separators=False)
        if b.kind == PAIRWISE:
            skipped = {int(s["row"]) for s in b.skipped}
            for side, word in ((CHOSEN, "accept"), (REJECTED, "reject")):
                part = rows[(rows[COL_SIDE] == side) & ~rows[COL_ROW].isin(skipped)]
                lines = [_paper_entry(conv, v[category][0], v[category][1])
                         for conv, v in zip(part[COL_CONVERSATION], part[COL_VALUES])]
                written.append(_write_jsonl(directory / f"{name}_{word}_{cat}.jsonl", lines))
        else:
            part = rows[rows[COL_SKIPPED].isna()]
            lines = []
            for conv, values, truth, model, prompt in zip(
                    part[COL_CONVERSATION], part[COL_VALUES], part[COL_TRUTH], part[COL_MODEL],
                    part[COL_PROMPT]):
                entry = _paper_entry(conv, *values[category])
                if b.kind == RATING:
                    entry["score"] = float(truth)
                if model:
                    entry["model"] = model
                if b.kind == RANKING and prompt:
                    entry["prompt_id"] = prompt
                lines.append(entry)
            written.append(_write_jsonl(directory / f"{name}_{cat}.jsonl", lines))
    return written


def _write_jsonl(path: Path, entries: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return path


def _export_csv(b: BenchmarkResult, directory: Path) -> Path:
    rows = b.rows
    assert rows is not None
    table = rows.drop(columns=[COL_VALUES, COL_CONVERSATION]).copy()
    table.insert(0, "benchmark", b.name)
    table["conversation"] = [json.dumps(c.messages(), ensure_ascii=False)
                             if isinstance(c, Conversation) else "" for c in rows[COL_CONVERSATION]]
    if b.kind != RATING:
        table = table.drop(columns=[COL_TRUTH])
    path = directory / f"{_safe(b.name)}.csv"
    table.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- helpers

def _none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
