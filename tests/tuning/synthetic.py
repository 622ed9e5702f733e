"""Synthetic labelled pairs where only a few follow-ups carry signal, and a scorer for them.

Every reply text holds its hidden quality (`q=0.731`). `SignalScorer` gives follow-up t on reply r
the score `base(t) + SIGNAL.get(t, 0) * q + NOISE * u(t, r)`, with u(t, r) a deterministic number
in [-1, 1) from a hash: so only the follow-ups in `SIGNAL` say anything about the reply, one of
them points the wrong way (a complaint that grows likelier as the reply gets better), and the
plain average drowns them in the others' noise. Chosen replies have the higher quality.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet, followups_from_mapping
from core.engine.results import CategoryScore, ConversationScore

GOOD, BAD, WRONG_WAY = "Exactly what I needed, thanks.", "That is simply wrong.", "Hmm, okay then."
SIGNAL = {GOOD: 3.0, BAD: -3.0, WRONG_WAY: 2.0}  # WRONG_WAY is a negative follow-up
NOISE = 1.0

SET = followups_from_mapping({
    "helpful": {"positive": [GOOD, "Nice.", "Cool, got it.", "Great answer!"],
                "negative": ["Not useful.", "Meh.", WRONG_WAY, "Try again."]},
    "correct": {"positive": ["Correct, thanks.", "Right.", "Yes, that's it.", "Accurate."],
                "negative": [BAD, "Incorrect.", "No.", "False."]},
})


def _u(*parts: str) -> float:
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**63 - 1.0


def quality(reply: str) -> float:
    match = re.search(r"q=([0-9.]+)", reply)
    return float(match.group(1)) if match else 0.0


class SignalScorer:
    config = ScoringConfig(model="signal")
    identity = "signal-scorer"

    def __init__(self) -> None:
        self.conversations = 0

    def with_config(self, config: ScoringConfig) -> None:
        return None

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        self.conversations += 1
        q, r = quality(conversation.reply), conversation.reply

        def value(t: str) -> float:
            return -2.0 + _u("base", t) + SIGNAL.get(t, 0.0) * q + NOISE * _u(t, r)

        return ConversationScore(tuple(
            CategoryScore(c.name, tuple(value(t) for t in c.positive), tuple(value(t) for t in c.negative),
                          c.positive, c.negative, c.positive_weights, c.negative_weights)
            for c in followups))

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress=None) -> list[ConversationScore]:
        return [self.score(c, followups) for c in conversations]


def write_pairs(path: Path, prompts: int, per_prompt: int, seed: int) -> Path:
    """`prompts` x `per_prompt` labelled pairs (prompt / chosen / rejected), pairs of one prompt
    sharing it; lengths random, so length says nothing."""
    rng = random.Random(seed)
    lines = []
    for p in range(prompts):
        for k in range(per_prompt):
            lo = rng.uniform(0.0, 0.6)
            hi = lo + rng.uniform(0.1, 0.5)
            pad = lambda: " filler" * rng.randint(0, 30)  # noqa: E731
            lines.append({"prompt": f"Question {seed}-{p}?",
                          "chosen": f"Answer {seed}-{p}-{k}a q={hi:.4f}{pad()}",
                          "rejected": f"Answer {seed}-{p}-{k}b q={lo:.4f}{pad()}"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path
