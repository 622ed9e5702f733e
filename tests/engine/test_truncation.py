"""Cutting the oldest turns: the same answer as dropping one exchange at a time, in a few
tokenizer calls however long the conversation is."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.conversation import Conversation
from core.engine.rendering import encode_messages, render, scored_messages
from core.engine.truncation import fit_exchanges

FOLLOWUPS = ["Thanks, that is exactly what I needed.", "That's not what I asked."]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


class Counting:
    """The tokenizer, counting calls and characters tokenized."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self.calls = 0
        self.chars = 0

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, texts, *args, **kwargs):
        self.calls += 1
        self.chars += sum(map(len, texts)) if isinstance(texts, list) else len(texts)
        return self._tokenizer(texts, *args, **kwargs)


def conversation(turns: int) -> Conversation:
    return Conversation(tuple(f"turn {i}: " + "words " * (i % 7) for i in range(turns)))


def naive(tokenizer, conv: Conversation, max_length: int) -> tuple[Conversation, int]:
    """The obvious computation: drop the oldest exchange until every rendering fits."""
    dropped = 0
    while True:
        fulls = encode_messages(tokenizer, [scored_messages(conv, f, "base") for f in FOLLOWUPS])
        if max(map(len, fulls)) <= max_length or len(conv.utterances) <= 2:
            return conv, dropped
        conv, dropped = conv.drop_oldest_exchange(), dropped + 2


@pytest.mark.parametrize("max_length", [40, 90, 200])
def test_keeps_what_dropping_one_exchange_at_a_time_keeps(tokenizer, max_length: int) -> None:
    def encode(conv, texts):
        return encode_messages(tokenizer, [scored_messages(conv, t, "base") for t in texts])

    for turns in range(2, 48, 2):
        conv = conversation(turns)
        expected, dropped = naive(tokenizer, conv, max_length)
        kept, rendered, got = fit_exchanges(encode, conv, FOLLOWUPS, max_length)
        assert (kept.utterances, got) == (expected.utterances, dropped), turns
        assert rendered == encode(expected, ["", *FOLLOWUPS])


@pytest.mark.parametrize("turns", [1_000, 10_000])
def test_long_conversations_cost_a_few_tokenizer_calls(tokenizer, turns: int) -> None:
    counting = Counting(tokenizer)
    rendered = render(counting, conversation(turns), FOLLOWUPS, mode="base", aggregation="mean",
                      max_length=256)
    assert rendered.dropped_utterances > turns - 100
    assert max(len(r.ids) for r in rendered.requests) <= 256
    # galloping from the newest exchange: a handful of calls, each about the kept size
    assert counting.calls <= 12
    kept_chars = sum(len(u) for u in conversation(turns).utterances[rendered.dropped_utterances:])
    assert counting.chars < 40 * kept_chars + 10_000


def test_conversations_over_the_turn_limit_are_refused_before_tokenizing(tokenizer, monkeypatch) -> None:
    from core.errors import ConversationError

    monkeypatch.setenv("FLR_MAX_TURNS", "100")
    counting = Counting(tokenizer)
    with pytest.raises(ConversationError, match=r"102 turns is over the limit of 100.*FLR_MAX_TURNS"):
        render(counting, conversation(102), FOLLOWUPS, mode="base", aggregation="mean", max_length=256)
    assert counting.calls == 0
