"""Rating files: one conversation with a ground-truth score per entry (`score`, `overall`,
`rating`, a list of judge scores that is averaged, or a field the caller names).
"""

from __future__ import annotations

from core.errors import BenchmarkFormatError
from core.evaluation.benchmark import Benchmark, frame_row, make_frame
from core.evaluation.entries import (
    MODEL_FIELDS,
    SourceFile,
    category_word,
    conversation_of,
    first_key,
    get_path,
    score_value,
)
from core.evaluation.formats.paper import combined_entries, paper_conversation
from core.names import RATING


def rating_benchmark(group: list[SourceFile], name: str) -> Benchmark:
    warnings: list[str] = []
    entries = combined_entries(group, name, warnings)
    field_name = group[0].score_field
    assert field_name is not None
    rows = []
    for i, (rec, values) in enumerate(entries):
        found, raw = get_path(rec.value, field_name)
        if not found or raw is None:
            raise BenchmarkFormatError(
                f"{rec.where}: missing score field {field_name!r}; every rated entry needs its "
                "ground-truth score")
        truth = score_value(raw, rec.where, field_name)
        if values is None:
            conv, err = conversation_of(rec.value, rec.where)
        else:
            conv, err = paper_conversation(rec, True)
        model_key = first_key(rec.value, MODEL_FIELDS)
        rows.append(frame_row(i, rec.where, conv, err, truth=truth,
                         model=str(rec.value[model_key]) if model_key else "", precomputed=values))
    pre = values is not None if entries else False
    cats = tuple(category_word(f.path) for f in group) if pre else ()
    return Benchmark(name, RATING, tuple(f.path for f in group), make_frame(rows), pre,
                     group[0].fmt, cats, notes=[f"ground truth from field {field_name!r}"],
                     warnings=warnings)
