"""Why a conversation got its FLR: per follow-up, the value of each of its tokens, and which
follow-ups moved the score most.

The engine reads one value per (position, target token) of every follow-up: a log-probability
(mean / sum aggregation) or, with the paper's aggregation, a raw logit at the single position
read. `explain` returns those values per token, through the same shared-prefix passes that
`FLRScorer.score` runs (`FLRScorer.read_packed`), or one full pass per follow-up where the
scorer uses per-sequence scoring; `reference_tokens` is the obvious computation that the fast
one is tested against.

A follow-up's effect on the FLR is its signed weight times its score minus the mean score of
all follow-ups of the conversation. For every plain set (and every weighted set whose praise and
complaint weights balance) the effects add up to the FLR exactly, because the weights sum to
zero once signed; so "the follow-ups that moved the score most" are those with the largest
absolute effects. For two replies to one prompt, `compare` ranks follow-ups by how much their
score changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from core.engine.conversation import Conversation
from core.engine.fast.trie import ROOT
from core.engine.followups import NEGATIVE, POSITIVE, FollowupSet
from core.engine.rendering import Request, render
from core.names import CATEGORY, FOLLOWUP, POLARITY, SCORE

if TYPE_CHECKING:
    from core.engine.scorer import FLRScorer

EFFECT = "effect"
CHANGE = "change"
TOKENS = "tokens"


@dataclass(frozen=True)
class FollowupExplanation:
    category: str
    polarity: str
    text: str
    weight: float  # the weight the FLR gives it (subtracted for complaints)
    score: float  # its aggregated value, as `FLRScorer.score` reports it
    tokens: tuple[tuple[str, float], ...]  # (token text, value) in order
    effect: float = 0.0  # signed weight x (score - mean score of the conversation)

    @property
    def sign(self) -> int:
        return 1 if self.polarity == POSITIVE else -1

    def to_record(self) -> dict:
        return {"category": self.category, "polarity": self.polarity, "text": self.text,
                "score": self.score, "weight": self.weight, "effect": self.effect,
                "tokens": [[t, v] for t, v in self.tokens]}


@dataclass(frozen=True)
class Explanation:
    """Per follow-up explanations, the ones that moved the FLR most first."""

    followups: tuple[FollowupExplanation, ...]
    aggregation: str

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{CATEGORY: f.category, POLARITY: f.polarity, FOLLOWUP: f.text,
                              SCORE: f.score, EFFECT: f.effect, TOKENS: f.tokens}
                             for f in self.followups],
                            columns=[CATEGORY, POLARITY, FOLLOWUP, SCORE, EFFECT, TOKENS])

    def to_record(self) -> list[dict]:
        return [f.to_record() for f in self.followups]


def explain(scorer: "FLRScorer", conversation: Conversation, followups: FollowupSet) -> Explanation:
    """Per-token values of every follow-up of `followups` after `conversation`."""
    texts = list(dict.fromkeys(followups.utterances()))
    rendered = render(scorer.loaded.tokenizer, conversation, texts, mode=scorer.config.mode,
                      aggregation=scorer.config.aggregation, max_length=scorer.max_length,
                      system_policy=scorer.config.system_policy)
    requests = rendered.requests
    scorer.score_requests(requests[:1])  # runs the fast path's one-time self-check if due
    if scorer.uses_shared_prefix:
        (prefix_len,), (trie,), (read,) = scorer.read_packed([requests])
        values = []
        for i, request in enumerate(requests):
            nodes = (ROOT,) + trie.paths[i]
            values.append([[read[(nodes[p - prefix_len + 1], t)] for t in targets]
                           for p, targets in zip(request.positions, request.targets)])
    else:
        values = [reference_values(scorer, r) for r in requests]
    return _explanation(scorer, followups, texts, requests, values)


def reference_values(scorer: "FLRScorer", request: Request) -> list[list[float]]:
    """The obvious computation: one full forward pass, full logits, the value of every target
    at every position read (log-probability, or the raw logit for the paper's aggregation)."""
    import torch

    with torch.inference_mode():
        ids = torch.tensor([request.ids], device=scorer.loaded.device)
        logits = scorer.loaded.model(input_ids=ids, use_cache=False).logits[0].float()
        rows = logits[list(request.positions)]
        if scorer.config.aggregation != "paper":
            rows = torch.log_softmax(rows, dim=-1)
        return [[float(rows[i, t]) for t in targets] for i, targets in enumerate(request.targets)]


def reference_tokens(scorer: "FLRScorer", conversation: Conversation,
                     followups: FollowupSet) -> Explanation:
    """`explain` by one full pass per follow-up (for tests and as the definition)."""
    texts = list(dict.fromkeys(followups.utterances()))
    rendered = render(scorer.loaded.tokenizer, conversation, texts, mode=scorer.config.mode,
                      aggregation=scorer.config.aggregation, max_length=scorer.max_length,
                      system_policy=scorer.config.system_policy)
    values = [reference_values(scorer, r) for r in rendered.requests]
    return _explanation(scorer, followups, texts, rendered.requests, values)


def _aggregate(values: list[list[float]], aggregation: str) -> float:
    total = sum(sum(v) for v in values)
    if aggregation == "paper":
        return total / len(values[0])
    return total if aggregation == "sum" else total / len(values)


def _explanation(scorer: "FLRScorer", followups: FollowupSet, texts: Sequence[str],
                 requests: Sequence[Request], values: list[list[list[float]]]) -> Explanation:
    tokenizer = scorer.loaded.tokenizer
    aggregation = scorer.config.aggregation
    by_text = {}
    for text, request, vals in zip(texts, requests, values):
        tokens = tuple((tokenizer.decode([t]), v) for targets, row in zip(request.targets, vals)
                       for t, v in zip(targets, row))
        by_text[text] = (_aggregate(vals, aggregation), tokens)
    weights = iter(followups.weights())
    items = []
    for c in followups:
        for polarity, group in ((POSITIVE, c.positive), (NEGATIVE, c.negative)):
            for text in group:
                score, tokens = by_text[text]
                items.append(FollowupExplanation(c.name, polarity, text, next(weights), score, tokens))
    return Explanation(_with_effects(items), aggregation)


def _with_effects(items: list[FollowupExplanation]) -> tuple[FollowupExplanation, ...]:
    centre = fmean(f.score for f in items)
    done = [FollowupExplanation(f.category, f.polarity, f.text, f.weight, f.score, f.tokens,
                                f.sign * f.weight * (f.score - centre)) for f in items]
    return tuple(sorted(done, key=lambda f: -abs(f.effect)))


def compare(a: Explanation, b: Explanation) -> pd.DataFrame:
    """Follow-ups by how much their score changed from reply A to reply B, largest first, with
    what that change did to the FLR difference (signed weight x change)."""
    scores_b = {(f.category, f.polarity, f.text): f for f in b.followups}
    rows = []
    for f in a.followups:
        g = scores_b.get((f.category, f.polarity, f.text))
        if g is None:
            continue
        rows.append({CATEGORY: f.category, POLARITY: f.polarity, FOLLOWUP: f.text,
                     "score A": f.score, "score B": g.score, CHANGE: g.score - f.score,
                     EFFECT: f.sign * f.weight * (g.score - f.score)})
    frame = pd.DataFrame(rows, columns=[CATEGORY, POLARITY, FOLLOWUP, "score A", "score B", CHANGE, EFFECT])
    return frame.reindex(frame[CHANGE].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)
