"""Labelled examples for tuning, from an evaluation's per-row tables.

A pairwise example is one pair: its features are the chosen reply's follow-up scores minus the
rejected reply's, one per follow-up in the set's order (`FollowupSet.utterances`), and its label
is "chosen is better". A rating example is one rated reply: its follow-up scores and the rating.
Beside the features each example carries what the report compares against on the same rows
(plain FLR, reply length; as differences for pairs) and the keys that group it for
cross-validation (hashes of its prompt and of its reply or replies, `core.tuning.folds`).

Shortcut taken on purpose: the scores come from `core.evaluation.runner.run_evaluation` (and so
from the score cache), so tuning reads exactly what `flr evaluate` scored.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.engine.conversation import Conversation
from core.engine.followups import NEGATIVE, POSITIVE, FollowupSet
from core.errors import TuningError
from core.evaluation.report import BenchmarkResult
from core.names import (
    CHOSEN, COL_CONVERSATION, COL_LENGTH, COL_ROW, COL_SIDE, COL_SKIPPED, COL_SOURCE,
    COL_TRUTH, COL_VALUES, PAIRWISE, RATING, REJECTED,
)

OBJECTIVES = {"pairwise": PAIRWISE, "rating": RATING}


@dataclass(frozen=True)
class Utterance:
    category: str
    polarity: str  # "positive" / "negative"
    text: str

    @property
    def sign(self) -> int:
        """+1 for praise, -1 for complaint: the direction the plain FLR counts it."""
        return 1 if self.polarity == POSITIVE else -1


@dataclass
class Examples:
    """Feature matrix and everything compared on the same rows."""

    kind: str  # pairwise / rating
    utterances: tuple[Utterance, ...]
    features: np.ndarray  # rows x follow-ups (pairwise: chosen - rejected)
    target: np.ndarray  # rating: the truth; pairwise: ones
    plain: np.ndarray  # plain FLR (pairwise: chosen - rejected)
    length: np.ndarray  # reply length in characters (pairwise: chosen - rejected); NaN if unknown
    keys: list[tuple[str, ...]]  # grouping keys per row
    sources: list[str]  # where each row comes from
    benchmarks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sides: np.ndarray | None = None  # pairwise: rows x 2 (chosen, rejected) x follow-ups

    @property
    def n(self) -> int:
        return int(self.features.shape[0])

    @property
    def has_length(self) -> bool:
        return bool(self.n) and not np.isnan(self.length).any()

    def subset(self, rows: np.ndarray) -> "Examples":
        return Examples(self.kind, self.utterances, self.features[rows], self.target[rows],
                        self.plain[rows], self.length[rows], [self.keys[i] for i in rows],
                        [self.sources[i] for i in rows], list(self.benchmarks), list(self.notes),
                        None if self.sides is None else self.sides[rows])


def utterances_of(followups: FollowupSet) -> tuple[Utterance, ...]:
    return tuple(Utterance(c.name, polarity, t)
                 for c in followups for polarity, texts in ((POSITIVE, c.positive), (NEGATIVE, c.negative))
                 for t in texts)


def plain_signs(followups: FollowupSet) -> np.ndarray:
    """The plain FLR as a linear function of the follow-up scores: FLR = features @ this."""
    signs = np.array([u.sign for u in utterances_of(followups)], dtype=float)
    return signs * np.array(followups.unweighted().weights(), dtype=float)


def examples_from_results(results: Sequence[BenchmarkResult], followups: FollowupSet,
                          objective: str) -> Examples:
    """The examples of every benchmark of the objective's kind (others are noted and left out)."""
    kind = OBJECTIVES[objective]
    utterances = utterances_of(followups)
    plain_w = plain_signs(followups)
    rows: list[tuple[np.ndarray, float, float, tuple[str, ...], str]] = []
    used, notes = [], []
    for result in results:
        if result.kind != kind:
            notes.append(f"{result.name}: a {result.kind} benchmark, left out (--objective {objective} "
                         f"learns from {kind} benchmarks)")
            continue
        if result.rows is None:
            raise TuningError(f"{result.name}: no per-row values to learn from")
        before = len(rows)
        if kind == PAIRWISE:
            rows += _pairs(result, followups)
        else:
            rows += _rated(result, followups)
        if len(rows) > before:
            used.append(result.name)
    if not rows:
        wanted = "pairs (chosen / rejected)" if kind == PAIRWISE else "rated replies"
        raise TuningError(f"no usable {wanted} in the given files; --objective {objective} needs "
                          f"{kind} benchmarks" + (f" ({'; '.join(notes)})" if notes else ""))
    features = np.vstack([r[0] for r in rows])
    sides = np.stack([r[5] for r in rows]) if kind == PAIRWISE else None
    return Examples(kind, utterances, features,
                    np.array([r[1] for r in rows], dtype=float), features @ plain_w,
                    np.array([r[2] for r in rows], dtype=float), [r[3] for r in rows],
                    [r[4] for r in rows], used, notes, sides)


def _vector(values: Any, followups: FollowupSet, where: str) -> np.ndarray:
    out: list[float] = []
    for c in followups:
        if c.name not in values:
            raise TuningError(f"{where}: no values for category {c.name!r}; pass the follow-up set the "
                              "values were computed with (--followups)")
        pos, neg = values[c.name]
        if (len(pos), len(neg)) != (len(c.positive), len(c.negative)):
            raise TuningError(
                f"{where}: category {c.name!r} has {len(pos)} positive and {len(neg)} negative values "
                f"but the follow-up set has {len(c.positive)} and {len(c.negative)}; pass the set the "
                "values were computed with (--followups)")
        out += [*pos, *neg]
    return np.array(out, dtype=float)


def _hash(kind: str, value: Any) -> str:
    blob = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return kind + ":" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def group_keys(conversation: Any, fallback: str) -> tuple[str, ...]:
    """Hashes of a conversation's prompt (everything before the reply) and of its reply."""
    if not isinstance(conversation, Conversation):
        return (fallback,)
    prompt = {"system": conversation.system, "utterances": list(conversation.utterances[:-1])}
    return _hash("prompt", prompt), _hash("reply", conversation.reply)


def _pairs(result: BenchmarkResult, followups: FollowupSet) -> list:
    table: pd.DataFrame = result.rows  # type: ignore[assignment]
    table = table[table[COL_SKIPPED].isna()]
    chosen = table[table[COL_SIDE] == CHOSEN].set_index(COL_ROW)
    rejected = table[table[COL_SIDE] == REJECTED].set_index(COL_ROW)
    out = []
    for r in chosen.index:
        if r not in rejected.index:
            continue
        a, b = chosen.loc[r], rejected.loc[r]
        where = f"{result.name}, {a[COL_SOURCE]}"
        va, vb = _vector(a[COL_VALUES], followups, where), _vector(b[COL_VALUES], followups, where)
        x = va - vb
        length = float(a[COL_LENGTH]) - float(b[COL_LENGTH])
        keys = (group_keys(a[COL_CONVERSATION], f"{result.name}#{r}")
                + group_keys(b[COL_CONVERSATION], f"{result.name}#{r}"))
        out.append((x, 1.0, length, tuple(dict.fromkeys(keys)), where, np.stack([va, vb])))
    return out


def _rated(result: BenchmarkResult, followups: FollowupSet) -> list:
    table: pd.DataFrame = result.rows  # type: ignore[assignment]
    table = table[table[COL_SKIPPED].isna()]
    out = []
    for _, row in table.iterrows():
        truth = float(row[COL_TRUTH])
        if math.isnan(truth):
            continue
        where = f"{result.name}, {row[COL_SOURCE]}"
        keys = group_keys(row[COL_CONVERSATION], f"{result.name}#{row[COL_ROW]}")
        out.append((_vector(row[COL_VALUES], followups, where), truth, float(row[COL_LENGTH]),
                    keys, where))
    return out
