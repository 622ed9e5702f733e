"""RewardBench's summary scores from per-subset accuracies.

RewardBench 1 (allenai/reward-bench): per-subset accuracy, averaged within each section weighted
by the subsets' numbers of pairs (with `math-prm` weighted as much as all code subsets together,
as RewardBench's `EXAMPLE_COUNTS` does: 984 for 447 pairs), then the plain mean of the
sections. `RB1_SECTIONS` is RewardBench 1's section map; a user's map (JSON `{"section":
["subset", ...]}`) replaces it. Subsets outside every section are listed, not scored.

RewardBench 2: the plain mean of its subsets' accuracies (best-of-N pairs, `core.evaluation.pairs`).

Both are labelled as such in the report, beside the pooled figure over all pairs (where the
largest subset dominates) under its own name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from core.errors import BenchmarkFormatError
from core.textfiles import read_text

RB1_SECTIONS: dict[str, tuple[str, ...]] = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy",
             "mt-bench-med"),
    "Chat Hard": ("mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor",
                  "llmbar-adver-GPTInst", "llmbar-adver-GPTOut", "llmbar-adver-manual"),
    "Safety": ("refusals-dangerous", "refusals-offensive", "xstest-should-refuse",
               "xstest-should-respond", "donotanswer"),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
_CODE_PREFIX = "hep-"
_MATH = "math-prm"
RB1_METHOD = ("RewardBench 1 score: per-subset accuracy, weighted by pairs within each section "
              "(math-prm weighted like all code subsets together), then the mean of sections")
RB2_METHOD = "RewardBench 2 score: the mean of the subsets' best-of-N accuracies"


def load_sections(path: str | Path) -> dict[str, tuple[str, ...]]:
    """A section map from JSON: `{"section": ["subset", ...], ...}`."""
    path = Path(path)
    text = read_text(path, BenchmarkFormatError, what="section map")  # size-capped, UTF-8, one-line errors
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchmarkFormatError(f"{path.name}, line {err.lineno}: malformed JSON ({err.msg})") from None
    if not isinstance(data, dict) or not data or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values()):
        raise BenchmarkFormatError(
            f'{path.name}: a section map is a JSON object {{"section": ["subset", ...], ...}}')
    return {str(k): tuple(v) for k, v in data.items()}


def summary_score(subsets: Mapping[str, Mapping[str, Any]], source_format: str,
                  sections: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any] | None:
    """The RewardBench score of one benchmark's per-subset figures (`accuracy`, `n`), or None
    when its subsets are not RewardBench's."""
    accuracy = {name: f["accuracy"] for name, f in subsets.items() if f.get("accuracy") is not None}
    if not accuracy:
        return None
    if source_format == "rewardbench2":
        return {"score": sum(accuracy.values()) / len(accuracy), "method": RB2_METHOD,
                "subsets": dict(accuracy)}
    sections = dict(sections or RB1_SECTIONS)
    counts = {name: int(f.get("n", 0)) for name, f in subsets.items()}
    code = sum(n for name, n in counts.items() if name.startswith(_CODE_PREFIX))
    per_section: dict[str, float] = {}
    for section, members in sections.items():
        present = [m for m in members if m in accuracy]
        weights = {m: (code if m == _MATH and code else counts[m]) for m in present}
        total = sum(weights.values())
        if total:
            per_section[section] = sum(accuracy[m] * weights[m] for m in present) / total
    if not per_section:
        return None
    listed = {m for members in sections.values() for m in members}
    return {"score": sum(per_section.values()) / len(per_section), "method": RB1_METHOD,
            "sections": per_section, "unsectioned": sorted(set(accuracy) - listed),
            "missing_sections": [s for s in sections if s not in per_section]}
