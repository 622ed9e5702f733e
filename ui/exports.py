"""Folders for the files a visitor downloads, removed again once they are old.

Each run writes its downloads into a fresh folder under `AppSettings.exports_dir`; gradio copies
what a handler returns into its own cache (which `gr.Blocks(delete_cache=...)` clears), so the
originals are only needed for a moment. Making a new folder prunes those older than
`AppSettings.export_max_age`, so a long-running Space's disk does not fill up with old runs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from ui.settings import AppSettings

log = logging.getLogger(__name__)


def new_folder(settings: AppSettings, kind: str) -> Path:
    """A fresh, empty folder for one run's downloads (`kind`: batch, score, mine)."""
    root = settings.exports_dir
    root.mkdir(parents=True, exist_ok=True)
    prune(root, settings.export_max_age)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))


def prune(root: Path, max_age: float, now: float | None = None) -> list[Path]:
    """Remove the run folders under `root` last changed more than `max_age` seconds ago."""
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir():
        try:
            old = folder.is_dir() and now - folder.stat().st_mtime > max_age
        except FileNotFoundError:  # another request pruned it first
            continue
        if old:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("removed %d export folder(s) older than %d s", len(removed), max_age)
    return removed
