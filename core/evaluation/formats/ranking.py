"""Ranking files: replies of several models to the same prompts, compared later with a reference
ELO table (`core.evaluation.elo`). Arena-Hard answer files are joined with their
`question.jsonl`; any file with model, prompt and response fields works too.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from core.engine.conversation import Conversation, parse_conversation
from core.errors import BenchmarkFormatError
from core.evaluation.benchmark import Benchmark, frame_row, make_frame
from core.evaluation.entries import (
    MODEL_FIELDS,
    PROMPT_FIELDS,
    SourceFile,
    category_word,
    conversation_of,
    first_key,
    parse,
    read_entries,
    require,
)
from core.evaluation.formats.paper import combined_entries, paper_conversation
from core.names import COL_MODEL, RANKING


def ranking_benchmark(groups: list[list[SourceFile]], name: str) -> Benchmark:
    warnings: list[str] = []
    rows = []
    pre = False
    cats: tuple[str, ...] = ()
    counter = 0
    paths: list[Path] = []
    for group in groups:
        paths += [f.path for f in group]
        entries = combined_entries(group, name, warnings)
        for rec, values in entries:
            model_key = require(rec.value, MODEL_FIELDS, rec.where, "the model that wrote the response")
            if values is None:
                conv, err = conversation_of(rec.value, rec.where)
            else:
                conv, err = paper_conversation(rec, True)
                pre = True
                cats = tuple(category_word(f.path) for f in group)
            prompt_id = _prompt_id(rec.value, conv)
            rows.append(frame_row(counter, rec.where, conv, err, model=str(rec.value[model_key]),
                             prompt_id=prompt_id, precomputed=values))
            counter += 1
    frame = make_frame(rows)
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
    prompt_key = first_key(data, PROMPT_FIELDS)
    if prompt_key is not None:
        return json.dumps(data[prompt_key], ensure_ascii=False, sort_keys=True)
    for key in ("session_id", "id", "idx"):
        if data.get(key) is not None:
            return str(data[key])
    return ""


def arena_benchmarks(answers: list[SourceFile], questions: list[SourceFile]) -> list[Benchmark]:
    """Arena-Hard answer files joined with their question.jsonl on question_id."""
    if not answers:
        return []
    by_root: OrderedDict[Path, list[SourceFile]] = OrderedDict()
    for f in answers:
        root = f.path.parent.parent if f.path.parent.name == "model_answer" else f.path.parent
        by_root.setdefault(root, []).append(f)
    benchmarks = []
    for root, files in by_root.items():
        qfiles = [q for q in questions if q.path.parent == root] or questions
        if not qfiles:
            candidate = root / "question.jsonl"
            if candidate.is_file():
                qfiles = [SourceFile(candidate, read_entries(candidate), "arena-questions")]
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
                        conv, err = parse(lambda u=utterances: parse_conversation(u, rec.where), rec.where)
                rows.append(frame_row(counter, rec.where, conv, err, model=str(d["model_id"]), prompt_id=qid))
                counter += 1
        frame = make_frame(rows)
        warnings = [f"{missing} answers name a question missing from the question file"] if missing else []
        benchmarks.append(Benchmark(
            root.name or "arena-hard", RANKING, tuple([q.path for q in qfiles] + [f.path for f in files]),
            frame, False, "arena-hard",
            notes=[f"{frame[COL_MODEL].nunique()} models x {len(prompts)} questions"],
            warnings=warnings))
    return benchmarks
