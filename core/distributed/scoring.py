"""`ClusterScorer`: the `Scorer` protocol with its work done by Ray workers.

`score_stream` is what batch evaluation uses (`core.evaluation.runner` looks for it): shards of
whole conversations go to the workers and come back as they finish, so the driver can write
each into the score cache at once. `score_many` is the same, reassembled in input order, for
callers that want a plain list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from core.distributed.pool import run_shards
from core.distributed.session import ClusterSession
from core.distributed.workers import ScorerFactory, ScoringWorker, remote_identity
from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.errors import ClusterError, ConversationError


@dataclass(frozen=True)
class StreamedShard:
    """One shard back from a worker: scores and refusals by key, or the whole shard failed."""

    scores: dict[str, ConversationScore]
    failures: dict[str, str]  # rows the engine refuses (cacheable: the same row fails again)
    failed: dict[str, str]  # rows of a shard that broke a worker, with why (not cached: retried next run)


class ClusterScorer:
    """Scores on `session`'s workers, each holding the model `factory` loads."""

    def __init__(self, session: ClusterSession, config: ScoringConfig, factory: ScorerFactory) -> None:
        self.config = config
        self._session = session
        self._ray = session.connect()
        self._actors = session.workers(ScoringWorker, factory)
        identities = {remote_identity(self._ray, a) for a in self._actors}
        if len(identities) != 1:
            raise ClusterError(f"the workers loaded different models ({', '.join(sorted(identities))}); "
                               "every node needs the same model files")
        self._identity = identities.pop()

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def workers(self) -> int:
        return len(self._actors)

    def with_config(self, config: ScoringConfig) -> None:
        return None  # the workers hold their own weights; a new config means new workers

    def score_stream(self, items: Sequence[tuple[str, Conversation]], followups: FollowupSet,
                     pack: int = 1) -> Iterator[StreamedShard]:
        """Score (key, conversation) items in shards of whole conversations, yielding each
        shard as its worker finishes it. `pack` is how many conversations share one `score_many`
        call (the single-process caller's grouping: 1 for `flr score`, the runner's chunk for
        evaluation); shards are whole multiples of it, so the groups, and so every float, are
        the ones a single process computes."""
        size = -(-self._session.settings.shard_size // pack) * pack
        shards = [(list(items[i:i + size]), followups, pack) for i in range(0, len(items), size)]
        for outcome in run_shards(self._ray, self._actors, "score_shard", shards):
            if outcome.error is not None:
                rows = shards[outcome.shard][0]
                yield StreamedShard({}, {}, {key: outcome.error for key, _ in rows})
            else:
                yield StreamedShard(outcome.value.scores, outcome.value.failures, {})

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: Any = None, pack: int = 1) -> list[ConversationScore]:
        items = [(str(i), c) for i, c in enumerate(conversations)]
        found: dict[str, ConversationScore] = {}
        for shard in self.score_stream(items, followups, pack):
            refused = {**shard.failures, **shard.failed}
            if refused:
                key, reason = next(iter(refused.items()))
                raise ConversationError(f"conversation {int(key) + 1}: {reason}")
            found.update(shard.scores)
            if progress is not None:
                progress(len(found), len(conversations))
        return [found[str(i)] for i in range(len(conversations))]

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        return self.score_many([conversation], followups)[0]
