"""Score a list of conversations on the cluster through the SQLite score cache (`flr score --ray`).

The same cache and keys as batch evaluation (`core.evaluation.score_cache`): a conversation is
looked up first, and only what is missing goes to the workers; each shard is committed as it
comes back. A killed run therefore resumes where it stopped, and an identical rerun starts
neither Ray nor a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.evaluation.score_cache import ScoreCache, conversation_hash, model_key, settings_key

Progress = Callable[[int, int], None]  # (conversations done, total), cached ones included


def cached_scores(conversations: Sequence[Conversation], followups: FollowupSet, config: ScoringConfig,
                  cache_path: Path | None, scorer_factory: Callable[[], object],
                  progress: Progress | None = None) -> tuple[list[ConversationScore | str], dict[str, int]]:
    """Per conversation its score or, when it could not be scored, the reason; and counts
    (`from_cache`, `scored`, `failed`). `scorer_factory()` is called only if something is missing
    and must return a scorer with `score_stream` (`ClusterScorer`)."""
    needed = {conversation_hash(c): c for c in conversations}
    settings, mkey = settings_key(config), model_key(config)
    stats = {"from_cache": 0, "scored": 0, "failed": 0}
    with ScoreCache(cache_path) as cache:
        identity = cache.known_identity(mkey)
        scores: dict[str, ConversationScore] = {}
        failures: dict[str, str] = {}
        if identity is not None:
            scores, failures = cache.get_many(identity, settings, followups, needed)
        stats["from_cache"] = len(scores) + len(failures)
        missing = [h for h in needed if h not in scores and h not in failures]
        if progress is not None:
            progress(len(needed) - len(missing), len(needed))
        if missing:
            scorer = scorer_factory()
            if scorer.identity != identity:  # type: ignore[attr-defined]
                identity = scorer.identity  # type: ignore[attr-defined]
                cache.remember_identity(mkey, identity)
                scores, failures = cache.get_many(identity, settings, followups, needed)
                missing = [h for h in needed if h not in scores and h not in failures]
            for shard in scorer.score_stream([(h, needed[h]) for h in missing], followups):  # type: ignore[attr-defined]
                cache.put_many(identity, settings, followups, shard.scores, shard.failures)
                scores.update(shard.scores)
                failures.update({**shard.failures, **shard.failed})
                stats["scored"] += len(shard.scores)
                stats["failed"] += len(shard.failures) + len(shard.failed)
                if progress is not None:
                    progress(len(scores) + len(failures), len(needed))
    out: list[ConversationScore | str] = []
    for conversation in conversations:
        h = conversation_hash(conversation)
        out.append(scores[h] if h in scores else failures[h])
    return out, stats
