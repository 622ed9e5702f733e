"""Grouped cross-validation folds: rows that share a prompt or a reply never straddle folds.

Many benchmarks reuse one prompt for many pairs (and some reuse a reply); a plain k-fold split
then tests on prompts the model was fitted on and reports accuracy that does not carry over to
new prompts. `connected_groups` joins rows by union-find on their keys (a prompt hash, a reply
hash): two rows are in one group when a chain of shared keys links them. `grouped_folds` deals
whole groups to folds, largest first, each to the fold holding the fewest rows so far, after a
seeded shuffle so equal-sized groups are not dealt in file order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.errors import TuningError


def connected_groups(keys: Sequence[Sequence[str]]) -> np.ndarray:
    """A group id per row (0, 1, ... in order of first appearance); rows sharing any key, directly
    or through other rows, get the same id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for row_keys in keys:
        for key in row_keys:
            parent.setdefault(key, key)
        for key in row_keys[1:]:
            a, b = find(row_keys[0]), find(key)
            if a != b:
                parent[b] = a
    ids: dict[str, int] = {}
    out = np.empty(len(keys), dtype=np.int64)
    for i, row_keys in enumerate(keys):
        if not row_keys:
            raise TuningError(f"row {i} has no prompt or reply to group it by")
        out[i] = ids.setdefault(find(row_keys[0]), len(ids))
    return out


def grouped_folds(groups: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """A fold number (0..k-1) per row; every group lies in one fold."""
    unique, sizes = np.unique(groups, return_counts=True)
    if k < 2:
        raise TuningError(f"cross-validation needs at least 2 folds; got {k}")
    if len(unique) < k:
        raise TuningError(
            f"only {len(unique)} independent group(s) of rows (rows sharing a prompt or a reply "
            f"are kept together) for {k} folds; use --folds {max(2, len(unique))} or more data")
    order = np.random.default_rng(seed).permutation(len(unique))
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(k, dtype=np.int64)
    fold_of_group: dict[int, int] = {}
    for g in order:
        fold = int(np.argmin(load))
        fold_of_group[int(unique[g])] = fold
        load[fold] += sizes[g]
    return np.array([fold_of_group[int(g)] for g in groups], dtype=np.int64)
