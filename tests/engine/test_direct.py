"""The Direct baseline (the reply's own likelihood) against one plain forward pass."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch

from core.engine.config import ScoringConfig
from core.engine.conversation import from_utterances
from core.engine.followups import followups_from_mapping
from core.engine.models import load_model
from core.engine.scorer import FLRScorer

FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["Thanks, very helpful!"], "negative": ["No.", "That's wrong."]},
})
CONVERSATIONS = [
    from_utterances(["What is the capital of France?", "Paris is the capital of France."]),
    from_utterances(["Hi", "Hello! How can I help?", "Tell me a joke.",
                     "Why did the chicken cross the road? To get to the other side."]),
    from_utterances(["2+2?", "4"]),
]


def slow_direct(model, tokenizer, conversation, aggregation="mean"):
    """Independent reading: render the conversation as text, find the reply's tokens by
    tokenizing the text up to the reply and up to its end, score them in one full pass."""
    messages = conversation.messages()
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    end = text.rindex(conversation.reply) + len(conversation.reply)
    before = tokenizer(text[:end - len(conversation.reply)], add_special_tokens=False).input_ids
    upto = tokenizer(text[:end], add_special_tokens=False).input_ids
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([upto])).logits[0].float(), dim=-1)
    values = [logprobs[t - 1, upto[t]].item() for t in range(len(before), len(upto))]
    return sum(values) if aggregation == "sum" else sum(values) / len(values)


def make_scorer(model_dir, **settings) -> FLRScorer:
    config = ScoringConfig(model=str(model_dir), device="cpu", **settings)
    return FLRScorer(load_model(config), config)


@pytest.mark.parametrize("aggregation", ["mean", "sum"])
def test_direct_equals_one_plain_forward_pass(tiny_model_dir, aggregation):
    scorer = make_scorer(tiny_model_dir, aggregation=aggregation, batch_size=2)
    scores = scorer.score_many(CONVERSATIONS, FOLLOWUPS)
    for conversation, score in zip(CONVERSATIONS, scores):
        expected = slow_direct(scorer.loaded.model, scorer.loaded.tokenizer, conversation, aggregation)
        assert score.direct == pytest.approx(expected, abs=1e-4)
        assert score.to_record()["direct"] == score.direct


def test_direct_is_read_in_the_prefix_pass_not_by_an_extra_forward(tiny_model_dir):
    scorer = make_scorer(tiny_model_dir)
    scorer.score_many(CONVERSATIONS[:1], FOLLOWUPS)  # the self-checked first conversation
    with mock.patch("core.engine.direct.direct_by_forward", side_effect=AssertionError("extra pass")):
        scores = scorer.score_many(CONVERSATIONS, FOLLOWUPS)
    assert all(s.direct is not None and math.isfinite(s.direct) for s in scores)


def test_per_sequence_fallback_computes_the_same_direct(tiny_model_dir):
    fast = make_scorer(tiny_model_dir).score_many(CONVERSATIONS, FOLLOWUPS)
    slow_scorer = make_scorer(tiny_model_dir)
    slow_scorer._shared_prefix = False
    slow_scorer._checked = True
    slow = slow_scorer.score_many(CONVERSATIONS, FOLLOWUPS)
    assert [s.direct for s in slow] == pytest.approx([s.direct for s in fast], abs=1e-4)
