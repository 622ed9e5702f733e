"""The engine against the obvious computation, on a tiny random chat model."""

from __future__ import annotations

import math

import pytest
import torch

from core.engine.config import ScoringConfig
from core.engine.conversation import from_utterances
from core.engine.followups import followups_from_mapping
from core.engine.models import load_model
from core.engine.rendering import FEEDBACK_INSTRUCTION, render
from core.engine.scorer import FLRScorer

FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["That's exactly what I asked about.", "Thanks, very helpful!"],
                  "negative": ["That has nothing to do with my question.", "No."]},
    "correctness": {"positive": ["Right, that matches what I know."],
                    "negative": ["That's wrong.", "I don't think that's correct at all, sorry.",
                                 "Wrong."]},
})
CONVERSATION = from_utterances([
    "What is the capital of France?", "Paris is the capital of France.",
    "And what is it famous for?", "The Eiffel Tower, museums and food.",
])


def make_scorer(model_dir, **settings) -> FLRScorer:
    config = ScoringConfig(model=str(model_dir), device="cpu", **settings)
    return FLRScorer(load_model(config), config)


def manual_loglik(model, tokenizer, messages_before, followup, role, aggregation="mean"):
    """Independent reading of the definition: render with and without the follow-up as text,
    find the follow-up's tokens by tokenizing the text up to it, score with one full pass."""
    text = tokenizer.apply_chat_template(messages_before + [{"role": role, "content": followup}],
                                         tokenize=False)
    head = tokenizer.apply_chat_template(messages_before + [{"role": role, "content": ""}],
                                         tokenize=False)
    cut = head.index("<|im_end|>", len(head) - len("<|im_end|>\n") - 1)
    prefix_ids = tokenizer(text[:cut], add_special_tokens=False).input_ids
    upto_ids = tokenizer(text[:cut + len(followup)], add_special_tokens=False).input_ids
    ids = torch.tensor([upto_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    values = [logprobs[t - 1, upto_ids[t]].item() for t in range(len(prefix_ids), len(upto_ids))]
    return sum(values) if aggregation == "sum" else sum(values) / len(values)


@pytest.mark.parametrize("mode", ["base", "feedback"])
@pytest.mark.parametrize("aggregation", ["mean", "sum", "paper"])
def test_fast_path_equals_one_pass_per_followup(tiny_model_dir, mode, aggregation):
    scorer = make_scorer(tiny_model_dir, mode=mode, aggregation=aggregation, batch_size=3)
    rendered = render(scorer.loaded.tokenizer, CONVERSATION, FOLLOWUPS.utterances(), mode=mode,
                      aggregation=aggregation, max_length=512)
    fast = scorer._score_shared_prefix(rendered.requests)
    reference = scorer.score_reference(rendered.requests)
    assert len(fast) == len(reference) == len(FOLLOWUPS.utterances())
    for a, b in zip(fast, reference):
        assert a == pytest.approx(b, abs=1e-4)
    assert len(set(round(v, 6) for v in reference)) > 1  # the model tells inputs apart


@pytest.mark.parametrize("aggregation", ["mean", "sum"])
def test_base_mode_matches_the_definition(tiny_model_dir, aggregation):
    scorer = make_scorer(tiny_model_dir, aggregation=aggregation)
    result = scorer.score(CONVERSATION, FOLLOWUPS)
    model, tokenizer = scorer.loaded.model, scorer.loaded.tokenizer
    for category in FOLLOWUPS:
        got = result.category(category.name)
        for text, value in zip(category.positive + category.negative, got.positive + got.negative):
            expected = manual_loglik(model, tokenizer, CONVERSATION.messages(), text, "user", aggregation)
            assert value == pytest.approx(expected, abs=1e-4)


def test_feedback_mode_swaps_roles(tiny_model_dir):
    scorer = make_scorer(tiny_model_dir, mode="feedback")
    result = scorer.score(CONVERSATION, FOLLOWUPS)
    swapped = [{"role": "user", "content": FEEDBACK_INSTRUCTION},
               {"role": "assistant", "content": CONVERSATION.last_user},
               {"role": "user", "content": CONVERSATION.reply}]
    text = "That's wrong."
    expected = manual_loglik(scorer.loaded.model, scorer.loaded.tokenizer, swapped, text, "assistant")
    assert result.category("correctness").negative[0] == pytest.approx(expected, abs=1e-4)


def test_paper_aggregation_reads_raw_logits_at_minus_L(tiny_model_dir):
    scorer = make_scorer(tiny_model_dir, aggregation="paper")
    tokenizer, model = scorer.loaded.tokenizer, scorer.loaded.model
    text = "No."
    messages = CONVERSATION.messages() + [{"role": "user", "content": text}]
    ids = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False),
                    add_special_tokens=False).input_ids
    followup_ids = tokenizer(text).input_ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    expected = logits[-len(followup_ids), followup_ids].mean().item()
    assert scorer.score(CONVERSATION, FOLLOWUPS).category("relevance").negative[1] == pytest.approx(expected, abs=1e-4)


def test_rewards_are_category_differences_and_their_mean(tiny_model_dir):
    result = make_scorer(tiny_model_dir).score(CONVERSATION, FOLLOWUPS)
    rewards = []
    for c in result.categories:
        reward = sum(c.positive) / len(c.positive) - sum(c.negative) / len(c.negative)
        assert c.flr == pytest.approx(reward)
        rewards.append(reward)
    assert result.flr == pytest.approx(sum(rewards) / len(rewards))
    record = result.to_record()
    assert list(record["categories"]) == ["relevance", "correctness"]
    assert len(record["categories"]["correctness"]["negative"]) == 3


def test_results_do_not_depend_on_batch_size_or_padding_side(tiny_model_dir):
    baseline = make_scorer(tiny_model_dir, batch_size=1).score(CONVERSATION, FOLLOWUPS)
    for batch_size in (2, 5, 64):
        for side in ("left", "right"):
            scorer = make_scorer(tiny_model_dir, batch_size=batch_size)
            scorer.loaded.tokenizer.padding_side = side
            other = scorer.score(CONVERSATION, FOLLOWUPS)
            for a, b in zip(baseline.categories, other.categories):
                assert a.positive == pytest.approx(b.positive, abs=1e-5)
                assert a.negative == pytest.approx(b.negative, abs=1e-5)


def test_identical_followups_are_scored_once_and_agree(tiny_model_dir):
    doubled = followups_from_mapping({
        "a": {"positive": ["Great, thanks!"], "negative": ["No."]},
        "b": {"positive": ["Great, thanks!"], "negative": ["No.", "Great, thanks!"]},
    })
    scorer = make_scorer(tiny_model_dir)
    seen = []
    original = scorer.score_requests
    scorer.score_requests = lambda requests, direct=None: seen.append(len(requests)) or original(requests, direct)
    result = scorer.score(CONVERSATION, doubled)
    assert seen == [2]
    assert result.category("a").positive[0] == result.category("b").negative[1]


def test_long_conversation_is_cut_from_the_left_and_says_so(tiny_model_dir):
    long = from_utterances(["Tell me about the weather today, please. " * 6, "It is sunny. " * 8] * 4
                           + ["And tomorrow?", "Rain."])
    scorer = make_scorer(tiny_model_dir, max_length=120)
    result = scorer.score(long, FOLLOWUPS)
    assert result.truncated and result.dropped_turns % 2 == 0 and result.dropped_turns >= 2
    assert any("dropped the oldest" in w for w in result.warnings)
    assert all(math.isfinite(v) for c in result.categories for v in c.positive + c.negative)
    # The kept part is scored exactly as if the user had sent only that part.
    kept = from_utterances(list(long.utterances[result.dropped_turns:]))
    direct = make_scorer(tiny_model_dir, max_length=512).score(kept, FOLLOWUPS)
    assert result.categories[0].positive == pytest.approx(direct.categories[0].positive, abs=1e-5)


def test_single_exchange_too_long_is_cut_by_tokens(tiny_model_dir):
    huge = from_utterances(["Please write a poem about the sea. " * 40, "The sea is blue."])
    result = make_scorer(tiny_model_dir, max_length=64).score(huge, FOLLOWUPS)
    assert any("cut its first" in w for w in result.warnings)
    assert all(math.isfinite(v) for v in result.categories[0].positive)


def test_model_without_chat_template_uses_plain_format(tiny_plain_model_dir):
    scorer = make_scorer(tiny_plain_model_dir, batch_size=2)
    rendered = render(scorer.loaded.tokenizer, CONVERSATION, ["Thanks!"], mode="base",
                      aggregation="mean", max_length=512)
    text = scorer.loaded.tokenizer.decode(rendered.requests[0].ids)
    assert "User: What is the capital of France?\n\nAssistant: Paris" in text
    assert text.endswith("\n\nUser: Thanks!")
    fast = scorer._score_shared_prefix(rendered.requests)
    assert fast == pytest.approx(scorer.score_reference(rendered.requests), abs=1e-4)


def test_self_check_falls_back_when_fast_path_disagrees(tiny_model_dir, monkeypatch, caplog):
    scorer = make_scorer(tiny_model_dir)
    monkeypatch.setattr(scorer, "_score_shared_prefix", lambda requests, direct=None: [0.0] * len(requests))
    result = scorer.score(CONVERSATION, FOLLOWUPS)
    reference = make_scorer(tiny_model_dir).score(CONVERSATION, FOLLOWUPS)
    assert not scorer.uses_shared_prefix
    assert "per-sequence scoring" in caplog.text
    assert result.categories[0].positive == pytest.approx(reference.categories[0].positive, abs=1e-4)


def test_odd_utterance_list_warning_reaches_the_result(tiny_model_dir):
    conversation = from_utterances(["Hi! How can I help?", "What's 2+2?", "4."])
    result = make_scorer(tiny_model_dir).score(conversation, FOLLOWUPS)
    assert any("dropped the first" in w for w in result.warnings)
