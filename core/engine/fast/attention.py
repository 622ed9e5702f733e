"""Exact shared-prefix attention (the Hydragen decomposition) as a transformers attention function.

Scoring 120 follow-ups of one conversation means 120 sequences that share a long prefix. The
engine runs the prefix once and keeps its keys and values; the follow-up suffixes then attend to
that single copy. For every query, attention over prefix ∪ own-suffix keys is split into two
softmaxes (over the prefix, over the suffix's own causal part) whose outputs are merged with
their log-sum-exp weights. This is exact, not an approximation.

Suffixes are packed: a batch row holds several short follow-ups (or pieces of their token trie,
`core.engine.fast.trie`) back to back (`PackedBatch.own_mask` lets a token see only its ancestors), so no
compute is spent on padding, and rows of
several conversations can share one forward pass (`PackedBatch.row_prefix` says which prefix a
row attends to). The prefix part is one matrix multiply per key/value head for all queries of a
conversation's rows at once (every query head of a group and every token are stacked as rows),
so the prefix keys are read once per layer and never copied per follow-up. Each query gets one
softmax over its prefix scores and its own-row scores side by side, which is the same as the
log-sum-exp merge of two softmaxes, in fewer operations. On CPU the prefix part goes through
PyTorch's fused flash-attention kernel instead, which returns the log-sum-exp that the merge
with the own part needs and never holds the prefix score matrix in memory.

Registered under `PREFIX_ATTENTION`; when a forward pass carries no `flr_prefix` keyword it
delegates to `sdpa`, so a model switched to it behaves as before for every other use (the
prefix pass itself, generation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

PREFIX_ATTENTION = "flr_prefix"
_MAX_SCORE_ELEMENTS = 1 << 26  # cap on prefix-score elements per chunk (bounds transient memory)


@dataclass(frozen=True)
class PrefixKV:
    """Keys and values of one shared prefix, per layer: [kv_heads, prefix_len, head_dim].

    A prefix computed inside a packed pass (`PackedBatch.fresh`) starts with empty slots that
    the attention function fills layer by layer; later passes read them.
    """

    keys: list[torch.Tensor | None]
    values: list[torch.Tensor | None]

    @classmethod
    def empty(cls, layers: int) -> "PrefixKV":
        return cls([None] * layers, [None] * layers)


@dataclass(frozen=True)
class PackedBatch:
    """What a suffix pass attends to besides its own tokens.

    `prefixes[c]` is a conversation's prefix; `row_prefix` lists, for consecutive ranges of
    suffix rows, (prefix index, first row, end row). `own_mask` [rows, width, width] is 0 where
    a token may see another token of its row (itself and its ancestors) and -inf elsewhere.
    `fresh` lists prefixes computed in this pass: (prefix index, first row, rows, length), their
    tokens laid out back to back over those rows; they attend causally among themselves and
    their keys/values are stored into `prefixes[index]` for the suffix rows (of this pass and
    later ones).
    """

    prefixes: tuple[PrefixKV, ...]
    row_prefix: tuple[tuple[int, int, int], ...]
    own_mask: torch.Tensor
    fresh: tuple[tuple[int, int, int, int], ...] = ()

    @staticmethod
    def mask_from_parents(parents: torch.Tensor) -> torch.Tensor:
        """The additive own-attention mask for rows whose slots name their parent slot [R, W]
        (-1: none in the row, the slot hangs off the prefix; pads too): a slot sees itself and
        its chain of ancestors, as a token of a sequence sees the tokens before it."""
        rows, width = parents.shape
        visible = torch.eye(width, dtype=torch.bool, device=parents.device).repeat(rows, 1, 1)
        row = torch.arange(rows, device=parents.device).unsqueeze(-1).expand(rows, width)
        slot = torch.arange(width, device=parents.device).expand(rows, width)
        ancestor = parents
        while True:
            has = ancestor >= 0
            if not bool(has.any()):
                break
            visible[row[has], slot[has], ancestor[has]] = True
            ancestor = torch.where(has, parents.gather(1, ancestor.clamp(min=0)), -1)
        mask = torch.zeros(visible.shape, dtype=torch.float32, device=parents.device)
        return mask.masked_fill_(~visible, float("-inf"))


def prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None,
                     dropout: float = 0.0, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of packed suffix queries to (their prefix's keys ++ their own causal keys).

    query: [R, H, W, D]; key/value: [R, Hkv, W, D]. Returns [R, W, H, D] like transformers'
    attention functions. The mask transformers built is ignored: `PackedBatch.own_mask` says
    who sees whom inside a row, and a real token never sees a pad or a token off its own path.

    One softmax per query over [prefix scores | own scores] (concatenated), so no merging step:
    the prefix keys are shared by all rows of a conversation and read once per chunk.
    """
    batch: PackedBatch | None = kwargs.pop("flr_prefix", None)
    if batch is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    rows, heads, width, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    scale = scaling if scaling is not None else 1.0 / math.sqrt(dim)
    layer = module.layer_idx
    out = torch.empty(rows, width, heads, dim, dtype=query.dtype, device=query.device)

    for index, first, count, length in batch.fresh:
        # Prefix tokens back to back over rows first..first+count: causal attention (SDPA).
        end = first + count
        flat_k = key[first:end].transpose(0, 1).reshape(kv_heads, count * width, dim)[:, :length]
        flat_v = value[first:end].transpose(0, 1).reshape(kv_heads, count * width, dim)[:, :length]
        flat_q = query[first:end].transpose(0, 1).reshape(heads, count * width, dim)[:, :length]
        batch.prefixes[index].keys[layer] = flat_k.contiguous()
        batch.prefixes[index].values[layer] = flat_v.contiguous()
        attended = F.scaled_dot_product_attention(
            flat_q.unsqueeze(0), flat_k.unsqueeze(0), flat_v.unsqueeze(0), is_causal=True,
            scale=scale, enable_gqa=group > 1)
        target = out[first:end].view(count * width, heads, dim)
        target[:length] = attended[0].transpose(0, 1)
        target[length:] = 0  # pad slots after the prefix: never read, kept finite

    if batch.row_prefix:
        # Rows of the score matrices: (row, query head of the group, position), per kv head.
        q = torch.empty(kv_heads, rows, group, width, dim, dtype=query.dtype, device=query.device)
        torch.mul(query.view(rows, kv_heads, group, width, dim).transpose(0, 1), scale, out=q)
        q = q.view(kv_heads, rows, group * width, dim)
        k = key.transpose(0, 1)  # [Hkv, R, W, D] views
        v = value.transpose(0, 1)
        for index, start, end in batch.row_prefix:
            prefix = batch.prefixes[index]
            pk, pv = prefix.keys[layer], prefix.values[layer]
            assert pk is not None and pv is not None, "suffix rows before their prefix"
            step = max(1, _MAX_SCORE_ELEMENTS // (kv_heads * group * width * (pk.shape[1] + width)))
            for a in range(start, end, step):
                b = min(end, a + step)
                part = _attend(q[:, a:b], pk, pv, k[:, a:b], v[:, a:b], batch.own_mask[a:b], group)
                # [Hkv, r, group*W, D] -> [r, W, H, D]
                out[a:b].view(b - a, width, kv_heads, group, dim).copy_(
                    part.view(kv_heads, b - a, group, width, dim).permute(1, 3, 0, 2, 4))
    return out, None


def _attend(q: torch.Tensor, pk: torch.Tensor, pv: torch.Tensor, k: torch.Tensor,
            v: torch.Tensor, own_mask: torch.Tensor, group: int) -> torch.Tensor:
    """Softmax attention of pre-scaled queries q [Hkv, r, group*W, D] of r rows to their prefix
    (pk/pv [Hkv, P, D]) and to their own row's keys (k/v [Hkv, r, W, D], masked)."""
    if _flash_with_lse(q):
        return _attend_flash(q, pk, pv, k, v, own_mask, group)
    kv_heads, rows, length, dim = q.shape
    width = k.shape[2]
    prefix_len = pk.shape[1]
    flat = q.reshape(kv_heads, rows * length, dim)
    scores_p = torch.matmul(flat, pk.transpose(-1, -2)).float()  # [Hkv, r*gW, P]
    scores_o = torch.matmul(q, k.transpose(-1, -2)).float()  # [Hkv, r, gW, W]
    scores_o.view(kv_heads, rows, group, width, width).add_(own_mask.unsqueeze(1))
    scores = torch.cat([scores_p, scores_o.view(kv_heads, rows * length, width)], dim=-1)
    scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()  # the max is finite: a token sees itself
    total = scores.sum(dim=-1, keepdim=True)
    probs = scores.to(pv.dtype)
    out = torch.matmul(probs[..., :prefix_len], pv)  # [Hkv, r*gW, D]
    own = torch.matmul(probs[..., prefix_len:].reshape(kv_heads, rows, length, width), v)
    out.view(kv_heads, rows, length, dim).add_(own)
    return out.div_(total.to(out.dtype)).view(kv_heads, rows, length, dim)


def _flash_with_lse(q: torch.Tensor) -> bool:
    """Whether PyTorch's fused CPU flash attention (which also returns the log-sum-exp) can
    take the prefix part: CPU tensors and a PyTorch that has the kernel."""
    return q.device.type == "cpu" and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")


def _attend_flash(q: torch.Tensor, pk: torch.Tensor, pv: torch.Tensor, k: torch.Tensor,
                  v: torch.Tensor, own_mask: torch.Tensor, group: int) -> torch.Tensor:
    """`_attend` with the prefix part in the fused CPU flash kernel (no score matrix in memory)
    and the small own part by hand (in fp32), merged with their log-sum-exps in fp32."""
    kv_heads, rows, length, dim = q.shape
    width = k.shape[2]
    flat = q.reshape(1, kv_heads, rows * length, dim)
    out_p, lse_p = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        flat, pk.unsqueeze(0), pv.unsqueeze(0), 0.0, False, attn_mask=None, scale=1.0)
    out_p = out_p[0].view(kv_heads, rows, length, dim).float()
    lse_p = lse_p[0].view(kv_heads, rows, length, 1)
    # The own part in fp32 whatever the model's dtype: it is small (a row's width of keys), and
    # bf16 batched multiplies on a CPU without bf16 hardware run at a tenth of the fp32 rate.
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2))  # [Hkv, r, gW, W]
    scores.view(kv_heads, rows, group, width, width).add_(own_mask.unsqueeze(1))
    top = scores.amax(dim=-1, keepdim=True)  # finite: a token sees itself
    scores.sub_(top).exp_()
    lse_o = scores.sum(dim=-1, keepdim=True).log_().add_(top)
    out_o = torch.matmul(scores, v.float())  # unnormalised: times exp(top)
    lse = torch.logaddexp(lse_p, lse_o)
    out = out_p.mul_(torch.exp(lse_p - lse)).add_(out_o.mul_(torch.exp(top - lse)))
    return out.to(q.dtype)


def register() -> None:
    """Make `PREFIX_ATTENTION` known to transformers (idempotent)."""
    AttentionInterface.register(PREFIX_ATTENTION, prefix_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PREFIX_ATTENTION, sdpa_mask)
