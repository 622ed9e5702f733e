"""CSV for spreadsheets: cells that a spreadsheet would run as a formula are made text.

Every CSV this project writes goes through `csv_text`. A cell that starts with `=`, `+`, `-`,
`@`, a tab or a carriage return is read by Excel, LibreOffice and Google Sheets as a formula
(`=HYPERLINK(...)` in a follow-up, `=cmd|...` in a model or file name), so such a text cell gets
a leading apostrophe, as OWASP's "CSV injection" advice says; the apostrophe is what a
spreadsheet itself shows for text typed that way.

Shortcut taken on purpose: numbers stay numbers. Numeric columns are never touched, and a text
cell that is just a number ("-0.23", "+1e-3") is left as it is: a number is not a formula, and
prefixing it would turn every negative score read back from text into a string.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet would run as a formula.

    A lone carriage return becomes a newline: pandas quotes a cell holding "\n" but not one
    holding only "\r", which a spreadsheet reads as a row break, so the text after it would
    start a cell of its own (`"'x\r=1+1"` gives a live `=1+1`). The project reads "\r" as a
    newline anyway (`core.records`)."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and headers are `neutralise`d; numeric columns as they were."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """`frame` as CSV text (no index) with no live formula in any cell."""
    return formula_safe(frame).to_csv(index=False)
