"""Preference mining on Ray workers: shards are batches of prompts.

Each worker loads the scorer and the policy once (one model when they are the same) and mines
whole batches: it samples K replies per prompt and scores them. The batches are the ones a
single process would make (`MiningConfig.batch_size` prompts, in order), and each (prompt,
sample) draws from its own generator seeded by `sample_seed(seed, prompt, sample)`, so the
samples and their rewards do not depend on the number of workers. Finished batches stream back
to the driver, which appends them to the run's resume cache (`DIR/cache/`) as they arrive.

A batch whose prompts break a worker (a prompt too long for the policy's context) is reported
with its prompts after every other batch is mined and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from core.distributed.pool import run_shards
from core.distributed.session import ClusterSession
from core.distributed.workers import MiningWorker, ScorerFactory, remote_identity
from core.engine.config import ScoringConfig
from core.engine.followups import FollowupSet
from core.errors import ClusterError, InputError
from core.mining.mining import MiningConfig, PromptSamples
from core.mining.prompts import MiningPrompt


@dataclass(frozen=True)
class RemoteModel:
    """A model loaded on the workers, known on the driver by its identity only."""

    identity: str


class ClusterMiner:
    """The `batches` argument of `core.mining.mining.mine`, run on `session`'s workers."""

    def __init__(self, session: ClusterSession, factory: ScorerFactory, policy_config: ScoringConfig) -> None:
        self._ray = session.connect()
        self._actors = session.workers(MiningWorker, factory, policy_config)
        identities = {remote_identity(self._ray, a, "identities") for a in self._actors}
        if len(identities) != 1:
            raise ClusterError("the workers loaded different models; every node needs the same model files")
        policy, scorer = identities.pop()
        self.policy, self.scorer = RemoteModel(policy), RemoteModel(scorer)

    def __call__(self, prompts: Sequence[MiningPrompt], groups: list[list[int]], followups: FollowupSet,
                 config: MiningConfig) -> Iterator[list[PromptSamples]]:
        shards = [([prompts[i] for i in group], group, followups, config) for group in groups]
        failed: list[str] = []
        for outcome in run_shards(self._ray, self._actors, "mine_batch", shards):
            if outcome.error is not None:
                group = groups[outcome.shard]
                rows = ", ".join(f"{i + 1} ({prompts[i].id})" for i in group)
                failed.append(f"prompts {rows}: {outcome.error}")
            else:
                yield outcome.value
        if failed:
            raise InputError(f"{len(failed)} batch(es) of prompts failed, the others are mined and cached "
                             f"(rerun after fixing them to resume): {'; '.join(failed)}")
