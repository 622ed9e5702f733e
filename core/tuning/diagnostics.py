"""Follow-up diagnostics: how each utterance does as a reward on its own, which ones duplicate
each other, which point the wrong way, and a pruned set with its cross-validated effect.

Per follow-up, its signal is its score times its side's sign (a likely complaint counts against
the reply), so "higher is better" for every row of the table:
- pairwise data: accuracy on the pairs alone (ties count half, 95% interval from a bootstrap
  over groups of rows sharing a prompt or reply) and AUC over all chosen vs all rejected replies;
- rating data: Pearson correlation with the rating alone, and AUC for telling ratings above the
  median from the others;
- its correlation with every other follow-up's signal (on pair differences, or on the replies),
  the largest in absolute value and with which one.

Flags: "wrong way" when the interval lies on the wrong side of chance (0.5 / 0), "leans wrong
way" when only the point estimate does, "duplicate of ..." when its signal correlates at least
`DUPLICATE_R` with a follow-up that does better alone.

The pruned set drops the utterances that lean the wrong way and the duplicates (a category that
loses all its praise or all its complaints is dropped whole) and scores as a plain set. Its effect
is cross-validated honestly: in each grouped fold the pruning is decided on the other folds and
the pruned plain FLR is compared with the full plain FLR on the held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core.engine.followups import Category, FollowupSet
from core.names import (
    ALONE, AUC, CATEGORY, FLAGS, FOLLOWUP, MAX_CORRELATION, MOST_LIKE, PAIRWISE, POLARITY,
)
from core.tuning.features import Examples
from core.tuning.folds import connected_groups, grouped_folds
from core.tuning.tune import BOOTSTRAP, metric_interval, metric_of

DUPLICATE_R = 0.95  # signals this correlated say the same thing
CI_LOW, CI_HIGH = "ci low", "ci high"


@dataclass
class Diagnostics:
    kind: str
    metric: str  # accuracy / pearson
    table: pd.DataFrame  # one row per follow-up, in the set's order
    correlations: pd.DataFrame  # follow-up x follow-up signal correlations (labels: "category/polarity #i")
    keep: np.ndarray  # the pruned set's utterances
    pruned: FollowupSet | None  # None when nothing would be left
    cv: dict[str, dict[str, float]]  # {"plain": {...}, "pruned": {...}} on the same held-out rows
    folds: int


def _signals(examples: Examples) -> np.ndarray:
    signs = np.array([u.sign for u in examples.utterances], dtype=float)
    return examples.features * signs


def _corr_matrix(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    r = z.T @ z / max(1, len(x))
    r[:, sd == 0] = 0.0
    r[sd == 0, :] = 0.0
    np.fill_diagonal(r, 1.0)
    return r


def _auc(examples: Examples, k: int, sign: int) -> float:
    if examples.sides is not None:
        values = np.r_[examples.sides[:, 0, k], examples.sides[:, 1, k]] * sign
        labels = np.r_[np.ones(examples.n), np.zeros(examples.n)]
    else:
        values = examples.features[:, k] * sign
        labels = (examples.target > np.median(examples.target)).astype(float)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, values))


def _alone(kind: str, signal: np.ndarray, target: np.ndarray) -> float:
    return metric_of(kind, signal, target)


def choose_kept(kind: str, signals: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Which follow-ups a pruned set keeps, and why each dropped one goes ("" if kept)."""
    chance = 0.5 if kind == PAIRWISE else 0.0
    alone = np.array([_alone(kind, signals[:, k], target) for k in range(signals.shape[1])])
    r = _corr_matrix(signals)
    keep = ~(alone < chance)
    why = ["leans wrong way" if not k else "" for k in keep]
    order = np.argsort(-np.nan_to_num(alone, nan=-np.inf), kind="stable")
    for pos, k in enumerate(order):
        if not keep[k]:
            continue
        better = [j for j in order[:pos] if keep[j] and r[k, j] >= DUPLICATE_R]
        if better:
            keep[k] = False
            why[k] = f"duplicate of #{better[0]}"
    return keep, why


def pruned_linear(followups: FollowupSet, keep: np.ndarray) -> np.ndarray:
    """The pruned set's plain FLR as weights on the full set's scores (0 for dropped ones):
    1 / (kept on the side x categories left), minus for complaints."""
    parts = _split(followups, keep)
    alive = [bool(p.any() and n.any()) for p, n in parts]
    out: list[np.ndarray] = []
    for (pos, neg), ok in zip(parts, alive):
        for kept, sign in ((pos, 1.0), (neg, -1.0)):
            out.append(kept * (sign / (kept.sum() * sum(alive))) if ok else np.zeros(len(kept)))
    return np.concatenate(out) if out else np.zeros(0)


def _split(followups: FollowupSet, keep: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    out, i = [], 0
    for c in followups:
        n, m = len(c.positive), len(c.negative)
        out.append((keep[i:i + n], keep[i + n:i + n + m]))
        i += n + m
    return out


def pruned_set(followups: FollowupSet, keep: np.ndarray) -> FollowupSet | None:
    """The plain set of the kept utterances; a category left without praise or without
    complaints is dropped; None when no category is left."""
    categories = []
    for c, (pos_keep, neg_keep) in zip(followups, _split(followups, keep)):
        pos = tuple(t for t, k in zip(c.positive, pos_keep) if k)
        neg = tuple(t for t, k in zip(c.negative, neg_keep) if k)
        if pos and neg:
            categories.append(Category(c.name, pos, neg))
    return FollowupSet(tuple(categories)) if categories else None


def diagnose(examples: Examples, followups: FollowupSet, folds: int = 5, seed: int = 0,
             bootstrap: int = BOOTSTRAP) -> Diagnostics:
    kind = examples.kind
    followups = followups.unweighted()
    signals = _signals(examples)
    y = examples.target
    groups = connected_groups(examples.keys)
    metric = "accuracy" if kind == PAIRWISE else "pearson"
    r = _corr_matrix(signals)
    keep, why = choose_kept(kind, signals, y)
    chance = 0.5 if kind == PAIRWISE else 0.0
    rows = []
    for k, u in enumerate(examples.utterances):
        alone = _alone(kind, signals[:, k], y)
        low, high = metric_interval(kind, signals[:, k], y, groups, bootstrap, seed)
        others = np.abs(r[k]).copy()
        others[k] = -1
        j = int(np.argmax(others)) if len(others) > 1 else k
        flags = []
        if high < chance:
            flags.append("wrong way")
        elif alone < chance:
            flags.append("leans wrong way")
        if why[k].startswith("duplicate"):
            flags.append(why[k])
        rows.append({"#": k, CATEGORY: u.category, POLARITY: u.polarity, FOLLOWUP: u.text,
                     ALONE: alone, CI_LOW: low, CI_HIGH: high, AUC: _auc(examples, k, u.sign),
                     MAX_CORRELATION: float(others[j]) if j != k else float("nan"),
                     MOST_LIKE: f"#{j} {examples.utterances[j].text}" if j != k else "",
                     FLAGS: ", ".join(flags)})
    table = pd.DataFrame(rows)
    labels = [f"#{k} {u.category}/{u.polarity[:3]}" for k, u in enumerate(examples.utterances)]
    correlations = pd.DataFrame(r, index=labels, columns=labels)
    cv = _pruning_cv(examples, followups, signals, groups, folds, seed)
    return Diagnostics(kind, metric, table, correlations, keep, pruned_set(followups, keep), cv, folds)


def _pruning_cv(examples: Examples, followups: FollowupSet, signals: np.ndarray, groups: np.ndarray,
                folds: int, seed: int) -> dict[str, dict[str, float]]:
    kind, y = examples.kind, examples.target
    fold = grouped_folds(groups, folds, seed)
    pruned_score = np.full(examples.n, np.nan)
    kept_counts = []
    for f in range(folds):
        train, test = fold != f, fold == f
        keep, _ = choose_kept(kind, signals[train], y[train])
        kept_counts.append(int(keep.sum()))
        pruned_score[test] = examples.features[test] @ pruned_linear(followups, keep)
    out = {}
    for name, score in (("plain", examples.plain), ("pruned", pruned_score)):
        out[name] = {"value": metric_of(kind, score, y),
                     "per_fold": [metric_of(kind, score[fold == f], y[fold == f]) for f in range(folds)]}
    out["pruned"]["kept_per_fold"] = kept_counts
    return out
