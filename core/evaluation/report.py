"""An evaluation's results: `BenchmarkResult` per benchmark and the `EvaluationReport` around them.

The report's JSON (`EvaluationReport.to_dict`) is `{"benchmarks": [{"name", "kind", "n",
"metrics": {...}, ...}], "summary": {...}, "settings": {...}}`; `metrics` holds the overall
FLR's figures (`accuracy` / `accuracy_ci` for pairwise; `pearson`, `spearman`, `kendall` with
`_ci` and `_p` for rating; `spearman`, `kendall` for ranking); `per_category` and `baselines`
hold the same figures for the other signals. DataFrame accessors feed the UI's dashboards.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation import metrics as M
from core.names import (ACCURACY, COL_BENCHMARK, COL_KIND, COL_METRIC, COL_MODEL, COL_REASON, COL_ROW,
                        COL_SOURCE, COL_TRUTH, COL_VALUE, FLR, METRICS_BY_KIND, METRICS_COLUMNS, OVERALL, PAIRWISE, RANKING,
                        RATING)

from core.evaluation.exports import export_csv, export_paper_layout
from core.errors import InputError
from core.textfiles import read_text, write_text


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
    baselines_missing: dict[str, str] = field(default_factory=dict)  # baseline -> why left out
    categories: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    source_format: str = ""
    precomputed: bool = False
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)  # ranking: per model
    unmatched: list[str] = field(default_factory=list)  # ranking: names without an ELO
    points: list[dict[str, Any]] = field(default_factory=list)  # rating: FLR vs truth per row
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)  # pairwise: per `subset`
    outcomes: dict[str, list] = field(default_factory=dict)  # pairwise: per-pair outcome by signal
    rewardbench: dict[str, Any] | None = None  # pairwise with RewardBench subsets: its score
    rows: pd.DataFrame | None = None  # per-row values (live runs only, not in the JSON)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "n": self.n, "metrics": self.metrics,
            "per_category": self.per_category, "baselines": self.baselines,
            "baselines_missing": self.baselines_missing,
            "categories": list(self.categories), "files": list(self.files),
            "format": self.source_format, "precomputed": self.precomputed,
            "skipped_rows": len(self.skipped), "skipped": self.skipped, "warnings": self.warnings,
        }
        if self.kind == PAIRWISE:
            out["subsets"] = self.subsets
            out["outcomes"] = self.outcomes
            out["rewardbench"] = self.rewardbench
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
                   baselines_missing=dict(data.get("baselines_missing", {})),
                   categories=tuple(data.get("categories", ())), files=tuple(data.get("files", ())),
                   source_format=data.get("format", ""), precomputed=bool(data.get("precomputed", False)),
                   skipped=list(data.get("skipped", [])), warnings=list(data.get("warnings", [])),
                   models=list(data.get("models", [])),
                   unmatched=list(data.get("unmatched_models", [])),
                   points=list(data.get("points", [])),
                   subsets=dict(data.get("subsets", {})), outcomes=dict(data.get("outcomes", {})),
                   rewardbench=data.get("rewardbench"))


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
        write_text(path, self.to_json())
        return path

    def benchmark(self, name: str) -> BenchmarkResult:
        for b in self.benchmarks:
            if b.name == name:
                return b
        raise KeyError(f"no benchmark named {name!r}; have {', '.join(b.name for b in self.benchmarks)}")

    # -- summary --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Per kind: each set's headline figures; `pooled_<metric>`, the mean weighted by rows
        (all rows pooled, so the largest set dominates); `mean_<metric>`, the plain mean of
        sets; `undefined`, the sets left out of both and why (never silently); and for sets
        with RewardBench subsets, their RewardBench score (`core.evaluation.rewardbench`)."""
        out: dict[str, Any] = {}
        for kind in (PAIRWISE, RATING, RANKING):
            group = [b for b in self.benchmarks if b.kind == kind]
            if not group:
                continue
            entry: dict[str, Any] = {"sets": {b.name: {m: b.metrics.get(m) for m in METRICS_BY_KIND[kind]}
                                              for b in group},
                                     "n": sum(b.n for b in group), "undefined": {},
                                     "pooled": "mean over sets weighted by their rows"}
            for b in group:
                missing = [m for m in METRICS_BY_KIND[kind] if b.metrics.get(m) is None]
                if missing:
                    entry["undefined"][b.name] = _why_undefined(b, missing)
            for m in METRICS_BY_KIND[kind]:
                values = [_nan(b.metrics.get(m)) for b in group]
                weights = [b.n for b in group]
                entry[f"pooled_{m}"] = finite_or_none(M.weighted_mean(values, weights))
                entry[f"mean_{m}"] = finite_or_none(M.plain_mean(values))
            scored = {b.name: b.rewardbench for b in group if b.rewardbench}
            if scored:
                entry["rewardbench"] = scored
            out[kind] = entry
        return out

    def summary_frame(self) -> pd.DataFrame:
        rows = []
        for kind, entry in self.summary().items():
            for name, figures in entry["sets"].items():
                for metric, value in figures.items():
                    rows.append({COL_KIND: kind, COL_BENCHMARK: name, COL_METRIC: metric, COL_VALUE: value})
            for metric in METRICS_BY_KIND[kind]:
                rows.append({COL_KIND: kind, COL_BENCHMARK: "pooled (weighted by rows)", COL_METRIC: metric,
                             COL_VALUE: entry[f"pooled_{metric}"]})
            for name, rb in entry.get("rewardbench", {}).items():
                rows.append({COL_KIND: kind, COL_BENCHMARK: f"{name}: {rb['method'].split(':')[0]}",
                             COL_METRIC: ACCURACY, COL_VALUE: rb["score"]})
        return pd.DataFrame(rows, columns=[COL_KIND, COL_BENCHMARK, COL_METRIC, COL_VALUE])

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
                    rows.append(dict(zip(METRICS_COLUMNS, (
                        b.name, b.kind, category, signal, metric, _nan(figures.get(metric)),
                        _nan(ci[0]), _nan(ci[1]), _nan(figures.get(f"{metric}_p")), figures.get("n", b.n)))))
        return pd.DataFrame(rows, columns=list(METRICS_COLUMNS))

    def rating_points(self, name: str) -> pd.DataFrame:
        """FLR against the ground-truth score, one row per rated row."""
        b = self.benchmark(name)
        return pd.DataFrame(b.points, columns=[COL_ROW, COL_MODEL, FLR, COL_TRUTH])

    def ranking_frame(self, name: str) -> pd.DataFrame:
        """Per model: mean FLR, the matched ELO entry and how it was matched."""
        b = self.benchmark(name)
        return pd.DataFrame(b.models, columns=["model", "flr", "elo", "elo model", "matched by",
                                               "responses"])

    def skipped_frame(self) -> pd.DataFrame:
        rows = [{COL_BENCHMARK: b.name, **s} for b in self.benchmarks for s in b.skipped]
        return pd.DataFrame(rows, columns=[COL_BENCHMARK, COL_ROW, COL_SOURCE, COL_REASON])

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
            written += export_paper_layout(b, directory)
            written.append(export_csv(b, directory))
        written.append(self.write_report(directory / "REPORT.json"))
        return written


def _why_undefined(b: BenchmarkResult, metrics: list[str]) -> str:
    if b.n == 0:
        return "no usable rows (see its skipped rows)"
    if b.kind == RANKING and b.metrics.get("n_matched", 0) < 3:
        return f"{', '.join(metrics)} undefined: fewer than 3 models with an ELO"
    return (f"{', '.join(metrics)} undefined on {b.n} rows (fewer than 3 rows, or a constant "
            "FLR or ground-truth column)")


def finite_or_none(x: Any) -> float | None:
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


def load_report_data(path: str | Path, error: type[InputError] = InputError, *,
                     label: str | None = None) -> dict[str, Any]:
    """A REPORT.json's data (read through `core.textfiles`: size-capped, UTF-8), checked to be a
    report; a one-line `error` naming the file as `label` (default its path) when it is not one."""
    where = label or str(path)
    text = read_text(path, error, label=where, what="report")
    try:
        data = json.loads(text)
        EvaluationReport.from_dict(data)
    except json.JSONDecodeError as err:
        raise error(f"{where}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise error(f"{where}: not an evaluation report ({err}); give a REPORT.json that "
                    "flr evaluate or the Batch tab wrote") from None
    return data


def load_report(path: str | Path, error: type[InputError] = InputError, *,
                label: str | None = None) -> EvaluationReport:
    """`load_report_data` as an `EvaluationReport`."""
    return EvaluationReport.from_dict(load_report_data(path, error, label=label))
