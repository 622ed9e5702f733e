"""Pairwise judging, one outcome per pair: which pairs are usable, and per signal whether the
chosen reply won.

A pair (one `row` id of a pairwise benchmark's frame) holds one chosen and one rejected reply,
or, in RewardBench 2's best-of-N layout, one or more chosen and several rejected replies. Its
outcome for a signal:
- one chosen, one rejected: 1 if the chosen reply's value is higher, 0.5 on a tie, else 0;
- best-of-N (RewardBench 2): 1 when every chosen reply scores above every rejected one, else 0
  (a tie at the top is not a win, as RewardBench 2 counts it). With one chosen reply this is
  "the chosen reply beats all rejected ones"; for `Ties` (several correct replies) it is
  RewardBench 2's accuracy term only; its margin term is not computed.

Per-subset figures (RewardBench's `subset` field) are the same outcomes grouped by subset.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation import metrics as M
from core.names import CHOSEN, COL_CONVERSATION, COL_ROW, COL_SIDE, COL_SKIPPED, COL_SOURCE, COL_SUBSET, REJECTED

_LABEL = re.compile(r" \((chosen|rejected)( \d+)?\)$")


def usable_pairs(rows: pd.DataFrame) -> tuple[list[int], list[dict[str, Any]]]:
    """Pair ids whose every reply can be judged, and the skipped ones with row and reason."""
    ok: list[int] = []
    skipped: list[dict[str, Any]] = []
    for row, group in rows.groupby(COL_ROW, sort=False):
        reasons = [x for x in group[COL_SKIPPED] if isinstance(x, str)]
        sides = set(group[COL_SIDE])
        if not {CHOSEN, REJECTED} <= sides:
            reasons.append("the pair lacks a chosen or a rejected reply")
        if reasons:
            skipped.append({"row": int(row), "source": _LABEL.sub("", str(group[COL_SOURCE].iloc[0])),
                            "reason": "; ".join(dict.fromkeys(reasons))})
        else:
            ok.append(int(row))
    return ok, skipped


def outcomes(good: pd.DataFrame, ok: list[int], column: str) -> tuple[np.ndarray, int]:
    """Per pair (in the order of `ok`): the outcome of `column`, and how many pairs tie."""
    if not ok:  # nothing judged yet (e.g. a run cancelled before its first chunk): no outcomes
        return np.empty(0, dtype=float), 0
    by_side = good.groupby([COL_ROW, COL_SIDE], sort=False)[column].agg(["min", "max", "size"])
    chosen = by_side.xs(CHOSEN, level=COL_SIDE).reindex(ok)
    rejected = by_side.xs(REJECTED, level=COL_SIDE).reindex(ok)
    low = chosen["min"].to_numpy(dtype=float)
    high = rejected["max"].to_numpy(dtype=float)
    single = (chosen["size"].to_numpy() == 1) & (rejected["size"].to_numpy() == 1)
    tie = low == high
    return np.where(low > high, 1.0, np.where(tie & single, 0.5, 0.0)), int(tie.sum())


def subsets_of(good: pd.DataFrame, ok: list[int]) -> list[str]:
    return [str(s) for s in good.groupby(COL_ROW, sort=False)[COL_SUBSET].first().reindex(ok)]


def best_of_n(good: pd.DataFrame) -> bool:
    return bool((good.groupby([COL_ROW, COL_SIDE]).size() > 1).any())


def pair_keys(good: pd.DataFrame, ok: list[int]) -> list[str]:
    """A short stable key per pair from its replies' conversations (else its source), so that
    two reports can be compared on the same pairs."""
    keys: dict[int, str] = {}
    for row, group in good.groupby(COL_ROW, sort=False):
        parts = [f"{side}:{conv.system}:{conv.utterances}" if conv is not None else f"{side}:{src}"
                 for side, conv, src in zip(group[COL_SIDE], group[COL_CONVERSATION], group[COL_SOURCE])]
        keys[int(row)] = hashlib.sha256("\n".join(sorted(parts)).encode("utf-8")).hexdigest()[:16]
    return [keys[r] for r in ok]


def subset_figures(subsets: list[str], by_signal: dict[str, np.ndarray], headline: str) -> dict[str, Any]:
    """Per subset: the headline signal's accuracy with its interval and n, and every other
    signal's accuracy on the same pairs."""
    out: dict[str, Any] = {}
    labels = np.array(subsets, dtype=object)
    for name in dict.fromkeys(subsets):
        mask = labels == name
        est = M.accuracy_of(by_signal[headline][mask])
        out[name or "(no subset)"] = {
            "accuracy": est.value, "accuracy_ci": [est.ci_low, est.ci_high], "n": int(mask.sum()),
            "baselines": {s: float(v[mask].mean()) for s, v in by_signal.items() if s != headline}}
    return out
