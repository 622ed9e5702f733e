"""The Ray actors: each loads its model once and then works shard after shard.

These are plain classes; `ClusterSession.workers` turns them into Ray actors, so this module
imports without Ray. A worker gets a picklable factory (by default `load_scorer` with the run's
`ScoringConfig`), which lets tests run the same actors around a fake scorer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.errors import ConversationError

if TYPE_CHECKING:
    from core.engine.scorer import Scorer
    from core.mining.mining import MiningConfig, PromptSamples
    from core.mining.prompts import MiningPrompt

ScorerFactory = Callable[[], "Scorer"]


def _load_scorer(config: ScoringConfig) -> "Scorer":
    from core.engine.scorer import load_scorer

    return load_scorer(config)


def scorer_factory(config: ScoringConfig) -> ScorerFactory:
    """The default factory: load `config.model` inside the worker."""
    return functools.partial(_load_scorer, config)


@dataclass
class ShardScores:
    """A scored shard, keyed as the driver keyed its conversations."""

    scores: dict[str, ConversationScore] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # rows the engine refuses, with why


class ScoringWorker:
    """One scorer per worker; `score_shard` scores whole conversations, `pack` per packed call."""

    def __init__(self, factory: ScorerFactory) -> None:
        self.scorer = factory()

    def identity(self) -> str:
        return self.scorer.identity

    def score_shard(self, items: Sequence[tuple[str, Conversation]], followups: FollowupSet,
                    pack: int) -> ShardScores:
        """Scores by key. `score_many` gets `pack` conversations at a time: the groups one process
        would make (the driver aligns shards to them), so even float rounding is the same."""
        out = ShardScores()
        for start in range(0, len(items), pack):
            group = items[start:start + pack]
            try:
                out.scores.update(zip([k for k, _ in group],
                                      self.scorer.score_many([c for _, c in group], followups)))
            except ConversationError:
                for key, conversation in group:  # find which rows the engine refuses, as the runner does
                    try:
                        out.scores[key] = self.scorer.score(conversation, followups)
                    except ConversationError as err:
                        out.failures[key] = str(err)
        return out


class MiningWorker:
    """A scorer and a policy per worker (one model when they are the same); mines whole batches."""

    def __init__(self, factory: ScorerFactory, policy_config: ScoringConfig) -> None:
        from core.mining.policy import policy_for

        self.scorer = factory()
        self.policy = policy_for(policy_config, self.scorer)

    def identities(self) -> tuple[str, str]:
        """(policy identity, scorer identity), for the driver's resume cache key."""
        return self.policy.identity, self.scorer.identity

    def mine_batch(self, prompts: Sequence["MiningPrompt"], indices: Sequence[int], followups: FollowupSet,
                   config: "MiningConfig") -> list["PromptSamples"]:
        from core.mining.mining import mine_batch

        return mine_batch(prompts, indices, self.policy, self.scorer, followups, config)


def remote_identity(ray: Any, actor: Any, method: str = "identity") -> Any:
    """Ask one worker (it has loaded its model by then) for its identity."""
    return ray.get(getattr(actor, method).remote())
