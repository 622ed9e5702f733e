"""Packing follow-up suffixes into batch rows without padding.

Follow-ups are short and of uneven length (4 to 15 tokens for the default set), so padding every
sequence to the longest of its batch wastes a third of the compute. Instead each batch row holds
several suffixes back to back (first-fit decreasing); the attention function keeps them apart
with a segment mask (`core.attention.PackedBatch`). Rows never mix conversations, so each row
attends to exactly one prefix. A pass takes as many rows as its token budget allows.

Pure Python on lengths only: the plan is deterministic for given inputs, and the scores do not
depend on it beyond floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

MIN_ROW_WIDTH = 64  # rows at least this wide, so that short follow-ups share a row


@dataclass(frozen=True)
class Segment:
    """One follow-up suffix: `key` identifies it, `group` is its conversation."""

    group: int
    key: int
    length: int


@dataclass(frozen=True)
class Row:
    group: int
    segments: tuple[tuple[Segment, int], ...]  # (segment, offset in the row)


@dataclass(frozen=True)
class Pass:
    width: int
    rows: tuple[Row, ...]

    @property
    def row_ranges(self) -> tuple[tuple[int, int, int], ...]:
        """(group, first row, end row) for each run of consecutive rows of one group."""
        ranges: list[tuple[int, int, int]] = []
        for i, row in enumerate(self.rows):
            if ranges and ranges[-1][0] == row.group:
                ranges[-1] = (row.group, ranges[-1][1], i + 1)
            else:
                ranges.append((row.group, i, i + 1))
        return tuple(ranges)


def row_width(segments: Sequence[Segment]) -> int:
    """The row width for a set of segments: the longest, but at least `MIN_ROW_WIDTH`."""
    return max([MIN_ROW_WIDTH] + [s.length for s in segments])


def pack_rows(segments: Sequence[Segment], width: int) -> list[Row]:
    """First-fit decreasing into rows of `width` tokens, per group, groups in first-seen order."""
    by_group: dict[int, list[Segment]] = {}
    for segment in segments:
        if segment.length < 1 or segment.length > width:
            raise ValueError(f"segment of {segment.length} tokens cannot go in a row of {width}")
        by_group.setdefault(segment.group, []).append(segment)
    rows: list[Row] = []
    for group, items in by_group.items():
        bins: list[list[tuple[Segment, int]]] = []
        free: list[int] = []
        for segment in sorted(items, key=lambda s: (-s.length, s.key)):
            for b, room in enumerate(free):
                if room >= segment.length:
                    bins[b].append((segment, width - room))
                    free[b] = room - segment.length
                    break
            else:
                bins.append([(segment, 0)])
                free.append(width - segment.length)
        rows.extend(Row(group, tuple(b)) for b in bins)
    return rows


def plan_passes(rows: Sequence[Row], width: int, token_budget: int) -> list[Pass]:
    """Consecutive rows, as many per pass as `token_budget` allows (at least one)."""
    per_pass = max(1, token_budget // width)
    return [Pass(width, tuple(rows[i:i + per_pass])) for i in range(0, len(rows), per_pass)]
