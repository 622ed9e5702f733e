"""Follow-up sets: per category, user replies that praise and that complain.

The default set (six categories, ten positive and ten negative follow-ups each) is data in
`assets/followups.json`, written by this project. Users may load any set in the same JSON
shape: `{"<category>": {"positive": [...], "negative": [...]}, ...}`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from core.locations import ASSETS_DIR
from core.errors import FollowupSetError

DEFAULT_PATH = ASSETS_DIR / "followups.json"
PAPER_CATEGORIES = ("understanding", "relevance", "correctness", "engagingness",
                    "informativeness", "following")
POSITIVE, NEGATIVE = "positive", "negative"


@dataclass(frozen=True)
class Category:
    name: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]


@dataclass(frozen=True)
class FollowupSet:
    """Named categories, each with positive and negative follow-up utterances, in file order."""

    categories: tuple[Category, ...]

    def __iter__(self) -> Iterator[Category]:
        return iter(self.categories)

    def __len__(self) -> int:
        return len(self.categories)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def __getitem__(self, name: str) -> Category:
        for category in self.categories:
            if category.name == name:
                return category
        raise KeyError(name)

    def select(self, names: list[str] | tuple[str, ...]) -> "FollowupSet":
        """Only the named categories, in this set's order."""
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise FollowupSetError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                f"this set has {', '.join(self.names)}"
            )
        if not names:
            raise FollowupSetError("choose at least one follow-up category")
        return FollowupSet(tuple(c for c in self.categories if c.name in names))

    def utterances(self) -> list[str]:
        """Every follow-up in order: per category, positives then negatives."""
        return [u for c in self.categories for u in (*c.positive, *c.negative)]

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        return {c.name: {POSITIVE: list(c.positive), NEGATIVE: list(c.negative)}
                for c in self.categories}

    def fingerprint(self) -> str:
        """Stable hash of the set's content, for cache keys."""
        blob = json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def followups_from_mapping(data: Any, where: str = "follow-up set") -> FollowupSet:
    """Validate `{"<category>": {"positive": [...], "negative": [...]}}`."""
    if not isinstance(data, Mapping) or not data:
        got = "an empty object" if isinstance(data, Mapping) else type(data).__name__
        raise FollowupSetError(
            f'{where}: expected an object like {{"relevance": {{"positive": [...], '
            f'"negative": [...]}}}}; got {got}'
        )
    categories = []
    for name, lists in data.items():
        if not isinstance(name, str) or not name.strip():
            raise FollowupSetError(f"{where}: category names must be non-empty strings; got {name!r}")
        if not isinstance(lists, Mapping):
            raise FollowupSetError(f"{where}: category {name!r} must be an object with 'positive' and 'negative' lists")
        extra = set(lists) - {POSITIVE, NEGATIVE}
        if extra:
            raise FollowupSetError(
                f"{where}: category {name!r} has unknown field(s) {', '.join(sorted(map(str, extra)))}; "
                "only 'positive' and 'negative' are allowed"
            )
        parts = {}
        for side in (POSITIVE, NEGATIVE):
            items = lists.get(side)
            if not isinstance(items, list) or not items:
                raise FollowupSetError(
                    f"{where}: category {name!r} needs a non-empty '{side}' list of strings"
                )
            for i, text in enumerate(items):
                if not isinstance(text, str) or not text.strip():
                    raise FollowupSetError(
                        f"{where}: category {name!r}, {side}[{i}] must be a non-empty string; got {text!r}"
                    )
            parts[side] = tuple(items)
        categories.append(Category(str(name), parts[POSITIVE], parts[NEGATIVE]))
    return FollowupSet(tuple(categories))


def load_followups(path: str | Path | None = None) -> FollowupSet:
    """The set in a JSON file, or the bundled default set when `path` is None."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FollowupSetError(f"{path}: cannot read the follow-up set ({err.strerror})") from None
    return parse_followups(text, str(path))


def parse_followups(text: str, where: str = "follow-up set") -> FollowupSet:
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as err:
        raise FollowupSetError(
            f"{where}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except _DuplicateKey as dup:
        # json.loads would otherwise keep only the last copy of a repeated category.
        raise FollowupSetError(
            f"{where}: {dup.args[0]!r} appears twice in one object; merge the two or rename one"
        ) from None
    return followups_from_mapping(data, where)


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def default_followups() -> FollowupSet:
    return load_followups(None)
