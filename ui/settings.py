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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from core.engine.config import ScoringConfig
from core.errors import ConfigError
from core.names import TRUE_WORDS
from core.evaluation.hub import parse_allowed_datasets
from core.locations import cache_dir
from ui.client_limits import parse_trusted_proxies

DEFAULT_MAX_FILE_SIZE = "50mb"  # per uploaded file; benchmark files larger than this belong on the CLI
HOSTED_RUN_CONVERSATIONS = 2_000  # per Batch run in hosted mode: minutes of a Space, not hours


@dataclass(frozen=True)
class AppSettings:
    config: ScoringConfig = field(default_factory=ScoringConfig)  # defaults for every tab
    allowed_models: tuple[str, ...] = ()  # non-empty = hosted mode: only these models load
    max_file_size: str = DEFAULT_MAX_FILE_SIZE  # gradio's upload limit, e.g. "50mb"
    concurrency: int = 1  # model jobs running at once; others wait in the queue
    gpu_seconds: int = 60  # ZeroGPU time budget per call; batch runs are split into such chunks
    zero_gpu: bool = False  # SPACES_ZERO_GPU: model work runs in `spaces.GPU` workers (ui/gpu.py)
    space_id: str = ""  # SPACE_ID, set by Hugging Face on a Space: hosted mode, model list fixed
    queue_size: int = 32  # events waiting in gradio's queue at most; more get "queue full"
    export_max_age: int = 6 * 3600  # seconds an export folder (downloads) is kept on the server
    request_seconds: int = 600  # a Score or Compare request's model work stops after this long
    work_dir: Path = field(default_factory=lambda: cache_dir() / "app")  # score cache and exports
    allowed_datasets: tuple[str, ...] = ()  # hosted mode: the only datasets by name (Hub ids)
    run_conversations: int = HOSTED_RUN_CONVERSATIONS  # hosted mode: new conversations per Batch run
    events_per_client: int = 4  # hosted mode: one visitor's events waiting or running in the queue
    uploads_per_client: int = 20  # hosted mode: one visitor's uploads per upload window
    upload_mb_per_client: int = 200  # hosted mode: their bytes (4 files at the 50 MB upload limit)
    upload_window: int = 600  # seconds the two upload counts are kept
    trusted_proxies: tuple[str, ...] | None = None  # whose X-Forwarded-For names the visitor; None: default
    server_name: str = "127.0.0.1"
    server_port: int = 7860

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
        """`FLR_*` scoring settings plus FLR_ALLOWED_MODELS, FLR_MAX_FILE_SIZE, FLR_CONCURRENCY,
        FLR_GPU_SECONDS, FLR_QUEUE_SIZE, FLR_EXPORT_MAX_AGE, FLR_REQUEST_SECONDS, FLR_WORK_DIR,
        FLR_ALLOWED_DATASETS, FLR_MAX_RUN_CONVERSATIONS, FLR_MAX_EVENTS_PER_CLIENT,
        FLR_MAX_UPLOADS_PER_CLIENT, FLR_MAX_UPLOAD_MB_PER_CLIENT, FLR_UPLOAD_WINDOW,
        FLR_TRUSTED_PROXIES, GRADIO_SERVER_NAME,
        GRADIO_SERVER_PORT, and from Hugging Face: SPACE_ID and SPACES_ZERO_GPU."""
        env = os.environ if environ is None else environ
        config = ScoringConfig.from_env(env)
        space_id = env.get("SPACE_ID", "").strip()
        allowed = tuple(m.strip() for m in env.get("FLR_ALLOWED_MODELS", "").split(",") if m.strip())
        if space_id and not allowed:
            allowed = (config.model,)  # a Space serves only what its owner configured
        return cls(
            config=config,
            allowed_models=allowed,
            max_file_size=env.get("FLR_MAX_FILE_SIZE") or DEFAULT_MAX_FILE_SIZE,
            concurrency=_int(env, "FLR_CONCURRENCY", 1),
            gpu_seconds=_int(env, "FLR_GPU_SECONDS", 60),
            zero_gpu=env.get("SPACES_ZERO_GPU", "").strip().lower() in TRUE_WORDS,
            space_id=space_id,
            queue_size=_int(env, "FLR_QUEUE_SIZE", 32),
            export_max_age=_int(env, "FLR_EXPORT_MAX_AGE", 6 * 3600),
            request_seconds=_int(env, "FLR_REQUEST_SECONDS", 600),
            work_dir=Path(env.get("FLR_WORK_DIR") or cache_dir(env) / "app"),
            allowed_datasets=parse_allowed_datasets(env.get("FLR_ALLOWED_DATASETS")),
            run_conversations=_int(env, "FLR_MAX_RUN_CONVERSATIONS", HOSTED_RUN_CONVERSATIONS),
            events_per_client=_int(env, "FLR_MAX_EVENTS_PER_CLIENT", 4),
            uploads_per_client=_int(env, "FLR_MAX_UPLOADS_PER_CLIENT", 20),
            upload_mb_per_client=_int(env, "FLR_MAX_UPLOAD_MB_PER_CLIENT", 200),
            upload_window=_int(env, "FLR_UPLOAD_WINDOW", 600),
            trusted_proxies=parse_trusted_proxies(env.get("FLR_TRUSTED_PROXIES"), on_space=bool(space_id)),
            server_name=env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
            server_port=_int(env, "GRADIO_SERVER_PORT", 7860),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer; got {raw!r}") from None
