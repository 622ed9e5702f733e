"""Telling a benchmark file's kind and grouping files into benchmarks: `detect_benchmarks`.

Each file is classified by its fields (and, for the FLR paper's layout, by its name), then the
builder of its format in `core.evaluation.formats` turns it into a `Benchmark`. `kind`
overrides detection; a file that fits no format raises `BenchmarkFormatError` naming the file
and the fields it has. Nothing is guessed silently: a missing partner file, a question file
without answers, or a field of the wrong type is an error, not a skipped file.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

from core.engine.conversation import Conversation
from core.errors import BenchmarkFormatError
from core.evaluation.benchmark import Benchmark
from core.evaluation.entries import (
    MODEL_FIELDS,
    PROMPT_FIELDS,
    SCORE_FIELDS,
    SUFFIXES,
    SourceFile,
    category_word,
    first_key,
    get_path,
    has_precomputed,
    name_from_words,
    pair_key,
    pair_side,
    read_entries,
)
from core.evaluation.formats.pairwise import pairwise_benchmark
from core.evaluation.formats.paper import category_groups, paper_benchmarks
from core.evaluation.formats.ranking import arena_benchmarks, ranking_benchmark
from core.evaluation.formats.rating import rating_benchmark
from core.evaluation.integrity import check_duplicates, check_pairs
from core.records import Record
from core.names import CHOSEN, COL_CONVERSATION, KINDS, PAIRWISE, RANKING, RATING, REJECTED


def _classify(path: Path, records: list[Record], kind: str | None, score_field: str | None,
              pairs: bool = True) -> SourceFile:
    first = records[0].value
    keys = set(first)
    side = pair_side(path) if pairs else None
    precomputed = has_precomputed(first)
    if side is not None and kind in (None, PAIRWISE) and not ({CHOSEN, REJECTED} <= keys):
        return SourceFile(path, records, "paper-pair", "paper", side, precomputed)
    if {"question_id", "model_id", "choices"} <= keys:
        _check_kind(kind, RANKING, path, "Arena-Hard answers")
        return SourceFile(path, records, "arena-answers", "arena-hard")
    if {"question_id", "turns"} <= keys and "model_id" not in keys:
        return SourceFile(path, records, "arena-questions", "arena-hard")
    if {CHOSEN, REJECTED} <= keys:
        _check_kind(kind, PAIRWISE, path, "chosen/rejected pairs")
        fmt = "rewardbench" if first_key(first, PROMPT_FIELDS) else "hh-rlhf"
        if fmt == "rewardbench" and (_text_list(first[CHOSEN]) or _text_list(first[REJECTED])):
            fmt = "rewardbench2"  # one prompt, lists of correct and incorrect replies
        return SourceFile(path, records, "pairwise", fmt)
    if {"output_1", "output_2", "label"} <= keys:
        _check_kind(kind, PAIRWISE, path, "two outputs with a label")
        return SourceFile(path, records, "pairwise", "llmbar")
    if kind == PAIRWISE:
        raise BenchmarkFormatError(
            f"{path.name}: cannot read as pairwise; expected 'chosen' and 'rejected' fields, "
            "'input' / 'output_1' / 'output_2' / 'label', or a pair of files named with 'accept' "
            f"and 'reject' (fields found: {', '.join(sorted(keys))})")
    model_key = first_key(first, MODEL_FIELDS)
    if score_field is not None:
        found, _ = get_path(first, score_field)
        if not found:
            raise BenchmarkFormatError(
                f"{records[0].where}: unknown score field {score_field!r}; fields found: "
                f"{', '.join(sorted(keys))}")
    if kind == RANKING:
        if model_key is None:
            raise BenchmarkFormatError(
                f"{records[0].where}: cannot read as ranking; missing a model field "
                f"({' / '.join(MODEL_FIELDS)}) naming who wrote each response")
        return SourceFile(path, records, "ranking", "paper" if precomputed else "ranking",
                     precomputed=precomputed)
    found_score = score_field or first_key(first, SCORE_FIELDS)
    if found_score is not None:
        return SourceFile(path, records, "rating", "paper" if precomputed else "rating",
                     precomputed=precomputed, score_field=found_score)
    if kind == RATING:
        raise BenchmarkFormatError(
            f"{records[0].where}: no ground-truth score field; expected one of "
            f"{', '.join(SCORE_FIELDS)} or name it with the score-field option "
            f"(fields found: {', '.join(sorted(keys))})")
    if model_key is not None:
        return SourceFile(path, records, "ranking", "paper" if precomputed else "ranking",
                     precomputed=precomputed)
    raise BenchmarkFormatError(
        f"{path.name}: cannot tell the benchmark kind from fields {', '.join(sorted(keys))}; "
        "expected chosen/rejected pairs, accept/reject files, a conversation with a score "
        f"field ({', '.join(SCORE_FIELDS[:3])}, ...), or model + prompt + response; "
        "or name the kind explicitly")


def _text_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _check_kind(kind: str | None, found: str, path: Path, what: str) -> None:
    if kind is not None and kind != found:
        raise BenchmarkFormatError(f"{path.name}: holds {what}, a {found} benchmark, not {kind}")


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
                           if p.is_file() and p.name.lower().endswith(SUFFIXES)
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
                      score_field: str | None = None, drop_duplicates: bool = False) -> list[Benchmark]:
    """Read files (or folders of them) and group them into benchmarks of detected kind.

    `kind` ("pairwise" | "rating" | "ranking") overrides detection; `score_field` names the
    ground-truth field of rating files (dots reach into nested objects). Pairs whose replies
    answer different conversations are marked unusable and repeated rows named in the warnings
    (`core.evaluation.integrity`); `drop_duplicates` keeps only each row's first copy.
    """
    if kind is not None and kind not in KINDS:
        raise BenchmarkFormatError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    files = [_classify(p, read_entries(p), kind, score_field) for p in expand_paths(paths)]
    files = _unpaired_as_plain(files, kind, score_field)
    benchmarks: list[Benchmark] = []
    benchmarks += paper_benchmarks([f for f in files if f.role == "paper-pair"])
    benchmarks += [pairwise_benchmark(f) for f in files if f.role == "pairwise"]
    benchmarks += _grouped(RATING, [f for f in files if f.role == "rating"])
    benchmarks += _grouped(RANKING, [f for f in files if f.role == "ranking"])
    benchmarks += arena_benchmarks([f for f in files if f.role == "arena-answers"],
                         [f for f in files if f.role == "arena-questions"])
    orphans = [f for f in files if f.role == "arena-questions"]
    if orphans and not any(f.role == "arena-answers" for f in files):
        raise BenchmarkFormatError(
            f"{orphans[0].path.name}: a question file alone is not a benchmark; add the "
            "model answer files (model_answer/*.jsonl) it belongs to")
    for b in benchmarks:
        _note_conversation_warnings(b)
        check_pairs(b)
        check_duplicates(b, drop_duplicates)
    return _unique_names(benchmarks)


def _note_conversation_warnings(b: Benchmark) -> None:
    """One line per benchmark for conversations read with a warning (e.g. an odd utterance
    list whose first utterance was dropped, as the paper's scripts do)."""
    warned = [c.warnings[0] for c in b.frame[COL_CONVERSATION]
              if isinstance(c, Conversation) and c.warnings]
    if warned:
        b.warnings.append(f"{len(warned)} conversation(s) read with a warning, e.g. {warned[0]}")


def _unpaired_as_plain(files: list[SourceFile], kind: str | None, score_field: str | None) -> list[SourceFile]:
    """A file whose name merely contains "accept"/"reject" and has no partner among the
    inputs is read by its fields when they tell its kind (else the missing partner is
    reported)."""
    keys: dict[tuple, set[str]] = {}
    for f in files:
        if f.role == "paper-pair":
            keys.setdefault((str(f.path.parent),) + pair_key(f.path), set()).add(f.side or "")
    out = []
    for f in files:
        if f.role == "paper-pair" and len(keys[(str(f.path.parent),) + pair_key(f.path)]) == 1 \
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


def _grouped(kind: str, files: list[SourceFile]) -> list[Benchmark]:
    """Rating or ranking files: category files combine; ranking files of one folder combine
    too (one file per model is a common way to ship a ranking set)."""
    groups = category_groups(files)
    if kind == RATING:
        return [rating_benchmark(group, _group_name(key, group)) for key, group in groups.items()]
    by_dir: OrderedDict[tuple, list[tuple[tuple, list[SourceFile]]]] = OrderedDict()
    for key, group in groups.items():
        cats = tuple(sorted(category_word(f.path) for f in group)) if group[0].precomputed else ()
        by_dir.setdefault((str(group[0].path.parent), group[0].precomputed, cats), []).append((key, group))
    benchmarks = []
    for (directory, _, _), items in by_dir.items():
        if len(items) == 1:
            key, group = items[0]
            benchmarks.append(ranking_benchmark([group], _group_name(key, group)))
        else:
            benchmarks.append(ranking_benchmark([g for _, g in items],
                                                 Path(directory).name or "ranking"))
    return benchmarks


def _group_name(key: tuple, group: list[SourceFile]) -> str:
    words = [w for w in key[1:] if w != "<category>"]
    return name_from_words(words, group[0].path)
