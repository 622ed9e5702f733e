"""Telling, within seconds, whether a model name can be loaded here, before transformers tries.

Without a network, `from_pretrained("org/model")` retries for about a minute before it fails,
and a mistyped local path is reported as a malformed Hub id. So before loading:

- a name that looks like a path (starts with `./`, `../`, `/` or `~`, ends with a separator,
  or has more separators than `org/name`) and does not exist is "no such folder";
- a Hub id found in the local Hugging Face cache is loaded from it without asking the Hub when
  the Hub cannot be reached (`HF_HUB_OFFLINE=1`, or a connection probe of a few seconds fails);
- a Hub id that is not in the cache fails at once in those cases, saying how to pass a local
  folder or fill the cache.

Shortcut taken on purpose: the probe opens one TCP connection to the Hub's host (in a thread, so
a stuck name lookup cannot hold it either); a reachable host that then fails mid-download is
left to transformers' own messages.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from core.errors import ModelLoadError
from core.names import TRUE_WORDS

PROBE_SECONDS = 3.0  # how long the Hub gets to accept a connection
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


def looks_like_path(name: str) -> bool:
    """Whether `name` is meant as a local path rather than a Hub id `org/name`."""
    if name.startswith(("./", "../", "/", "~", ".\\", "..\\")) or name in (".", ".."):
        return True
    if name.endswith(("/", "\\")) or "\\" in name or (os.altsep and os.altsep in name):
        return True
    return name.count("/") > 1


def check_local_path(name: str) -> None:
    """Refuse a path-like name that does not exist, saying so (not "malformed repo id")."""
    if looks_like_path(name) and not Path(name).expanduser().exists():
        raise ModelLoadError(
            f"{name}: no such folder or file; pass a folder saved with save_pretrained, a .gguf "
            "file, a Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct, or 'embedded'")
    if not looks_like_path(name) and not _HUB_ID.match(name):
        raise ModelLoadError(
            f"{name!r} is neither an existing folder nor a Hub id of the form org/name; check the "
            "spelling, or pass a local folder")


def offline_reason() -> str | None:
    """Why the Hub cannot be used now (None when it can): the environment says so, or the
    Hub's host does not accept a connection within `PROBE_SECONDS`."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in TRUE_WORDS:
            return f"{variable} is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    if not _reachable(host, port, PROBE_SECONDS):
        return f"{host} cannot be reached"
    return None


def is_cached(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds the model's config (it was downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id or an unreadable cache: treat as not cached
        return False
    return isinstance(found, str)


def prepare_hub_load(repo_id: str) -> bool:
    """Check that Hub id `repo_id` can be loaded; True when it must be loaded from the local
    cache only (the Hub is out of reach but the cache has it). Raises at once otherwise."""
    reason = offline_reason()
    if reason is None:
        return False
    if is_cached(repo_id):
        return True
    raise ModelLoadError(
        f"model {repo_id!r} is not in the local Hugging Face cache and the Hub cannot be used "
        f"({reason}); pass a local folder with --model ./path/to/model (saved with "
        "save_pretrained), a .gguf file or 'embedded', or download it once on a machine with "
        "network (hf download ORG/NAME) and copy the cache folder (HF_HOME)")


def _reachable(host: str, port: int, seconds: float) -> bool:
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=seconds):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(result and result[0])
