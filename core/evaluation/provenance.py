"""Where a report's numbers come from: the tool's version, the model's resolved identity, the
follow-up set's hash, the dtype decision and the time, recorded in REPORT.json's `settings.provenance`.

The tool's version is the git commit of this checkout when there is one (with `+dirty` for
uncommitted changes), else the version in pyproject.toml; it is looked up once per process.
"""

from __future__ import annotations

import datetime as _dt
import functools
import subprocess
import tomllib
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def tool_version() -> str:
    """`git:<commit>[+dirty]` of the checkout, else `flr-studio <version>`, else "unknown"."""
    try:
        commit = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return f"git:{commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    version = package_version()
    return "unknown" if version is None else f"flr-studio {version}"


@functools.lru_cache(maxsize=1)
def package_version() -> str | None:
    """The version in pyproject.toml (its one home), or None without one."""
    try:
        return str(tomllib.loads((_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None


def provenance(model: str, model_identity: str | None, followups_hash: str,
               dtype: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `provenance` block of a report's settings (`dtype`: what `--dtype` resolved to when
    the scores were computed, and why, with the CPU; `core.engine.precision.DtypeDecision.as_dict`;
    left out when it is not known)."""
    block = {"tool_version": tool_version(), "model": model,
             "model_revision": model_identity,  # hub commit, local files' fingerprint, or None
             "followups_sha": followups_hash,
             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if dtype is not None:
        block["dtype"] = dtype
    return block

