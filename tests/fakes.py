"""A fake scorer with canned, predictable numbers, for batch-evaluation and UI tests.

`FakeScorer` implements `core.engine.scorer.Scorer` without a model. Each reply gets a quality
`q = value(reply text)` (by default a deterministic number in [0, 1) from a hash of the text);
positive follow-up i then scores `q + offset(follow-up)` and negative follow-up j scores
`-q + offset(follow-up)`, where `offset` is a small deterministic number from the follow-up's
text. So a category's reward is `2q + (a constant of the category)` and the overall FLR is
`2q + (a constant of the set)`: the FLR orders replies exactly as `value` does, which lets a
test know the accuracy or the rank correlation before running anything.

It counts what it scores (`calls`, `conversations`) so tests can assert that nothing was
rescored, and can be told to fail after k conversations to simulate a killed run.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.errors import ConversationError
from core.engine.followups import FollowupSet
from core.engine.results import CategoryScore, ConversationScore

ProgressCallback = Callable[[int, int], None]


def text_hash_value(text: str) -> float:
    """A deterministic number in [0, 1) from a text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def followup_offset(text: str) -> float:
    """A small deterministic offset in [-0.05, 0.05) per follow-up text."""
    return (text_hash_value("follow-up:" + text) - 0.5) / 10.0


class FakeScorer:
    """Canned scores; FLR = 2 * value(reply) + a constant of the follow-up set."""

    def __init__(self, config: ScoringConfig | None = None,
                 value: Callable[[str], float] | None = None, *,
                 name: str = "fake", fail_after: int | None = None,
                 reject: Callable[[Conversation], str | None] | None = None,
                 dtype_decision: dict | None = None) -> None:
        self.config = config or ScoringConfig(model="fake")
        self.value = value or text_hash_value
        self.name = name
        self.fail_after = fail_after  # raise RuntimeError when asked for conversation k+1
        self.reject = reject  # returns a reason to raise ConversationError for a conversation
        self.dtype_decision = dtype_decision  # what FLRScorer states for the report's provenance
        self.calls = 0  # score / score_many calls
        self.conversations = 0  # conversations scored

    @property
    def identity(self) -> str:
        return f"fake-scorer:{self.name}"

    def with_config(self, config: ScoringConfig) -> None:
        """No weights to share: a fake is always made anew by its factory (tests count that)."""
        return None

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        self.calls += 1
        return self._score_one(conversation, followups)

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: ProgressCallback | None = None) -> list[ConversationScore]:
        self.calls += 1
        out = []
        for i, conversation in enumerate(conversations):
            out.append(self._score_one(conversation, followups))
            if progress is not None:
                progress(i + 1, len(conversations))
        return out

    def _score_one(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        if self.fail_after is not None and self.conversations >= self.fail_after:
            raise RuntimeError(f"fake scorer stopped after {self.fail_after} conversations")
        if self.reject is not None:
            reason = self.reject(conversation)
            if reason:
                raise ConversationError(reason)
        self.conversations += 1
        q = float(self.value(conversation.reply))
        categories = tuple(
            CategoryScore(c.name,
                          tuple(q + followup_offset(t) for t in c.positive),
                          tuple(-q + followup_offset(t) for t in c.negative),
                          c.positive, c.negative, c.positive_weights, c.negative_weights)
            for c in followups
        )
        direct = text_hash_value("direct:" + conversation.reply) - 1.0  # a canned Direct baseline
        return ConversationScore(categories, conversation.warnings, 0, len(conversation.reply), direct)
