"""Checks that a benchmark's rows are what the metrics assume: aligned pairs, no duplicates.

- Pairs (`check_pairs`): the chosen and the rejected reply of a pair must continue the same
  conversation. Files paired by position (the paper's accept/reject layout) or transcripts that
  differ before their last reply compare replies to different prompts; such a pair is marked
  unusable with its reason, and a benchmark where most pairs differ is an error (the files are
  not aligned), because its figure would mean nothing.
- Duplicates (`check_duplicates`): a row whose conversations (and ground truth, model) repeat an
  earlier row counts twice in every figure and narrows its interval; it is named in the
  benchmark's warnings, or with `drop=True` marked unusable ("duplicate of row i").

Both work on `Benchmark.frame` in place, before anything is scored, so a dropped row is never
sent to the model. Rows without a conversation (precomputed values only) cannot be compared and
are left alone.
"""

from __future__ import annotations

import json
from typing import Any

from core.engine.conversation import Conversation
from core.errors import BenchmarkFormatError
from core.evaluation.benchmark import Benchmark
from core.names import (
    CHOSEN,
    COL_CONVERSATION,
    COL_ERROR,
    COL_MODEL,
    COL_PRECOMPUTED,
    COL_ROW,
    COL_SIDE,
    COL_TRUTH,
    PAIRWISE,
    RANKING,
    REJECTED,
)

DUPLICATE = "duplicate of row"  # start of the reason of a dropped duplicate


def context_of(conversation: Conversation) -> tuple:
    """What a reply answers: the system message and every utterance before the reply."""
    return (conversation.system, *conversation.utterances[:-1])


def check_pairs(b: Benchmark) -> None:
    """Mark pairs whose two replies continue different conversations; raise when most do."""
    if b.kind != PAIRWISE or not len(b.frame):
        return
    frame = b.frame
    by_row: dict[int, dict[str, Any]] = {}
    for idx, row, side, conv in zip(frame.index, frame[COL_ROW], frame[COL_SIDE], frame[COL_CONVERSATION]):
        by_row.setdefault(int(row), {})[side] = (idx, conv)
    compared = 0
    differing: list[int] = []
    for row, sides in by_row.items():
        if CHOSEN not in sides or REJECTED not in sides:
            continue
        (ia, a), (ir, r) = sides[CHOSEN], sides[REJECTED]
        if not isinstance(a, Conversation) or not isinstance(r, Conversation):
            continue
        compared += 1
        if context_of(a) != context_of(r):
            differing.append(row)
            reason = ("the chosen and rejected replies answer different conversations "
                      f"(first difference: {_first_difference(context_of(a), context_of(r))})")
            for idx in (ia, ir):
                if not isinstance(frame.at[idx, COL_ERROR], str):
                    frame.at[idx, COL_ERROR] = reason
    if differing and 2 * len(differing) > compared and compared >= 2:
        raise BenchmarkFormatError(
            f"{b.name}: the chosen and rejected replies of {len(differing)} of {compared} pairs "
            f"answer different conversations (pairs {_rows(differing)}); the files are not "
            "aligned: entry i of the accept file must be the same conversation as entry i of the "
            "reject file, in the same order")
    if differing:
        b.warnings.append(f"{len(differing)} pair(s) skipped because their replies answer "
                          f"different conversations (pairs {_rows(differing)})")


def check_duplicates(b: Benchmark, drop: bool = False) -> None:
    """Name repeated rows in the warnings; with `drop`, keep only each row's first copy."""
    frame = b.frame
    if not len(frame):
        return
    keys: dict[int, list] = {}
    for row, side, conv, truth, model, values in zip(frame[COL_ROW], frame[COL_SIDE], frame[COL_CONVERSATION],
                                                     frame[COL_TRUTH], frame[COL_MODEL], frame[COL_PRECOMPUTED]):
        if not isinstance(conv, Conversation):
            keys[int(row)] = [None]
            continue
        part = (side, conv.system, conv.utterances,
                None if truth != truth else float(truth),
                model if b.kind == RANKING else "", repr(values))  # other precomputed values: not a copy
        keys.setdefault(int(row), []).append(part)
    first: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    for row, parts in keys.items():
        if any(p is None for p in parts):
            continue
        key = json.dumps(sorted(parts, key=str), ensure_ascii=False, default=str)
        if key in first:
            repeats.append((row, first[key]))
        else:
            first[key] = row
    if not repeats:
        return
    shown = ", ".join(f"row {r} repeats row {f}" for r, f in repeats[:3])
    more = f", and {len(repeats) - 3} more" if len(repeats) > 3 else ""
    if drop:
        original = dict(repeats)
        for idx, row in zip(frame.index, frame[COL_ROW]):
            if int(row) in original:
                frame.at[idx, COL_ERROR] = f"{DUPLICATE} {original[int(row)]} (dropped)"
        b.warnings.append(f"{len(repeats)} duplicated row(s) dropped, first copies kept ({shown}{more})")
    else:
        b.warnings.append(f"{len(repeats)} duplicated row(s) ({shown}{more}): each copy counts in "
                          "every figure and narrows its interval; drop them with --drop-duplicates")


def _first_difference(a: tuple, b: tuple) -> str:
    if len(a) != len(b):
        return f"{len(a) - 1} vs {len(b) - 1} turns before the reply"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = "system message" if i == 0 else f"turn {i}"
            return f"{what}: {_short(x)!r} vs {_short(y)!r}"
    return "none"


def _short(text: Any) -> str:
    text = str(text)
    return text if len(text) <= 40 else text[:37] + "..."


def _rows(rows: list[int]) -> str:
    return ", ".join(str(r) for r in rows[:5]) + (f", ... ({len(rows)} in all)" if len(rows) > 5 else "")
