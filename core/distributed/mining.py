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
from pathlib import Path
from typing import Iterator, Sequence

from core.distributed.pool import run_shards
from core.distributed.session import ClusterSession
from core.distributed.workers import MiningWorker, ScorerFactory, remote_identity
from core.engine.config import ScoringConfig
from core.engine.followups import FollowupSet
from core.errors import ClusterError, InputError
from core.evaluation.score_cache import ScoreCache, model_key
from core.mining.mining import MiningConfig, PromptSamples, SampleCache, run_key
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


def remember_identities(cache_path: Path | None, scoring: ScoringConfig, policy_config: ScoringConfig,
                        miner: ClusterMiner) -> None:
    """Note which weights the two configurations loaded (in the score cache's identity table),
    so that a rerun can find its finished samples without starting a worker."""
    with ScoreCache(cache_path) as cache:
        cache.remember_identity(model_key(scoring), miner.scorer.identity)
        cache.remember_identity(model_key(policy_config), miner.policy.identity)


def finished_without_workers(prompts: Sequence[MiningPrompt], scoring: ScoringConfig,
                             policy_config: ScoringConfig, followups: FollowupSet, config: MiningConfig,
                             output_dir: str | Path, cache_path: Path | None) -> "FinishedRun | None":
    """A stand-in for the workers when every prompt is already in the resume cache under the
    identities a previous run's workers loaded: then an identical rerun starts neither Ray nor
    a model. None when anything is left to mine (or the identities are not known)."""
    with ScoreCache(cache_path) as cache:
        scorer = cache.known_identity(model_key(scoring))
        policy = cache.known_identity(model_key(policy_config))
    if scorer is None or policy is None:
        return None
    known = FinishedRun(RemoteModel(policy), RemoteModel(scorer))
    done = SampleCache(output_dir, run_key(known.policy, known.scorer, followups, config)).load(prompts)  # type: ignore[arg-type]
    return known if len(done) == len(prompts) else None


@dataclass(frozen=True)
class FinishedRun:
    """The `batches` of a run whose every prompt is cached: nothing to hand out."""

    policy: RemoteModel
    scorer: RemoteModel

    def __call__(self, prompts: Sequence[MiningPrompt], groups: list[list[int]], followups: FollowupSet,
                 config: MiningConfig) -> Iterator[list[PromptSamples]]:
        assert not groups, "a finished run has nothing left to mine"
        return iter(())
