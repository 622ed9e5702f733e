"""An SQLite cache of conversation scores, so batch evaluation never scores a row twice.

A score is keyed by the scorer's identity (model weights), the settings that change a value
(`ScoringConfig.scoring_key()`), the follow-up set's fingerprint and a hash of the conversation.
It is stored as JSON (per category, the positive and negative values) and committed chunk by
chunk as the run goes, so a run that is killed loses at most the chunk in flight.

A score stored before the Direct baseline existed (no `direct` key) is not returned, so it is
scored again rather than reported without Direct; a stored `null` means the scorer could not
compute it for that reply.

Rows that the engine refuses (a `ConversationError`, e.g. a conversation that cannot fit the
model) are remembered too, with the reason, so a rerun skips them without loading the model.

Shortcut taken on purpose: the scorer's identity is only known once the model is loaded, but
a rerun must find its scores without loading it. The cache therefore remembers which identity
a configuration (model name, device, dtype, and for a local model its files' sizes and
modification times) produced last time, and looks scores up under that identity first. For the
same reason it keeps, per identity, the dtype decision the model was loaded under
(`core.engine.precision.DtypeDecision.as_dict`), so a report served from the cache states the
decision its scores were computed under without loading the model (or importing torch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.evaluation.report_cache import default_cache_path, model_key, open_cache
from core.engine.results import CategoryScore, ConversationScore

log = logging.getLogger(__name__)

__all__ = ["ScoreCache", "conversation_hash", "default_cache_path", "model_key", "settings_key",
           "score_from_json", "score_to_json"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    identity TEXT NOT NULL, settings TEXT NOT NULL, followups TEXT NOT NULL,
    conversation TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (identity, settings, followups, conversation));
CREATE TABLE IF NOT EXISTS failures (
    identity TEXT NOT NULL, settings TEXT NOT NULL, followups TEXT NOT NULL,
    conversation TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (identity, settings, followups, conversation));
CREATE TABLE IF NOT EXISTS identities (model_key TEXT PRIMARY KEY, identity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dtypes (identity TEXT PRIMARY KEY, decision TEXT NOT NULL);
"""

_DIRECT_KEY = '"direct":'  # in every score stored since the Direct baseline (null if none)


def conversation_hash(conversation: Conversation) -> str:
    """Stable hash of what the scorer sees: the system message and the utterances."""
    blob = json.dumps({"system": conversation.system, "utterances": list(conversation.utterances)},
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def settings_key(config: ScoringConfig) -> str:
    return json.dumps(config.scoring_key(), sort_keys=True)


def score_to_json(score: ConversationScore) -> str:
    return json.dumps({
        "categories": [{"name": c.name, "positive": list(c.positive), "negative": list(c.negative)}
                       for c in score.categories],
        "warnings": list(score.warnings),
        "dropped_turns": score.dropped_turns,
        "context_tokens": score.context_tokens,
        "direct": score.direct,
    }, separators=(",", ":"))


def score_from_json(text: str, followups: FollowupSet | None = None) -> ConversationScore:
    """The stored score, with the follow-up texts filled back in from the set when they fit."""
    data = json.loads(text)
    categories = []
    for c in data["categories"]:
        pos_texts: tuple[str, ...] = ()
        neg_texts: tuple[str, ...] = ()
        pos_w: tuple[float, ...] = ()
        neg_w: tuple[float, ...] = ()
        if followups is not None and c["name"] in followups.names:
            cat = followups[c["name"]]
            if len(cat.positive) == len(c["positive"]) and len(cat.negative) == len(c["negative"]):
                pos_texts, neg_texts = cat.positive, cat.negative
                pos_w, neg_w = cat.positive_weights, cat.negative_weights
        categories.append(CategoryScore(c["name"], tuple(c["positive"]), tuple(c["negative"]),
                                        pos_texts, neg_texts, pos_w, neg_w))
    direct = data.get("direct")
    return ConversationScore(tuple(categories), tuple(data.get("warnings", ())),
                             int(data.get("dropped_turns", 0)), int(data.get("context_tokens", 0)),
                             None if direct is None else float(direct))


def _key(followups: FollowupSet) -> str:
    """The set's fingerprint without its weights: a follow-up's score does not depend on its
    weight, so a tuned set finds the scores of the plain set it was tuned from (weights are
    applied when a score is read back, and reports are keyed with the weights)."""
    return followups.unweighted().fingerprint()


class ScoreCache:
    """Scores by (identity, settings, follow-up set, conversation hash). `path=None` keeps
    them in memory for one run only."""

    def __init__(self, path: str | Path | None) -> None:
        self._db = open_cache(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ScoreCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # identities -------------------------------------------------------------------------
    def known_identity(self, key: str) -> str | None:
        row = self._db.execute("SELECT identity FROM identities WHERE model_key = ?", (key,)).fetchone()
        return row[0] if row else None

    def remember_identity(self, key: str, identity: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO identities VALUES (?, ?)", (key, identity))
        self._db.commit()

    def known_dtype(self, identity: str) -> dict[str, Any] | None:
        """The dtype decision stored with `identity`'s scores (None: stored before there was one)."""
        row = self._db.execute("SELECT decision FROM dtypes WHERE identity = ?", (identity,)).fetchone()
        return json.loads(row[0]) if row else None

    def remember_dtype(self, identity: str, decision: Mapping[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO dtypes VALUES (?, ?)",
                         (identity, json.dumps(dict(decision), sort_keys=True)))
        self._db.commit()

    # scores ----------------------------------------------------------------------------
    def get_many(self, identity: str, settings: str, followups: FollowupSet,
                 hashes: Iterable[str]) -> tuple[dict[str, ConversationScore], dict[str, str]]:
        """(scores found, failure reasons found) for the given conversation hashes."""
        fp = _key(followups)
        wanted = list(dict.fromkeys(hashes))
        scores: dict[str, ConversationScore] = {}
        failures: dict[str, str] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps the number of parameters
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for h, value in self._db.execute(
                    f"SELECT conversation, value FROM scores WHERE identity = ? AND settings = ? "
                    f"AND followups = ? AND conversation IN ({marks})", (identity, settings, fp, *chunk)):
                if _DIRECT_KEY not in value:
                    continue  # stored before the Direct baseline existed: scored again
                scores[h] = score_from_json(value, followups)
            for h, reason in self._db.execute(
                    f"SELECT conversation, reason FROM failures WHERE identity = ? AND settings = ? "
                    f"AND followups = ? AND conversation IN ({marks})", (identity, settings, fp, *chunk)):
                failures[h] = reason
        return scores, failures

    def put_many(self, identity: str, settings: str, followups: FollowupSet,
                 scores: Mapping[str, ConversationScore],
                 failures: Mapping[str, str] | None = None) -> None:
        """Store and commit at once (a killed run keeps everything stored before). A cache that
        fails while open (full disk, damaged) only costs the reuse: the run goes on."""
        fp = _key(followups)
        try:
            self._store(identity, settings, fp, scores, failures)
        except sqlite3.Error as err:
            log.warning("score cache: could not save %d score(s) (%s); the run goes on", len(scores), err)

    def _store(self, identity: str, settings: str, fp: str, scores: Mapping[str, ConversationScore],
               failures: Mapping[str, str] | None) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)",
                [(identity, settings, fp, h, score_to_json(s)) for h, s in scores.items()])
            if failures:
                self._db.executemany(
                    "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                    [(identity, settings, fp, h, r) for h, r in failures.items()])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
