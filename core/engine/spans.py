"""Which tokens of a rendered chat belong to one message: right by construction for any template.

A message's characters are located by rendering the same messages with a sentinel as that
message's content: the rendering is `before + SENTINEL + after`, and the real rendering is
`before + content' + after`, where `content'` is the content as the template writes it (some
templates trim it). The message's tokens are then the tokens of the real rendering whose
character offsets overlap `content'`, from the first such token to the last.

The rule for boundary tokens, stated once: **a token that fuses template text with content
(`ĊĊ` in Qwen for the header's newline plus a follow-up's leading newline, `▁That` in Mistral
v0.3 for the space after `[INST]` plus the first word) belongs to the message and is scored.**
Tokens made of template text alone (role headers, end-of-turn markers, BOS) are never scored.

A tokenizer without character offsets (a slow, Python tokenizer) gets the same rule from
tokenizations of the text before the message and of the text up to its end (a prefix whose
tokens stop matching the full rendering's marks a fused token). Shortcut taken on purpose: a
template that repeats or rewrites the content (the sentinel is not found once) falls back to
token-level common prefix and suffix against the rendering with an empty message, exact unless
template text next to the message fuses with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from core.errors import TemplateRefusalError

SENTINEL = "\ue000FLR\ue001"  # private-use characters, no whitespace: no template trims or splits it


@dataclass(frozen=True)
class TokenSpan:
    """A rendering's token ids and the half-open token range [start, end) of one message."""

    ids: tuple[int, ...]
    start: int
    end: int


def render_text(tokenizer: Any, messages: list[dict[str, str]], template: str | None) -> str:
    """The chat template's rendering of `messages` as text; a template that refuses them (its
    `raise_exception`) raises `TemplateRefusalError` naming the turn and what to do."""
    import jinja2

    try:
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    except jinja2.TemplateError as error:
        raise TemplateRefusalError(refusal_message(messages, str(error))) from None


def refusal_message(messages: list[dict[str, str]], reason: str) -> str:
    """What went wrong and what to do, for a template that refused `messages` with `reason`."""
    has_system = bool(messages) and messages[0].get("role") == "system"
    if has_system and ("system" in reason.lower() or "alternate" in reason.lower()):
        return ("turn 1 (the system message): this model's chat template has no system role "
                f"(it says: {reason}); drop the system message or fold it into the first user "
                "turn with --system-policy fold")
    roles = "/".join(m.get("role", "?") for m in messages)
    return (f"this model's chat template refuses the conversation's {len(messages)} turns "
            f"({roles}): {reason}; check the conversation's roles, or score with a model whose "
            "template accepts them")


def message_span(tokenizer: Any, messages: list[dict[str, str]], index: int, template: str | None,
                 add_special_tokens: bool) -> TokenSpan:
    """The tokens of `messages[index]`'s content in the rendering of `messages`."""
    text = render_text(tokenizer, messages, template)
    chars = _char_span(tokenizer, messages, index, template, text)
    if chars is None:
        return _span_by_difference(tokenizer, messages, index, template, text, add_special_tokens)
    if getattr(tokenizer, "is_fast", False):
        return _span_by_offsets(tokenizer, text, chars, add_special_tokens)
    return _span_by_prefixes(tokenizer, text, chars, add_special_tokens)


def _span_by_offsets(tokenizer: Any, text: str, chars: tuple[int, int], add_special_tokens: bool) -> TokenSpan:
    encoded = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids = tuple(encoded.input_ids)
    start, end = chars
    covering = [i for i, (a, b) in enumerate(encoded.offset_mapping) if b > a and a < end and b > start]
    if not covering:
        return TokenSpan(ids, len(ids), len(ids))
    return TokenSpan(ids, covering[0], covering[-1] + 1)


def _span_by_prefixes(tokenizer: Any, text: str, chars: tuple[int, int], add_special_tokens: bool) -> TokenSpan:
    """The offsets rule without offsets (slow tokenizers): the text before the message and the
    text up to its end are tokenized alone; where such a prefix's tokens stop being a prefix of
    the full rendering's, a token fuses the two sides and belongs to the message."""
    full, head, upto = (list(ids) for ids in tokenizer(
        [text, text[:chars[0]], text[:chars[1]]], add_special_tokens=add_special_tokens).input_ids)
    start = common_prefix(full, head)  # a fused first token is the message's
    shared = common_prefix(full, upto)
    end = shared if shared == len(upto) else shared + 1  # a fused last token is the message's
    return TokenSpan(tuple(full), start, max(start, min(end, len(full))))


def _char_span(tokenizer: Any, messages: list[dict[str, str]], index: int, template: str | None,
               text: str) -> tuple[int, int] | None:
    """[start, end) of the message's content in `text`; None if the sentinel does not locate it
    (a template that repeats or rewrites the content)."""
    marked = [dict(m) for m in messages]
    marked[index]["content"] = SENTINEL
    with_sentinel = render_text(tokenizer, marked, template)
    if with_sentinel.count(SENTINEL) != 1:
        return None
    before, after = with_sentinel.split(SENTINEL)
    if (len(before) + len(after) > len(text) or not text.startswith(before)
            or not text.endswith(after)):
        return None
    return len(before), len(text) - len(after)


def _span_by_difference(tokenizer: Any, messages: list[dict[str, str]], index: int,
                        template: str | None, text: str, add_special_tokens: bool) -> TokenSpan:
    blank = [dict(m) for m in messages]
    blank[index]["content"] = ""
    full, empty = (list(ids) for ids in tokenizer(
        [text, render_text(tokenizer, blank, template)], add_special_tokens=add_special_tokens).input_ids)
    start = common_prefix(full, empty)
    end = len(full) - common_suffix(full[start:], empty[start:])
    return TokenSpan(tuple(full), start, max(start, end))


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def common_suffix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many trailing tokens `a` and `b` share."""
    n = 0
    for x, y in zip(reversed(a), reversed(b)):
        if x != y:
            break
        n += 1
    return n
