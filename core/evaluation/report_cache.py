"""Where cached results live, and a memo of finished `evaluate` reports.

Everything here is standard library only, so the `evaluate` command can find out whether an
identical run already finished before it imports pandas, scipy or torch.

- `default_cache_path()`: the SQLite file shared with the score cache (`core.evaluation.score_cache`),
  `$FLR_CACHE_DIR/scores.sqlite`, else `~/.cache/flr-studio/scores.sqlite`; `open_cache()`
  opens it (timeout, WAL journal) for both.
- `model_key(config)`: what decides which weights a configuration loads, known without
  loading them (the model name, device, dtype, and for a local model its files' sizes and
  modification times).
- The report memo: a finished run stores its printed table, its REPORT.json text and its
  exported files under a key made of every input file's bytes, the scoring and evaluation
  settings, the follow-up set, the ELO table, the code of `core/` and the bundled data in `assets/`. A rerun with the same key
  gets the same bytes back. Any change to the inputs, the settings or the code is a new key, so
  a stale report is never returned; a run that was stopped stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from core.engine.config import ScoringConfig
from core.engine.models import adapter_base, is_adapter_folder
from core.errors import ModelLoadError
from core.locations import ASSETS_DIR, CODE_DIR, cache_dir

log = logging.getLogger(__name__)

CACHE_FILE = "scores.sqlite"
KNOWN_TABLES = ("scores", "failures", "identities", "dtypes", "reports")  # every table this program makes
MAX_MEMO_BYTES = 32 * 1024 * 1024  # larger exports are recomputed rather than stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    key TEXT PRIMARY KEY, table_text TEXT NOT NULL, report_json TEXT NOT NULL,
    exports TEXT, created REAL NOT NULL);
"""


def default_cache_path() -> Path:
    """`$FLR_CACHE_DIR/scores.sqlite`, else `~/.cache/flr-studio/scores.sqlite` (never the checkout)."""
    return cache_dir() / CACHE_FILE


def open_cache(path: str | Path | None, schema: str) -> sqlite3.Connection:
    """The cache file at `path` (None: in memory, for one run) with `schema` created. The score
    cache and the report memo share one file, so both open it here, the same way.

    A cache is only a cache, so it never stops a run: a file that is not an SQLite database
    (damaged) is renamed aside with a timestamp and a fresh one is started; another program's
    database, a folder, or a file that cannot be opened or written is left alone and this run
    keeps its cache in memory. Either way a warning says what happened and what to do."""
    if path is None:
        return _connect(":memory:", schema)
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(str(path), schema)
    except sqlite3.OperationalError as err:  # a folder, no permission, read-only, locked
        return _bypass(path, schema, f"cannot be opened or written ({err})")
    except sqlite3.DatabaseError as err:  # not a database, or a damaged one
        aside = _move_aside(path)
        if aside is None:
            return _bypass(path, schema, f"is damaged ({err}) and cannot be moved aside")
        log.warning("score cache %s was damaged (%s); moved it to %s and started a fresh cache",
                    path, err, aside.name)
        try:
            return _connect(str(path), schema)
        except sqlite3.Error as again:
            return _bypass(path, schema, f"cannot be recreated ({again})")
    except OSError as err:
        return _bypass(path, schema, f"cannot be created ({err.strerror or err})")
    foreign = _foreign_tables(db, schema)
    if foreign:
        db.close()
        return _bypass(path, schema, f"belongs to another program (tables {', '.join(foreign)})")
    return db


def _connect(target: str, schema: str) -> sqlite3.Connection:
    db = sqlite3.connect(target, timeout=60, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # readers do not block a running job
    except sqlite3.OperationalError:
        pass  # some file systems refuse WAL; the default journal works too
    except sqlite3.DatabaseError:
        db.close()
        raise
    try:
        if not _foreign_tables(db, schema):
            db.executescript(schema)
            db.commit()
    except sqlite3.Error:
        db.close()
        raise
    return db


def _foreign_tables(db: sqlite3.Connection, schema: str) -> list[str]:
    """Tables that this program did not make: unknown names, or known names with other columns."""
    expected = sqlite3.connect(":memory:")
    expected.executescript(schema)
    ours = {name: _columns(expected, name) for name in _tables(expected)}
    expected.close()
    foreign = []
    for name in _tables(db):
        if name not in KNOWN_TABLES or (name in ours and _columns(db, name) != ours[name]):
            foreign.append(name)
    return foreign


def _tables(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info('{table}')")]


def _move_aside(path: Path) -> Path | None:
    """Rename a damaged cache (and its journal files) to `NAME.damaged-YYYYmmdd-HHMMSS`."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for n in range(2, 100):  # never rename over an earlier damaged copy
        if not aside.exists():
            break
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    try:
        path.rename(aside)
    except OSError:
        return None
    for suffix in ("-wal", "-shm"):
        journal = path.with_name(path.name + suffix)
        if journal.exists():
            try:
                journal.rename(aside.with_name(aside.name + suffix))
            except OSError:
                pass
    return aside


def _bypass(path: Path, schema: str, why: str) -> sqlite3.Connection:
    log.warning("score cache %s %s; this run keeps its cache in memory (nothing is reused or "
                "saved); set FLR_CACHE_DIR to a writable folder, or pass --no-cache", path, why)
    return _connect(":memory:", schema)


def model_key(config: ScoringConfig) -> str:
    """What decides which weights a configuration loads, known without loading them."""
    key: dict[str, Any] = {"model": config.model, "device": config.device, "dtype": config.dtype,
                           "trust_remote_code": config.trust_remote_code}
    path = Path(config.model).expanduser()
    try:
        if path.is_file():
            st = path.stat()
            key["files"] = [[path.name, st.st_size, st.st_mtime_ns]]
        elif path.is_dir():
            key["files"] = sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns]
                                  for p in path.iterdir() if p.is_file())
    except OSError:
        pass  # not a readable local path: the name alone identifies it
    if path.is_dir() and is_adapter_folder(path):  # its scores change with the base's weights too
        try:
            key["base"] = json.loads(model_key(config.with_changes(model=adapter_base(path))))
        except ModelLoadError:
            pass  # loading it fails with that message; nothing is cached for it
    return json.dumps(key, sort_keys=True)


def _hash_file(digest: Any, path: Path, name: str) -> None:
    digest.update(name.encode("utf-8") + b"\0")
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    digest.update(b"\0")


def _input_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += [(p, f"{path}/{p.relative_to(path)}") for p in sorted(path.rglob("*"))
                    if p.is_file() and not p.name.startswith(".")]
        elif path.is_file():
            out.append((path, str(path)))
        else:
            return []  # a missing input: no key; the normal path reports the error
    return out


def memo_key(paths: Sequence[str | Path], config: ScoringConfig, settings: Mapping[str, Any],
             extra_files: Sequence[Path]) -> str | None:
    """The key of a run, or None when an input cannot be read (then nothing is memoised)."""
    files = _input_files(paths)
    if not files:
        return None
    digest = hashlib.sha256()
    digest.update(json.dumps({"config": config.as_dict(), "model": model_key(config),
                              "settings": dict(settings)}, sort_keys=True, default=str).encode())
    try:
        for path, name in files:
            _hash_file(digest, path, "input:" + name)
        for path in extra_files:  # follow-up set, ELO table
            _hash_file(digest, path, "extra:" + path.name)
        for path in sorted(CODE_DIR.rglob("*.py")):  # any change to the code is a new key
            _hash_file(digest, path, "code:" + path.relative_to(CODE_DIR).as_posix())
        for path in sorted(ASSETS_DIR.glob("*.json")):  # built-in ELO table
            _hash_file(digest, path, "asset:" + path.name)
    except OSError:
        return None
    return digest.hexdigest()


class ReportMemo:
    """Finished reports by key, in the same SQLite file as the score cache."""

    def __init__(self, path: str | Path) -> None:
        self._db = open_cache(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ReportMemo":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> tuple[str, str, dict[str, str] | None] | None:
        """(printed table, REPORT.json text, exported files by name or None)."""
        try:
            row = self._db.execute("SELECT table_text, report_json, exports FROM reports WHERE key = ?",
                                   (key,)).fetchone()
        except sqlite3.Error as err:  # damaged while open: the run goes on without the memo
            log.warning("report memo unreadable (%s); computing the report", err)
            return None
        if row is None:
            return None
        return row[0], row[1], (json.loads(row[2]) if row[2] is not None else None)

    def put(self, key: str, table_text: str, report_json: str,
            exports: Mapping[str, str] | None) -> None:
        blob = json.dumps(dict(exports), ensure_ascii=False) if exports is not None else None
        if blob is not None and len(blob) > MAX_MEMO_BYTES:
            blob = None
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO reports VALUES (?, ?, ?, ?, ?)",
                                 (key, table_text, report_json, blob, time.time()))
        except sqlite3.Error as err:
            log.warning("report memo not saved (%s); the report itself is written", err)
