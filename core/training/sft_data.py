"""Training examples for a feedback-mode scorer, tokenized by the very code that scores them.

Each (question, answer, feedback) triple becomes the conversation [question, answer] with the
feedback as its follow-up, rendered by `core.engine.rendering.render` in feedback mode: the ids
are the ones `--mode feedback` would score, and the labels are -100 everywhere except at the
tokens whose log-probabilities the scorer reads (the feedback turn's own tokens; role headers
and the end-of-turn marker are common to every follow-up and are not scored, so not trained).
Training and scoring therefore cannot disagree about the layout or the mask.

Shortcut on purpose: an over-long triple is cut from the left exactly as scoring cuts it.
The held-out split is carved by question (a hash of the normalised question text), so no
question is on both sides and the split does not depend on the order or mix of the files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.engine.conversation import Conversation
from core.engine.rendering import render
from core.errors import InputError
from core.records import read_records
from core.mining.feedback_data import FeedbackFileError, FeedbackTriple, triple_from_record

IGNORE = -100  # the label PyTorch's cross-entropy (and every HF loss) skips
UNLIMITED = 10_000_000  # a token budget no triple reaches


@dataclass(frozen=True)
class SourcedTriple:
    """A triple and where it was read ("file, line 3"), for error messages and the card."""

    triple: FeedbackTriple
    where: str


@dataclass(frozen=True)
class TrainingExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE except on the scored feedback tokens
    where: str

    @property
    def trained_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def read_triples(paths: Sequence[str | Path]) -> list[SourcedTriple]:
    """Every triple of every file, in file order; a bad record raises naming file, row and field."""
    if not paths:
        raise InputError("no training files given; pass one or more JSON, JSONL or CSV files of "
                         "question, answer and feedback records")
    out: list[SourcedTriple] = []
    for path in paths:
        records = read_records(path, FeedbackFileError)
        if not records:
            raise FeedbackFileError(f"{path}: no records; add question, answer and feedback records")
        out += [SourcedTriple(triple_from_record(r.value, r.where), r.where) for r in records]
    return out


def question_key(question: str) -> str:
    return hashlib.sha256(" ".join(question.lower().split()).encode()).hexdigest()


def split_by_question(triples: Sequence[SourcedTriple], eval_fraction: float
                      ) -> tuple[list[SourcedTriple], list[SourcedTriple]]:
    """(train, held out): a question goes to the held-out side when its hash falls under
    `eval_fraction`; with at least two questions and a positive fraction, at least one is held out."""
    if not 0 <= eval_fraction < 1:
        raise InputError(f"the held-out fraction must be in [0, 1); got {eval_fraction}")
    keys = {question_key(t.triple.question) for t in triples}
    held = {k for k in keys if int(k[:8], 16) / 0xFFFFFFFF < eval_fraction}
    if eval_fraction > 0 and not held and len(keys) >= 2:
        held = {min(keys)}
    if held == keys:
        held = set()
    train = [t for t in triples if question_key(t.triple.question) not in held]
    evals = [t for t in triples if question_key(t.triple.question) in held]
    return train, evals


def feedback_example(tokenizer: Any, item: SourcedTriple, max_length: int) -> TrainingExample | None:
    """The ids `--mode feedback` scores for this triple, labelled on the scored tokens only;
    None when the feedback alone does not fit `max_length` (scoring would refuse it too)."""
    triple = item.triple
    conversation = Conversation((triple.question, triple.answer))
    try:
        rendered = render(tokenizer, conversation, [triple.feedback], mode="feedback",
                          aggregation="mean", max_length=max_length)
    except InputError as err:
        try:  # fits without a length limit: it is only too long, which is not the file's fault
            render(tokenizer, conversation, [triple.feedback], mode="feedback", aggregation="mean",
                   max_length=UNLIMITED)
        except InputError:
            raise FeedbackFileError(f"{item.where}: {err}") from None
        return None
    (request,) = rendered.requests
    labels = [IGNORE] * len(request.ids)
    for position, (target,) in zip(request.positions, request.targets):
        labels[position + 1] = target
    return TrainingExample(request.ids, tuple(labels), item.where)


def feedback_examples(tokenizer: Any, items: Sequence[SourcedTriple], max_length: int
                      ) -> tuple[list[TrainingExample], int]:
    """(examples, how many triples were skipped as longer than `max_length` tokens)."""
    examples = [feedback_example(tokenizer, item, max_length) for item in items]
    kept = [e for e in examples if e is not None]
    return kept, len(examples) - len(kept)
