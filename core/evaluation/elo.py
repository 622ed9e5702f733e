"""Reference ELO tables and matching model names against them.

Built in: the LMSYS Chatbot Arena ELO of 30 chat models (hard prompts, English, as of
2024-06-06/07) that the FLR paper correlates its model rankings with, copied from the numbers
published in the paper's README (`assets/elo_lmsys_2024-06-07.json`). Users may load their own
table as JSON (`{"model": elo}` or a list of `{"model", "elo"}`) or CSV (a model column and a
column named elo / rating / score).

Names in benchmark files rarely equal the table's (`llama-3-70b-instruct` vs
`Meta-Llama-3-70B-Instruct`). Matching goes through stricter to looser steps (exact, case and
separators, packaging words such as `meta` / `hf` / `api` / `@provider`) and every match says
which step made it, so the mapping can be shown and checked. No step ever drops a version
(`v0.1`) or a date (`0409`, `20240229`, `2024-05-13`): `Mistral-7B-Instruct-v0.1` never takes
v0.2's ELO. A name that matches an entry only up to its version or date stays unmatched, with
that entry as a "did you mean" hint; the user maps it by hand (`manual`, the CLI's `--elo-map`).
A name that matches nothing, or more than one entry equally well, stays unmatched and is
listed, never guessed. Each table entry is used at most once.

The bundled paper table carries the aliases the FLR paper itself used for Arena-Hard's model
names (`_PAPER_ALIASES`: e.g. `gemini-1.5-pro-api-0514` is the table's `gemini-1.5-pro`), as
data, matched as "paper alias".
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from core.locations import ASSETS_DIR
from core.errors import BenchmarkFormatError, InputError
from core.limits import finite_number, shorten
from core.textfiles import read_text

DEFAULT_ELO_PATH = ASSETS_DIR / "elo_lmsys_2024-06-07.json"
DEFAULT_ELO_NAME = "LMSYS Arena ELO (hard, English), 2024-06-07, as used by the FLR paper"

# Words that name a packaging of a model rather than the model: dropped in the loose step.
_NOISE_WORDS = {"meta", "hf", "preview", "api", "latest"}
_VERSION_OR_DATE = re.compile(r"^(v\d+(\.\d+)*|\d{4}|\d{6}|\d{8}|\d{2})$")
# Arena-Hard model names the FLR paper matched to its ELO table's entries by hand.
_PAPER_ALIASES = {
    "gemini-1.5-pro-api-0514": "gemini-1.5-pro",
    "gemini-1.5-flash-api-0514": "gemini-1.5-flash",
    "mistral-7b-instruct": "Mistral-7B-Instruct-v0.2",
    "dbrx-instruct-preview": "dbrx-instruct@together",
}


@dataclass(frozen=True)
class EloTable:
    name: str
    ratings: dict[str, float]
    aliases: Mapping[str, str] = field(default_factory=dict)  # benchmark name -> entry, as data

    def __len__(self) -> int:
        return len(self.ratings)


@dataclass(frozen=True)
class ModelMatch:
    model: str  # the name in the benchmark file
    elo_name: str | None  # the table entry it matched, or None
    elo: float | None
    how: str  # "exact", "case/separators", "packaging words", "paper alias", "manual", "unmatched"
    hint: str | None = None  # unmatched: the entry that differs only in version or date


def default_elo() -> EloTable:
    table = load_elo(DEFAULT_ELO_PATH, DEFAULT_ELO_NAME)
    return EloTable(table.name, table.ratings, dict(_PAPER_ALIASES))


def load_elo(path: str | Path, name: str | None = None) -> EloTable:
    """An ELO table from JSON or CSV (see the module docstring for the shapes)."""
    path = Path(path)
    text = read_text(path, BenchmarkFormatError, what="ELO table")
    if not text.strip():
        raise BenchmarkFormatError(f"{path.name}: the ELO table is empty")
    if path.suffix.lower() == ".csv":
        ratings = _from_csv(text, path.name)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise BenchmarkFormatError(
                f"{path.name}, line {err.lineno}: malformed JSON (column {err.colno}: {err.msg})") from None
        ratings = elo_from_data(data, path.name)
    return EloTable(name or path.stem, ratings)


def elo_from_data(data: Any, where: str = "ELO table") -> dict[str, float]:
    """`{"model": elo}` or `[{"model": ..., "elo": ...}]` as a name -> rating dict."""
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, list):
        items = []
        for i, entry in enumerate(data):
            if not isinstance(entry, Mapping) or "model" not in entry:
                raise BenchmarkFormatError(f"{where}, entry {i}: expected an object with 'model' and 'elo'")
            key = next((k for k in entry if k.lower() in ("elo", "rating", "score")), None)
            if key is None:
                raise BenchmarkFormatError(f"{where}, entry {i}: missing field 'elo' (or 'rating' / 'score')")
            items.append((entry["model"], entry[key]))
    else:
        raise BenchmarkFormatError(f'{where}: expected {{"model name": elo, ...}}; got {type(data).__name__}')
    ratings: dict[str, float] = {}
    for model, value in items:
        if isinstance(value, Mapping):  # {"model": {"elo": 1234, ...}}
            key = next((k for k in value if str(k).lower() in ("elo", "rating", "score")), None)
            if key is None:
                raise BenchmarkFormatError(f"{where}: entry {model!r} has no 'elo' (or 'rating' / 'score')")
            value = value[key]
        ratings[str(model)] = finite_number(value, f"{where}: ELO of {shorten(repr(model))}",
                                            what="the rating", error=BenchmarkFormatError)
    if not ratings:
        raise BenchmarkFormatError(f"{where}: the ELO table has no models")
    return ratings


def _from_csv(text: str, where: str) -> dict[str, float]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise BenchmarkFormatError(f"{where}: the ELO table has no rows")
    header = list(rows[0])
    model_col = next((c for c in header if c.strip().lower() in ("model", "name", "model_name")), None)
    elo_col = next((c for c in header if "elo" in c.lower()), None) or next(
        (c for c in header if c.strip().lower() in ("rating", "score")), None)
    if model_col is None or elo_col is None:
        raise BenchmarkFormatError(
            f"{where}: expected a 'model' column and an 'elo' (or 'rating' / 'score') column; "
            f"got {', '.join(header)}")
    return elo_from_data([{"model": r[model_col], "elo": r[elo_col]} for r in rows], where)


# --------------------------------------------------------------------------- matching

def _basic(name: str) -> str:
    """Lower case, no organisation prefix, no `@provider`, one kind of separator."""
    name = name.strip().lower().rsplit("/", 1)[-1].split("@", 1)[0]
    return re.sub(r"[\s_]+", "-", name)


def _loose(name: str) -> str:
    return "-".join(w for w in _basic(name).split("-") if w and w not in _NOISE_WORDS)


def _stem(name: str) -> str:
    """The loose name without versions and dates: only for "did you mean" hints."""
    return "-".join(w for w in _loose(name).split("-") if not _VERSION_OR_DATE.match(w))


_STEPS = (("exact", lambda s: s), ("case/separators", _basic), ("packaging words", _loose))


def match_models(models: Sequence[str], table: EloTable,
                 manual: Mapping[str, str] | None = None) -> list[ModelMatch]:
    """Match each model name to at most one table entry, strictest step first; manual
    mappings first of all, then the table's own aliases."""
    manual = dict(manual or {})
    for model, target in manual.items():
        if target not in table.ratings:
            near = [e for e in table.ratings if _loose(e) == _loose(target)]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise BenchmarkFormatError(
                f"ELO mapping {model!r} -> {target!r}: no such model in the ELO table{hint}")
    result: dict[str, ModelMatch] = {}
    used: set[str] = set()
    for model, target in manual.items():
        if model in models:
            result[model] = ModelMatch(model, target, table.ratings[target], "manual")
            used.add(target)
    aliases = {_basic(name): target for name, target in table.aliases.items()}
    for model in models:
        target = aliases.get(_basic(model))
        if model not in result and target in table.ratings and target not in used:
            result[model] = ModelMatch(model, target, table.ratings[target], "paper alias")
            used.add(target)
    for how, key in _STEPS:
        index: dict[str, list[str]] = {}
        for entry in table.ratings:
            if entry not in used:
                index.setdefault(key(entry), []).append(entry)
        wanted: dict[str, list[str]] = {}
        for model in models:
            if model not in result:
                wanted.setdefault(key(model), []).append(model)
        for k, names in wanted.items():
            candidates = index.get(k, [])
            if len(candidates) == 1 and len(names) == 1:  # ambiguity on either side: no match
                entry = candidates[0]
                result[names[0]] = ModelMatch(names[0], entry, table.ratings[entry], how)
                used.add(entry)
    stems: dict[str, list[str]] = {}
    for entry in table.ratings:
        stems.setdefault(_stem(entry), []).append(entry)
    out = []
    for m in models:
        if m in result:
            out.append(result[m])
        else:
            near = [e for e in stems.get(_stem(m), []) if e not in used] or stems.get(_stem(m), [])
            out.append(ModelMatch(m, None, None, "unmatched", " or ".join(near[:2]) or None))
    return out


def matches_frame(matches: Sequence[ModelMatch]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"model": m.model, "elo model": m.elo_name or "", "elo": m.elo, "matched by": m.how,
          "did you mean": m.hint or ""} for m in matches],
        columns=["model", "elo model", "elo", "matched by", "did you mean"])


def parse_elo_map(items: Sequence[str], error: type[InputError] = BenchmarkFormatError, *,
                  where: str = "--elo-map", files: bool = True) -> dict[str, str]:
    """Which ELO table name each model of a ranking benchmark goes by: `MODEL=ELO_NAME` items
    (the CLI's `--elo-map` values, the Batch tab's lines; blank ones skipped) or, with `files`,
    JSON files mapping model -> ELO name (read through `core.textfiles`)."""
    mapping: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        if not item.strip():
            continue
        if files and "=" not in item and Path(item).is_file():
            text = read_text(item, error, label=f"{where} {item}", what="ELO map")
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise error(f"{where} {item}: cannot read as JSON ({err})") from None
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise error(f'{where} {item}: expected a JSON object {{"model": "elo name"}}')
            mapping.update({str(k): v for k, v in data.items()})
            continue
        model, sep, target = item.partition("=")
        if not sep or not model.strip() or not target.strip():
            place = f"{where} {item.strip()!r}" if files else f"{where}, line {number}"
            raise error(f"{place}: expected MODEL=ELO_NAME{' (or a JSON file)' if files else ''}; "
                        f"got {shorten(item.strip(), 80)!r}")
        mapping[model.strip()] = target.strip()
    return mapping
