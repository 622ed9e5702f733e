"""Reading JSON and JSONL record files with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from core.errors import InputError


def read_records(path: str | Path, error: type[InputError] = InputError) -> list[Any]:
    """Items of a JSON list or a JSONL file (gzipped too); a JSON object is one item."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise error(f"{path}: the file is empty")
    try:  # a whole JSON document: a list of items or one object
        data = json.loads(text)
    except json.JSONDecodeError as whole_err:
        return _read_jsonl(path, text, whole_err, error)
    return list(data) if isinstance(data, list) else [data]


def _read_jsonl(path: Path, text: str, whole_err: json.JSONDecodeError,
                error: type[InputError]) -> list[Any]:
    """One JSON value per line; a file that is no JSONL either reports the likelier error."""
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as line_err:
            # Not JSONL from the first line on: the whole-document error says more.
            bad, at = (line_err, lineno) if items else (whole_err, whole_err.lineno)
            raise error(f"{path}, line {at}: invalid JSON ({bad.msg}, column {bad.colno})") from None
    return items
