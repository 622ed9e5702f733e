"""A benchmark ready to evaluate: the `Benchmark` dataclass and its one tidy table.

Three kinds (pairwise, rating, ranking; `core.names.KINDS`). `Benchmark.frame` has one row per
conversation to judge, with the columns `core.names.FRAME_COLUMNS`: a conversation that is
present but unusable keeps its row with the reason in `error`, so the rest is still evaluated.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

from core.engine.conversation import Conversation
from core.errors import BenchmarkFormatError
from core.names import (
    COL_CONVERSATION,
    COL_ERROR,
    COL_MODEL,
    COL_PRECOMPUTED,
    COL_PROMPT,
    COL_ROW,
    COL_SIDE,
    COL_SOURCE,
    COL_SUBSET,
    COL_TRUTH,
    FRAME_COLUMNS,
    RANKING,
)


@dataclass
class Benchmark:
    """One benchmark ready to evaluate: its rows, where they came from and what was guessed."""

    name: str
    kind: str
    paths: tuple[Path, ...]
    frame: pd.DataFrame
    precomputed: bool  # every row carries its follow-up values: no model needed
    source_format: str  # "paper", "hh-rlhf", "rewardbench", "llmbar", "rating", "arena-hard", ...
    categories: tuple[str, ...] = ()  # categories of precomputed values; () = the follow-up set's
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Pairs (pairwise), rated rows (rating) or responses (ranking)."""
        return int(self.frame[COL_ROW].nunique()) if len(self.frame) else 0

    @property
    def n_invalid(self) -> int:
        """Rows whose conversation cannot be judged (they are skipped, with the reason)."""
        return int(self.frame[COL_ERROR].notna().sum()) if len(self.frame) else 0

    @property
    def models(self) -> list[str]:
        return sorted({m for m in self.frame[COL_MODEL] if isinstance(m, str) and m})

    def limited(self, limit: int | float | None) -> "Benchmark":
        """The first `limit` pairs / rows, or for ranking the responses of every model to the
        first `limit` prompts. A fraction (0 < limit < 1) keeps that share of them, rounded up
        (lm_eval's `--limit 0.1`), and a warning says how many that is."""
        if limit is None or len(self.frame) == 0:
            return self
        if isinstance(limit, bool) or not (limit >= 1 and float(limit).is_integer() or 0 < limit < 1):
            raise BenchmarkFormatError(f"limit must be a positive number of rows or a fraction "
                                       f"between 0 and 1; got {limit}")
        if self.kind == RANKING and self.frame[COL_PROMPT].nunique() > 1:
            units, unit = list(OrderedDict.fromkeys(self.frame[COL_PROMPT])), "prompts"
        elif self.kind == RANKING:
            units, unit = list(range(int(self.frame.groupby(COL_MODEL, sort=False).size().max()))), "replies per model"
        else:
            units, unit = list(OrderedDict.fromkeys(self.frame[COL_ROW])), "rows"
        count = math.ceil(len(units) * limit) if limit < 1 else int(limit)
        if self.kind == RANKING and unit == "prompts":
            frame = self.frame[self.frame[COL_PROMPT].isin(units[:count])]
        elif self.kind == RANKING:
            frame = self.frame[self.frame.groupby(COL_MODEL, sort=False).cumcount() < count]
        else:
            frame = self.frame[self.frame[COL_ROW].isin(units[:count])]
        warnings = list(self.warnings)
        if limit < 1:
            warnings.append(f"--limit {limit:g}: the first {min(count, len(units))} of {len(units)} {unit}")
        return Benchmark(self.name, self.kind, self.paths, frame.reset_index(drop=True),
                         self.precomputed, self.source_format, self.categories,
                         list(self.notes), warnings)


def describe_benchmarks(benchmarks: Sequence[Benchmark]) -> pd.DataFrame:
    """What was detected, one row per benchmark, for a preview before running."""
    rows = []
    for b in benchmarks:
        rows.append({
            "name": b.name,
            "kind": b.kind,
            "format": b.source_format,
            "files": ", ".join(p.name for p in b.paths),
            "rows": b.n,
            "unusable rows": b.n_invalid,
            "values": "precomputed" if b.precomputed else "to be scored",
            "category": ", ".join(b.categories) if b.categories else "follow-up set",
            "models": len(b.models) if b.kind == RANKING else None,
            "notes": " ".join(b.notes + b.warnings),
        })
    return pd.DataFrame(rows, columns=["name", "kind", "format", "files", "rows", "unusable rows",
                                       "values", "category", "models", "notes"])


def frame_row(row: int, source: str, conversation: Conversation | None, error: str | None, *,
         side: str = "", truth: float = math.nan, model: str = "", prompt_id: str = "",
         precomputed: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None = None,
         subset: str = "") -> dict[str, Any]:
    return {COL_ROW: row, COL_SIDE: side, COL_SOURCE: source, COL_CONVERSATION: conversation,
            COL_ERROR: error, COL_TRUTH: truth, COL_MODEL: model, COL_PROMPT: prompt_id,
            COL_PRECOMPUTED: precomputed, COL_SUBSET: subset}


def make_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    # Built column by column as plain objects: pandas would turn None into NaN otherwise.
    data: dict[str, Any] = {}
    for col in FRAME_COLUMNS:
        values = [r[col] for r in rows]
        if col == COL_ROW:
            data[col] = pd.Series(values, dtype="int64")
        elif col == COL_TRUTH:
            data[col] = pd.Series(values, dtype=float)
        else:
            data[col] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))


def iter_conversations(frame: pd.DataFrame) -> Iterator[tuple[int, Conversation]]:
    """(frame index, conversation) of every row that has a usable conversation."""
    for idx, conv in zip(frame.index, frame[COL_CONVERSATION]):
        if isinstance(conv, Conversation):
            yield int(idx), conv
