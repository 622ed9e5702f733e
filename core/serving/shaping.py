"""Reward shaping for RL trainers: per-category weights, running normalisation, clipping.

All off by default, so a reward is the conversation's FLR exactly as `flr score` reports it.
The order is fixed: weighted mean of the category rewards, then normalisation by the running
mean and standard deviation of every reward computed so far (this batch included, so the first
batch is already centred), then clipping to [-clip, clip].

The running statistics are the one piece of state a reward server keeps between requests; they
live in a `RewardShaper` object owned by the server (or by an `FLRReward`), guarded by a lock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from core.engine.results import ConversationScore
from core.errors import ConfigError

_EPSILON = 1e-8  # keeps a constant reward stream finite after normalisation


@dataclass(frozen=True)
class ShapingConfig:
    """How raw FLR scores become the reward a trainer sees."""

    weights: Mapping[str, float] = field(default_factory=dict)  # category -> weight; unnamed = 1.0
    normalize: bool = False  # divide by the running std after subtracting the running mean
    clip: float | None = None  # clip the (normalised) reward to [-clip, clip]

    def __post_init__(self) -> None:
        for name, weight in self.weights.items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) \
                    or weight < 0:
                raise ConfigError(f"reward weight of category {name!r} must be a finite number >= 0; got {weight!r}")
        if self.clip is not None and (not math.isfinite(self.clip) or self.clip <= 0):
            raise ConfigError(f"reward clip must be a positive number; got {self.clip!r}")

    def check_categories(self, names: Sequence[str]) -> None:
        """Weights may only name categories of the follow-up set (a typo would weigh nothing)."""
        unknown = sorted(set(self.weights) - set(names))
        if unknown:
            raise ConfigError(f"reward weights name {', '.join(unknown)}, not in the follow-up set "
                              f"({', '.join(names)})")

    @property
    def active(self) -> bool:
        return bool(self.weights) or self.normalize or self.clip is not None


def parse_weights(text: str | None) -> dict[str, float]:
    """`relevance=2,correctness=0.5` -> {"relevance": 2.0, "correctness": 0.5}."""
    if not text:
        return {}
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"reward weights: {part!r} is not CATEGORY=NUMBER "
                              "(e.g. --reward-weights relevance=2,correctness=1)") from None
    return weights


class RewardShaper:
    """Turns conversation scores into shaped rewards; keeps the running statistics."""

    def __init__(self, config: ShapingConfig | None = None) -> None:
        self.config = config or ShapingConfig()
        self._lock = threading.Lock()
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0  # Welford's sum of squared deviations

    def raw(self, score: ConversationScore) -> float:
        """The weighted mean of the category rewards (the plain FLR without weights)."""
        if not self.config.weights:
            return score.flr
        weights = [self.config.weights.get(c.name, 1.0) for c in score.categories]
        total = sum(weights)
        if total <= 0:
            names = ", ".join(c.name for c in score.categories)
            raise ConfigError(f"reward weights give every category of this set ({names}) weight 0")
        return sum(w * c.flr for w, c in zip(weights, score.categories)) / total

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}  # a lock does not pickle

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __call__(self, scores: Sequence[ConversationScore]) -> list[float]:
        values = [self.raw(s) for s in scores]
        if self.config.normalize:
            with self._lock:
                for value in values:
                    self._update(value)
                mean, std = self._mean, self.std
            values = [(v - mean) / (std + _EPSILON) if self._count > 1 else v - mean for v in values]
        if self.config.clip is not None:
            c = self.config.clip
            values = [min(c, max(-c, v)) for v in values]
        return values

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / (self._count - 1)) if self._count > 1 else 0.0

    def _update(self, value: float) -> None:
        self._count += 1
        delta = value - self._mean
        self._mean += delta / self._count
        self._m2 += delta * (value - self._mean)
