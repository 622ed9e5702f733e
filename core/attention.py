"""Exact shared-prefix attention (the Hydragen decomposition) as a transformers attention function.

Scoring 120 follow-ups of one conversation means 120 sequences that share a long prefix. The
engine runs the prefix once and keeps its keys and values; the follow-up suffixes then attend to
that single copy. For every query, attention over prefix ∪ own-suffix keys is split into two
softmaxes (over the prefix, over the suffix's own causal part) whose outputs are merged with
their log-sum-exp weights. This is exact, not an approximation.

Suffixes are packed: a batch row holds several short follow-ups back to back (`PackedBatch.
segments` says which token belongs to which), so no compute is spent on padding, and rows of
several conversations can share one forward pass (`PackedBatch.row_prefix` says which prefix a
row attends to). The prefix part is one matrix multiply per key/value head for all queries of a
conversation's rows at once (every query head of a group and every token are stacked as rows),
so the prefix keys are read once per layer and never copied per follow-up.

Registered under `PREFIX_ATTENTION`; when a forward pass carries no `flr_prefix` keyword it
delegates to `sdpa`, so a model switched to it behaves as before for every other use (the
prefix pass itself, generation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

PREFIX_ATTENTION = "flr_prefix"
_MAX_SCORE_ELEMENTS = 1 << 26  # cap on prefix-score elements per chunk (bounds transient memory)


@dataclass(frozen=True)
class PrefixKV:
    """Keys and values of one shared prefix, per layer: [kv_heads, prefix_len, head_dim]."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    @property
    def length(self) -> int:
        return self.keys[0].shape[1]


@dataclass(frozen=True)
class PackedBatch:
    """What a suffix pass attends to besides its own tokens.

    `prefixes[c]` is a conversation's prefix; `row_prefix` lists, for consecutive row ranges,
    (prefix index, first row, end row). `segments` [rows, width] numbers the follow-ups inside
    each row (a token attends causally to earlier tokens of its own segment only); None means
    one follow-up per row.
    """

    prefixes: tuple[PrefixKV, ...]
    row_prefix: tuple[tuple[int, int, int], ...]
    segments: torch.Tensor | None = None


def prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None,
                     dropout: float = 0.0, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of packed suffix queries to (their prefix's keys ++ their own causal keys).

    query: [R, H, W, D]; key/value: [R, Hkv, W, D]. Returns [R, W, H, D] like transformers'
    attention functions. The mask transformers built is ignored: `PackedBatch.segments` and
    causality define who sees whom, and a real token never sees a pad.
    """
    batch: PackedBatch | PrefixKV | None = kwargs.pop("flr_prefix", None)
    if batch is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    if isinstance(batch, PrefixKV):  # one prefix, one follow-up per row
        batch = PackedBatch((batch,), ((0, 0, query.shape[0]),))
    rows, heads, width, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    scale = scaling if scaling is not None else 1.0 / math.sqrt(dim)
    layer = module.layer_idx
    query = query * scale  # [rows*heads*width*dim] is smaller than any score tensor

    # Prefix part, per conversation: rows (row, group, position) of each kv head in one matmul.
    q = query.view(rows, kv_heads, group, width, dim).permute(1, 0, 2, 3, 4)
    shape = (rows, kv_heads, group, width)
    out_p = torch.empty(*shape, dim, dtype=query.dtype, device=query.device)
    max_p = torch.empty(*shape, 1, dtype=torch.float32, device=query.device)
    sum_p = torch.empty_like(max_p)
    for index, start, end in batch.row_prefix:
        prefix = batch.prefixes[index]
        qc = q[:, start:end].reshape(kv_heads, -1, dim)
        o, m, s = _softmax_attend(qc, prefix.keys[layer], prefix.values[layer])
        part = (kv_heads, end - start, group, width, -1)
        out_p[start:end] = o.view(part).permute(1, 0, 2, 3, 4)
        max_p[start:end] = m.view(part).permute(1, 0, 2, 3, 4)
        sum_p[start:end] = s.view(part).permute(1, 0, 2, 3, 4)

    # Own part: causal attention within each segment of a row.
    qs = query.view(rows, kv_heads, group, width, dim)
    scores = torch.matmul(qs, key.unsqueeze(2).transpose(-1, -2)).float()
    hidden = torch.ones(width, width, dtype=torch.bool, device=query.device).triu(1)
    if batch.segments is not None:
        seg = batch.segments
        hidden = hidden | (seg.unsqueeze(-1) != seg.unsqueeze(-2))  # [rows, width, width]
        hidden = hidden.view(rows, 1, 1, width, width)
    scores.masked_fill_(hidden, float("-inf"))
    max_o = scores.amax(dim=-1, keepdim=True)  # finite: every token sees itself
    scores.sub_(max_o).exp_()
    sum_o = scores.sum(dim=-1, keepdim=True)
    out_o = torch.matmul(scores.to(value.dtype), value.unsqueeze(2))

    # Merge the two unnormalised softmaxes.
    top = torch.maximum(max_p, max_o)
    w_p = torch.exp(max_p - top)
    w_o = torch.exp(max_o - top)
    norm = (sum_p * w_p).add_(sum_o * w_o)
    merged = out_p.float().mul_(w_p / norm)
    merged.add_(out_o.float().mul_(w_o / norm))
    merged = merged.view(rows, heads, width, dim).transpose(1, 2)
    return merged.to(query.dtype).contiguous(), None


def _softmax_attend(q: torch.Tensor, keys: torch.Tensor,
                    values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unnormalised softmax attention of (pre-scaled) q [Hkv, N, D] to keys/values [Hkv, P, D].

    Returns (sum_j e_j v_j, max, sum_j e_j) with e_j = exp(score_j - max), chunked over N so
    that at most `_MAX_SCORE_ELEMENTS` scores exist at once.
    """
    kv_heads, rows, _ = q.shape
    chunk = max(1, _MAX_SCORE_ELEMENTS // max(1, kv_heads * keys.shape[1]))
    outs, maxes, sums = [], [], []
    for start in range(0, rows, chunk):
        scores = torch.matmul(q[:, start:start + chunk], keys.transpose(-1, -2)).float()
        top = scores.amax(dim=-1, keepdim=True)
        scores.sub_(top).exp_()
        sums.append(scores.sum(dim=-1, keepdim=True))
        outs.append(torch.matmul(scores.to(values.dtype), values))
        maxes.append(top)
    if len(outs) == 1:
        return outs[0], maxes[0], sums[0]
    return torch.cat(outs, dim=1), torch.cat(maxes, dim=1), torch.cat(sums, dim=1)


def register() -> None:
    """Make `PREFIX_ATTENTION` known to transformers (idempotent)."""
    AttentionInterface.register(PREFIX_ATTENTION, prefix_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PREFIX_ATTENTION, sdpa_mask)
