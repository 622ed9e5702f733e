"""Cutting a conversation that is too long for the model, before any follow-up is rendered.

Which exchanges to keep is decided on the rendering with an empty follow-up alone (one text per
probe, not one per follow-up): the follow-ups add the same tokens after the conversation's end
whatever is cut from its start, so their extra length is measured once, on the last exchange.
The number of exchanges kept is found by galloping from the newest exchange (1, 2, 4, ...
exchanges) and then bisecting, so a conversation of n exchanges whose model holds k of them
costs O(log k) renderings of at most 2k exchanges, never one rendering per dropped turn. The
choice is then checked on the full renderings, and one more exchange is dropped while they
still do not fit (a tokenizer may merge tokens across the seam differently).

Short conversations (the usual case) are tokenized once with an empty follow-up; when that fits
the context, every follow-up is rendered in full and nothing else is tokenized, exactly as
before. When it does not, no follow-up is ever rendered with the whole conversation.

A last exchange that alone is longer than the context (a 100,000-character paste) is cut by
characters first (`cut_characters`): its oldest characters are dropped until its rendering holds
the context plus `MARGIN` tokens, so every follow-up is rendered and tokenized at about the
context's size, not the paste's. The caller then cuts tokens from the left as before; the
`MARGIN` tokens nearest the character cut (where a tokenizer may merge differently than in the
whole text) are among those cut, so the model sees the same tokens as without the character cut.
Shortcut taken on purpose: this relies on tokenization being local, true for the byte-level and
SentencePiece tokenizers in use when the cut falls on whitespace (it is moved to the nearest
whitespace); a paste of one space-free "word" of thousands of characters may get slightly
different tokens at the window's start than tokenizing it whole would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from core.engine.conversation import Conversation

Encoder = Callable[[Conversation, Sequence[str]], list[list[int]]]  # (conversation, follow-ups)
SMALL_EXCHANGES = 8  # up to this many exchanges, try the full rendering first
SLACK = 8  # an empty follow-up's rendering this much over the context may still fit with one
MARGIN = 256  # tokens kept beyond the context by a character cut (template header, seam)
CHARS_PER_TOKEN = 4  # first guess of characters per token for a character cut (doubled if short)
SNAP_CHARS = 256  # a character cut moves to the next whitespace within this many characters
KEPT_CHARS = 16  # an utterance wholly before a character cut keeps its last characters


@dataclass(frozen=True)
class Fit:
    """What `fit_exchanges` kept."""

    conversation: Conversation  # the kept exchanges (the first one maybe cut by characters)
    rendered: list[list[int]]  # its renderings: [empty follow-up, *one per follow-up]
    dropped_utterances: int  # whole utterances dropped from the left
    dropped_tokens: int  # tokens of the characters cut from the kept conversation's start


def fit_exchanges(encode: Encoder, conversation: Conversation, followups: Sequence[str],
                  max_length: int) -> Fit:
    """The longest suffix of whole exchanges whose every rendering fits `max_length` tokens, or
    the last exchange alone when even that does not fit (cut by characters to about the
    context when it is far longer, see `cut_characters`), and its renderings.

    `encode(conversation, texts)` renders the conversation followed by each text in `texts`."""
    texts = ["", *followups]
    exchanges = len(conversation.utterances) // 2
    whole: list[int] | None = None
    if exchanges <= SMALL_EXCHANGES:
        whole = encode(conversation, [""])[0]
        if len(whole) <= max_length + SLACK:  # otherwise no rendering with a follow-up fits
            rendered = encode(conversation, texts)
            if _longest(rendered) <= max_length or exchanges == 1:
                return Fit(conversation, rendered, 0, 0)
    last, removed = cut_characters(encode, _keep(conversation, 1), max_length,
                                   whole if exchanges == 1 else None)
    tail = encode(last, texts)
    if exchanges == 1:
        return Fit(last, tail, 0, removed)
    extra = _longest(tail) - len(tail[0])  # follow-up tokens beyond the empty rendering

    def fits(keep: int) -> bool:
        return len(encode(_keep(conversation, keep), [""])[0]) + extra <= max_length

    keep = 1 if last != _keep(conversation, 1) else _most_that_fit(fits, exchanges)
    while True:
        kept = last if keep == 1 else _keep(conversation, keep)
        rendered = tail if keep == 1 else encode(kept, texts)
        if _longest(rendered) <= max_length or keep == 1:
            return Fit(kept, rendered, 2 * (exchanges - keep), removed if keep == 1 else 0)
        keep -= 1


def cut_characters(encode: Encoder, conversation: Conversation, max_length: int,
                   rendered: list[int] | None = None) -> tuple[Conversation, int]:
    """(`conversation` with its oldest characters dropped so that its empty-follow-up rendering
    holds about `max_length + MARGIN` tokens, tokens that dropped); unchanged when it already
    holds no more than that. `rendered`: its empty-follow-up rendering, if already tokenized.

    The system message and the utterances are cut as one text from the left; one wholly before
    the cut keeps its last `KEPT_CHARS` characters, so the template sees the same roles."""
    need = max_length + MARGIN
    whole = rendered if rendered is not None else encode(conversation, [""])[0]
    if len(whole) <= need + MARGIN:  # little to gain: keep the exact rendering
        return conversation, 0
    chars = CHARS_PER_TOKEN * need
    while True:
        short = _last_chars(conversation, chars)
        if short == conversation:
            return conversation, 0
        ids = encode(short, [""])[0]
        if len(ids) >= need:
            return short, max(0, len(whole) - len(ids))
        chars *= 2


def _last_chars(conversation: Conversation, chars: int) -> Conversation:
    """The conversation with only (about) its last `chars` characters of text, see above."""
    system = [conversation.system] if conversation.system else []
    pieces = system + list(conversation.utterances)
    kept: list[str] = []
    left = chars
    for piece in reversed(pieces):
        if left >= len(piece):
            kept.append(piece)
        elif left > 0:
            kept.append(_snap(piece[len(piece) - left:]))
        else:
            kept.append(piece[-KEPT_CHARS:])
        left -= len(piece)
    kept.reverse()
    if system:
        return Conversation(tuple(kept[1:]), kept[0], conversation.warnings)
    return Conversation(tuple(kept), conversation.system, conversation.warnings)


def _snap(text: str) -> str:
    """`text` from its first whitespace within `SNAP_CHARS` characters (a word starts there, as
    it does in the whole text), else as it is."""
    for i, char in enumerate(text[:SNAP_CHARS]):
        if char.isspace():
            return text[i:]
    return text


def _most_that_fit(fits: Callable[[int], bool], exchanges: int) -> int:
    """The largest keep in [1, exchanges] with fits(keep) (1 when none fits), assuming fits
    is true up to some point and false after it: gallop 1, 2, 4, ... then bisect."""
    good, step = 1, 1
    while True:
        probe = min(exchanges, good + step)
        if probe == good:
            return good
        if not fits(probe):
            bad = probe
            break
        good, step = probe, step * 2
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def _keep(conversation: Conversation, exchanges: int) -> Conversation:
    return Conversation(conversation.utterances[-2 * exchanges:], conversation.system,
                        conversation.warnings)


def _longest(rendered: list[list[int]]) -> int:
    return max(len(ids) for ids in rendered[1:])
