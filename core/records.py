"""Reading record files (JSON, JSONL, CSV, Parquet; gzipped too) into values that know where
they came from.

Every file-reading caller (benchmarks, score inputs, prompt files, feedback triples) reads
through `read_records`, and text pasted or uploaded in the UI through `parse_records`. Each
`Record` carries `where` ("file, line 3" for JSONL, "file, item 0" for a JSON list, "file, row 2"
for CSV, counting the header as row 1 as a spreadsheet does, "file, row 0" for Parquet as pandas
shows it), so a caller's own checks can name the place. Callers decide what a record must be
(an object, a string, which fields); this module only decodes.

Shortcuts taken on purpose:
- JSON or JSONL is told by content, not by the suffix: a `.json` file holding one value per line
  is read as JSONL, and a `.jsonl` file holding one pretty-printed document as JSON. A `.jsonl`
  file is read line by line first, so a one-line file holding a list is one record.
- A JSON document that is an object wrapping the records (`{"data": [...]}`, possibly beside
  metadata fields) is unwrapped; any other object is one record.
- CSV cells stay text; a row with more or fewer cells than the header is refused with its
  row number (a blank line is skipped).
  Decoding numbers or JSON inside cells is left to callers, which know their fields.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.limits import InputLimits, hint
from core.textfiles import read_text

_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
# A wrapping field holds the records whatever they are; any other lone list field of an object
# wraps records only when they are objects and the field is not itself one record's content.
_WRAPPER_FIELDS = ("data", "prompts")
_CONTENT_FIELDS = ("conversation", "conversations", "messages", "turns", "choices", "history")
_EXTRA = "\0extra"  # where csv.DictReader puts the cells of a row longer than the header


@dataclass(frozen=True)
class Record:
    """One decoded value of a file, with where it was found (for error messages)."""

    where: str
    value: Any


def format_of(path: str | Path) -> str | None:
    """"json", "jsonl", "csv" or "parquet" from the file name (a `.gz` suffix is looked past);
    None when the name does not tell."""
    name = Path(path).name.lower().removesuffix(".gz")
    return _SUFFIXES.get(Path(name).suffix)


def guess_format(text: str) -> str:
    """"json" for text that starts like JSON (a list, an object, JSON lines), else "csv"."""
    return "json" if text.lstrip()[:1] in ("[", "{") else "csv"


def read_records(path: str | Path, error: type[InputError] = InputError, *,
                 name: str | None = None) -> list[Record]:
    """Every record of a JSON / JSONL / CSV / Parquet file, gzipped too.

    `error` is the `InputError` subclass raised for a file that cannot be read; `name` is how
    the file is named in `where` and in errors (default: the path as given). A file whose name
    does not tell its format is read as JSON when it starts like JSON, else as CSV.
    """
    path = Path(path)
    label = str(path) if name is None else name
    fmt = format_of(path)
    if fmt == "parquet":
        return _parquet_records(path, label, error)
    text = read_text(path, error, label=label)  # damaged gzip, bombs, non-UTF-8: one-line errors
    if not text.strip():
        raise error(f"{label}: the file is empty; expected JSON, JSONL, CSV or Parquet records")
    return parse_records(text, label, fmt or "auto", error)


def parse_records(text: str, where: str, fmt: str = "auto",
                  error: type[InputError] = InputError) -> list[Record]:
    """The records of JSON, JSONL or CSV text (pasted or uploaded); `fmt` is "json", "jsonl",
    "csv" or "auto" (told from the content). JSON and JSONL are told apart by content either
    way; "jsonl" only makes a one-line list one record."""
    if fmt == "auto":
        fmt = guess_format(text)
    # universal newlines, as a file opened in text mode reads them
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise error(f"{where}: empty; expected JSON, JSONL or CSV records")
    if fmt == "csv":
        records = _csv_records(text, where, error)
    elif fmt in ("json", "jsonl"):
        records = _json_records(text, where, error, lines_first=fmt == "jsonl")
    else:
        raise error(f"{where}: unknown format {fmt!r}; use json, jsonl or csv")
    InputLimits.current().check_records(len(records), where, error)
    return records


def _json_records(text: str, where: str, error: type[InputError], lines_first: bool) -> list[Record]:
    """A JSON document's entries, or one record per JSON line, whichever the text is."""
    if lines_first:
        lines, bad = _json_lines(text)
        if bad is None:
            return [Record(f"{where}, line {n}", v) for n, v in lines]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as whole:
        if not lines_first:
            lines, bad = _json_lines(text)
            if bad is None:  # JSON lines in a file named .json
                return [Record(f"{where}, line {n}", v) for n, v in lines]
        # Not JSON lines from the first line on: the whole-document error says more.
        lineno, err = bad if lines or lines_first else (whole.lineno, whole)
        raise error(f"{where}, line {lineno}: malformed JSON (column {err.colno}: {err.msg}); "
                    "the file must be one JSON document or one JSON value per line") from None
    return [Record(f"{where}, item {i}", v) for i, v in enumerate(_entries(document))]


def _json_lines(text: str) -> tuple[list[tuple[int, Any]], tuple[int, json.JSONDecodeError] | None]:
    """(line number, value) of every non-blank line up to the first bad one, and that one."""
    values = []
    # "\n" only: str.splitlines would also split at U+2028 and other characters that JSON
    # strings may hold unescaped
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            values.append((lineno, json.loads(line)))
        except json.JSONDecodeError as err:
            return values, (lineno, err)
    return values, None


def _entries(document: Any) -> list[Any]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        lists = [key for key, value in document.items() if isinstance(value, list)]
        if len(lists) == 1:
            key, items = lists[0], document[lists[0]]
            if key in _WRAPPER_FIELDS or (
                    key not in _CONTENT_FIELDS and items and all(isinstance(v, dict) for v in items)):
                return items
    return [document]


def _csv_records(text: str, where: str, error: type[InputError]) -> list[Record]:
    # a whole conversation may sit in one cell: lift the csv module's 128 KiB cell limit
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.DictReader(io.StringIO(text), restkey=_EXTRA)
    records = []
    try:
        # Row numbers count the header as row 1, as a spreadsheet shows them.
        for number, row in enumerate(reader, start=2):
            if _EXTRA in row or (None in row.values() and any(v for v in row.values())):
                raise error(
                    f"{where}, row {number}: {_cells(row)} cell(s) but the header has "
                    f"{len(reader.fieldnames or ())} column(s); fix the row (quote cells that "
                    "hold commas) so every row has one cell per column")
            records.append(Record(f"{where}, row {number}", {k: v for k, v in row.items() if k}))
    except csv.Error as err:
        raise error(f"{where}, line {reader.line_num}: malformed CSV ({err})") from None
    return records


def _cells(row: dict[Any, Any]) -> int:
    return sum(v is not None for k, v in row.items() if k != _EXTRA) + len(row.get(_EXTRA, ()))


def _parquet_records(path: Path, label: str, error: type[InputError]) -> list[Record]:
    import pandas as pd  # only Parquet needs it; the other formats stay light to import
    import pyarrow.parquet as pq

    limits = InputLimits.current()
    # Under the same caps as JSON and CSV, and before the rows are decoded: the footer gives the
    # row count, and the file's own size bounds what it holds (compressed columns aside).
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise error(f"{label}: cannot read as Parquet ({type(err).__name__}); check that it is a "
                    "Parquet file") from None
    limits.check_records(rows, label, error)
    if path.stat().st_size > limits.file_bytes:
        raise error(f"{label}: more than {limits.file_mb:,} MB; split the file, or raise the limit "
                    f"with {hint('file_mb')}")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:
        raise error(f"{label}: cannot read as Parquet ({type(err).__name__}); check that it is a "
                    "Parquet file") from None
    return [Record(f"{label}, row {i}", {k: _plain(v) for k, v in row.items()})
            for i, row in enumerate(frame.to_dict(orient="records"))]


def _plain(value: Any) -> Any:
    """numpy arrays and scalars from Parquet as plain Python lists and numbers (NaN as None)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value

