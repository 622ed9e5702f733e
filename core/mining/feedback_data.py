"""Fine-tuning data for a feedback-mode scorer, from (question, answer, feedback) triples.

The paper's feedback-tuned FLR scorer is an LM fine-tuned to play the other side: it asks a
question, reads the user's answer and gives feedback. The engine's feedback mode
(`core.engine.rendering`) scores follow-ups in exactly that layout, so the SFT data written here is

    user:      FEEDBACK_INSTRUCTION
    assistant: question
    user:      answer
    assistant: feedback

in LLaMA-Factory's sharegpt format (roles `human` / `gpt`) and, equivalently, its alpaca format
(instruction = the answer, output = the feedback, history = [[instruction, question]]), each with
its `dataset_info.json` entry.

Note: LLaMA-Factory also trains on the responses in `history` / earlier turns unless
`mask_history` is set, so by default the model also learns to ask the questions; both flavours
behave the same way in that respect.

Triples are read (by `core.records`) from JSON (a list), JSONL or CSV, gzipped too, with the
fields `question`, `answer` and `feedback` (also accepted: `instruction` / `prompt` for the
question, `response` / `output` for the answer, `critique` for the feedback).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.errors import InputError
from core.mining.llamafactory import GPT, HUMAN, write_dataset_info, write_json
from core.records import Record, parse_records, read_records
from core.engine.rendering import FEEDBACK_INSTRUCTION

_ALIASES = {
    "question": ("question", "instruction", "prompt"),
    "answer": ("answer", "response", "output"),
    "feedback": ("feedback", "critique"),
}


class FeedbackFileError(InputError):
    """A triples file, or one record in it, that cannot be used."""


@dataclass(frozen=True)
class FeedbackTriple:
    question: str
    answer: str
    feedback: str


def load_triples(path: str | Path) -> list[FeedbackTriple]:
    """Every (question, answer, feedback) triple in a JSON, JSONL or CSV file (gzipped too)."""
    return _triples(read_records(path, FeedbackFileError), str(path))


def parse_triples(text: str, where: str = "triples file", fmt: str = "auto") -> list[FeedbackTriple]:
    """Triples from JSON, JSONL or CSV text; `fmt` is "json", "jsonl", "csv" or "auto"."""
    return _triples(parse_records(text, where, fmt, FeedbackFileError), where)


def _triples(records: list[Record], where: str) -> list[FeedbackTriple]:
    triples = [triple_from_record(r.value, r.where) for r in records]
    if not triples:
        raise FeedbackFileError(f"{where}: no triples found; add records with question, answer and feedback")
    return triples


def triple_from_record(value: Any, where: str) -> FeedbackTriple:
    if not isinstance(value, dict):
        raise FeedbackFileError(
            f"{where}: expected an object with question, answer and feedback; got {type(value).__name__}"
        )
    fields: dict[str, str] = {}
    for name, aliases in _ALIASES.items():
        key = next((k for k in aliases if k in value and value[k] is not None), None)
        if key is None:
            raise FeedbackFileError(
                f"{where}: missing field '{name}' (also accepted: {', '.join(aliases[1:])})"
            )
        text = value[key]
        if not isinstance(text, str) or not text.strip():
            raise FeedbackFileError(f"{where}: field '{key}' must be non-empty text")
        fields[name] = text
    return FeedbackTriple(**fields)


def sharegpt_record(triple: FeedbackTriple) -> dict[str, Any]:
    turns = (FEEDBACK_INSTRUCTION, triple.question, triple.answer, triple.feedback)
    return {"conversations": [{"from": HUMAN if i % 2 == 0 else GPT, "value": t}
                              for i, t in enumerate(turns)]}


def alpaca_record(triple: FeedbackTriple) -> dict[str, Any]:
    return {"instruction": triple.answer, "input": "", "output": triple.feedback,
            "history": [[FEEDBACK_INSTRUCTION, triple.question]]}


DATASET_ENTRIES = {
    "sharegpt": {"formatting": "sharegpt", "columns": {"messages": "conversations"}},
    "alpaca": {"columns": {"prompt": "instruction", "query": "input", "response": "output",
                           "history": "history"}},
}


def export_feedback_data(triples: Sequence[FeedbackTriple], output_dir: str | Path,
                         prefix: str = "flr_feedback",
                         flavours: Sequence[str] = ("sharegpt", "alpaca")) -> dict[str, Path]:
    """Write `<prefix>_<flavour>.json` files and their `dataset_info.json` entries."""
    out = Path(output_dir)
    builders = {"sharegpt": sharegpt_record, "alpaca": alpaca_record}
    files: dict[str, Path] = {}
    entries: dict[str, dict[str, Any]] = {}
    for flavour in flavours:
        if flavour not in builders:
            raise InputError(f"unknown flavour {flavour!r}; use sharegpt or alpaca")
        name = f"{prefix}_{flavour}"
        files[name] = write_json(out / f"{name}.json", [builders[flavour](t) for t in triples])
        entries[name] = {"file_name": f"{name}.json", **DATASET_ENTRIES[flavour]}
    files["dataset_info"] = write_dataset_info(out, entries)
    return files
