"""Packing follow-up suffixes into batch rows without padding.

Follow-ups are short and of uneven length (4 to 15 tokens for the default set), so padding every
sequence to the longest of its batch wastes a third of the compute. Instead each batch row holds
several segments (pieces of the follow-ups' token trie, `core.engine.fast.trie`) back to back (first-fit
decreasing); the attention function keeps them apart with a mask (`core.engine.fast.attention.PackedBatch`).
Rows never mix conversations, so each row attends to exactly one prefix. A conversation's prefix
goes into the same pass as its first suffix rows (`PrefixBlock`: its tokens fill whole rows), so
the prefix costs no pass of its own. A pass takes as many rows as its token budget allows.

Pure Python on lengths only: the plan is deterministic for given inputs, and the scores do not
depend on it beyond floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

MIN_ROW_WIDTH = 32  # rows at least this wide, so that short follow-ups share a row
MAX_ROW_WIDTH = 128  # widths tried up to this (unless a follow-up is longer)
_WIDTH_STEP = 8


@dataclass(frozen=True)
class Segment:
    """One stretch of a row (a trie piece): `key` identifies it, `group` is its conversation."""

    group: int
    key: int
    length: int


@dataclass(frozen=True)
class Row:
    group: int
    segments: tuple[tuple[Segment, int], ...]  # (segment, offset in the row)


@dataclass(frozen=True)
class PrefixBlock:
    """A conversation's prefix, computed in the same pass as (some of) its suffix rows: its
    tokens fill consecutive rows back to back."""

    group: int
    length: int

    def rows(self, width: int) -> int:
        return -(-self.length // width)


Unit = PrefixBlock | Row


@dataclass(frozen=True)
class Pass:
    """One forward pass: its prefix blocks' rows first, then its suffix rows."""

    width: int
    units: tuple[Unit, ...]

    @property
    def prefixes(self) -> tuple[PrefixBlock, ...]:
        return tuple(u for u in self.units if isinstance(u, PrefixBlock))

    @property
    def rows(self) -> tuple[Row, ...]:
        return tuple(u for u in self.units if isinstance(u, Row))

    @property
    def prefix_rows(self) -> int:
        return sum(p.rows(self.width) for p in self.prefixes)

    @property
    def row_ranges(self) -> tuple[tuple[int, int, int], ...]:
        """(group, first row, end row) for each run of consecutive suffix rows of one group,
        counted in the pass (after the prefix rows)."""
        ranges: list[tuple[int, int, int]] = []
        for i, row in enumerate(self.rows, start=self.prefix_rows):
            if ranges and ranges[-1][0] == row.group:
                ranges[-1] = (row.group, ranges[-1][1], i + 1)
            else:
                ranges.append((row.group, i, i + 1))
        return tuple(ranges)


def row_width(segments_for: Callable[[int], Sequence[Segment]], longest: int,
              prefix_lengths: Sequence[int] = ()) -> int:
    """The row width that wastes the fewest token slots on padding, over the suffix rows
    (first-fit decreasing) and the prefix blocks' last rows; the narrowest among equals.
    `segments_for(width)` gives the segments to pack at that width (trie pieces are cut to fit
    it); never narrower than `longest`, the longest piece that cannot be cut."""
    low = max(MIN_ROW_WIDTH, longest)
    candidates = [low] + [w for w in range(_WIDTH_STEP * -(-low // _WIDTH_STEP), MAX_ROW_WIDTH + 1,
                                           _WIDTH_STEP) if w > low]
    best, best_slots = low, None
    for width in candidates:
        rows = len(pack_rows(segments_for(width), width))
        slots = width * (rows + sum(-(-p // width) for p in prefix_lengths))
        if best_slots is None or slots < best_slots:
            best, best_slots = width, slots
    return best


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


def in_order(prefixes: Sequence[PrefixBlock], rows: Sequence[Row]) -> list[Unit]:
    """Each conversation's prefix block followed by its suffix rows, conversations in order."""
    by_group: dict[int, list[Row]] = {}
    for row in rows:
        by_group.setdefault(row.group, []).append(row)
    units: list[Unit] = []
    for prefix in prefixes:
        units.append(prefix)
        units.extend(by_group.pop(prefix.group, []))
    if by_group:
        raise ValueError(f"suffix rows of conversations {sorted(by_group)} have no prefix block")
    return units


def plan_passes(units: Sequence[Unit], width: int, token_budget: int) -> list[Pass]:
    """Consecutive units, as many per pass as `token_budget` allows (at least one; a prefix
    block longer than the budget goes alone). A prefix always comes before its suffix rows."""
    passes: list[Pass] = []
    current: list[Unit] = []
    used = 0
    for unit in units:
        size = width * (unit.rows(width) if isinstance(unit, PrefixBlock) else 1)
        if current and used + size > token_budget:
            passes.append(Pass(width, tuple(current)))
            current, used = [], 0
        current.append(unit)
        used += size
    if current:
        passes.append(Pass(width, tuple(current)))
    return passes
