"""Benchmark files: reading them, telling their kind, and turning them into one tidy table.

Three kinds of benchmark, each loaded into a `Benchmark` whose `frame` has one row per
conversation to judge (columns `COL_*` below):

- **pairwise**: a preferred and a dispreferred reply; `row` is the pair, `side` is
  `chosen` or `rejected`. Read from the FLR paper's accept/reject files (entry i of
  `..._accept_<category>.jsonl` pairs with entry i of `..._reject_<category>.jsonl`),
  HH-RLHF transcripts (`chosen` / `rejected`), RewardBench-style `prompt` / `chosen` /
  `rejected` (strings or message lists) and LLMBar-style `input` / `output_1` / `output_2` /
  `label`.
- **rating**: one conversation with a ground-truth score (`score`, `overall`, `rating`, a list of
  judge scores that is averaged, or a field the caller names).
- **ranking**: responses of several models to the same prompts (Arena-Hard answer files joined
  with `question.jsonl`, or any file with model, prompt and response fields); compared later
  with a reference ELO table (`core.evaluation.elo`).

Files may be JSON (a list), JSONL, either gzipped, CSV or Parquet. Entries that carry the
paper's precomputed `positive` / `negative` lists (also the misspelled `positve`) are evaluated
without a model; the category of such a file is the last word of its name, and files of one
benchmark that differ only in that word are combined entry by entry.

Shortcuts taken on purpose: a missing field or an unreadable file raises
`BenchmarkFormatError` at once (nothing is guessed), while a conversation that is present but
cannot be used (wrong turn order, empty reply) only marks its row with the reason, so the rest
of the benchmark is still evaluated. Paper-layout files without precomputed lists are scored
with the whole follow-up set the caller chooses; their file-name category is not used.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd

from core.engine.conversation import Conversation, from_text, parse_conversation
from core.errors import BenchmarkFormatError, ConversationError
from core.evaluation.records import Record, format_of, read_records

PAIRWISE, RATING, RANKING = "pairwise", "rating", "ranking"
KINDS = (PAIRWISE, RATING, RANKING)
CHOSEN, REJECTED = "chosen", "rejected"

# Columns of `Benchmark.frame`, one row per conversation to judge.
COL_ROW = "row"  # pair index (pairwise), row index (rating), response index (ranking)
COL_SIDE = "side"  # "chosen" / "rejected" for pairwise, "" otherwise
COL_SOURCE = "source"  # where the row comes from: "file.jsonl, line 12"
COL_CONVERSATION = "conversation"  # core.engine.conversation.Conversation, or None
COL_ERROR = "error"  # why the row cannot be judged, or None
COL_TRUTH = "truth"  # ground-truth score (rating), NaN otherwise
COL_MODEL = "model"  # the model that wrote the reply (ranking; rating files may have it)
COL_PROMPT = "prompt_id"  # which prompt the reply answers (ranking)
COL_PRECOMPUTED = "precomputed"  # {category: (positive values, negative values)} or None
FRAME_COLUMNS = (COL_ROW, COL_SIDE, COL_SOURCE, COL_CONVERSATION, COL_ERROR, COL_TRUTH,
                 COL_MODEL, COL_PROMPT, COL_PRECOMPUTED)

SCORE_FIELDS = ("score", "overall", "overall_score", "rating", "gpt4_score", "human_score",
                "scores", "ratings")
MODEL_FIELDS = ("model", "model_id", "model_name", "generator", "model_test")
PROMPT_FIELDS = ("prompt", "instruction", "input", "question")
RESPONSE_FIELDS = ("response", "output", "answer", "completion")
CONVERSATION_FIELDS = ("conversation", "messages")
POSITIVE_FIELDS = ("positive", "positve")  # the paper's scripts wrote "positve"
NEGATIVE_FIELD = "negative"

_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".csv.gz", ".csv", ".parquet")
_PAIR_WORDS = {"accept": CHOSEN, "accepted": CHOSEN, "chosen": CHOSEN, "reject": REJECTED,
               "rejected": REJECTED}
_WORD_SPLIT = re.compile(r"[_\-. ]+")


@dataclass
class Benchmark:
    """One benchmark ready to evaluate: its rows, where they came from and what was guessed."""

    name: str
    kind: str
    paths: tuple[Path, ...]
    frame: pd.DataFrame
    precomputed: bool  # every row carries its follow-up values: no model needed
    source_format: str  # "paper", "hh-rlhf", "rewardbench", "llmbar", "rating", "arena-hard", ...
    categories: tuple[str, ...] = ()  # categories of precomputed values; () = the follow-up set's
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Pairs (pairwise), rated rows (rating) or responses (ranking)."""
        return int(self.frame[COL_ROW].nunique()) if len(self.frame) else 0

    @property
    def n_invalid(self) -> int:
        """Rows whose conversation cannot be judged (they are skipped, with the reason)."""
        return int(self.frame[COL_ERROR].notna().sum()) if len(self.frame) else 0

    @property
    def models(self) -> list[str]:
        return sorted({m for m in self.frame[COL_MODEL] if isinstance(m, str) and m})

    def limited(self, limit: int | None) -> "Benchmark":
        """The first `limit` pairs / rows, or for ranking the responses of every model to the
        first `limit` prompts."""
        if limit is None or len(self.frame) == 0:
            return self
        if limit < 1:
            raise BenchmarkFormatError(f"limit must be a positive number of rows; got {limit}")
        if self.kind == RANKING and self.frame[COL_PROMPT].nunique() > 1:
            prompts = list(OrderedDict.fromkeys(self.frame[COL_PROMPT]))[:limit]
            frame = self.frame[self.frame[COL_PROMPT].isin(prompts)]
        elif self.kind == RANKING:
            order = self.frame.groupby(COL_MODEL, sort=False).cumcount()
            frame = self.frame[order < limit]
        else:
            keep = list(OrderedDict.fromkeys(self.frame[COL_ROW]))[:limit]
            frame = self.frame[self.frame[COL_ROW].isin(keep)]
        return Benchmark(self.name, self.kind, self.paths, frame.reset_index(drop=True),
                         self.precomputed, self.source_format, self.categories,
                         list(self.notes), list(self.warnings))


# --------------------------------------------------------------------------- reading files

def read_entries(path: Path) -> list[Record]:
    """Every entry of a benchmark file as an object (`core.evaluation.records` reads the formats); CSV
    cells holding numbers or JSON lists / objects are decoded."""
    path = Path(path)
    name = path.name
    if not name.lower().endswith(_SUFFIXES):
        raise BenchmarkFormatError(
            f"{name}: unknown file type; use .json, .jsonl, .csv or .parquet (optionally .gz)")
    records = read_records(path, BenchmarkFormatError, name=name)
    if not records:
        raise BenchmarkFormatError(f"{name}: the file has no entries")
    csv_cells = format_of(path) == "csv"
    return [Record(r.where, _as_object(
                {k: _csv_cell(v) for k, v in r.value.items()} if csv_cells else r.value, r.where))
            for r in records]


def _csv_cell(value: str | None) -> Any:
    """CSV cells are text; numbers and JSON lists/objects inside them are decoded."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    try:
        return float(stripped) if stripped else None
    except ValueError:
        return value


def _as_object(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {"conversation": value}  # a bare utterance list, as `score` accepts
    raise BenchmarkFormatError(
        f"{where}: expected a JSON object with the benchmark's fields; got {type(value).__name__}")


# --------------------------------------------------------------------------- file names

def file_stem(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _words(stem: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(stem) if w]


def pair_side(path: Path) -> str | None:
    """`chosen` for an accept file, `rejected` for a reject file, None otherwise."""
    sides = {_PAIR_WORDS[w.lower()] for w in _words(file_stem(path)) if w.lower() in _PAIR_WORDS}
    return sides.pop() if len(sides) == 1 else None


def _pair_key(path: Path) -> tuple[str, ...]:
    """The file name with its accept/reject word blanked: partners share it."""
    return tuple("*" if w.lower() in _PAIR_WORDS else w for w in _words(file_stem(path)))


def _category_word(path: Path) -> str:
    words = _words(file_stem(path))
    last = words[-1] if words else "flr"
    return "all" if last.lower() in _PAIR_WORDS else last


def _name_from_words(words: Iterable[str], path: Path) -> str:
    kept = [w for w in words if w != "*"]
    return "_".join(kept) if kept else (path.parent.name or "benchmark")


# --------------------------------------------------------------------------- field access

def _first_key(data: dict[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if key in data:
            return key
    return None


def _get_path(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """A field by name, or nested with dots (`scores.overall`)."""
    if dotted in data:
        return True, data[dotted]
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _score_value(value: Any, where: str, field_name: str) -> float:
    """A number, numeric text, or a list of judge scores (averaged)."""
    if isinstance(value, bool):
        raise BenchmarkFormatError(f"{where}: score field {field_name!r} is a boolean; expected a number")
    if isinstance(value, (int, float)):
        if math.isnan(value):
            raise BenchmarkFormatError(f"{where}: score field {field_name!r} is empty (NaN)")
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, list) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return float(sum(value) / len(value))
    raise BenchmarkFormatError(
        f"{where}: score field {field_name!r} is {value!r}; expected a number or a list of numbers")


def _value_list(value: Any, where: str, field_name: str) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if not isinstance(value, list) or not value or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise BenchmarkFormatError(
            f"{where}: {field_name!r} must be a non-empty list of numbers (one per follow-up); "
            f"got {str(value)[:80]}")
    return tuple(float(v) for v in value)


def _precomputed_lists(data: dict[str, Any], where: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    pos_key = _first_key(data, POSITIVE_FIELDS)
    has_neg = NEGATIVE_FIELD in data
    if pos_key is None and not has_neg:
        return None
    if pos_key is None or not has_neg:
        missing = NEGATIVE_FIELD if pos_key else "positive"
        raise BenchmarkFormatError(
            f"{where}: has {'positive' if pos_key else 'negative'} follow-up values but no "
            f"{missing!r} list; precomputed entries need both 'positive' and 'negative'")
    return (_value_list(data[pos_key], where, pos_key),
            _value_list(data[NEGATIVE_FIELD], where, NEGATIVE_FIELD))


def _has_precomputed(data: dict[str, Any]) -> bool:
    return _first_key(data, POSITIVE_FIELDS) is not None or NEGATIVE_FIELD in data


def _require(data: dict[str, Any], keys: Sequence[str], where: str, expected: str) -> str:
    key = _first_key(data, keys)
    if key is None:
        raise BenchmarkFormatError(
            f"{where}: missing field {' / '.join(repr(k) for k in keys)}; expected {expected} "
            f"(fields found: {', '.join(sorted(map(str, data))) or 'none'})")
    return key


def _conversation_of(data: dict[str, Any], where: str) -> tuple[Conversation | None, str | None]:
    """The conversation of a rating / ranking / paper entry: (conversation, error)."""
    key = _first_key(data, CONVERSATION_FIELDS)
    if key is not None:
        return _parse(lambda: parse_conversation(data[key], where), where)
    prompt_key = _first_key(data, PROMPT_FIELDS)
    response_key = _first_key(data, RESPONSE_FIELDS)
    if prompt_key and response_key:
        return _parse(lambda: _with_reply(data[prompt_key], data[response_key], where), where)
    raise BenchmarkFormatError(
        f"{where}: missing field 'conversation' (or 'messages', or a prompt and a response "
        "field such as 'prompt' / 'response'); expected the conversation ending with the "
        f"reply to judge (fields found: {', '.join(sorted(map(str, data))) or 'none'})")


def _parse(build: Any, where: str) -> tuple[Conversation | None, str | None]:
    try:
        return build(), None
    except ConversationError as err:
        return None, str(err)


def _with_reply(prompt: Any, reply: Any, where: str) -> Conversation:
    """A prompt (text, utterances or messages) followed by a reply (text or messages)."""
    if isinstance(reply, list) and reply and all(isinstance(m, dict) for m in reply):
        roles = {str(m.get("role", m.get("from", ""))).lower() for m in reply}
        if roles & {"user", "human"}:
            return parse_conversation(reply, where)  # the reply side is the whole conversation
        reply_messages = reply
    elif isinstance(reply, str):
        reply_messages = [{"role": "assistant", "content": reply}]
    else:
        raise ConversationError(f"{where}: the reply must be text or a message list; got {type(reply).__name__}")
    if isinstance(prompt, str):
        if _looks_like_transcript(prompt):
            base = from_text(prompt + "\n\nAssistant: x", where)  # parse turns, then replace reply
            prompt_messages = base.messages()[:-1]
        else:
            prompt_messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        prompt_messages = list(prompt)
    elif isinstance(prompt, list) and all(isinstance(m, str) for m in prompt):
        prompt_messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                           for i, t in enumerate(prompt)]
    else:
        raise ConversationError(f"{where}: the prompt must be text or a message list; got {type(prompt).__name__}")
    return parse_conversation(prompt_messages + reply_messages, where)


def _looks_like_transcript(text: str) -> bool:
    return bool(re.match(r"^\s*(Human|User)\s*:", text))


# --------------------------------------------------------------------------- classification

@dataclass
class _File:
    path: Path
    records: list[Record]
    role: str  # "paper-pair", "pairwise", "rating", "ranking", "arena-answers", "arena-questions"
    fmt: str = ""
    side: str | None = None
    precomputed: bool = False
    score_field: str | None = None


def _classify(path: Path, records: list[Record], kind: str | None, score_field: str | None,
              pairs: bool = True) -> _File:
    first = records[0].value
    keys = set(first)
    side = pair_side(path) if pairs else None
    precomputed = _has_precomputed(first)
    if side is not None and kind in (None, PAIRWISE) and not ({CHOSEN, REJECTED} <= keys):
        return _File(path, records, "paper-pair", "paper", side, precomputed)
    if {"question_id", "model_id", "choices"} <= keys:
        _check_kind(kind, RANKING, path, "Arena-Hard answers")
        return _File(path, records, "arena-answers", "arena-hard")
    if {"question_id", "turns"} <= keys and "model_id" not in keys:
        return _File(path, records, "arena-questions", "arena-hard")
    if {CHOSEN, REJECTED} <= keys:
        _check_kind(kind, PAIRWISE, path, "chosen/rejected pairs")
        fmt = "rewardbench" if _first_key(first, PROMPT_FIELDS) else "hh-rlhf"
        return _File(path, records, "pairwise", fmt)
    if {"output_1", "output_2", "label"} <= keys:
        _check_kind(kind, PAIRWISE, path, "two outputs with a label")
        return _File(path, records, "pairwise", "llmbar")
    if kind == PAIRWISE:
        raise BenchmarkFormatError(
            f"{path.name}: cannot read as pairwise; expected 'chosen' and 'rejected' fields, "
            "'input' / 'output_1' / 'output_2' / 'label', or a pair of files named with 'accept' "
            f"and 'reject' (fields found: {', '.join(sorted(keys))})")
    model_key = _first_key(first, MODEL_FIELDS)
    if score_field is not None:
        found, _ = _get_path(first, score_field)
        if not found:
            raise BenchmarkFormatError(
                f"{records[0].where}: unknown score field {score_field!r}; fields found: "
                f"{', '.join(sorted(keys))}")
    if kind == RANKING:
        if model_key is None:
            raise BenchmarkFormatError(
                f"{records[0].where}: cannot read as ranking; missing a model field "
                f"({' / '.join(MODEL_FIELDS)}) naming who wrote each response")
        return _File(path, records, "ranking", "paper" if precomputed else "ranking",
                     precomputed=precomputed)
    found_score = score_field or _first_key(first, SCORE_FIELDS)
    if found_score is not None:
        return _File(path, records, "rating", "paper" if precomputed else "rating",
                     precomputed=precomputed, score_field=found_score)
    if kind == RATING:
        raise BenchmarkFormatError(
            f"{records[0].where}: no ground-truth score field; expected one of "
            f"{', '.join(SCORE_FIELDS)} or name it with the score-field option "
            f"(fields found: {', '.join(sorted(keys))})")
    if model_key is not None:
        return _File(path, records, "ranking", "paper" if precomputed else "ranking",
                     precomputed=precomputed)
    raise BenchmarkFormatError(
        f"{path.name}: cannot tell the benchmark kind from fields {', '.join(sorted(keys))}; "
        "expected chosen/rejected pairs, accept/reject files, a conversation with a score "
        f"field ({', '.join(SCORE_FIELDS[:3])}, ...), or model + prompt + response; "
        "or name the kind explicitly")


def _check_kind(kind: str | None, found: str, path: Path, what: str) -> None:
    if kind is not None and kind != found:
        raise BenchmarkFormatError(f"{path.name}: holds {what}, a {found} benchmark, not {kind}")


# --------------------------------------------------------------------------- public entry

def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, and the benchmark files inside any folder (recursively, sorted)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path / "question.jsonl").is_file() and (path / "model_answer").is_dir():
            # An Arena-Hard folder: questions and answers only (not its leaderboard files).
            out.append(path / "question.jsonl")
            out.extend(sorted(p for p in (path / "model_answer").iterdir()
                              if p.name.lower().endswith((".jsonl", ".jsonl.gz"))))
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.name.lower().endswith(_SUFFIXES)
                           and not p.name.startswith("."))
            if not found:
                raise BenchmarkFormatError(f"{path}: folder holds no .json, .jsonl, .csv or .parquet files")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise BenchmarkFormatError(f"{path}: no such file or folder")
    return list(OrderedDict.fromkeys(out))


def detect_benchmarks(paths: Sequence[str | Path], kind: str | None = None,
                      score_field: str | None = None) -> list[Benchmark]:
    """Read files (or folders of them) and group them into benchmarks of detected kind.

    `kind` ("pairwise" | "rating" | "ranking") overrides detection; `score_field` names the
    ground-truth field of rating files (dots reach into nested objects).
    """
    if kind is not None and kind not in KINDS:
        raise BenchmarkFormatError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    files = [_classify(p, read_entries(p), kind, score_field) for p in expand_paths(paths)]
    files = _unpaired_as_plain(files, kind, score_field)
    benchmarks: list[Benchmark] = []
    benchmarks += _paper_pairs([f for f in files if f.role == "paper-pair"])
    benchmarks += [_pairwise(f) for f in files if f.role == "pairwise"]
    benchmarks += _grouped(RATING, [f for f in files if f.role == "rating"])
    benchmarks += _grouped(RANKING, [f for f in files if f.role == "ranking"])
    benchmarks += _arena([f for f in files if f.role == "arena-answers"],
                         [f for f in files if f.role == "arena-questions"])
    orphans = [f for f in files if f.role == "arena-questions"]
    if orphans and not any(f.role == "arena-answers" for f in files):
        raise BenchmarkFormatError(
            f"{orphans[0].path.name}: a question file alone is not a benchmark; add the "
            "model answer files (model_answer/*.jsonl) it belongs to")
    for b in benchmarks:
        _note_conversation_warnings(b)
    return _unique_names(benchmarks)


def _note_conversation_warnings(b: Benchmark) -> None:
    """One line per benchmark for conversations read with a warning (e.g. an odd utterance
    list whose first utterance was dropped, as the paper's scripts do)."""
    warned = [c.warnings[0] for c in b.frame[COL_CONVERSATION]
              if isinstance(c, Conversation) and c.warnings]
    if warned:
        b.warnings.append(f"{len(warned)} conversation(s) read with a warning, e.g. {warned[0]}")


def _unpaired_as_plain(files: list[_File], kind: str | None, score_field: str | None) -> list[_File]:
    """A file whose name merely contains "accept"/"reject" and has no partner among the
    inputs is read by its fields when they tell its kind (else the missing partner is
    reported)."""
    keys: dict[tuple, set[str]] = {}
    for f in files:
        if f.role == "paper-pair":
            keys.setdefault((str(f.path.parent),) + _pair_key(f.path), set()).add(f.side or "")
    out = []
    for f in files:
        if f.role == "paper-pair" and len(keys[(str(f.path.parent),) + _pair_key(f.path)]) == 1 \
                and not f.precomputed and kind != PAIRWISE:
            try:
                f = _classify(f.path, f.records, kind, score_field, pairs=False)
            except BenchmarkFormatError:
                pass  # not readable alone either: report the missing partner
        out.append(f)
    return out


def _unique_names(benchmarks: list[Benchmark]) -> list[Benchmark]:
    seen: dict[str, int] = {}
    for b in benchmarks:
        if b.name in seen:
            seen[b.name] += 1
            b.name = f"{b.name} ({seen[b.name]})"
        else:
            seen[b.name] = 1
    return benchmarks


def describe_benchmarks(benchmarks: Sequence[Benchmark]) -> pd.DataFrame:
    """What was detected, one row per benchmark, for a preview before running."""
    rows = []
    for b in benchmarks:
        rows.append({
            "name": b.name,
            "kind": b.kind,
            "format": b.source_format,
            "files": ", ".join(p.name for p in b.paths),
            "rows": b.n,
            "unusable rows": b.n_invalid,
            "values": "precomputed" if b.precomputed else "to be scored",
            "category": ", ".join(b.categories) if b.categories else "follow-up set",
            "models": len(b.models) if b.kind == RANKING else None,
            "notes": " ".join(b.notes + b.warnings),
        })
    return pd.DataFrame(rows, columns=["name", "kind", "format", "files", "rows", "unusable rows",
                                       "values", "category", "models", "notes"])


# --------------------------------------------------------------------------- builders

def _row(row: int, source: str, conversation: Conversation | None, error: str | None, *,
         side: str = "", truth: float = math.nan, model: str = "", prompt_id: str = "",
         precomputed: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None = None) -> dict[str, Any]:
    return {COL_ROW: row, COL_SIDE: side, COL_SOURCE: source, COL_CONVERSATION: conversation,
            COL_ERROR: error, COL_TRUTH: truth, COL_MODEL: model, COL_PROMPT: prompt_id,
            COL_PRECOMPUTED: precomputed}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    # Built column by column as plain objects: pandas would turn None into NaN otherwise.
    data: dict[str, Any] = {}
    for col in FRAME_COLUMNS:
        values = [r[col] for r in rows]
        if col == COL_ROW:
            data[col] = pd.Series(values, dtype="int64")
        elif col == COL_TRUTH:
            data[col] = pd.Series(values, dtype=float)
        else:
            data[col] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))


def _category_groups(files: list[_File]) -> "OrderedDict[tuple, list[_File]]":
    """Precomputed files that differ only in the last (category) word belong together."""
    groups: OrderedDict[tuple, list[_File]] = OrderedDict()
    for f in files:
        key = _pair_key(f.path)
        if f.precomputed and len(key) > 1 and key[-1] != "*":
            key = (str(f.path.parent),) + key[:-1] + ("<category>",)
        else:  # a file of its own (full path first, so same-named files never merge)
            key = (str(f.path),) + key
        groups.setdefault(key, []).append(f)
    return groups


def _entries_by_category(files: list[_File], what: str) -> tuple[list[str], list[list[Record]]]:
    """Category names and, per category, the entries; all categories must be equally long."""
    categories = [_category_word(f.path) if f.precomputed else "" for f in files]
    dup = {c for c in categories if categories.count(c) > 1}
    if dup and any(f.precomputed for f in files):
        raise BenchmarkFormatError(
            f"{what}: several files for category {sorted(dup)[0]!r}: "
            f"{', '.join(f.path.name for f in files)}")
    lengths = {f.path.name: len(f.records) for f in files}
    if len(set(lengths.values())) > 1:
        raise BenchmarkFormatError(
            f"{what}: category files have different numbers of entries ("
            + ", ".join(f"{n}: {c}" for n, c in lengths.items())
            + "); entry i of each file must be the same conversation")
    return categories, [f.records for f in files]


def _combined_entries(files: list[_File], what: str, warnings: list[str]) -> list[tuple[Record, dict | None]]:
    """Per entry index: the first file's record and the precomputed values of every category."""
    categories, per_file = _entries_by_category(files, what)
    precomputed = files[0].precomputed
    out = []
    mismatches = 0
    for i in range(len(per_file[0])):
        base = per_file[0][i]
        values: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None = None
        if precomputed:
            values = {}
            for cat, recs in zip(categories, per_file):
                lists = _precomputed_lists(recs[i].value, recs[i].where)
                if lists is None:
                    raise BenchmarkFormatError(
                        f"{recs[i].where}: no 'positive' / 'negative' lists while entry 0 of the "
                        "file has them; every entry of a precomputed file needs both")
                values[cat] = lists
                conv = recs[i].value.get("conversation")
                if conv is not None and base.value.get("conversation") not in (None, conv):
                    mismatches += 1
        else:
            for recs in per_file:
                if _has_precomputed(recs[i].value):
                    raise BenchmarkFormatError(
                        f"{recs[i].where}: has 'positive' / 'negative' lists but entry 0 of the "
                        "file does not; give all entries precomputed values or none")
        out.append((base, values))
    if mismatches:
        warnings.append(f"{what}: {mismatches} entries differ in their conversation between "
                        "category files; they were combined by position as the paper does")
    return out


def _paper_pairs(files: list[_File]) -> list[Benchmark]:
    by_key: OrderedDict[tuple, dict[str, list[_File]]] = OrderedDict()
    for f in files:
        key = (str(f.path.parent),) + _pair_key(f.path)
        by_key.setdefault(key, {CHOSEN: [], REJECTED: []})[f.side or CHOSEN].append(f)
    # Precomputed category files of one benchmark share the key without their last word.
    merged: OrderedDict[tuple, dict[str, list[_File]]] = OrderedDict()
    for key, sides in by_key.items():
        precomputed = any(f.precomputed for fs in sides.values() for f in fs)
        categorised = precomputed and len(key) > 2 and key[-1] != "*"
        group = key[:-1] + ("<category>",) if categorised else key
        slot = merged.setdefault(group, {CHOSEN: [], REJECTED: []})
        slot[CHOSEN] += sides[CHOSEN]
        slot[REJECTED] += sides[REJECTED]
    benchmarks = []
    for key, sides in merged.items():
        accept, reject = sides[CHOSEN], sides[REJECTED]
        if not accept or not reject:
            have = (accept or reject)[0]
            need = "reject" if accept else "accept"
            raise BenchmarkFormatError(
                f"{have.path.name}: no matching {need} file; the paper's layout pairs "
                f"'..._accept_<category>' with '..._reject_<category>' (entry i with entry i)")
        precomputed = {f.precomputed for f in accept + reject}
        if len(precomputed) > 1:
            raise BenchmarkFormatError(
                "files of one benchmark mix precomputed and unscored entries: "
                + ", ".join(f"{f.path.name} ({'precomputed' if f.precomputed else 'conversation only'})"
                            for f in accept + reject))
        is_pre = precomputed.pop()
        accept.sort(key=lambda f: _category_word(f.path))
        reject.sort(key=lambda f: _category_word(f.path))
        a_cats = [_category_word(f.path) for f in accept] if is_pre else []
        r_cats = [_category_word(f.path) for f in reject] if is_pre else []
        if a_cats != r_cats:
            raise BenchmarkFormatError(
                f"accept and reject files cover different categories (accept: {', '.join(a_cats)}; "
                f"reject: {', '.join(r_cats)}); give both files of every category")
        for fa, fr in zip(accept, reject):
            if len(fa.records) != len(fr.records):
                raise BenchmarkFormatError(
                    f"{fa.path.name} has {len(fa.records)} entries but {fr.path.name} has "
                    f"{len(fr.records)}; entry i of the accept file pairs with entry i of the "
                    "reject file, so both need the same number")
        name_words = [w for w in key[1:] if w != "<category>"]
        name = _name_from_words(name_words, accept[0].path)
        warnings: list[str] = []
        chosen = _combined_entries(accept, f"{name} (accept)", warnings)
        rejected = _combined_entries(reject, f"{name} (reject)", warnings)
        rows = []
        for i, ((ra, va), (rr, vr)) in enumerate(zip(chosen, rejected)):
            for side, rec, values in ((CHOSEN, ra, va), (REJECTED, rr, vr)):
                conv, err = _paper_conversation(rec, values is not None)
                rows.append(_row(i, rec.where, conv, err, side=side, precomputed=values))
        benchmarks.append(Benchmark(
            name, PAIRWISE, tuple(f.path for f in accept + reject), _frame(rows), is_pre, "paper",
            tuple(a_cats), notes=[f"{len(chosen)} accept/reject pairs, entry i with entry i"],
            warnings=warnings))
    return benchmarks


def _paper_conversation(rec: Record, precomputed: bool) -> tuple[Conversation | None, str | None]:
    """Precomputed entries may lack a conversation (only the length baseline needs it)."""
    if precomputed and _first_key(rec.value, CONVERSATION_FIELDS) is None:
        return None, None
    conv, err = _conversation_of(rec.value, rec.where)
    if precomputed and err is not None:
        return None, None  # values are given; the conversation only feeds the length baseline
    return conv, err


def _pairwise(f: _File) -> Benchmark:
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(f.records):
        d, where = rec.value, rec.where
        if f.fmt == "llmbar":
            for key in ("input", "output_1", "output_2", "label"):
                if key not in d:
                    raise BenchmarkFormatError(
                        f"{where}: missing field {key!r}; expected 'input', 'output_1', "
                        "'output_2' and 'label' (1 or 2, the better output)")
            label = str(d["label"]).strip().removesuffix(".0")
            if label not in ("1", "2"):
                raise BenchmarkFormatError(
                    f"{where}: label is {d['label']!r}; expected 1 or 2 (which output is better)")
            good, bad = ("output_1", "output_2") if label == "1" else ("output_2", "output_1")
            pairs = ((CHOSEN, d["input"], d[good]), (REJECTED, d["input"], d[bad]))
        else:
            for key in (CHOSEN, REJECTED):
                if key not in d:
                    raise BenchmarkFormatError(
                        f"{where}: missing field {key!r}; expected both 'chosen' and 'rejected'")
            prompt_key = _first_key(d, PROMPT_FIELDS)
            prompt = d[prompt_key] if prompt_key else None
            pairs = ((CHOSEN, prompt, d[CHOSEN]), (REJECTED, prompt, d[REJECTED]))
        for side, prompt, reply in pairs:
            if prompt is None:
                conv, err = _parse(lambda r=reply: _whole_conversation(r, where), where)
            else:
                conv, err = _parse(lambda p=prompt, r=reply: _with_reply(p, r, where), where)
            rows.append(_row(i, f"{where} ({side})", conv, err, side=side))
    notes = {"hh-rlhf": "HH-RLHF transcripts (chosen / rejected)",
             "rewardbench": "prompt / chosen / rejected pairs",
             "llmbar": "input / output_1 / output_2 / label pairs"}
    return Benchmark(file_stem(f.path), PAIRWISE, (f.path,), _frame(rows), False, f.fmt,
                     notes=[notes[f.fmt]])


def _whole_conversation(value: Any, where: str) -> Conversation:
    """A transcript string (`\\n\\nHuman: ...`) or a full message list."""
    if isinstance(value, str) and not value.strip().startswith(("[", "{")):
        return from_text(value, where)
    return parse_conversation(value, where)


def _grouped(kind: str, files: list[_File]) -> list[Benchmark]:
    """Rating or ranking files: category files combine; ranking files of one folder combine
    too (one file per model is a common way to ship a ranking set)."""
    groups = _category_groups(files)
    if kind == RATING:
        return [_rating_benchmark(group, _group_name(key, group)) for key, group in groups.items()]
    by_dir: OrderedDict[tuple, list[tuple[tuple, list[_File]]]] = OrderedDict()
    for key, group in groups.items():
        cats = tuple(sorted(_category_word(f.path) for f in group)) if group[0].precomputed else ()
        by_dir.setdefault((str(group[0].path.parent), group[0].precomputed, cats), []).append((key, group))
    benchmarks = []
    for (directory, _, _), items in by_dir.items():
        if len(items) == 1:
            key, group = items[0]
            benchmarks.append(_ranking_benchmark([group], _group_name(key, group)))
        else:
            benchmarks.append(_ranking_benchmark([g for _, g in items],
                                                 Path(directory).name or "ranking"))
    return benchmarks


def _group_name(key: tuple, group: list[_File]) -> str:
    words = [w for w in key[1:] if w != "<category>"]
    return _name_from_words(words, group[0].path)


def _rating_benchmark(group: list[_File], name: str) -> Benchmark:
    warnings: list[str] = []
    entries = _combined_entries(group, name, warnings)
    field_name = group[0].score_field
    assert field_name is not None
    rows = []
    for i, (rec, values) in enumerate(entries):
        found, raw = _get_path(rec.value, field_name)
        if not found or raw is None:
            raise BenchmarkFormatError(
                f"{rec.where}: missing score field {field_name!r}; every rated entry needs its "
                "ground-truth score")
        truth = _score_value(raw, rec.where, field_name)
        if values is None:
            conv, err = _conversation_of(rec.value, rec.where)
        else:
            conv, err = _paper_conversation(rec, True)
        model_key = _first_key(rec.value, MODEL_FIELDS)
        rows.append(_row(i, rec.where, conv, err, truth=truth,
                         model=str(rec.value[model_key]) if model_key else "", precomputed=values))
    pre = values is not None if entries else False
    cats = tuple(_category_word(f.path) for f in group) if pre else ()
    return Benchmark(name, RATING, tuple(f.path for f in group), _frame(rows), pre,
                     group[0].fmt, cats, notes=[f"ground truth from field {field_name!r}"],
                     warnings=warnings)


def _ranking_benchmark(groups: list[list[_File]], name: str) -> Benchmark:
    warnings: list[str] = []
    rows = []
    pre = False
    cats: tuple[str, ...] = ()
    counter = 0
    paths: list[Path] = []
    for group in groups:
        paths += [f.path for f in group]
        entries = _combined_entries(group, name, warnings)
        for rec, values in entries:
            model_key = _require(rec.value, MODEL_FIELDS, rec.where, "the model that wrote the response")
            if values is None:
                conv, err = _conversation_of(rec.value, rec.where)
            else:
                conv, err = _paper_conversation(rec, True)
                pre = True
                cats = tuple(_category_word(f.path) for f in group)
            prompt_id = _prompt_id(rec.value, conv)
            rows.append(_row(counter, rec.where, conv, err, model=str(rec.value[model_key]),
                             prompt_id=prompt_id, precomputed=values))
            counter += 1
    frame = _frame(rows)
    n_models = frame[COL_MODEL].nunique()
    if n_models < 2:
        warnings.append(f"{name}: only {n_models} model; a ranking needs several")
    return Benchmark(name, RANKING, tuple(paths), frame, pre, "paper" if pre else "ranking", cats,
                     notes=[f"{n_models} models"], warnings=warnings)


def _prompt_id(data: dict[str, Any], conv: Conversation | None) -> str:
    """What the reply answers: an explicit prompt id, else the conversation before the reply
    (row ids such as `id` are often unique per response, so they come last)."""
    for key in ("question_id", "prompt_id"):
        if data.get(key) is not None:
            return str(data[key])
    if conv is not None:
        return json.dumps([conv.system, *conv.utterances[:-1]], ensure_ascii=False)
    prompt_key = _first_key(data, PROMPT_FIELDS)
    if prompt_key is not None:
        return json.dumps(data[prompt_key], ensure_ascii=False, sort_keys=True)
    for key in ("session_id", "id", "idx"):
        if data.get(key) is not None:
            return str(data[key])
    return ""


def _arena(answers: list[_File], questions: list[_File]) -> list[Benchmark]:
    """Arena-Hard answer files joined with their question.jsonl on question_id."""
    if not answers:
        return []
    by_root: OrderedDict[Path, list[_File]] = OrderedDict()
    for f in answers:
        root = f.path.parent.parent if f.path.parent.name == "model_answer" else f.path.parent
        by_root.setdefault(root, []).append(f)
    benchmarks = []
    for root, files in by_root.items():
        qfiles = [q for q in questions if q.path.parent == root] or questions
        if not qfiles:
            candidate = root / "question.jsonl"
            if candidate.is_file():
                qfiles = [_File(candidate, read_entries(candidate), "arena-questions")]
            else:
                raise BenchmarkFormatError(
                    f"{files[0].path.name}: Arena-Hard answers need their question.jsonl (looked "
                    f"for {candidate}); give it too")
        prompts: dict[str, list[str]] = {}
        for q in qfiles:
            for rec in q.records:
                turns = rec.value.get("turns")
                if not isinstance(turns, list) or not all(isinstance(t, dict) and "content" in t for t in turns):
                    raise BenchmarkFormatError(
                        f"{rec.where}: 'turns' must be a list of {{'content': text}}")
                prompts[str(rec.value["question_id"])] = [t["content"] for t in turns]
        rows = []
        missing = 0
        counter = 0
        for f in files:
            for rec in f.records:
                d = rec.value
                for key in ("question_id", "model_id", "choices"):
                    if key not in d:
                        raise BenchmarkFormatError(
                            f"{rec.where}: missing field {key!r}; Arena-Hard answers need "
                            "'question_id', 'model_id' and 'choices'")
                qid = str(d["question_id"])
                conv, err = None, None
                if qid not in prompts:
                    missing += 1
                    err = f"question {qid} is not in the question file"
                else:
                    try:
                        turns = d["choices"][0]["turns"]
                        replies = [t["content"] for t in turns]
                    except (KeyError, IndexError, TypeError):
                        replies = None
                        err = "'choices' must be [{'turns': [{'content': text}, ...]}]"
                    if replies is not None:
                        utterances = [u for pair in zip(prompts[qid], replies) for u in pair]
                        conv, err = _parse(lambda u=utterances: parse_conversation(u, rec.where), rec.where)
                rows.append(_row(counter, rec.where, conv, err, model=str(d["model_id"]), prompt_id=qid))
                counter += 1
        frame = _frame(rows)
        warnings = [f"{missing} answers name a question missing from the question file"] if missing else []
        benchmarks.append(Benchmark(
            root.name or "arena-hard", RANKING, tuple([q.path for q in qfiles] + [f.path for f in files]),
            frame, False, "arena-hard",
            notes=[f"{frame[COL_MODEL].nunique()} models x {len(prompts)} questions"],
            warnings=warnings))
    return benchmarks


def iter_conversations(frame: pd.DataFrame) -> Iterator[tuple[int, Conversation]]:
    """(frame index, conversation) of every row that has a usable conversation."""
    for idx, conv in zip(frame.index, frame[COL_CONVERSATION]):
        if isinstance(conv, Conversation):
            yield int(idx), conv
