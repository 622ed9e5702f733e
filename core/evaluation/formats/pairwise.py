"""Pairwise files with both replies in one entry: HH-RLHF transcripts (`chosen` / `rejected`),
RewardBench-style `prompt` / `chosen` / `rejected` (strings or message lists) and LLMBar-style
`input` / `output_1` / `output_2` / `label`.
"""

from __future__ import annotations

from typing import Any

from core.engine.conversation import Conversation, from_text, parse_conversation
from core.errors import BenchmarkFormatError
from core.evaluation.benchmark import Benchmark, frame_row, make_frame
from core.evaluation.entries import (
    PROMPT_FIELDS,
    SourceFile,
    file_stem,
    first_key,
    parse,
    with_reply,
)
from core.names import CHOSEN, PAIRWISE, REJECTED


def pairwise_benchmark(f: SourceFile) -> Benchmark:
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
            prompt_key = first_key(d, PROMPT_FIELDS)
            prompt = d[prompt_key] if prompt_key else None
            if f.fmt == "rewardbench2":
                pairs = tuple((side, prompt, reply) for side in (CHOSEN, REJECTED)
                              for reply in _replies(d[side], where, side))
            else:
                pairs = ((CHOSEN, prompt, d[CHOSEN]), (REJECTED, prompt, d[REJECTED]))
        subset = "" if d.get("subset") is None else str(d["subset"])
        counts = {CHOSEN: 0, REJECTED: 0}
        for side, prompt, reply in pairs:
            if prompt is None:
                conv, err = parse(lambda r=reply: _whole_conversation(r, where), where)
            else:
                conv, err = parse(lambda p=prompt, r=reply: with_reply(p, r, where), where)
            counts[side] += 1
            label = f"{side} {counts[side]}" if f.fmt == "rewardbench2" else side
            rows.append(frame_row(i, f"{where} ({label})", conv, err, side=side, subset=subset))
    notes = {"hh-rlhf": "HH-RLHF transcripts (chosen / rejected)",
             "rewardbench": "prompt / chosen / rejected pairs",
             "llmbar": "input / output_1 / output_2 / label pairs",
             "rewardbench2": "RewardBench 2 best-of-N: correct when every chosen reply beats "
                             "every rejected one"}
    return Benchmark(file_stem(f.path), PAIRWISE, (f.path,), make_frame(rows), False, f.fmt,
                     notes=[notes[f.fmt]])


def _replies(value: Any, where: str, side: str) -> list[Any]:
    """RewardBench 2's replies of one side: a list of texts (a lone text is one reply)."""
    replies = value if isinstance(value, list) else [value]
    if not replies:
        raise BenchmarkFormatError(f"{where}: {side!r} is an empty list; expected at least one reply")
    return replies


def _whole_conversation(value: Any, where: str) -> Conversation:
    """A transcript string (`\\n\\nHuman: ...`) or a full message list."""
    if isinstance(value, str) and not value.strip().startswith(("[", "{")):
        return from_text(value, where)
    return parse_conversation(value, where)

