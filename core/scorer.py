"""The FLR scorer: follow-up likelihoods of a conversation, computed once per shared prefix.

`FLRScorer.score` renders every follow-up after the conversation (`core.rendering`), runs the
shared prefix (the conversation) through the model once, then scores the follow-up suffixes in
batches that attend to that single key/value copy (`core.attention`), computing logits only at
the positions that are read. Identical follow-ups are scored once.

`FLRScorer.score_reference` is the slow, obvious computation (one full forward pass per
follow-up, full logits); the fast path is tested against it and, on first use with a model,
checked against it once at run time: an architecture that the shared-prefix path does not
reproduce exactly (e.g. unusual logit scaling) falls back to per-sequence passes with a warning.

Results do not depend on batch size or padding side: suffixes are always right-padded by the
engine itself and a real token never attends to a pad.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol, Sequence

import torch

from core import attention
from core.config import ScoringConfig
from core.conversation import Conversation
from core.errors import ConversationError
from core.followups import FollowupSet
from core.models import LoadedModel, load_model
from core.rendering import Request, render
from core.results import CategoryScore, ConversationScore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (done, total)
_SELF_CHECK_TOLERANCE = 1e-3  # float32 fast path agrees to ~1e-6; bf16 needs the slack


class Scorer(Protocol):
    """What batch evaluation, the UI and preference mining need from a scorer."""

    config: ScoringConfig

    @property
    def identity(self) -> str:
        """Stable id of the model weights and numeric settings, for cache keys."""
        ...

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        ...

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: ProgressCallback | None = None) -> list[ConversationScore]:
        ...


def load_scorer(config: ScoringConfig) -> "FLRScorer":
    """Load `config.model` and wrap it in a scorer."""
    return FLRScorer(load_model(config), config)


class FLRScorer:
    """Scores conversations with one loaded model under one `ScoringConfig`."""

    def __init__(self, loaded: LoadedModel, config: ScoringConfig) -> None:
        self.loaded = loaded
        self.config = config
        self.max_length = config.max_length or loaded.max_context
        self._shared_prefix = bool(loaded.quirks.get("prefix_attention", True))
        self._checked = not self._shared_prefix
        if self._shared_prefix:
            attention.register()
            loaded.model.set_attn_implementation(attention.PREFIX_ATTENTION)

    @property
    def identity(self) -> str:
        return f"{self.loaded.identity}|{str(self.loaded.dtype).removeprefix('torch.')}"

    @property
    def uses_shared_prefix(self) -> bool:
        return self._shared_prefix

    # -- public API -----------------------------------------------------------------------

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        return self.score_many([conversation], followups)[0]

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: ProgressCallback | None = None) -> list[ConversationScore]:
        texts = list(dict.fromkeys(followups.utterances()))  # identical follow-ups scored once
        results = []
        for i, conversation in enumerate(conversations):
            rendered = render(self.loaded.tokenizer, conversation, texts, mode=self.config.mode,
                              aggregation=self.config.aggregation, max_length=self.max_length)
            values = dict(zip(texts, self.score_requests(rendered.requests)))
            categories = tuple(
                CategoryScore(c.name, tuple(values[t] for t in c.positive),
                              tuple(values[t] for t in c.negative), c.positive, c.negative)
                for c in followups
            )
            context = min(len(r.ids) for r in rendered.requests)
            results.append(ConversationScore(categories, rendered.warnings,
                                             rendered.dropped_utterances, context))
            if progress is not None:
                progress(i + 1, len(conversations))
        return results

    def score_requests(self, requests: Sequence[Request]) -> list[float]:
        """Aggregated score of each request (fast path, self-checked on first use)."""
        if not requests:
            return []
        if not self._shared_prefix:
            return [self._score_single(r) for r in requests]
        values = self._score_shared_prefix(requests)
        if not self._checked:
            self._checked = True
            probe = list(range(min(2, len(requests))))
            expected = self.score_reference([requests[i] for i in probe])
            worst = max(abs(values[i] - e) / max(1.0, abs(e)) for i, e in zip(probe, expected))
            if worst > _SELF_CHECK_TOLERANCE:
                log.warning("shared-prefix scoring differs from the reference by %.2e on %s; "
                            "using per-sequence scoring for this model", worst, self.loaded.name)
                self._shared_prefix = False
                return [self._score_single(r) for r in requests]
        return values

    @torch.inference_mode()
    def score_reference(self, requests: Sequence[Request]) -> list[float]:
        """The obvious computation: one full forward pass per request, full logits."""
        model = self.loaded.model
        out = []
        for request in requests:
            ids = torch.tensor([request.ids], device=self.loaded.device)
            logits = model(input_ids=ids, use_cache=False).logits[0].float()
            out.append(self._aggregate(logits[list(request.positions)], request))
        return out

    # -- internals ------------------------------------------------------------------------

    def _aggregate(self, logits: torch.Tensor, request: Request) -> float:
        """Scores of one request from the logits rows at its positions (in order)."""
        if self.config.aggregation == "paper":
            row = logits[0]
            return row[list(request.targets[0])].mean().item()
        logprobs = torch.log_softmax(logits, dim=-1)
        picked = torch.stack([logprobs[i, list(t)].sum() for i, t in enumerate(request.targets)])
        return (picked.sum() if self.config.aggregation == "sum" else picked.mean()).item()

    @torch.inference_mode()
    def _score_single(self, request: Request) -> float:
        """One sequence, logits only at the positions read (fallback path)."""
        ids = torch.tensor([request.ids[:request.needed_length]], device=self.loaded.device)
        first = min(request.positions)
        keep = request.needed_length - first
        logits = self.loaded.model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits[0]
        rows = logits.float()[[p - first for p in request.positions]]
        return self._aggregate(rows, request)

    @torch.inference_mode()
    def _score_shared_prefix(self, requests: Sequence[Request]) -> list[float]:
        model = self.loaded.model
        device = self.loaded.device
        decoder = model.get_decoder()
        prefix_len = _shared_prefix_length(requests)

        context = torch.tensor([requests[0].ids[:prefix_len]], device=device)
        out = decoder(input_ids=context, use_cache=True)
        last_hidden = out.last_hidden_state[0, -1]
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        prefix = attention.PrefixKV(
            keys=tuple(layer.keys[0] for layer in cache.layers),
            values=tuple(layer.values[0] for layer in cache.layers),
        )
        del out

        values: list[float] = [0.0] * len(requests)
        # Longest suffixes first so that a batch holds sequences of similar length.
        order = sorted(range(len(requests)), key=lambda i: -requests[i].needed_length)
        for start in range(0, len(order), self.config.batch_size):
            chunk = order[start:start + self.config.batch_size]
            suffixes = [requests[i].ids[prefix_len:requests[i].needed_length] for i in chunk]
            width = max(len(s) for s in suffixes)
            hidden = None
            if width:
                pad = _pad_id(self.loaded.tokenizer)
                batch = torch.full((len(chunk), width), pad, dtype=torch.long, device=device)
                for row, suffix in enumerate(suffixes):
                    batch[row, :len(suffix)] = torch.tensor(suffix, device=device)
                positions = torch.arange(prefix_len, prefix_len + width, device=device)
                hidden = decoder(input_ids=batch, position_ids=positions.expand(len(chunk), -1),
                                 use_cache=False, flr_prefix=prefix).last_hidden_state
            rows, owners = [], []
            for row, i in enumerate(chunk):
                for p in requests[i].positions:
                    rows.append(last_hidden if p == prefix_len - 1 else hidden[row, p - prefix_len])
                    owners.append(i)
            logits = self._logits(torch.stack(rows))
            offset = 0
            for i in chunk:
                n = len(requests[i].positions)
                values[i] = self._aggregate(logits[offset:offset + n], requests[i])
                offset += n
        return values

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's output head on selected hidden states, with its logit scaling quirks."""
        config = self.loaded.model.config
        logits = self.loaded.model.get_output_embeddings()(hidden).float()
        scale = getattr(config, "logit_scale", None)  # e.g. Cohere multiplies
        if isinstance(scale, (int, float)):
            logits = logits * scale
        divide = getattr(config, "logits_scaling", None)  # e.g. Granite divides
        if isinstance(divide, (int, float)) and divide:
            logits = logits / divide
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits


def _shared_prefix_length(requests: Sequence[Request]) -> int:
    """Longest prefix shared by all requests that ends at or before the first position read."""
    first = requests[0].ids
    limit = min(min(r.positions) for r in requests) + 1
    length = min(limit, min(len(r.ids) for r in requests))
    for r in requests[1:]:
        n = 0
        for a, b in zip(first[:length], r.ids[:length]):
            if a != b:
                break
            n += 1
        length = n
    if length < 1:
        raise ConversationError("follow-ups share no conversation prefix; nothing to score against")
    return length


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0
