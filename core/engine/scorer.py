"""The FLR scorer: follow-up likelihoods of a conversation, computed once per shared prefix.

`FLRScorer.score` renders every follow-up after the conversation (`core.engine.rendering`), runs the
shared prefix (the conversation) through the model once, then scores the follow-up suffixes in
batches that attend to that single key/value copy (`core.engine.fast.attention`), computing logits only at
the positions that are read. Identical follow-ups are scored once.

`FLRScorer.score_reference` is the slow, obvious computation (one full forward pass per
follow-up, full logits); the fast path is tested against it and, on first use with a model,
checked against it once at run time: an architecture that the shared-prefix path does not
reproduce exactly (e.g. unusual logit scaling) falls back to per-sequence passes with a warning.

Speed (see README "Speed"): the follow-up suffixes go in as a token trie (`core.engine.fast.trie`), so
leading tokens that several follow-ups share are computed and read out once; its pieces are
packed several to a batch row without padding (`core.engine.fast.packing`), follow-ups of several
conversations share forward passes in `score_many`, a pass holds `batch_size x
TOKENS_PER_SEQUENCE` suffix tokens (on CUDA also capped by free memory, halved and retried on
out-of-memory), logits are computed only for the distinct hidden states that are read, in
chunks, and log-probabilities are gathered for all of them at once.

Results do not depend on batch size, packing or padding side: the engine lays out the suffixes
itself and a real token attends only to the conversation and its own predecessors, never to
another follow-up's token or a pad.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch

from core.engine import precision
from core.engine.fast import allocator, attention
from core.engine.stopping import check_stop
from core.engine.config import ScoringConfig
from core.engine.direct import DirectReader
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.models import LoadedModel, load_model
from core.engine.fast.packing import Pass, PrefixBlock, Segment, in_order, pack_rows, plan_passes, row_width
from core.engine.rendering import RenderedConversation, Request, render, shared_prefix_length
from core.engine.fast.trie import ROOT, Piece, SuffixTrie
from core.engine.results import CategoryScore, ConversationScore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (done, total)
_SELF_CHECK_TOLERANCE = 1e-3  # float32: the fast path agrees with the reference to ~1e-6
# 16-bit types: two bf16 computations in different orders differ by 1.0-1.4e-2 (relative) on the
# embedded model (5 MT-Bench conversations); at 1e-3 every bf16 model fell back to the slow path
_SELF_CHECK_TOLERANCE_16BIT = 5e-2
TOKENS_PER_SEQUENCE = 64  # a batch of N follow-ups = N x this many suffix tokens per pass
_PREFIX_BUDGET_FACTOR = 4  # conversations whose prefixes are held at once: this x the pass budget
_MAX_LOGIT_ELEMENTS = 1 << 24  # logits computed at once (rows x vocabulary; 64 MB in float32)
_VOCAB_BLOCK = {"cpu": 1024}  # output-head columns per step, by device type (default: all)
_CUDA_MEMORY_FRACTION = 0.5  # share of free GPU memory a suffix pass may plan to use


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

    def with_config(self, config: ScoringConfig) -> "Scorer | None":
        """The same loaded weights under other scoring settings (mode, aggregation, batch size,
        max length), or None when `config` needs other weights and must be loaded anew."""
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
        self._oom_budget: int | None = None  # token budget that survived an out-of-memory retry
        if getattr(loaded.device, "type", None) == "cpu":
            allocator.keep_freed_memory()  # no page faults on every pass's activations
            precision.compute_in_fp32(loaded.model)  # bf16 without bf16 hardware: fp32 multiplies
        if self._shared_prefix:
            attention.register()
            loaded.model.set_attn_implementation(attention.PREFIX_ATTENTION)

    @property
    def identity(self) -> str:
        return f"{self.loaded.identity}|{str(self.loaded.dtype).removeprefix('torch.')}"

    @property
    def dtype_decision(self) -> dict[str, Any] | None:
        """What `--dtype` resolved to on this machine and why (a report's provenance)."""
        decision = self.loaded.dtype_decision
        return None if decision is None else decision.as_dict()

    @property
    def _self_check_tolerance(self) -> float:
        return _SELF_CHECK_TOLERANCE if self.loaded.dtype == torch.float32 else _SELF_CHECK_TOLERANCE_16BIT

    @property
    def uses_shared_prefix(self) -> bool:
        return self._shared_prefix

    def with_config(self, config: ScoringConfig) -> "FLRScorer | None":
        """This scorer's weights under `config`'s scoring settings; None if `config` names other
        weights (switching mode or aggregation must not reload a large model)."""
        if not self.config.same_weights(config):
            return None
        return FLRScorer(self.loaded, config)

    # -- public API -----------------------------------------------------------------------

    def score(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        return self.score_many([conversation], followups)[0]

    def score_many(self, conversations: Sequence[Conversation], followups: FollowupSet,
                   progress: ProgressCallback | None = None) -> list[ConversationScore]:
        """Scores of several conversations; their follow-ups share forward passes."""
        texts = list(dict.fromkeys(followups.utterances()))  # identical follow-ups scored once
        results: list[ConversationScore] = []
        for group in self._conversation_groups(conversations, texts):
            if not self._checked:  # the first conversation goes through the self-check alone
                first = group.pop(0)
                # Direct read in the same packed pass as later conversations': it must not depend
                # on coming first to this scorer (a Ray worker's shard starts anywhere)
                first_reader = DirectReader([first], self.config.aggregation, self.loaded)
                values = self.score_requests(first.requests, first_reader)
                results.append(_result(followups, texts, first, values, first_reader.value(0)))
                if progress is not None:
                    progress(len(results), len(conversations))
            check_stop()
            reader = DirectReader(group, self.config.aggregation, self.loaded)  # Direct baseline
            if self._shared_prefix:
                scored = self._score_packed([g.requests for g in group], reader)
            else:
                scored = [self.score_requests(g.requests) for g in group]
            for k, (rendered, values) in enumerate(zip(group, scored)):
                results.append(_result(followups, texts, rendered, values, reader.value(k)))
                if progress is not None:
                    progress(len(results), len(conversations))
        return results

    def score_requests(self, requests: Sequence[Request], direct: DirectReader | None = None) -> list[float]:
        """Aggregated score of each request (fast path, self-checked on first use); `direct`
        reads the reply's own tokens during the same pass (one conversation's requests)."""
        if not requests:
            return []
        if not self._shared_prefix:
            return [self._score_single(r) for r in requests]
        values = self._score_shared_prefix(requests, direct)
        if not self._checked:
            self._checked = True
            probe = list(range(min(2, len(requests))))
            expected = self.score_reference([requests[i] for i in probe])
            worst = max(abs(values[i] - e) / max(1.0, abs(e)) for i, e in zip(probe, expected))
            if worst > self._self_check_tolerance:
                log.warning("shared-prefix scoring differs from the reference by %.2e on %s; "
                            "using per-sequence scoring for this model", worst, self.loaded.name)
                self._shared_prefix = False
                if direct is not None:
                    direct.values.clear()  # read again by the plain forward pass, like the scores
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

    def _conversation_groups(self, conversations: Sequence[Conversation],
                             texts: Sequence[str]) -> Iterator[list[RenderedConversation]]:
        """Rendered conversations, in groups whose prefixes together stay within a token budget
        (their key/value caches are held at the same time)."""
        budget = _PREFIX_BUDGET_FACTOR * self._token_budget()
        group: list[RenderedConversation] = []
        held = 0
        for conversation in conversations:
            rendered = render(self.loaded.tokenizer, conversation, texts, mode=self.config.mode,
                              aggregation=self.config.aggregation, max_length=self.max_length,
                              system_policy=self.config.system_policy)
            length = min(len(r.ids) for r in rendered.requests)
            if group and held + length > budget:
                yield group
                group, held = [], 0
            group.append(rendered)
            held += length
        if group:
            yield group

    def _aggregate(self, logits: torch.Tensor, request: Request) -> float:
        """Score of one request from the logits rows at its positions (in order); the
        reference path's obvious reading of the definition."""
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

    def _score_shared_prefix(self, requests: Sequence[Request], direct: DirectReader | None = None) -> list[float]:
        """The fast path for one conversation's requests."""
        return self._score_packed([requests], direct)[0]

    def _score_packed(self, groups: Sequence[Sequence[Request]],
                      direct: DirectReader | None = None) -> list[list[float]]:
        """Scores of the requests of several conversations (one prefix each); see `read_packed`
        (`direct` also reads each reply's own tokens from its prefix rows: the Direct baseline)."""
        prefix_lens, tries, read = self.read_packed(groups, direct)
        return [[self._aggregate_read(request, (ROOT,) + trie.paths[i], length, values)
                 for i, request in enumerate(g)]
                for g, length, trie, values in zip(groups, prefix_lens, tries, read)]

    @torch.inference_mode()
    def read_packed(self, groups: Sequence[Sequence[Request]], direct: DirectReader | None = None
                    ) -> tuple[list[int], list[SuffixTrie], list[dict[tuple[int, int], float]]]:
        """The per-token values of the requests of several conversations (one prefix each),
        computed in packed passes: (prefix lengths, suffix tries, per conversation the value
        read at each (trie node, target id)); `core.engine.explain` reads them per token.

        Each prefix is computed once, in the pass that holds its first suffix rows, every
        suffix row attends to its own conversation's prefix, and the follow-ups' suffixes go
        in as a token trie (`core.engine.fast.trie`), so a token several follow-ups share is computed and
        read out once."""
        prefix_lens = [shared_prefix_length(g) if g else 0 for g in groups]
        prefix_ids = [g[0].ids[:length] if g else () for g, length in zip(groups, prefix_lens)]
        tries = [SuffixTrie([r.ids[length:r.needed_length] for r in g])
                 for g, length in zip(groups, prefix_lens)]
        wanted = [_targets_by_node(g, length, trie) for g, length, trie in zip(groups, prefix_lens, tries)]

        def pieces_at(width: int) -> list[list[Piece]]:
            return [trie.units(width) for trie in tries]

        longest = max([1] + [trie.deepest for trie in tries])
        width = row_width(lambda w: _segments(pieces_at(w)), longest,
                          [length for length in prefix_lens if length])
        pieces = pieces_at(width)
        blocks = [PrefixBlock(c, length) for c, length in enumerate(prefix_lens) if length]
        units = in_order(blocks, pack_rows(_segments(pieces), width))
        layers = self.loaded.model.config.num_hidden_layers
        prefixes = {c: attention.PrefixKV.empty(layers) for c in range(len(groups))}
        read: list[dict[tuple[int, int], float]] = [{} for _ in groups]  # (node, target) -> value
        budget = self._token_budget()
        plan = plan_passes(units, width, budget)
        while plan:
            check_stop()  # a cancelled job stops here, between passes
            step = plan[0]
            try:
                self._run_pass(step, prefix_ids, pieces, wanted, prefixes, read, direct)
            except torch.OutOfMemoryError:
                if len(step.units) == 1:
                    raise
                budget = max(width, budget // 2)
                self._oom_budget = budget
                log.warning("out of memory in a packed pass; retrying with %d tokens per pass", budget)
                _empty_cache(self.loaded.device)
                plan = plan_passes([u for p in plan for u in p.units], width, budget)
                continue
            plan = plan[1:]
        return prefix_lens, tries, read

    def _aggregate_read(self, request: Request, nodes: tuple[int, ...], prefix_len: int,
                        read: dict[tuple[int, int], float]) -> float:
        """A request's score from the values read at its trie nodes (position p of the request
        is node p - prefix_len + 1 of its path; the path starts at the conversation's end)."""
        total = 0.0
        for position, targets in zip(request.positions, request.targets):
            node = nodes[position - prefix_len + 1]
            total += sum(read[(node, t)] for t in targets)
        if self.config.aggregation == "paper":
            return total / len(request.targets[0])
        return total if self.config.aggregation == "sum" else total / len(request.targets)

    def _run_pass(self, step: Pass, prefix_ids: list[tuple[int, ...]], pieces: list[list[Piece]],
                  wanted: list[dict[int, tuple[int, ...]]], prefixes: dict[int, attention.PrefixKV],
                  read: list[dict[tuple[int, int], float]], direct: DirectReader | None = None) -> None:
        """One packed forward pass: prefix blocks, then suffix rows of trie pieces; reads the
        values wanted at every node (and conversation end) it computes for the first time."""
        device = self.loaded.device
        width = step.width
        prefix_lens = [len(p) for p in prefix_ids]
        n_rows = step.prefix_rows + len(step.rows)
        ids = torch.full((n_rows, width), _pad_id(self.loaded.tokenizer), dtype=torch.long)
        positions = torch.zeros((n_rows, width), dtype=torch.long)
        parents = torch.full((n_rows, width), -1, dtype=torch.long)  # -1: the prefix only
        fresh: list[tuple[int, int, int, int]] = []  # (group, first row, rows, length)
        found: dict[tuple[int, int], int] = {}  # (group, node) -> flat index in this pass
        row = 0
        for block in step.prefixes:
            count = block.rows(width)
            ids[row:row + count].view(-1)[:block.length] = torch.tensor(prefix_ids[block.group])
            positions[row:row + count].view(-1)[:block.length] = torch.arange(block.length)
            fresh.append((block.group, row, count, block.length))
            found[(block.group, ROOT)] = row * width + block.length - 1
            row += count
        for r, suffix_row in enumerate(step.rows, start=row):
            g = suffix_row.group
            length = prefix_lens[g]
            positions[r] = length
            for segment, offset in suffix_row.segments:
                piece = pieces[g][segment.key]
                end = offset + len(piece)
                ids[r, offset:end] = torch.tensor(piece.tokens)
                positions[r, offset:end] = length + torch.tensor(piece.depths)
                parents[r, offset:end] = torch.tensor([p if p == ROOT else offset + p for p in piece.parents])
                for k, node in enumerate(piece.nodes):
                    found.setdefault((g, node), r * width + offset + k)
        used = sorted({g for g, _, _ in step.row_ranges} | {g for g, _, _, _ in fresh})
        local = {g: k for k, g in enumerate(used)}
        batch = attention.PackedBatch(
            prefixes=tuple(prefixes[g] for g in used),
            row_prefix=tuple((local[g], a, b) for g, a, b in step.row_ranges),
            own_mask=attention.PackedBatch.mask_from_parents(parents.to(device)),
            fresh=tuple((local[g], first, count, length) for g, first, count, length in fresh),
        )
        hidden = self.loaded.model.get_decoder()(
            input_ids=ids.to(device), position_ids=positions.to(device), use_cache=False,
            flr_prefix=batch,
        ).last_hidden_state.reshape(n_rows * width, -1)
        if direct is not None:  # the reply's own tokens, from the prefix rows just computed
            direct.read(fresh, width, hidden, self._logits)

        pairs: list[tuple[int, int, int, int]] = []  # (group, node, flat index, target)
        for (g, node), index in found.items():
            targets = wanted[g].get(node, ())  # paper aggregation reads one node per path
            if targets and (node, targets[0]) not in read[g]:
                pairs.extend((g, node, index, target) for target in targets)
        if not pairs:
            return
        flat = sorted({index for _, _, index, _ in pairs})
        row_of = {index: k for k, index in enumerate(flat)}
        values = self._target_values(hidden.index_select(0, torch.tensor(flat, device=device)),
                                     [row_of[index] for _, _, index, _ in pairs],
                                     [target for _, _, _, target in pairs])
        for (g, node, _, target), value in zip(pairs, values):
            read[g][(node, target)] = value

    def _target_values(self, hidden: torch.Tensor, rows: Sequence[int], targets: Sequence[int]) -> list[float]:
        """For each (row, target) pair: log p(target | row's hidden state), or with the paper's
        aggregation the raw logit of the target.

        The output head runs over row chunks and vocabulary blocks (`_VOCAB_BLOCK`, per device
        type; a block the CPU cache holds is a third faster there than whole-vocabulary rows),
        keeping a running log-sum-exp per row and picking each target's logit from its block:
        log p(target) = logit[target] - logsumexp(row), for all rows at once.
        """
        paper = self.config.aggregation == "paper"
        device = self.loaded.device
        rows_t = torch.tensor(rows, device=device)
        targets_t = torch.tensor(targets, device=device)
        picked = torch.empty(len(rows), dtype=torch.float32, device=device)
        lse = torch.empty(hidden.shape[0], dtype=torch.float32, device=device)
        head = self.loaded.model.get_output_embeddings()
        vocab = head.weight.shape[0]
        block = min(vocab, _VOCAB_BLOCK.get(getattr(device, "type", ""), vocab))
        if not isinstance(head, torch.nn.Linear):  # an unusual head: whole rows only
            block = vocab
        chunk = max(1, _MAX_LOGIT_ELEMENTS // block)
        for start in range(0, hidden.shape[0], chunk):
            end = min(start + chunk, hidden.shape[0])
            in_chunk = (rows_t >= start) & (rows_t < end)
            top = torch.full((end - start,), float("-inf"), device=device)
            total = torch.zeros(end - start, device=device)
            for first in range(0, vocab, block):
                logits = self._logits(hidden[start:end], first, first + block)
                here = (in_chunk & (targets_t >= first) & (targets_t < first + block)).nonzero()[:, 0]
                picked[here] = logits[rows_t[here] - start, targets_t[here] - first]
                if paper:
                    continue
                # Running log-sum-exp, in place on this block's logits.
                new_top = torch.maximum(top, logits.amax(dim=-1))
                total.mul_(torch.exp(top - new_top)).add_(
                    logits.sub_(new_top.unsqueeze(-1)).exp_().sum(dim=-1))
                top = new_top
            lse[start:end] = total.log_().add_(top)
        if not paper:
            picked -= lse[rows_t]
        return picked.tolist()

    def _token_budget(self) -> int:
        """Suffix tokens per pass: the batch size in follow-ups of `TOKENS_PER_SEQUENCE` tokens,
        on CUDA no more than about half of the free memory holds."""
        device = self.loaded.device
        budget = self.config.follow_ups_per_pass(getattr(device, "type", None) == "cuda") * TOKENS_PER_SEQUENCE
        if self._oom_budget is not None:
            budget = min(budget, self._oom_budget)
        if getattr(device, "type", None) == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            budget = min(budget, max(TOKENS_PER_SEQUENCE,
                                     int(free * _CUDA_MEMORY_FRACTION) // self._bytes_per_token()))
        return budget

    def _bytes_per_token(self) -> int:
        """Rough peak activation bytes per suffix token in one layer (hidden states, MLP
        intermediates, queries/keys/values, a row of own-attention scores)."""
        config = self.loaded.model.config
        hidden = config.hidden_size
        inner = getattr(config, "intermediate_size", 4 * hidden)
        heads = config.num_attention_heads
        element = torch.empty((), dtype=self.loaded.dtype).element_size()
        return element * (8 * hidden + 3 * inner) + 4 * heads * (TOKENS_PER_SEQUENCE + 4 * 128)

    def _logits(self, hidden: torch.Tensor, first: int = 0, end: int | None = None) -> torch.Tensor:
        """The model's output head on selected hidden states, for vocabulary ids first..end,
        with its logit scaling quirks."""
        config = self.loaded.model.config
        head = self.loaded.model.get_output_embeddings()
        if isinstance(head, torch.nn.Linear):
            bias = None if head.bias is None else head.bias[first:end]
            logits = precision.linear(hidden, head.weight[first:end], bias).float()
        else:
            logits = head(hidden)[..., first:end].float()
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


def _result(followups: FollowupSet, texts: Sequence[str], rendered: RenderedConversation,
            scores: Sequence[float], direct: float | None = None) -> ConversationScore:
    values = dict(zip(texts, scores))
    categories = tuple(
        CategoryScore(c.name, tuple(values[t] for t in c.positive),
                      tuple(values[t] for t in c.negative), c.positive, c.negative,
                      c.positive_weights, c.negative_weights)
        for c in followups
    )
    context = min(len(r.ids) for r in rendered.requests)
    return ConversationScore(categories, rendered.warnings, rendered.dropped_utterances, context, direct)


def _segments(pieces: Sequence[Sequence[Piece]]) -> list[Segment]:
    """Each conversation's trie pieces as segments to pack (key: the piece's index)."""
    return [Segment(c, k, len(piece)) for c, group in enumerate(pieces) for k, piece in enumerate(group)]


def _targets_by_node(requests: Sequence[Request], prefix_len: int,
                     trie: SuffixTrie) -> dict[int, tuple[int, ...]]:
    """Which target ids are read at each trie node (ROOT: the conversation's last token)."""
    wanted: dict[int, dict[int, None]] = {}
    for request, path in zip(requests, trie.paths):
        nodes = (ROOT,) + path
        for position, targets in zip(request.positions, request.targets):
            wanted.setdefault(nodes[position - prefix_len + 1], {}).update(dict.fromkeys(targets))
    return {node: tuple(targets) for node, targets in wanted.items()}


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _empty_cache(device: Any) -> None:
    if getattr(device, "type", None) == "cuda":
        torch.cuda.empty_cache()
