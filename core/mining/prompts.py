"""Prompt files for preference mining: what the policy model is asked to answer.

A prompt is a conversation that ends with a user turn (usually a single question). Accepted
files (read by `core.records`): JSON (a list), JSONL (one record per line) and CSV (one record
per row), gzipped too. A record is

- a string: one user turn;
- an object with `prompt`, `question` or `instruction` (alpaca style: `input` is appended on a
  new line, `history` holds earlier `[user, assistant]` pairs, `system` a system prompt);
- an object with `turns` (MT-Bench and Arena-Hard questions: strings or `{"content"}`
  objects): the first turn is the prompt;
- an object with `conversation` / `messages` / `conversations` (ShareGPT), or a bare list:
  utterances (user first) or OpenAI / ShareGPT messages, ending with the user turn the policy
  must answer.

Shortcut taken on purpose: MT-Bench's later turns are dropped, because they refer to the
model's own first answer and mining scores one reply at a time. An `id` or `question_id`
field names the prompt in the exports; otherwise the record's position does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.engine.conversation import Prompt, parse_turns
from core.errors import InputError
from core.records import Record, format_of, guess_format, parse_records, read_records

_TEXT_FIELDS = ("prompt", "question", "instruction")
_CONVERSATION_FIELDS = ("conversation", "messages", "conversations")  # the last: ShareGPT


class PromptFileError(InputError):
    """A prompt file, or one record in it, that cannot be used for mining."""


@dataclass(frozen=True, init=False)
class MiningPrompt(Prompt):
    """A prompt file's `Prompt` (turns ending with the user turn the policy answers) and the id
    that names it in the exports."""

    id: str = "0"

    def __init__(self, id: str, turns: tuple[str, ...], system: str | None = None,
                 warnings: tuple[str, ...] = ()) -> None:  # id first, as files and exports name it
        object.__setattr__(self, "id", id)
        super().__init__(turns, system, warnings)

    def __post_init__(self) -> None:
        if not self.turns or len(self.turns) % 2 == 0:
            raise PromptFileError(
                f"prompt {self.id}: expected turns ending with the user's; got {len(self.turns)} "
                "turn(s) ending with the assistant's"
            )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "conversation": list(self.turns)}
        if self.system:
            record["system"] = self.system
        return record


def load_prompts(path: str | Path) -> list[MiningPrompt]:
    """Every prompt in a JSON, JSONL or CSV file (gzipped too), in file order."""
    records = read_records(path, PromptFileError)
    return _prompts(records, str(path), csv_header=format_of(path) == "csv")


def parse_prompts(text: str, where: str = "prompt file", fmt: str = "auto") -> list[MiningPrompt]:
    """Parse prompt-file text; `fmt` is "json", "jsonl", "csv" or "auto" (guess from content)."""
    fmt = guess_format(text) if fmt == "auto" else fmt
    records = parse_records(text, where, fmt, PromptFileError)
    return _prompts(records, where, csv_header=fmt == "csv")


def _prompts(records: list[Record], where: str, csv_header: bool) -> list[MiningPrompt]:
    if csv_header and records:
        fields = list(records[0].value)
        if not any(f in _TEXT_FIELDS + ("turns",) + _CONVERSATION_FIELDS for f in fields):
            raise PromptFileError(
                f"{where}: the CSV header ({', '.join(fields) or 'empty'}) has no prompt column; "
                f"name one column {' or '.join(repr(k) for k in _TEXT_FIELDS)}"
            )
    prompts = [prompt_from_record(r.value, r.where, default_id=str(i)) for i, r in enumerate(records)]
    if not prompts:
        raise PromptFileError(f"{where}: no prompts found; add at least one question")
    seen: dict[str, str] = {}
    for record, prompt in zip(records, prompts):
        if prompt.id in seen:
            raise PromptFileError(
                f"{record.where}: id {prompt.id!r} is used again (first at {seen[prompt.id]}); "
                "give every prompt a distinct id"
            )
        seen[prompt.id] = record.where
    return prompts


def prompt_from_record(value: Any, where: str, default_id: str = "0") -> MiningPrompt:
    """One prompt from a decoded record (string, object or list), see the module docstring."""
    if isinstance(value, str):
        return MiningPrompt(default_id, (_nonempty(value, where),))
    if isinstance(value, (list, tuple)):
        turns, system = _turns_from_list(value, where)
        return MiningPrompt(default_id, turns, system)
    if not isinstance(value, dict):
        raise PromptFileError(
            f"{where}: expected a string, an object or a list; got {type(value).__name__}"
        )
    pid = value.get("id", value.get("question_id", default_id))
    pid = default_id if pid is None or pid == "" else str(pid)
    system = value.get("system") or None
    if system is not None and not isinstance(system, str):
        raise PromptFileError(f"{where}: field 'system' must be a string")
    for key in _CONVERSATION_FIELDS:
        if key in value:
            turns, inner_system = _turns_from_list(_maybe_json(value[key]), f"{where}, field '{key}'")
            return MiningPrompt(pid, turns, inner_system or system)
    if "turns" in value:
        turns = _maybe_json(value["turns"])
        if not isinstance(turns, list) or not turns:
            raise PromptFileError(f"{where}: field 'turns' must be a non-empty list of user turns")
        first = turns[0]
        if isinstance(first, dict) and "content" in first:  # Arena-Hard: [{"content": ...}]
            first = first["content"]
        return MiningPrompt(pid, (_nonempty(first, f"{where}, field 'turns'[0]"),), system)
    for key in _TEXT_FIELDS:
        if key in value and value[key] not in (None, ""):
            text = _nonempty(value[key], f"{where}, field '{key}'")
            extra = value.get("input")
            if key == "instruction" and isinstance(extra, str) and extra.strip():
                text = f"{text}\n{extra}"
            history = _history(_maybe_json(value.get("history")), where)
            return MiningPrompt(pid, history + (text,), system)
    present = [key for key in _TEXT_FIELDS if key in value]
    if present:
        raise PromptFileError(f"{where}, field '{present[0]}': the prompt is empty")
    raise PromptFileError(
        f"{where}: no prompt found; expected a field named one of "
        f"{', '.join(_TEXT_FIELDS + ('turns',) + _CONVERSATION_FIELDS)}"
    )


def _maybe_json(value: Any) -> Any:
    """CSV cells hold lists as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _nonempty(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PromptFileError(f"{where}: expected text; got {type(value).__name__}")
    if not value.strip():
        raise PromptFileError(f"{where}: the prompt is empty")
    return value


def _history(value: Any, where: str) -> tuple[str, ...]:
    if value in (None, "", []):
        return ()
    if not isinstance(value, list):
        raise PromptFileError(f"{where}: field 'history' must be a list of [user, assistant] pairs")
    out: list[str] = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(t, str) for t in pair)):
            raise PromptFileError(
                f"{where}: field 'history'[{i}] must be a [user, assistant] pair of strings"
            )
        out += list(pair)
    return tuple(out)


def _turns_from_list(items: Sequence[Any], where: str) -> tuple[tuple[str, ...], str | None]:
    if not isinstance(items, (list, tuple)) or not items:
        raise PromptFileError(f"{where}: expected a non-empty list of utterances or messages")
    if all(isinstance(v, str) for v in items):
        turns = tuple(items)
        system = None
    elif all(isinstance(v, dict) for v in items):
        roles_and_texts, system = parse_turns(items, where, PromptFileError)
        turns = tuple(text for _, text in roles_and_texts)
    else:
        raise PromptFileError(f"{where}: expected a list of strings or a list of message objects")
    if not turns:
        raise PromptFileError(f"{where}: no user turn to answer")
    for i, text in enumerate(turns):
        if not text.strip():
            raise PromptFileError(f"{where}: utterance {i} is empty")
    if len(turns) % 2 == 0:
        raise PromptFileError(
            f"{where}: expected utterances ending with the user's turn for the policy to answer; "
            f"got {len(turns)} ending with the assistant's (drop the last reply)"
        )
    return turns, system
