"""Files a finished evaluation writes: per-benchmark CSV rows and the FLR paper's own JSONL layout
(accept/reject files per category with `positive` / `negative` lists), so results can be fed
back to the paper's scripts or re-evaluated without a model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol, Sequence

import pandas as pd

from core.engine.conversation import Conversation
from core.names import (
    CHOSEN,
    COL_CONVERSATION,
    COL_MODEL,
    COL_PROMPT,
    COL_ROW,
    COL_SIDE,
    COL_SKIPPED,
    COL_TRUTH,
    COL_VALUES,
    PAIRWISE,
    RANKING,
    RATING,
    REJECTED,
)
from core.spreadsheet import csv_text
from core.textfiles import atomic_output, write_text


class ScoredBenchmark(Protocol):
    """What the exports read of `core.evaluation.report.BenchmarkResult`. The report calls
    these functions, so the type is described here rather than imported (no import cycle)."""

    name: str
    kind: str
    categories: tuple[str, ...]
    skipped: list[dict[str, Any]]
    rows: pd.DataFrame | None


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


def export_paper_layout(b: ScoredBenchmark, directory: Path) -> list[Path]:
    rows = b.rows
    assert rows is not None
    if b.kind == PAIRWISE and rows.groupby([COL_ROW, COL_SIDE]).size().gt(1).any():
        return []  # best-of-N pairs (RewardBench 2) have no accept/reject layout; the CSV has them
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
    with atomic_output(path) as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return path


def export_csv(b: ScoredBenchmark, directory: Path) -> Path:
    rows = b.rows
    assert rows is not None
    table = rows.drop(columns=[COL_VALUES, COL_CONVERSATION]).copy()
    table.insert(0, "benchmark", b.name)
    table["conversation"] = [json.dumps(c.messages(), ensure_ascii=False)
                             if isinstance(c, Conversation) else "" for c in rows[COL_CONVERSATION]]
    if b.kind != RATING:
        table = table.drop(columns=[COL_TRUTH])
    path = directory / f"{_safe(b.name)}.csv"
    write_text(path, csv_text(table))  # no live formula from a follow-up or a model name
    return path
