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
        fit = fit_exchanges(encode, conv, FOLLOWUPS, max_length)
        assert (fit.conversation.utterances, fit.dropped_utterances) == (expected.utterances, dropped), turns
        assert fit.rendered == encode(expected, ["", *FOLLOWUPS])
        assert fit.dropped_tokens == 0


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


# -- a last exchange far longer than the context: cut by characters before any follow-up -------

_WORDS = ("the capital of France is Paris , and the weather today is sunny with a light breeze ; "
          "¿Qué? 🤔 naïve café 東京 is\nnot what I asked . Could you explain that again please").split(" ")


def long_text(chars: int, seed: int) -> str:
    import random

    pick = random.Random(seed)
    out, size = [], 0
    while size < chars:
        word = pick.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


LONG = {
    "two long exchanges": Conversation(tuple(long_text(6_000, i) for i in range(4))),
    "long user turn, short reply": Conversation(("Hi.", "Hello.", long_text(9_000, 1), "Paris.")),
    "long reply": Conversation((long_text(500, 2), long_text(9_000, 3))),
    "long system": Conversation(("Hi!", "Hello there."), long_text(9_000, 4)),
}
LONG_FOLLOWUPS = [" Thanks!", "\nOk.", "That is wrong.\n", "Could you explain that again, please? " * 3]


def without_character_cut(monkeypatch, call):
    """`call()` as the code was before the character cut: every follow-up rendered with the
    whole last exchange (the slow, obvious computation)."""
    from core.engine import truncation

    with monkeypatch.context() as patch:
        patch.setattr(truncation, "MARGIN", 10**9)
        patch.setattr(truncation, "SLACK", 10**9)
        return call()


def assert_same_rendering(got, expected) -> None:
    assert got.requests == expected.requests
    assert got.reply == expected.reply
    assert (got.dropped_utterances, got.dropped_tokens) == (expected.dropped_utterances,
                                                            expected.dropped_tokens)
    assert got.warnings == expected.warnings


@pytest.mark.parametrize("name", sorted(LONG))
@pytest.mark.parametrize("mode, aggregation", [("base", "mean"), ("base", "paper"), ("feedback", "mean")])
def test_the_character_cut_gives_the_same_requests_as_rendering_everything(
        tokenizer, monkeypatch, name: str, mode: str, aggregation: str) -> None:
    conv = LONG[name]
    if mode == "feedback" and conv.system:
        pytest.skip("feedback mode never renders the system message: nothing to cut")

    def call(tok=tokenizer):
        return render(tok, conv, LONG_FOLLOWUPS, mode=mode, aggregation=aggregation, max_length=120)

    expected = without_character_cut(monkeypatch, call)
    assert expected.dropped_tokens > 1_000  # far over the context: the cut is exercised
    counting = Counting(tokenizer)
    assert_same_rendering(call(counting), expected)
    # no follow-up went through the tokenizer with the long exchange: a few whole renderings,
    # then about the context's size per follow-up
    whole = sum(map(len, conv.utterances)) + len(conv.system or "")
    assert counting.chars < 3 * whole + 20 * len(LONG_FOLLOWUPS) * 4 * 400


def test_cost_does_not_grow_with_followups_times_paste(tokenizer) -> None:
    """The reproduction's shape (4 long utterances, many follow-ups), scaled down: characters
    tokenized stay about (paste + follow-ups x context), not follow-ups x paste."""
    conv = Conversation(tuple(long_text(40_000, i) for i in range(4)))
    followups = [f"{i} " + long_text(140, 100 + i) for i in range(100)]
    counting = Counting(tokenizer)
    rendered = render(counting, conv, followups, mode="base", aggregation="mean", max_length=256)
    assert rendered.dropped_utterances == 2 and rendered.dropped_tokens > 10_000
    assert max(len(r.ids) for r in rendered.requests) <= 256
    assert counting.chars < 3 * 160_000 + 100 * 20 * 4 * 512  # old code: over 100 x 160,000


def test_short_conversations_that_fit_are_rendered_exactly_as_before(tokenizer, monkeypatch) -> None:
    for turns in (2, 6, 16):
        conv = conversation(turns)
        for max_length in (60, 400):
            def call(conv=conv, max_length=max_length):
                return render(tokenizer, conv, FOLLOWUPS, mode="base", aggregation="mean",
                              max_length=max_length)
            assert_same_rendering(call(), without_character_cut(monkeypatch, call))
