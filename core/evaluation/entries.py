"""Reading a benchmark file's entries and the fields inside them.

Files may be JSON (a list), JSONL, either gzipped, CSV or Parquet (`core.records`
reads them). Field names come in the spellings real benchmark files use (`SCORE_FIELDS`,
`MODEL_FIELDS`, ...), including the FLR paper's misspelled `positve`. File names matter for the
paper's layout: `accept` / `reject` name the side and the last word the follow-up category.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.engine.conversation import (
    ASSISTANT,
    ROLE_ALIASES,
    USER,
    Conversation,
    is_transcript,
    parse_conversation,
    prompt_from_text,
)
from core.errors import BenchmarkFormatError, ConversationError
from core.records import Record, format_of, read_records
from core.limits import finite_number
from core.names import CHOSEN, REJECTED

SCORE_FIELDS = ("score", "overall", "overall_score", "rating", "gpt4_score", "human_score",
                "scores", "ratings")


MODEL_FIELDS = ("model", "model_id", "model_name", "generator", "model_test")


PROMPT_FIELDS = ("prompt", "instruction", "input", "question")


RESPONSE_FIELDS = ("response", "output", "answer", "completion")


CONVERSATION_FIELDS = ("conversation", "messages")


POSITIVE_FIELDS = ("positive", "positve")  # the paper's scripts wrote "positve"


NEGATIVE_FIELD = "negative"


SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".csv.gz", ".csv", ".parquet")


_PAIR_WORDS = {"accept": CHOSEN, "accepted": CHOSEN, "chosen": CHOSEN, "reject": REJECTED,
               "rejected": REJECTED}


_WORD_SPLIT = re.compile(r"[_\-. ]+")


def read_entries(path: Path) -> list[Record]:
    """Every entry of a benchmark file as an object (`core.records` reads the formats).

    CSV cells stay text, so a reply such as `42` or `[1, 2]` and an id such as `0012` are read
    as written; only the known numeric fields (`NUMERIC_FIELDS`: scores, precomputed follow-up
    values) are decoded, by their readers, and an empty cell there means missing."""
    path = Path(path)
    name = path.name
    if not name.lower().endswith(SUFFIXES):
        raise BenchmarkFormatError(
            f"{name}: unknown file type; use .json, .jsonl, .csv or .parquet (optionally .gz)")
    records = read_records(path, BenchmarkFormatError, name=name)
    if not records:
        raise BenchmarkFormatError(f"{name}: the file has no entries")
    csv_cells = format_of(path) == "csv"
    return [Record(r.where, _as_object(
                {k: _csv_cell(k, v) for k, v in r.value.items()} if csv_cells else r.value, r.where))
            for r in records]


NUMERIC_FIELDS = frozenset(SCORE_FIELDS + POSITIVE_FIELDS + (NEGATIVE_FIELD,))


def _csv_cell(key: str, value: str | None) -> Any:
    """A CSV cell as text; an empty cell of a numeric field is missing (None)."""
    if value is not None and key in NUMERIC_FIELDS and not value.strip():
        return None
    return value


def _as_object(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {"conversation": value}  # a bare utterance list, as `score` accepts
    raise BenchmarkFormatError(
        f"{where}: expected a JSON object with the benchmark's fields; got {type(value).__name__}")


def file_stem(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _words(stem: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(stem) if w]


def pair_side(path: Path) -> str | None:
    """`chosen` for an accept file, `rejected` for a reject file, None otherwise."""
    sides = {_PAIR_WORDS[w.lower()] for w in _words(file_stem(path)) if w.lower() in _PAIR_WORDS}
    return sides.pop() if len(sides) == 1 else None


def pair_key(path: Path) -> tuple[str, ...]:
    """The file name with its accept/reject word blanked: partners share it."""
    return tuple("*" if w.lower() in _PAIR_WORDS else w for w in _words(file_stem(path)))


def category_word(path: Path) -> str:
    words = _words(file_stem(path))
    last = words[-1] if words else "flr"
    return "all" if last.lower() in _PAIR_WORDS else last


def name_from_words(words: Iterable[str], path: Path) -> str:
    kept = [w for w in words if w != "*"]
    return "_".join(kept) if kept else (path.parent.name or "benchmark")


def first_key(data: dict[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if key in data:
            return key
    return None


def get_path(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """A field by name, or nested with dots (`scores.overall`)."""
    if dotted in data:
        return True, data[dotted]
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def score_value(value: Any, where: str, field_name: str) -> float:
    """A number, numeric text, or a list of judge scores (averaged)."""
    if isinstance(value, bool):
        raise BenchmarkFormatError(f"{where}: score field {field_name!r} is a boolean; expected a number")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise BenchmarkFormatError(
                f"{where}: score field {field_name!r} is {value}; expected a finite number")
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            try:
                value = json.loads(value)  # a list of judge scores written into a CSV cell
            except json.JSONDecodeError:
                pass
        else:
            if not math.isfinite(number):
                raise BenchmarkFormatError(
                    f"{where}: score field {field_name!r} is {value!r}; expected a finite number")
            return number
    if isinstance(value, list) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return _finite(sum(_finite(v, where, field_name) for v in value) / len(value), where, field_name)
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
    # NaN / infinite values are kept: judging skips that row for every signal, with the reason in
    # the report, so one bad row neither stops the file nor shrinks only some of the figures.
    return tuple(float(v) for v in value)


def _finite(value: Any, where: str, field_name: str) -> float:
    return finite_number(value, f"{where}: field {field_name!r}", what="every value",
                         error=BenchmarkFormatError)


def precomputed_lists(data: dict[str, Any], where: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    pos_key = first_key(data, POSITIVE_FIELDS)
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


def has_precomputed(data: dict[str, Any]) -> bool:
    return first_key(data, POSITIVE_FIELDS) is not None or NEGATIVE_FIELD in data


def require(data: dict[str, Any], keys: Sequence[str], where: str, expected: str) -> str:
    key = first_key(data, keys)
    if key is None:
        raise BenchmarkFormatError(
            f"{where}: missing field {' / '.join(repr(k) for k in keys)}; expected {expected} "
            f"(fields found: {', '.join(sorted(map(str, data))) or 'none'})")
    return key


def conversation_of(data: dict[str, Any], where: str) -> tuple[Conversation | None, str | None]:
    """The conversation of a rating / ranking / paper entry: (conversation, error)."""
    key = first_key(data, CONVERSATION_FIELDS)
    if key is not None:
        return parse(lambda: parse_conversation(data[key], where), where)
    prompt_key = first_key(data, PROMPT_FIELDS)
    response_key = first_key(data, RESPONSE_FIELDS)
    if prompt_key and response_key:
        return parse(lambda: with_reply(data[prompt_key], data[response_key], where), where)
    raise BenchmarkFormatError(
        f"{where}: missing field 'conversation' (or 'messages', or a prompt and a response "
        "field such as 'prompt' / 'response'); expected the conversation ending with the "
        f"reply to judge (fields found: {', '.join(sorted(map(str, data))) or 'none'})")


def parse(build: Any, where: str) -> tuple[Conversation | None, str | None]:
    try:
        return build(), None
    except ConversationError as err:
        return None, str(err)


def with_reply(prompt: Any, reply: Any, where: str) -> Conversation:
    """A prompt (text, utterances or messages) followed by a reply (text or messages). Prompt
    text that starts with a user's role prefix is turns (`core.engine.conversation` parses
    them, as it does every transcript); other text is one question."""
    if isinstance(reply, list) and reply and all(isinstance(m, dict) for m in reply):
        roles = {ROLE_ALIASES.get(str(m.get("role", m.get("from", ""))).lower()) for m in reply}
        if USER in roles:
            return parse_conversation(reply, where)  # the reply side is the whole conversation
        reply_messages = reply
    elif isinstance(reply, str):
        reply_messages = [{"role": ASSISTANT, "content": reply}]
    else:
        raise ConversationError(f"{where}: the reply must be text or a message list; got {type(reply).__name__}")
    if isinstance(prompt, str):
        prompt_messages = (prompt_from_text(prompt, where).messages() if is_transcript(prompt)
                           else [{"role": USER, "content": prompt}])
    elif isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        prompt_messages = list(prompt)
    elif isinstance(prompt, list) and all(isinstance(m, str) for m in prompt):
        prompt_messages = [{"role": USER if i % 2 == 0 else ASSISTANT, "content": t}
                           for i, t in enumerate(prompt)]
    else:
        raise ConversationError(f"{where}: the prompt must be text or a message list; got {type(prompt).__name__}")
    return parse_conversation(prompt_messages + reply_messages, where)


@dataclass
class SourceFile:
    path: Path
    records: list[Record]
    role: str  # "paper-pair", "pairwise", "rating", "ranking", "arena-answers", "arena-questions"
    fmt: str = ""
    side: str | None = None
    precomputed: bool = False
    score_field: str | None = None
