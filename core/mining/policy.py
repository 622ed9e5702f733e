"""The policy model that writes the replies mining scores: `Policy`, its transformers version,
and `MiningConfig` (how the replies are sampled).

Shortcuts and choices made on purpose:
- Sampling is done by a logits processor that draws each row's token with its own
  `torch.Generator`, seeded from (seed, prompt index, sample index); `generate` then decodes
  greedily over a one-hot distribution. transformers' own sampler draws from one global RNG,
  which would make a sample depend on which prompts shared its batch and on resuming.
- Generation uses a fresh `GenerationConfig` (temperature, top-p, max new tokens only), not the
  model's bundled one, so a model's repetition penalty or top-k never changes the samples
  silently.
- When the policy is the scorer's own model, `policy_for` reuses the scorer's weights instead of
  loading a second copy.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from core.engine.config import ScoringConfig
from core.errors import ConfigError, InputError
from core.mining.prompts import MiningPrompt

if TYPE_CHECKING:
    from core.engine.models import LoadedModel
    from core.engine.scorer import Scorer


MAX_SAMPLES = 256  # replies per prompt; more is a typo, not a plan
MAX_NEW_TOKENS = 32_768  # longer than any context the engine scores
MAX_TEMPERATURE = 100.0  # beyond this, sampling is uniform noise


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
        if self.samples > MAX_SAMPLES:
            raise ConfigError(f"samples per prompt must be at most {MAX_SAMPLES}; got {self.samples!r}")
        if not isinstance(self.max_new_tokens, int) or not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise ConfigError(f"max new tokens must be a positive integer of at most {MAX_NEW_TOKENS}; "
                              f"got {self.max_new_tokens!r}")
        if not math.isfinite(self.temperature) or not 0 <= self.temperature <= MAX_TEMPERATURE:
            raise ConfigError(f"temperature must be 0 (greedy) or a positive number up to "
                              f"{MAX_TEMPERATURE:g}; got {self.temperature!r}")
        if not math.isfinite(self.top_p) or not 0 < self.top_p <= 1:
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


def load_policy(config: ScoringConfig) -> TransformersPolicy:
    """Load a policy model with `core.engine.models.load_model` (a `ScoringConfig` names it)."""
    from core.engine.models import load_model

    return TransformersPolicy.from_loaded(load_model(config))


def policy_for(config: ScoringConfig, scorer: "Scorer") -> Policy:
    """The policy `config` names: the scorer's own weights when it is the same model (one model
    plays both parts, loaded once), else a freshly loaded model."""
    from core.engine.scorer import FLRScorer

    if isinstance(scorer, FLRScorer) and scorer.config.model == config.model:
        return TransformersPolicy.from_loaded(scorer.loaded)
    return load_policy(config)
