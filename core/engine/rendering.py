"""Turning a conversation plus a follow-up into token ids and the positions to score.

Base mode: the follow-up is the next user turn after the conversation, rendered with the model's
own chat template. Its tokens are those whose characters overlap the follow-up's text in the
rendering (`core.engine.spans`, located with a sentinel, not by comparing renderings): role
headers and end-of-turn markers are never scored, and a token that fuses template text with the
follow-up's first or last characters (`ĊĊ` in Qwen, `▁That` in Mistral v0.3) is the
follow-up's and is scored. The Direct baseline's reply span is found the same way.

Feedback mode (a scorer fine-tuned on natural-language feedback, as in the paper): roles are
swapped. The instruction `FEEDBACK_INSTRUCTION` is the first user turn, the last user utterance
becomes an assistant turn, the judged reply a user turn, and the follow-up is the assistant's
next turn. Like the paper's `run_llama3_ft.py`, only the last exchange is kept: the scorer was
fine-tuned on (question, answer, feedback) triples.

Paper aggregation (`"paper"`) reproduces the released scripts exactly: the follow-up is
tokenized alone (with special tokens, L tokens) and the raw logits at position -L of the full
rendered sequence are averaged at those L token ids. It is not a log-likelihood.

Models without a chat template get `PLAIN_TEMPLATE`: turns as `User: ...` / `Assistant: ...`
separated by blank lines.

Long conversations are cut from the left: oldest exchanges first (`core.engine.truncation`
finds how many in a few tokenizations, and cuts a single exchange far longer than the context
by characters first, so no follow-up is rendered with text that will be cut anyway), then (if a
single exchange is still too long) tokens from the left of the sequence; the result records how
much. Conversations over the
`InputLimits` (turns, characters, characters per token of the context) are refused before
anything is tokenized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from core.engine.conversation import ASSISTANT, USER, Conversation
from core.engine.spans import common_prefix, message_span, render_text
from core.engine.truncation import cut_characters, fit_exchanges
from core.errors import ConversationError
from core.limits import InputLimits

FEEDBACK_INSTRUCTION = "Please ask me a question and provide feedback to my answer."

PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if not loop.first %}{{ '\n\n' }}{% endif %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class Request:
    """One follow-up to score: a token sequence and where its score is read from.

    The score is an aggregate over (position, target) pairs: the model's output at `position`
    (predicting token position + 1) evaluated at each id in that position's targets.
    """

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    targets: tuple[tuple[int, ...], ...]

    @property
    def needed_length(self) -> int:
        """Tokens the model must see: everything up to the last position read."""
        return max(self.positions) + 1


@dataclass(frozen=True)
class ReplySpan:
    """Where the judged reply's own tokens are read (the Direct baseline, `core.engine.direct`):
    the output at `positions[i]` of a request's ids predicts `targets[i]`."""

    positions: tuple[int, ...]
    targets: tuple[int, ...]


@dataclass(frozen=True)
class RenderedConversation:
    requests: tuple[Request, ...]  # one per follow-up, in the order given
    dropped_utterances: int  # utterances cut from the left to fit the context
    dropped_tokens: int  # tokens cut from the left after that (single long exchange)
    warnings: tuple[str, ...]
    reply: ReplySpan | None = None  # the reply's tokens inside the conversation prefix


def shared_prefix_length(requests: Sequence[Request]) -> int:
    """Longest prefix shared by all requests that ends at or before the first position read
    (the conversation the scorer computes once for all of its follow-ups)."""
    first = requests[0].ids
    limit = min(min(r.positions) for r in requests) + 1
    length = min(limit, min(len(r.ids) for r in requests))
    for r in requests[1:]:
        length = common_prefix(first[:length], r.ids[:length])
    if length < 1:
        raise ConversationError("follow-ups share no conversation prefix; nothing to score against")
    return length


def render(tokenizer: Any, conversation: Conversation, followups: Sequence[str], *,
           mode: str, aggregation: str, max_length: int, system_policy: str = "keep") -> RenderedConversation:
    """Requests for every follow-up, fitting `max_length` tokens by cutting from the left
    (`core.engine.truncation`: about one tokenization however many turns are dropped).
    A template that refuses the conversation raises `TemplateRefusalError`."""
    limits = InputLimits.current()
    limits.check_turns(conversation.utterances, "conversation", ConversationError)
    chars = sum(map(len, conversation.utterances)) + len(conversation.system or "")
    limits.check_context(chars, max_length, "conversation", ConversationError)
    conversation = with_system_policy(conversation, system_policy)
    def encode(conv: Conversation, texts: Sequence[str]) -> list[list[int]]:
        return _encode(tokenizer, conv, texts, mode)

    if mode == "feedback":  # only the last exchange is rendered; nothing to drop
        last = Conversation(conversation.utterances[-2:], None, conversation.warnings)
        conversation, removed = cut_characters(encode, last, max_length)
        empty, *fulls = encode(conversation, ["", *followups])
        dropped = 0
    else:
        fit = fit_exchanges(encode, conversation, followups, max_length)
        conversation, (empty, *fulls), dropped = fit.conversation, fit.rendered, fit.dropped_utterances
        removed = fit.dropped_tokens
    longest = max(len(full) for full in fulls)
    cut = max(0, longest - max_length)
    requests = []
    for text, full in zip(followups, fulls):
        messages = scored_messages(conversation, text, mode)
        requests.append(_request(tokenizer, text, messages, full, aggregation, cut))
    warnings = list(conversation.warnings)
    if dropped:
        warnings.append(f"conversation too long for {max_length} tokens: dropped the oldest "
                        f"{dropped} utterance(s)")
    if cut:
        warnings.append(f"conversation too long for {max_length} tokens even with one exchange: "
                        f"cut its first {cut + removed} token(s)")
    return RenderedConversation(tuple(requests), dropped, cut + removed, tuple(warnings),
                                reply_span(tokenizer, conversation, empty, mode, cut))


def with_system_policy(conversation: Conversation, policy: str) -> Conversation:
    """The conversation as scored under `ScoringConfig.system_policy`: the system message kept,
    folded into the first user turn (a blank line between them), or dropped."""
    if not conversation.system or policy == "keep":
        return conversation
    utterances = list(conversation.utterances)
    if policy == "fold":
        utterances[0] = f"{conversation.system}\n\n{utterances[0]}"
    return Conversation(tuple(utterances), None, conversation.warnings)


def reply_span(tokenizer: Any, conversation: Conversation, empty: Sequence[int], mode: str,
               cut: int) -> ReplySpan | None:
    """The reply's tokens in `empty` (the conversation rendered with an empty follow-up), in the
    coordinates of requests whose first `cut` tokens were dropped; None if the reply renders to
    no tokens or was cut."""
    messages = scored_messages(conversation, "", mode)
    index = max(i for i, m in enumerate(messages) if m["content"] == conversation.reply)
    template, specials = _template(tokenizer)
    span = message_span(tokenizer, messages, index, template, specials)
    assert list(span.ids) == list(empty), "the reply's rendering differs from the conversation's"
    start, end = span.start, span.end
    if end <= start or start - cut < 1:
        return None
    return ReplySpan(tuple(range(start - 1 - cut, end - 1 - cut)), tuple(empty[start:end]))


def _encode(tokenizer: Any, conversation: Conversation, texts: Sequence[str], mode: str) -> list[list[int]]:
    return encode_messages(tokenizer, [scored_messages(conversation, t, mode) for t in texts])


def scored_messages(conversation: Conversation, followup: str, mode: str) -> list[dict[str, str]]:
    """The chat messages whose last turn is the follow-up being scored."""
    if mode == "feedback":
        return [
            {"role": USER, "content": FEEDBACK_INSTRUCTION},
            {"role": ASSISTANT, "content": conversation.last_user},
            {"role": USER, "content": conversation.reply},
            {"role": ASSISTANT, "content": followup},
        ]
    return conversation.messages() + [{"role": USER, "content": followup}]


def encode_messages(tokenizer: Any, conversations: list[list[dict[str, str]]]) -> list[list[int]]:
    """Token ids of each message list rendered with the chat template; tokenized in one call
    (a fast tokenizer encodes a batch on all cores, under half the time of one call each)."""
    template, specials = _template(tokenizer)
    texts = [render_text(tokenizer, m, template) for m in conversations]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=specials).input_ids]


def _template(tokenizer: Any) -> tuple[str | None, bool]:
    """(chat template to pass, whether the tokenizer adds special tokens): the model's own
    template writes its BOS itself; `PLAIN_TEMPLATE` does not."""
    if getattr(tokenizer, "chat_template", None):
        return None, False
    return PLAIN_TEMPLATE, True


def _request(tokenizer: Any, text: str, messages: list[dict[str, str]], full: list[int],
             aggregation: str, cut: int) -> Request:
    if aggregation == "paper":
        paper_ids = tuple(tokenizer(text).input_ids)
        position = len(full) - len(paper_ids)
        if position < cut:
            raise ConversationError(
                f"follow-up {text!r} is longer than its rendered conversation; "
                "paper aggregation cannot read position -L"
            )
        ids = full[cut:]
        return Request(tuple(ids), (position - cut,), (paper_ids,))
    span = message_span(tokenizer, messages, len(messages) - 1, *_template(tokenizer))
    assert list(span.ids) == list(full), "the follow-up's rendering differs from its tokenization"
    start, end = span.start, span.end
    if end <= start:
        raise ConversationError(f"follow-up {text!r} renders to no tokens of its own")
    if start - cut < 1:
        raise ConversationError(
            f"follow-up {text!r} does not fit the context window even after cutting the conversation"
        )
    ids = full[cut:end]
    positions = tuple(range(start - 1 - cut, end - 1 - cut))
    targets = tuple((ids[p + 1],) for p in positions)
    return Request(tuple(ids), positions, targets)
