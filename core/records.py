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
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise error(f"{path}, line {err.lineno}: invalid JSON ({err.msg}, column {err.colno})") from None
        return list(data)
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as err:
            if lineno == 1 and stripped.startswith("{"):
                try:  # a single pretty-printed JSON object
                    return [json.loads(text)]
                except json.JSONDecodeError:
                    pass
            raise error(f"{path}, line {lineno}: invalid JSON ({err.msg}, column {err.colno})") from None
    return items
