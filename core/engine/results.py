"""Typed results of scoring one conversation, and their table and JSON forms.

Category reward = mean positive - mean negative follow-up score; overall FLR = mean of the
category rewards. With a weighted follow-up set (`core.engine.followups`) both are weighted
sums instead: category reward = sum(w * positive) - sum(w * negative), FLR = the sum of the
category rewards; `category_reward` and `overall_reward` are the one place either is computed.
The DataFrame column names used across the project live in `core.names`.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any, Sequence

import pandas as pd

from core import names as C
from core.engine.followups import NEGATIVE, POSITIVE


def category_reward(positive: Sequence[float], negative: Sequence[float],
                    positive_weights: Sequence[float] = (), negative_weights: Sequence[float] = ()) -> float:
    """mean(positive) - mean(negative); with weights, the weighted sums' difference."""
    if not positive_weights and not negative_weights:
        return fmean(positive) - fmean(negative)
    return (sum(w * v for w, v in zip(positive_weights, positive))
            - sum(w * v for w, v in zip(negative_weights, negative)))


def overall_reward(rewards: Sequence[float], weighted: bool) -> float:
    """The FLR from category rewards: their mean, or their sum for a weighted set."""
    return sum(rewards) if weighted else fmean(rewards)


@dataclass(frozen=True)
class CategoryScore:
    name: str
    positive: tuple[float, ...]
    negative: tuple[float, ...]
    positive_texts: tuple[str, ...] = ()
    negative_texts: tuple[str, ...] = ()
    positive_weights: tuple[float, ...] = ()  # () for a plain follow-up set
    negative_weights: tuple[float, ...] = ()

    @property
    def weighted(self) -> bool:
        return bool(self.positive_weights or self.negative_weights)

    @property
    def mean_positive(self) -> float:
        return fmean(self.positive)

    @property
    def mean_negative(self) -> float:
        return fmean(self.negative)

    @property
    def flr(self) -> float:
        return category_reward(self.positive, self.negative, self.positive_weights,
                               self.negative_weights)


@dataclass(frozen=True)
class ConversationScore:
    """Follow-up scores of one conversation, per category, in the follow-up set's order."""

    categories: tuple[CategoryScore, ...]
    warnings: tuple[str, ...] = ()
    dropped_turns: int = 0  # utterances cut from the left to fit the model's context
    context_tokens: int = 0
    direct: float | None = None  # Direct baseline: the reply's own mean (sum) token log-prob

    @property
    def flr(self) -> float:
        return overall_reward([c.flr for c in self.categories],
                              any(c.weighted for c in self.categories))

    @property
    def truncated(self) -> bool:
        return self.dropped_turns > 0

    def category(self, name: str) -> CategoryScore:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_record(self) -> dict[str, Any]:
        """The JSON shape of `score` output: overall `flr` plus per-category lists."""
        record: dict[str, Any] = {
            "flr": self.flr,
            "categories": {
                c.name: {POSITIVE: list(c.positive), NEGATIVE: list(c.negative), "flr": c.flr}
                for c in self.categories
            },
        }
        if self.direct is not None:
            record["direct"] = self.direct
        if self.truncated:
            record["truncated_utterances"] = self.dropped_turns
        if self.warnings:
            record["warnings"] = list(self.warnings)
        return record

    def category_frame(self) -> pd.DataFrame:
        """One row per category: mean positive, mean negative, reward."""
        return pd.DataFrame(
            [{C.CATEGORY: c.name, C.MEAN_POSITIVE: c.mean_positive,
              C.MEAN_NEGATIVE: c.mean_negative, C.REWARD: c.flr} for c in self.categories],
            columns=[C.CATEGORY, C.MEAN_POSITIVE, C.MEAN_NEGATIVE, C.REWARD],
        )

    def followup_frame(self) -> pd.DataFrame:
        """One row per follow-up utterance with its score."""
        rows = []
        for c in self.categories:
            for polarity, values, texts in ((POSITIVE, c.positive, c.positive_texts),
                                            (NEGATIVE, c.negative, c.negative_texts)):
                for i, value in enumerate(values):
                    rows.append({C.CATEGORY: c.name, C.POLARITY: polarity,
                                 C.FOLLOWUP: texts[i] if i < len(texts) else "",
                                 C.SCORE: value})
        return pd.DataFrame(rows, columns=[C.CATEGORY, C.POLARITY, C.FOLLOWUP, C.SCORE])
