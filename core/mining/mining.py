"""Preference mining: sample K replies per prompt from a policy model and score each with FLR.

Every sample is kept with its overall FLR and per-category rewards; `core.mining.preferences`
turns the results into DPO / KTO / SFT data. Results are appended to a JSONL cache in the
output folder after each batch of prompts, so a killed run picks up where it stopped.

Shortcuts and choices made on purpose:
- Sampling is done by a logits processor that draws each row's token with its own
  `torch.Generator`, seeded from (seed, prompt index, sample index); `generate` then decodes
  greedily over a one-hot distribution. transformers' own sampler draws from one global RNG,
  which would make a sample depend on which prompts shared its batch and on resuming.
- Generation uses a fresh `GenerationConfig` (temperature, top-p, max new tokens only), not the
  model's bundled one, so a model's repetition penalty or top-k never changes the samples
  silently.
- An empty reply (the model stopped at once) is kept with no reward and never exported.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol, Sequence

from core.engine.config import ScoringConfig
from core.errors import ConfigError, InputError
from core.engine.followups import FollowupSet
from core.mining.prompts import MiningPrompt, prompt_from_record

if TYPE_CHECKING:
    from core.engine.models import LoadedModel
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (replies done, replies total)

CACHE_FOLDER = "cache"
EMPTY_REPLY = "empty reply"


@dataclass(frozen=True)
class MiningConfig:
    """How replies are sampled; everything but `batch_size` is part of the cache key."""

    samples: int = 4  # replies sampled per prompt (K)
    seed: int = 0  # with the same seed, model and prompts, the samples are identical
    max_new_tokens: int = 256  # a reply longer than this is cut (and marked unfinished)
    temperature: float = 0.8  # 0 = greedy (then every sample of a prompt is the same)
    top_p: float = 0.95  # nucleus sampling; 1.0 = the full distribution
    batch_size: int = 4  # prompts per generate() call (x samples rows); results do not depend on it

    def __post_init__(self) -> None:
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ConfigError(f"samples per prompt must be a positive integer; got {self.samples!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max new tokens must be a positive integer; got {self.max_new_tokens!r}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be 0 (greedy) or positive; got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p must be in (0, 1]; got {self.top_p!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch size must be a positive integer; got {self.batch_size!r}")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer; got {self.seed!r}")

    def sampling_key(self) -> dict[str, Any]:
        """The settings that change the samples (batch size does not)."""
        key = asdict(self)
        key.pop("batch_size")
        return key


@dataclass(frozen=True)
class Generation:
    """One sampled reply; `finished` is False when it was cut at max new tokens."""

    text: str
    finished: bool = True


@dataclass(frozen=True)
class Sample:
    """One sampled reply and its FLR rewards (None when it could not be scored)."""

    index: int  # 0..K-1 within its prompt
    response: str
    flr: float | None
    rewards: Mapping[str, float] = field(default_factory=dict)  # per follow-up category
    finished: bool = True
    note: str | None = None  # why there is no reward

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"sample": self.index, "response": self.response, "flr": self.flr,
                                  "rewards": dict(self.rewards), "finished": self.finished}
        if self.note:
            record["note"] = self.note
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Sample":
        return cls(int(record["sample"]), record["response"], record["flr"],
                   dict(record.get("rewards", {})), bool(record.get("finished", True)),
                   record.get("note"))


@dataclass(frozen=True)
class PromptSamples:
    """All samples of one prompt, in sample order."""

    index: int  # position in the prompt file; seeds derive from it
    prompt: MiningPrompt
    samples: tuple[Sample, ...]

    @property
    def scored(self) -> list[Sample]:
        return [s for s in self.samples if s.flr is not None]

    def best(self) -> Sample | None:
        """Highest FLR; ties go to the earliest sample."""
        scored = self.scored
        return max(scored, key=lambda s: (s.flr, -s.index)) if scored else None

    def worst(self) -> Sample | None:
        """Lowest FLR; ties go to the earliest sample."""
        scored = self.scored
        return min(scored, key=lambda s: (s.flr, s.index)) if scored else None

    def to_record(self) -> dict[str, Any]:
        return {"index": self.index, "prompt": self.prompt.to_record(),
                "samples": [s.to_record() for s in self.samples]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "PromptSamples":
        prompt = prompt_from_record(record["prompt"], "cache record")
        return cls(int(record["index"]), prompt,
                   tuple(Sample.from_record(s) for s in record["samples"]))


class Policy(Protocol):
    """What mining needs from the model that writes the replies."""

    @property
    def identity(self) -> str:
        """Stable id of the weights, for cache keys."""
        ...

    def generate(self, prompts: Sequence[MiningPrompt], indices: Sequence[int],
                 config: MiningConfig) -> list[list[Generation]]:
        """K generations per prompt; `indices` are the prompts' positions (they seed sampling)."""
        ...


def sample_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """A 63-bit seed for one (prompt, sample), independent of batching and resume."""
    digest = hashlib.sha256(f"{seed}:{prompt_index}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class TransformersPolicy:
    """Samples replies from a transformers causal LM with its chat template."""

    def __init__(self, model: Any, tokenizer: Any, identity: str, max_context: int | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._identity = identity
        self.max_context = max_context  # prompt + reply tokens the model takes; None = unchecked

    @classmethod
    def from_loaded(cls, loaded: "LoadedModel") -> "TransformersPolicy":
        dtype = str(getattr(loaded, "dtype", "")).removeprefix("torch.")
        return cls(loaded.model, loaded.tokenizer, f"{loaded.identity}|{dtype}",
                   getattr(loaded, "max_context", None))

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, prompt: MiningPrompt) -> str:
        """The prompt as the model sees it, ending where the assistant's reply starts."""
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(prompt.messages(), tokenize=False,
                                                      add_generation_prompt=True)
        # No chat template: the engine's plain layout (`User: ...` / `Assistant: ...`), open reply.
        from core.engine.rendering import PLAIN_TEMPLATE

        text = self.tokenizer.apply_chat_template(prompt.messages(), chat_template=PLAIN_TEMPLATE,
                                                  tokenize=False)
        return text + "\n\nAssistant:"

    def encode(self, prompt: MiningPrompt) -> list[int]:
        # A chat template writes its own special tokens; the plain layout gets the tokenizer's
        # usual ones (a BOS token), as the engine encodes it.
        ids = list(self.tokenizer(self.render(prompt), add_special_tokens=not self.has_chat_template)
                   ["input_ids"])
        return ids

    def generate(self, prompts: Sequence[MiningPrompt], indices: Sequence[int],
                 config: MiningConfig) -> list[list[Generation]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        if len(prompts) != len(indices):
            raise ValueError("one index per prompt is needed")
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else self._eos_ids()[0]
        encoded = [self.encode(p) for p in prompts]
        for prompt, ids in zip(prompts, encoded):
            if self.max_context and len(ids) + config.max_new_tokens > self.max_context:
                raise InputError(
                    f"prompt {prompt.id}: {len(ids)} tokens plus {config.max_new_tokens} new tokens exceed "
                    f"the policy model's context of {self.max_context}; shorten the prompt or lower "
                    "max new tokens"
                )
        width = max(len(ids) for ids in encoded)
        k = config.samples
        rows, masks, generators = [], [], []
        for ids, prompt_index in zip(encoded, indices):
            pad = width - len(ids)  # left padding: every row's reply starts at column `width`
            for sample_index in range(k):
                rows.append([pad_id] * pad + ids)
                masks.append([0] * pad + [1] * len(ids))
                generators.append(torch.Generator().manual_seed(sample_seed(config.seed, prompt_index,
                                                                            sample_index)))
        device = self.model.device
        input_ids = torch.tensor(rows, dtype=torch.long, device=device)
        attention_mask = torch.tensor(masks, dtype=torch.long, device=device)
        eos_ids = self._eos_ids()
        gen_config = GenerationConfig(do_sample=False, max_new_tokens=config.max_new_tokens,
                                      pad_token_id=pad_id, eos_token_id=eos_ids)
        sampler = RowSampler(generators, config.temperature, config.top_p)
        output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                     generation_config=gen_config,
                                     logits_processor=LogitsProcessorList([sampler]))
        new_tokens = output[:, width:].tolist()
        results: list[list[Generation]] = []
        for p in range(len(prompts)):
            results.append([self._decode(new_tokens[p * k + s], eos_ids) for s in range(k)])
        return results

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (configured, self.tokenizer.eos_token_id):
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(v, int) and v not in ids:
                    ids.append(v)
        if not ids:
            raise ConfigError("the policy's tokenizer has no end-of-sequence token; cannot tell where a reply ends")
        return ids

    def _decode(self, tokens: list[int], eos_ids: list[int]) -> Generation:
        finished = False
        for pos, token in enumerate(tokens):
            if token in eos_ids:
                tokens, finished = tokens[:pos], True
                break
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return Generation(text, finished)


class RowSampler:
    """Logits processor: temperature + top-p sampling with one generator per batch row.

    Returns a one-hot score row (0 for the drawn token, -inf elsewhere), so greedy decoding
    emits exactly the drawn token. Tokens are drawn by inverse CDF over the sorted nucleus, so a
    row's draw depends only on its own logits and generator.
    """

    def __init__(self, generators: Sequence[Any], temperature: float, top_p: float) -> None:
        self.generators = list(generators)
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} generators")
        scores = scores.float()
        if self.temperature == 0:
            chosen = scores.argmax(dim=-1)
        else:
            probs = torch.softmax(scores / self.temperature, dim=-1)
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            cumulative = sorted_probs.cumsum(dim=-1)
            # Keep the smallest prefix whose mass reaches top_p (the top token is always kept).
            keep = (cumulative - sorted_probs) < self.top_p
            keep[:, 0] = True
            sorted_probs = sorted_probs * keep
            cumulative = sorted_probs.cumsum(dim=-1)
            draws = torch.stack([torch.rand((), generator=g) for g in self.generators])
            targets = (draws.to(scores.device) * cumulative[:, -1]).unsqueeze(-1)
            positions = torch.searchsorted(cumulative, targets).clamp(max=scores.shape[-1] - 1)
            # Never land on a token outside the nucleus (possible only through rounding).
            kept_count = keep.sum(dim=-1, keepdim=True) - 1
            positions = torch.minimum(positions, kept_count)
            chosen = order.gather(-1, positions).squeeze(-1)
        one_hot = torch.full_like(scores, float("-inf"))
        one_hot.scatter_(-1, chosen.unsqueeze(-1), 0.0)
        return one_hot


def run_key(policy: Policy, scorer: "Scorer", followups: FollowupSet,
            config: MiningConfig) -> dict[str, Any]:
    """Everything that decides the samples and their rewards."""
    return {"policy": policy.identity, "scorer": scorer.identity,
            "followups": followups.fingerprint(), **config.sampling_key()}


def key_digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class SampleCache:
    """Append-only JSONL of finished prompts for one run key, in `DIR/cache/`."""

    def __init__(self, output_dir: str | Path, key: Mapping[str, Any]) -> None:
        digest = key_digest(key)
        folder = Path(output_dir) / CACHE_FOLDER
        self.path = folder / f"samples-{digest}.jsonl"
        self.key_path = folder / f"run-{digest}.json"
        self.key = dict(key)

    def load(self, prompts: Sequence[MiningPrompt]) -> dict[int, PromptSamples]:
        """Cached results whose prompt still matches the prompt at that position."""
        if not self.path.is_file():
            return {}
        done: dict[int, PromptSamples] = {}
        with self.path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    result = PromptSamples.from_record(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    # A run killed mid-write leaves a partial line; that prompt is redone.
                    log.warning("%s, line %d: unreadable cache record, the prompt will be sampled again",
                                self.path, lineno)
                    continue
                if result.index < len(prompts) and prompts[result.index] == result.prompt:
                    done[result.index] = result
        return done

    def append(self, results: Iterable[PromptSamples]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists():
            self.key_path.write_text(json.dumps(self.key, indent=2), encoding="utf-8")
        needs_newline = self.path.is_file() and self.path.stat().st_size > 0 and not \
            self.path.read_bytes().endswith(b"\n")
        with self.path.open("a", encoding="utf-8") as handle:
            if needs_newline:
                handle.write("\n")
            for result in results:
                handle.write(json.dumps(result.to_record(), ensure_ascii=False) + "\n")
            handle.flush()


def mine(prompts: Sequence[MiningPrompt], policy: Policy, scorer: "Scorer", followups: FollowupSet,
         config: MiningConfig, output_dir: str | Path | None = None,
         progress: ProgressCallback | None = None) -> list[PromptSamples]:
    """Sample, score and keep every reply; with `output_dir`, cache as it goes and resume.

    `progress(done, total)` counts replies (prompts x samples), those from the cache included;
    it advances as the scorer finishes each reply.
    """
    cache = SampleCache(output_dir, run_key(policy, scorer, followups, config)) if output_dir else None
    done = cache.load(prompts) if cache else {}
    if done:
        log.info("resuming: %d of %d prompts already mined", len(done), len(prompts))
    k = config.samples
    total = len(prompts) * k
    if progress:
        progress(len(done) * k, total)
    todo = [i for i in range(len(prompts)) if i not in done]
    for start in range(0, len(todo), config.batch_size):
        batch = todo[start:start + config.batch_size]
        generations = policy.generate([prompts[i] for i in batch], batch, config)
        if len(generations) != len(batch) or any(len(g) != k for g in generations):
            raise RuntimeError("the policy returned the wrong number of generations")
        base = len(done) * k
        scoring_progress = (lambda n, _total: progress(base + n, total)) if progress else None
        results = score_generations([prompts[i] for i in batch], batch, generations, scorer, followups,
                                    scoring_progress)
        if cache:
            cache.append(results)
        for result in results:
            done[result.index] = result
        if progress:
            progress(len(done) * k, total)
    return [done[i] for i in range(len(prompts))]


def score_generations(prompts: Sequence[MiningPrompt], indices: Sequence[int],
                      generations: Sequence[Sequence[Generation]], scorer: "Scorer",
                      followups: FollowupSet,
                      progress: ProgressCallback | None = None) -> list[PromptSamples]:
    """Score every non-empty generation in one `score_many` call."""
    conversations, slots = [], []
    for p, gens in enumerate(generations):
        for s, gen in enumerate(gens):
            if gen.text.strip():
                conversations.append(prompts[p].with_reply(gen.text))
                slots.append((p, s))
    scores = scorer.score_many(conversations, followups, progress=progress) if conversations else []
    by_slot = dict(zip(slots, scores))
    results = []
    for p, gens in enumerate(generations):
        samples = []
        for s, gen in enumerate(gens):
            score = by_slot.get((p, s))
            if score is None:
                samples.append(Sample(s, gen.text, None, {}, gen.finished, EMPTY_REPLY))
            else:
                samples.append(Sample(s, gen.text, score.flr, {c.name: c.flr for c in score.categories},
                                      gen.finished))
        results.append(PromptSamples(indices[p], prompts[p], tuple(samples)))
    return results


def load_policy(config: ScoringConfig) -> TransformersPolicy:
    """Load a policy model with `core.engine.models.load_model` (a `ScoringConfig` names it)."""
    from core.engine.models import load_model

    return TransformersPolicy.from_loaded(load_model(config))
