"""Batch evaluation: score benchmark rows through the cache, then judge every benchmark.

`run_evaluation` takes benchmarks from `core.evaluation.detect`, finds every conversation that
still needs a score, looks it up in the SQLite cache (`core.evaluation.score_cache`), and only if
something is missing calls `scorer_factory()` (so a rerun never loads the model). New scores are
committed chunk by chunk; a killed run resumes where it stopped and ends with the same report,
because nothing in the report depends on what was cached.

The report's provenance states the dtype decision the scores were computed under (`dtype`: what
`--dtype` resolved to, why, and the CPU): from the scorer when a model is loaded, and stored
with the identity in the score cache, so a rerun served from the cache states the same decision
without loading anything. It is omitted when nothing was scored (precomputed files only), when
the scorer states none (a fake or a cluster of workers) and for scores cached before it existed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.engine.stopping import stop_when
from core.errors import ConversationError, StoppedError
from core.evaluation import metrics as M
from core.evaluation.benchmark import Benchmark
from core.evaluation.elo import EloTable, default_elo
from core.evaluation.judging import judge_benchmark
from core.evaluation.provenance import provenance
from core.evaluation.report import EvaluationReport
from core.evaluation.score_cache import ScoreCache, conversation_hash, model_key, settings_key
from core.names import BOOTSTRAP_SAMPLES, COL_CONVERSATION

if TYPE_CHECKING:
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, message)

CHUNK = 4  # conversations scored per cache commit: a killed run loses at most this many


@dataclass(frozen=True)
class EvaluationOptions:
    """How a run is bounded and judged: everything but the data, the model and its settings."""

    limit: int | float | None = None  # the first N pairs / rows of each benchmark (ranking: N prompts); 0.1 = 10%
    elo: EloTable | None = None  # reference ELO for ranking benchmarks; None = the bundled table
    bootstrap_samples: int = BOOTSTRAP_SAMPLES  # resamples per confidence interval
    seed: int = M.BOOTSTRAP_SEED  # fixed, so a report is reproducible
    chunk_size: int = CHUNK  # conversations per cache commit
    elo_map: Mapping[str, str] = field(default_factory=dict)  # benchmark model -> ELO entry, by hand
    sections: Mapping[str, Sequence[str]] | None = None  # RewardBench section map; None = RB1's
    datasets: Sequence[Mapping[str, Any]] = ()  # datasets read by name: name, config, split, revision


@dataclass
class _Found:
    """What a run knows so far, by conversation hash: scores, the engine's refusals, counts."""

    scores: dict[str, ConversationScore] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    dtype: dict[str, Any] | None = None  # the dtype decision the scores were computed under

    def missing(self, needed: dict[str, Conversation]) -> list[str]:
        return [h for h in needed if h not in self.scores and h not in self.failures]


def run_evaluation(benchmarks: Sequence[Benchmark], *, scorer_factory: Callable[[], "Scorer"],
                   config: ScoringConfig, followups: FollowupSet, cache_path: Path | None,
                   options: EvaluationOptions = EvaluationOptions(), progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> EvaluationReport:
    """Score what is not cached yet, then compute every benchmark's metrics."""
    started = time.perf_counter()
    benchmarks = [b.limited(options.limit) for b in benchmarks]
    elo = options.elo or default_elo()
    needed: dict[str, Conversation] = {}
    for b in benchmarks:
        if b.precomputed:
            continue
        for conv in b.frame[COL_CONVERSATION]:
            if isinstance(conv, Conversation):
                needed.setdefault(conversation_hash(conv), conv)

    found = _Found(stats={"to_score": len(needed), "from_cache": 0, "scored": 0, "failed": 0,
                          "model_loaded": False})
    cancelled = False
    if needed:
        settings = settings_key(config)
        mkey = model_key(config)
        with ScoreCache(cache_path) as cache:
            identity = cache.known_identity(mkey)
            found.stats["identity"] = identity
            if identity is not None:
                found.scores, found.failures = cache.get_many(identity, settings, followups, needed)
                found.dtype = cache.known_dtype(identity)
            missing = found.missing(needed)
            found.stats["from_cache"] = len(found.scores) + len(found.failures)
            if missing and cancel is not None and cancel.is_set():
                cancelled = True
            elif missing:
                if progress is not None:
                    progress(0, len(missing), "loading the model")
                scorer = scorer_factory()
                found.stats["model_loaded"] = True
                if scorer.identity != identity:
                    identity = found.stats["identity"] = scorer.identity
                    cache.remember_identity(mkey, identity)
                    found.scores, found.failures = cache.get_many(identity, settings, followups, needed)
                    missing = found.missing(needed)
                    found.dtype = cache.known_dtype(identity)
                decision = getattr(scorer, "dtype_decision", None)  # optional: FLRScorer states it
                if decision is not None:
                    found.dtype = decision
                    cache.remember_dtype(identity, decision)
                batch = _CachedScoring(scorer, cache, identity, settings, followups)
                cancelled = batch.score([(h, needed[h]) for h in missing], found, options.chunk_size,
                                        progress, cancel)
    results = [judge_benchmark(b, found.scores, found.failures, followups, elo, options.bootstrap_samples,
                               options.seed, options.elo_map, options.sections) for b in benchmarks]
    stats = found.stats
    stats["seconds"] = time.perf_counter() - started
    report_settings = {**config.as_dict(), "followups": followups.fingerprint(),
                       "followup_categories": list(followups.names), "elo_table": elo.name,
                       "limit": options.limit, "bootstrap_samples": options.bootstrap_samples,
                       "seed": options.seed, "elo_map": dict(options.elo_map),
                       "intervals": {"accuracy": "Wilson score 95%",
                                     "correlations": "percentile bootstrap 95% over rows"},
                       "provenance": provenance(config.model, found.stats.get("identity"),
                                                followups.fingerprint(), found.dtype)}
    if options.datasets:  # absent for files, as before
        report_settings["provenance"]["datasets"] = [dict(d) for d in options.datasets]
    log.info("evaluated %d benchmark(s): %d conversations scored, %d from the cache",
             len(results), stats["scored"], stats["from_cache"])
    return EvaluationReport(results, report_settings, cancelled, stats)


@dataclass(frozen=True)
class _CachedScoring:
    """A scorer writing into the score cache under one model identity and one set of settings."""

    scorer: "Scorer"
    cache: ScoreCache
    identity: str
    settings: str
    followups: FollowupSet

    def score(self, todo: list[tuple[str, Conversation]], found: _Found, chunk_size: int,
              progress: Progress | None, cancel: threading.Event | None) -> bool:
        """Score `todo` in chunks, committing each into the cache and `found`; True if
        cancelled before the end."""
        if hasattr(self.scorer, "score_stream"):  # a cluster scorer: shards stream back as they finish
            return self._stream(todo, found, chunk_size, progress, cancel)
        total = len(todo)
        done = 0
        for start in range(0, total, chunk_size):
            if cancel is not None and cancel.is_set():
                return True
            chunk = todo[start:start + chunk_size]
            try:  # the model work itself stops between passes once cancel is set
                with stop_when(cancel.is_set if cancel is not None else None):
                    new_scores, new_failures = self._chunk(chunk, done, total, progress)
            except StoppedError:
                return True
            self.cache.put_many(self.identity, self.settings, self.followups, new_scores, new_failures)
            found.scores.update(new_scores)
            found.failures.update(new_failures)
            found.stats["scored"] += len(new_scores)
            found.stats["failed"] += len(new_failures)
            done += len(chunk)
            if progress is not None:
                progress(done, total, f"scored {done} of {total} conversations")
        return False

    def _stream(self, todo: list[tuple[str, Conversation]], found: _Found, chunk_size: int,
                progress: Progress | None, cancel: threading.Event | None) -> bool:
        """Commit each shard as a worker returns it (`core.distributed.scoring.ClusterScorer`,
        scoring `chunk_size` conversations per call as `_chunk` does); rows of a shard that broke
        a worker are reported as failed but not cached."""
        total, done = len(todo), 0
        for shard in self.scorer.score_stream(todo, self.followups, chunk_size):  # type: ignore[attr-defined]
            self.cache.put_many(self.identity, self.settings, self.followups, shard.scores, shard.failures)
            found.scores.update(shard.scores)
            found.failures.update({**shard.failures, **shard.failed})
            found.stats["scored"] += len(shard.scores)
            found.stats["failed"] += len(shard.failures) + len(shard.failed)
            done += len(shard.scores) + len(shard.failures) + len(shard.failed)
            if shard.failed:
                log.warning("%d conversation(s) failed on a worker: %s", len(shard.failed),
                            next(iter(shard.failed.values())))
            if progress is not None:
                progress(done, total, f"scored {done} of {total} conversations")
            if cancel is not None and cancel.is_set() and done < total:
                return True
        return False

    def _chunk(self, chunk: list[tuple[str, Conversation]], done: int, total: int,
               progress: Progress | None) -> tuple[dict[str, ConversationScore], dict[str, str]]:
        def step(i: int, _n: int) -> None:
            if progress is not None:
                progress(done + i, total, f"scored {done + i} of {total} conversations")

        hashes = [h for h, _ in chunk]
        convs = [c for _, c in chunk]
        try:
            return dict(zip(hashes, self.scorer.score_many(convs, self.followups, progress=step))), {}
        except ConversationError:
            scores: dict[str, ConversationScore] = {}
            failures: dict[str, str] = {}
            for h, conv in chunk:  # find which row the engine refuses
                try:
                    scores[h] = self.scorer.score(conv, self.followups)
                except ConversationError as err:
                    failures[h] = str(err)
            return scores, failures
