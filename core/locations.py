"""Where FLR Studio's files live: the bundled assets and the user's cache folder.

One function decides the cache folder (`cache_dir`), so converted models, the score cache and the
app's work files all honour `FLR_CACHE_DIR` the same way. Computed on each call, never at import
time, so a variable set after import (a test, a Space's settings) still counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

CACHE_DIR_ENV = "FLR_CACHE_DIR"  # overrides the default cache folder
CODE_DIR = Path(__file__).resolve().parent  # the `core` package itself
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"  # follow-up set, ELO table, samples


DEFAULT_CACHE_DIR = Path(".cache") / "flr-studio"  # under the home folder
CACHE_DIR_TEXT = f"${CACHE_DIR_ENV}, else ~/{DEFAULT_CACHE_DIR.as_posix()}"  # for help texts: no user's path


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$FLR_CACHE_DIR`, else `~/.cache/flr-studio` (never inside the checkout)."""
    env = os.environ if environ is None else environ
    folder = env.get(CACHE_DIR_ENV)
    return Path(folder).expanduser() if folder else Path.home() / DEFAULT_CACHE_DIR
