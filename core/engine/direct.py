"""The FLR paper's Direct baseline: how likely the model finds the judged reply itself.

Direct = the mean (with `aggregation="sum"`: the sum) of log p(token | everything before it)
over the reply's own tokens, rendered in the conversation exactly as the follow-ups see it
(the paper's "Direct" row: the same model, no follow-up). With the paper's raw-logit follow-up
aggregation, Direct stays the mean log-probability: a raw logit is not a likelihood.

It costs no extra forward pass: every follow-up is rendered after the conversation, so the
conversation prefix that the fast path computes once (`core.engine.scorer`) already holds the
reply. `core.engine.rendering.reply_span` finds the reply's tokens in the rendered conversation (the tokens whose
characters overlap the reply's text, as follow-ups are found: `core.engine.spans`); `DirectReader` runs the output head at those positions of
the prefix's hidden states during the pass that computes the prefix (the first conversation
of a scorer, scored alone for the self-check, included: a conversation's Direct is the same
whichever worker or shard position it lands in). Only where the prefix path is not used (a
model whose shared-prefix attention failed the self-check) is the reply read from a plain
forward pass of the conversation (`direct_by_forward`), the slow, obvious computation the fast
one is tested against.

Shortcut taken on purpose: a reply cut from the left to fit the context (only when a single
exchange is longer than the context) has no Direct value (None), rather than a value over part
of the reply.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from core.engine.rendering import RenderedConversation, ReplySpan

_MAX_LOGIT_ELEMENTS = 1 << 24  # logits computed at once (rows x vocabulary)


def aggregate(logprobs: Sequence[float], aggregation: str) -> float:
    return float(sum(logprobs)) if aggregation == "sum" else float(sum(logprobs) / len(logprobs))


def pick_logprobs(hidden: torch.Tensor, targets: Sequence[int],
                  logits: Callable[[torch.Tensor], torch.Tensor]) -> list[float]:
    """log p(targets[i] | hidden[i]) through the output head `logits`, in row chunks."""
    out: list[float] = []
    vocab = None
    start = 0
    while start < hidden.shape[0]:
        step = 1 if vocab is None else max(1, _MAX_LOGIT_ELEMENTS // vocab)
        rows = logits(hidden[start:start + step]).float()
        vocab = rows.shape[-1]
        picked = torch.log_softmax(rows, dim=-1).gather(
            1, torch.tensor(targets[start:start + step], device=rows.device).unsqueeze(1))
        out += picked[:, 0].tolist()
        start += step
    return out


class DirectReader:
    """Collects each conversation's Direct value while the packed passes compute its prefix."""

    def __init__(self, rendered: Sequence[RenderedConversation], aggregation: str, loaded: Any) -> None:
        self.rendered = list(rendered)
        self.spans = [r.reply for r in self.rendered]
        self.aggregation = aggregation
        self.loaded = loaded  # core.engine.models.LoadedModel
        self.values: dict[int, float] = {}

    def read(self, fresh: Sequence[tuple[int, int, int, int]], width: int, hidden: torch.Tensor,
             logits: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """`fresh`: (conversation, first row, rows, prefix length) of the prefixes computed in
        this pass; `hidden`: the pass's last hidden states, flattened to rows x width."""
        for group, first, _count, length in fresh:
            span = self.spans[group] if group < len(self.spans) else None
            if span is None or group in self.values or max(span.positions) >= length:
                continue  # no reply tokens, or (never in practice) not inside the prefix
            index = torch.tensor([first * width + p for p in span.positions], device=hidden.device)
            values = pick_logprobs(hidden.index_select(0, index), span.targets, logits)
            self.values[group] = aggregate(values, self.aggregation)

    def value(self, group: int) -> float | None:
        """The Direct value of conversation `group` (from a plain forward pass of the
        conversation when the packed passes did not read it); None without a reply span."""
        span = self.spans[group]
        if span is None:
            return None
        if group not in self.values:
            ids = self.rendered[group].requests[0].ids
            self.values[group] = direct_by_forward(self.loaded.model, ids, span, self.aggregation,
                                                   self.loaded.device)
        return self.values[group]


@torch.inference_mode()
def direct_by_forward(model: Any, ids: Sequence[int], span: ReplySpan, aggregation: str,
                      device: Any) -> float:
    """Direct from one plain forward pass of the conversation, logits only where read."""
    first = min(span.positions)
    needed = max(span.positions) + 1
    input_ids = torch.tensor([list(ids[:needed])], device=device)
    logits = model(input_ids=input_ids, use_cache=False, logits_to_keep=needed - first).logits[0]
    rows = torch.log_softmax(logits.float(), dim=-1)[[p - first for p in span.positions]]
    picked = rows.gather(1, torch.tensor(span.targets, device=rows.device).unsqueeze(1))[:, 0]
    value = aggregate(picked.tolist(), aggregation)
    return value if math.isfinite(value) else math.nan
