"""The FLR scorer interface and the engine that implements it.

(Engine implementation in progress: `load_scorer` and `FLRScorer` land next.)
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from core.config import ScoringConfig
from core.conversation import Conversation
from core.followups import FollowupSet
from core.results import ConversationScore

ProgressCallback = Callable[[int, int], None]  # (done, total)


class Scorer(Protocol):
    """What batch evaluation, the UI and preference mining need from a scorer."""

    config: ScoringConfig

    @property
    def identity(self) -> str:
        """Stable id of the model weights and scoring settings, for cache keys."""
        ...

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        ...

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: ProgressCallback | None = None) -> list[ConversationScore]:
        ...
