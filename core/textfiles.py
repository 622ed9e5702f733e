"""Reading and writing the user's files safely: one-line errors, capped reads, atomic outputs.

`read_text` is how every user-supplied text file is read (benchmarks, score inputs, follow-up
sets, ELO tables, prompt files, feedback triples): a missing, unreadable or folder path, a
damaged gzip stream, a file larger than `InputLimits.file_mb` once decompressed (a gzip bomb
stops at the cap, never in memory) and text that is not UTF-8 each become one `InputError`
naming the file and what to do.

`atomic_output` is how every output is written: into a temporary file beside the target,
renamed into place only when the writing finished, so a run that fails half way leaves an
existing output untouched and never a half-written file.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator

from core.errors import InputError
from core.limits import InputLimits, hint

_CHUNK = 1 << 20


def read_bytes(path: str | Path, error: type[InputError] = InputError, *, label: str | None = None,
               what: str = "file", limits: InputLimits | None = None) -> bytes:
    """The bytes of `path`, decompressed when its name ends in `.gz`, at most `file_mb` of them."""
    path = Path(path)
    label = str(path) if label is None else label
    limits = limits or InputLimits.current()
    cap = limits.file_bytes
    too_big = (f"{label}: the {what} holds more than {limits.file_mb:,} MB of data"
               f"{' once decompressed' if _gzipped(path) else ''}; split it, or raise the limit "
               f"with {hint('file_mb')}")
    try:
        if path.is_dir():
            raise error(f"{label}: is a folder; pass the {what} itself")
        with path.open("rb") as raw:
            stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if _gzipped(path) else raw
            data = stream.read(cap + 1)
    except (gzip.BadGzipFile, zlib.error) as err:
        raise error(f"{label}: damaged gzip data ({err}); compress the file again or pass it "
                    "uncompressed") from None
    except EOFError:
        raise error(f"{label}: the gzip file is cut short; copy or compress it again") from None
    except OSError as err:
        reason = err.strerror or str(err)
        raise error(f"{label}: cannot read the {what} ({reason}); check the path and its permissions") from None
    if len(data) > cap:
        raise error(too_big)
    return data


def read_text(path: str | Path, error: type[InputError] = InputError, *, label: str | None = None,
              what: str = "file", limits: InputLimits | None = None) -> str:
    """`read_bytes` decoded as UTF-8 (a byte-order mark, as Excel writes, is dropped)."""
    label = str(path) if label is None else label
    data = read_bytes(path, error, label=label, what=what, limits=limits)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{label}: not UTF-8 text (byte {err.start}); save the {what} as UTF-8") from None


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


@contextlib.contextmanager
def atomic_output(path: str | Path, error: type[InputError] = InputError, *,
                  mode: str = "w") -> Iterator[IO]:
    """A file handle whose content replaces `path` only when the block ends without an error.

    The temporary file sits in the target's folder (a rename across file systems is not
    atomic) and is removed when the block fails, leaving any existing `path` as it was."""
    path = Path(path)
    tmp = _temporary(path, error)
    try:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
        with contextlib.suppress(OSError):  # mkstemp makes 0600; keep the old file's mode
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(path: str | Path, error: type[InputError] = InputError) -> None:
    """Refuse early an output path that cannot be written (a folder, a read-only folder), so a
    long run does not fail at its very end; creates missing parent folders."""
    tmp = _temporary(Path(path), error)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _temporary(path: Path, error: type[InputError]) -> str:
    """A new empty file beside `path` (same file system, so renaming it over `path` is atomic)."""
    try:
        if path.is_dir():
            raise error(f"{path}: is a folder; name a file to write")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise error(f"{path}: cannot write here ({err.strerror or err}); choose another path or "
                    "check its folder's permissions") from None
    return tmp


def write_text(path: str | Path, text: str, error: type[InputError] = InputError) -> None:
    """`text` written to `path` atomically (see `atomic_output`)."""
    with atomic_output(path, error) as handle:
        handle.write(text)


def write_json(path: str | Path, data: Any, error: type[InputError] = InputError) -> None:
    """`data` as indented UTF-8 JSON, written to `path` atomically and readable by others
    (see `atomic_output`)."""
    write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n", error)
