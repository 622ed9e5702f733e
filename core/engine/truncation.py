"""Cutting the oldest exchanges of a conversation that is too long for the model, quickly.

Which exchanges to keep is decided on the rendering with an empty follow-up alone (one text per
probe, not one per follow-up): the follow-ups add the same tokens after the conversation's end
whatever is cut from its start, so their extra length is measured once, on the last exchange.
The number of exchanges kept is found by galloping from the newest exchange (1, 2, 4, ...
exchanges) and then bisecting, so a conversation of n exchanges whose model holds k of them
costs O(log k) renderings of at most 2k exchanges, never one rendering per dropped turn. The
choice is then checked on the full renderings, and one more exchange is dropped while they
still do not fit (a tokenizer may merge tokens across the seam differently).

Short conversations (the usual case) are rendered in full first: when they fit, nothing else is
tokenized, exactly as before.
"""

from __future__ import annotations

from typing import Callable, Sequence

from core.engine.conversation import Conversation

Encoder = Callable[[Conversation, Sequence[str]], list[list[int]]]  # (conversation, follow-ups)
SMALL_EXCHANGES = 8  # up to this many exchanges, try the full rendering first


def fit_exchanges(encode: Encoder, conversation: Conversation, followups: Sequence[str],
                  max_length: int) -> tuple[Conversation, list[list[int]], int]:
    """(kept conversation, its renderings [empty, *one per follow-up], utterances dropped).

    `encode(conversation, texts)` renders the conversation followed by each text in `texts`.
    The kept conversation is the longest suffix of whole exchanges whose every rendering fits
    `max_length` tokens, or the last exchange alone when even that does not fit."""
    texts = ["", *followups]
    exchanges = len(conversation.utterances) // 2
    if exchanges <= SMALL_EXCHANGES:
        rendered = encode(conversation, texts)
        if _longest(rendered) <= max_length or exchanges == 1:
            return conversation, rendered, 0
    last = _keep(conversation, 1)
    tail = encode(last, texts)
    extra = _longest(tail) - len(tail[0])  # follow-up tokens beyond the empty rendering

    def fits(keep: int) -> bool:
        return len(encode(_keep(conversation, keep), [""])[0]) + extra <= max_length

    keep = _most_that_fit(fits, exchanges)
    while True:
        kept = last if keep == 1 else _keep(conversation, keep)
        rendered = tail if keep == 1 else encode(kept, texts)
        if _longest(rendered) <= max_length or keep == 1:
            return kept, rendered, 2 * (exchanges - keep)
        keep -= 1


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

