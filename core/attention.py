"""Exact shared-prefix attention (the Hydragen decomposition) as a transformers attention function.

Scoring 120 follow-ups of one conversation means 120 sequences that share a long prefix. The
engine runs the prefix once and keeps its keys and values; each batch of follow-up suffixes then
attends to that single copy. For every query, attention over prefix ∪ own-suffix keys is split
into two softmaxes (over the prefix, over the suffix's causal part) whose outputs are merged with
their log-sum-exp weights. This is exact, not an approximation.

The prefix part is one matrix multiply per key/value head for all queries of the batch at once
(queries of every follow-up and every query head of a group are stacked as rows), so the prefix
keys are read once per layer, never copied per follow-up.

Registered under `PREFIX_ATTENTION`; when a forward pass carries no `flr_prefix` keyword it
delegates to `sdpa`, so a model switched to it behaves as before for every other use.
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
    """Keys and values of the shared prefix, per layer: [kv_heads, prefix_len, head_dim]."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    @property
    def length(self) -> int:
        return self.keys[0].shape[1]


def prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None,
                     dropout: float = 0.0, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of suffix queries to (shared prefix keys ++ their own causal keys).

    query: [B, H, S, D]; key/value: [B, Hkv, S, D] (the suffixes only, right-padded: a real
    query never sees a pad key under the causal mask, so no padding mask is needed).
    Returns [B, S, H, D] like transformers' attention functions.
    """
    prefix: PrefixKV | None = kwargs.pop("flr_prefix", None)
    if prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    scale = scaling if scaling is not None else 1.0 / math.sqrt(dim)
    pk = prefix.keys[module.layer_idx]
    pv = prefix.values[module.layer_idx]

    # Rows = (batch, group, position) for each kv head: one matmul against the prefix per head.
    q = query.view(batch, kv_heads, group, length, dim).permute(1, 0, 2, 3, 4)
    q = q.reshape(kv_heads, batch * group * length, dim)
    out_prefix, lse_prefix = _prefix_part(q, pk, pv, scale)
    out_prefix = out_prefix.view(kv_heads, batch, group, length, dim).permute(1, 0, 2, 3, 4)
    lse_prefix = lse_prefix.view(kv_heads, batch, group, length).permute(1, 0, 2, 3)

    # Own part: causal attention within each suffix.
    qs = query.view(batch, kv_heads, group, length, dim)
    scores = torch.matmul(qs, key.unsqueeze(2).transpose(-1, -2)).float() * scale
    causal = torch.ones(length, length, dtype=torch.bool, device=query.device).triu(1)
    scores.masked_fill_(causal, float("-inf"))
    lse_own = torch.logsumexp(scores, dim=-1)
    probs = torch.exp(scores - lse_own.unsqueeze(-1)).to(value.dtype)
    out_own = torch.matmul(probs, value.unsqueeze(2))

    # Merge the two softmaxes with their log-sum-exp weights.
    lse = torch.logaddexp(lse_prefix, lse_own)
    w_prefix = torch.exp(lse_prefix - lse).unsqueeze(-1)
    w_own = torch.exp(lse_own - lse).unsqueeze(-1)
    merged = out_prefix.float() * w_prefix + out_own.float() * w_own
    merged = merged.to(query.dtype).reshape(batch, heads, length, dim)
    return merged.transpose(1, 2).contiguous(), None


def _prefix_part(q: torch.Tensor, pk: torch.Tensor, pv: torch.Tensor,
                 scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of q [Hkv, N, D] to pk/pv [Hkv, P, D], chunked over N."""
    kv_heads, rows, _ = q.shape
    chunk = max(1, _MAX_SCORE_ELEMENTS // max(1, kv_heads * pk.shape[1]))
    outs, lses = [], []
    for start in range(0, rows, chunk):
        qc = q[:, start:start + chunk]
        scores = torch.matmul(qc, pk.transpose(-1, -2)).float() * scale
        lse = torch.logsumexp(scores, dim=-1)
        probs = torch.exp(scores - lse.unsqueeze(-1)).to(pv.dtype)
        outs.append(torch.matmul(probs, pv))
        lses.append(lse)
    if len(outs) == 1:
        return outs[0], lses[0]
    return torch.cat(outs, dim=1), torch.cat(lses, dim=1)


def register() -> None:
    """Make `PREFIX_ATTENTION` known to transformers (idempotent)."""
    AttentionInterface.register(PREFIX_ATTENTION, prefix_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PREFIX_ATTENTION, sdpa_mask)
