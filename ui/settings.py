"""App settings read once from the environment: scoring defaults plus hosting limits.

`FLR_ALLOWED_MODELS` (comma-separated) switches on hosted mode: visitors pick from that list
and cannot make the server download or open any other model. On a Hugging Face Space
(`SPACE_ID` set) hosted mode is always on: without `FLR_ALLOWED_MODELS` the list holds just the
configured model (`FLR_MODEL`). Without either the model is a free text box (Hub id, local
folder, .gguf file or "embedded"), which suits a local install.

In hosted mode the Batch tab's "Dataset by name" (and the public /evaluate API) takes only the
Hub ids listed in `FLR_ALLOWED_DATASETS` (none by default), and one run scores at most
`FLR_MAX_RUN_CONVERSATIONS` conversations not already cached. Each visitor (by address, see
`ui.client_limits`) has at most `FLR_MAX_EVENTS_PER_CLIENT` requests waiting or running, and
`FLR_MAX_UPLOADS_PER_CLIENT` uploads of `FLR_MAX_UPLOAD_MB_PER_CLIENT` MB in all per
`FLR_UPLOAD_WINDOW` seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from core.engine.config import ScoringConfig
from core.errors import ConfigError
from core.names import TRUE_WORDS
from core.evaluation.named_datasets import parse_allowed_datasets
from core.locations import cache_dir
from ui.client_limits import parse_trusted_proxies

DEFAULT_MAX_FILE_SIZE = "50mb"  # per uploaded file; benchmark files larger than this belong on the CLI
HOSTED_RUN_CONVERSATIONS = 2_000  # per Batch run in hosted mode: minutes of a Space, not hours


def _var(env: str, default: Any = None, *, factory: Callable[[], Any] | None = None,
         parse: Callable[[str], Any] | None = None) -> Any:
    """A setting read from the environment variable `env` by `AppSettings.from_env` (with
    `parse`, or by the default's type: int, str, comma-separated tuple); its default is written
    only here."""
    metadata = {"env": env, "parse": parse}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _words(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class AppSettings:
    config: ScoringConfig = field(default_factory=ScoringConfig)  # defaults for every tab (FLR_* of ScoringConfig)
    allowed_models: tuple[str, ...] = _var("FLR_ALLOWED_MODELS", ())  # non-empty = hosted mode: only these load
    max_file_size: str = _var("FLR_MAX_FILE_SIZE", DEFAULT_MAX_FILE_SIZE)  # gradio's upload limit, e.g. "50mb"
    concurrency: int = _var("FLR_CONCURRENCY", 1)  # model jobs running at once; others wait in the queue
    gpu_seconds: int = _var("FLR_GPU_SECONDS", 60)  # ZeroGPU time per call; batch runs are split into such chunks
    # SPACES_ZERO_GPU: model work runs in `spaces.GPU` workers (ui/gpu.py)
    zero_gpu: bool = _var("SPACES_ZERO_GPU", False, parse=lambda raw: raw.strip().lower() in TRUE_WORDS)
    space_id: str = _var("SPACE_ID", "")  # set by Hugging Face on a Space: hosted mode, model list fixed
    queue_size: int = _var("FLR_QUEUE_SIZE", 32)  # events waiting in gradio's queue at most; more get "queue full"
    export_max_age: int = _var("FLR_EXPORT_MAX_AGE", 6 * 3600)  # seconds an export folder (downloads) is kept
    request_seconds: int = _var("FLR_REQUEST_SECONDS", 600)  # a Score or Compare request's model work stops after
    # the score cache and exports; unset: <FLR_CACHE_DIR or ~/.cache/flr-studio>/app
    work_dir: Path = _var("FLR_WORK_DIR", factory=lambda: cache_dir() / "app", parse=Path)
    # hosted mode: the only datasets by name (Hub ids)
    allowed_datasets: tuple[str, ...] = _var("FLR_ALLOWED_DATASETS", (), parse=parse_allowed_datasets)
    run_conversations: int = _var("FLR_MAX_RUN_CONVERSATIONS", HOSTED_RUN_CONVERSATIONS)  # hosted: per Batch run
    events_per_client: int = _var("FLR_MAX_EVENTS_PER_CLIENT", 4)  # hosted: one visitor's events waiting or running
    uploads_per_client: int = _var("FLR_MAX_UPLOADS_PER_CLIENT", 20)  # hosted: one visitor's uploads per window
    upload_mb_per_client: int = _var("FLR_MAX_UPLOAD_MB_PER_CLIENT", 200)  # their bytes (4 files at 50 MB)
    upload_window: int = _var("FLR_UPLOAD_WINDOW", 600)  # seconds the two upload counts are kept
    # whose X-Forwarded-For names the visitor; None: the default for where the app runs
    trusted_proxies: tuple[str, ...] | None = _var("FLR_TRUSTED_PROXIES", None)
    server_name: str = _var("GRADIO_SERVER_NAME", "127.0.0.1")
    server_port: int = _var("GRADIO_SERVER_PORT", 7860)

    def __post_init__(self) -> None:
        object.__setattr__(self, "work_dir", Path(self.work_dir))
        if self.allowed_models and self.config.model not in self.allowed_models:
            # The Space owner's first listed model is the default when FLR_MODEL is not listed.
            object.__setattr__(self, "config", self.config.with_changes(model=self.allowed_models[0]))
        if self.run_conversations < 1:
            raise ConfigError(f"FLR_MAX_RUN_CONVERSATIONS must be at least 1; got {self.run_conversations}")
        for name, value in (("FLR_MAX_EVENTS_PER_CLIENT", self.events_per_client),
                            ("FLR_MAX_UPLOADS_PER_CLIENT", self.uploads_per_client),
                            ("FLR_MAX_UPLOAD_MB_PER_CLIENT", self.upload_mb_per_client),
                            ("FLR_UPLOAD_WINDOW", self.upload_window)):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1; got {value}")
        if self.trusted_proxies is None:
            object.__setattr__(self, "trusted_proxies", parse_trusted_proxies(None, on_space=bool(self.space_id)))
        if self.concurrency < 1:
            raise ConfigError(f"FLR_CONCURRENCY must be at least 1; got {self.concurrency}")
        if self.config.trust_remote_code and not self.allowed_models:
            raise ConfigError(
                "FLR_TRUST_REMOTE_CODE runs code that comes with a model, and the Model box would let "
                "any visitor name one; set FLR_ALLOWED_MODELS to the models you trust"
            )

    @property
    def hosted(self) -> bool:
        return bool(self.allowed_models)

    @property
    def dataset_policy(self) -> tuple[str, ...] | None:
        """The Hub ids a visitor may name as a dataset; None (anything) outside hosted mode."""
        return self.allowed_datasets if self.hosted else None

    @property
    def run_cap(self) -> int | None:
        """Conversations one Batch run may score (those not cached yet); None: no cap."""
        return self.run_conversations if self.hosted else None

    @property
    def datasets_dir(self) -> Path:
        """Parquet copies of the datasets named in hosted mode (downloads are not kept)."""
        return self.work_dir / "datasets"

    @property
    def cache_path(self) -> Path:
        return self.work_dir / "scores.sqlite"

    @property
    def exports_dir(self) -> Path:
        """Where each run's download files go, one folder per run, pruned after `export_max_age`."""
        return self.work_dir / "exports"

    def check_model(self, model: str) -> str:
        """The model name a visitor asked for, if this server may load it. In hosted mode the answer
        for a name that is not listed never depends on what exists on the server's disk."""
        model = (model or "").strip()
        if not model:
            raise ConfigError("choose a model: a Hub id, a local folder, a .gguf file or 'embedded'")
        if self.hosted and model not in self.allowed_models:
            raise ConfigError(
                f"model {model!r} is not offered on this server; choose one of "
                f"{', '.join(self.allowed_models)}"
            )
        return model

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "AppSettings":
        """The `FLR_*` scoring settings (`ScoringConfig.from_env`) and every field's variable
        (`_var`): FLR_ALLOWED_MODELS, FLR_CONCURRENCY, FLR_WORK_DIR, ..., GRADIO_SERVER_PORT, and
        from Hugging Face SPACE_ID and SPACES_ZERO_GPU. An unset or empty variable keeps the
        field's default (FLR_TRUSTED_PROXIES set empty means none)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"config": ScoringConfig.from_env(env)}
        for f in fields(cls):
            name = f.metadata.get("env")
            raw = env.get(name) if name else None
            if raw is None or (not raw.strip() and f.name != "trusted_proxies"):
                continue
            values[f.name] = _parse(f, name, raw)
        space_id = values.get("space_id", "")
        if "trusted_proxies" in values:
            values["trusted_proxies"] = parse_trusted_proxies(env["FLR_TRUSTED_PROXIES"], on_space=bool(space_id))
        if "work_dir" not in values:
            values["work_dir"] = cache_dir(env) / "app"  # this environment's cache, not the process's
        if space_id and not values.get("allowed_models"):
            values["allowed_models"] = (values["config"].model,)  # a Space serves only what its owner configured
        return cls(**values)


def _parse(f: Any, name: str, raw: str) -> Any:
    """One variable's text as its field's value (the field's `parse`, else by its default's type)."""
    if f.metadata.get("parse") is not None:
        return f.metadata["parse"](raw)
    if isinstance(f.default, bool):
        raise TypeError(f"{f.name}: a flag needs its own parse")  # bool is an int: never by type
    if isinstance(f.default, int):
        return _int({name: raw}, name, f.default)
    if isinstance(f.default, tuple):
        return _words(raw)
    return raw.strip()


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer; got {raw!r}") from None
