"""Scorer factories for Ray workers in tests; module-level so workers import them by name.

Each is picklable (a small frozen dataclass), as `core.distributed.workers` needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from tests.fakes import FakeScorer


@dataclass(frozen=True)
class FakeFactory:
    """A `FakeScorer` per worker; `broken` replies make the scorer raise a plain ValueError
    (not the engine's ConversationError), which fails the whole shard."""

    broken: str | None = None

    def __call__(self) -> FakeScorer:
        return _BreakingScorer(self.broken)


class _BreakingScorer(FakeScorer):
    def __init__(self, broken: str | None) -> None:
        super().__init__(name="ray-fake")
        self.broken = broken

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: object = None) -> list[ConversationScore]:
        if self.broken and any(self.broken in c.reply for c in conversations):
            raise ValueError(f"cannot tokenize a reply containing {self.broken!r}")
        return super().score_many(conversations, followups)


@dataclass(frozen=True)
class DyingFactory:
    """A `FakeScorer` whose worker process exits in the middle of its first shard (once per
    `marker` file), as a node that is lost or a worker killed for memory would."""

    marker: str

    def __call__(self) -> FakeScorer:
        return _DyingScorer(Path(self.marker))


class _DyingScorer(FakeScorer):
    def __init__(self, marker: Path) -> None:
        super().__init__(name="ray-fake")
        self.marker = marker

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: object = None) -> list[ConversationScore]:
        try:
            self.marker.touch(exist_ok=False)
        except FileExistsError:
            return super().score_many(conversations, followups)
        os._exit(1)  # the process dies mid-shard: no exception reaches Ray
