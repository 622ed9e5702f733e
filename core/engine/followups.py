"""Follow-up sets: per category, user replies that praise and that complain.

The default set (six categories, ten positive and ten negative follow-ups each) is data in
`assets/followups.json`, written by this project. Users may load any set in the same JSON
shape: `{"<category>": {"positive": [...], "negative": [...]}, ...}`.

Weighted sets: an utterance may be `{"text": "...", "weight": w}` beside plain strings. In a
plain set a category's reward is mean positive - mean negative and the FLR is the mean of the
category rewards; in a weighted set both are weighted sums: a category's reward is
sum(w * positive score) - sum(w * negative score) and the FLR is the sum of the category
rewards. A plain string inside a weighted set keeps the weight it has in a plain set,
1 / (utterances on its side x categories), so the same set with every weight written out equal
to those defaults scores exactly as the plain set (up to float rounding). A positive weight
means "points the way its side says": a negative utterance with a negative weight counts as
praise. `flr tune` writes such sets (`core.tuning`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from core.locations import ASSETS_DIR
from core.errors import FollowupSetError
from core.limits import InputLimits, hint, shorten
from core.textfiles import read_text

DEFAULT_PATH = ASSETS_DIR / "followups.json"
PAPER_CATEGORIES = ("understanding", "relevance", "correctness", "engagingness",
                    "informativeness", "following")
POSITIVE, NEGATIVE = "positive", "negative"


WEIGHT, TEXT = "weight", "text"
PROVENANCE = "provenance"  # a reserved top-level key: how a tuned set was made


@dataclass(frozen=True)
class Category:
    name: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    positive_weights: tuple[float, ...] = ()  # () in a plain set
    negative_weights: tuple[float, ...] = ()

    @property
    def weighted(self) -> bool:
        return bool(self.positive_weights or self.negative_weights)


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

    @property
    def weighted(self) -> bool:
        """True when the set carries weights (`FollowupSet.weights`)."""
        return any(c.weighted for c in self.categories)

    def weights(self) -> list[float]:
        """The weight of every follow-up, in `utterances()` order, as the score uses it: a
        weighted set's own weights, or for a plain set the weights its means amount to,
        1 / (utterances on the side x categories). Negative follow-ups' weights are subtracted."""
        out: list[float] = []
        for c in self.categories:
            pos, neg = effective_weights(c, len(self.categories))
            out += [*pos, *neg]
        return out

    def unweighted(self) -> "FollowupSet":
        """The same utterances without weights (what a follow-up's own score depends on)."""
        if not self.weighted:
            return self
        return FollowupSet(tuple(Category(c.name, c.positive, c.negative) for c in self.categories))

    def with_weights(self, weights: list[float] | tuple[float, ...]) -> "FollowupSet":
        """This set's utterances with `weights` (in `utterances()` order)."""
        if len(weights) != len(self.utterances()):
            raise FollowupSetError(f"expected {len(self.utterances())} weights, one per "
                                   f"follow-up; got {len(weights)}")
        categories, i = [], 0
        for c in self.categories:
            n, m = len(c.positive), len(c.negative)
            categories.append(Category(c.name, c.positive, c.negative,
                                       tuple(float(w) for w in weights[i:i + n]),
                                       tuple(float(w) for w in weights[i + n:i + n + m])))
            i += n + m
        return FollowupSet(tuple(categories))

    def to_dict(self) -> dict[str, dict[str, list[Any]]]:
        """The JSON shape; a weighted set writes every utterance as {"text", "weight"}."""
        if not self.weighted:
            return {c.name: {POSITIVE: list(c.positive), NEGATIVE: list(c.negative)}
                    for c in self.categories}
        out: dict[str, dict[str, list[Any]]] = {}
        for c in self.categories:
            pos, neg = effective_weights(c, len(self.categories))
            out[c.name] = {POSITIVE: [{TEXT: t, WEIGHT: w} for t, w in zip(c.positive, pos)],
                           NEGATIVE: [{TEXT: t, WEIGHT: w} for t, w in zip(c.negative, neg)]}
        return out

    def fingerprint(self) -> str:
        """Stable hash of the set's content, weights included, for cache keys (a plain set's
        hash is the same as before weights existed)."""
        blob = json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def effective_weights(category: Category, n_categories: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(positive weights, negative weights) of a category as the reward uses them."""
    if category.weighted:
        return category.positive_weights, category.negative_weights
    return ((1.0 / (len(category.positive) * n_categories),) * len(category.positive),
            (1.0 / (len(category.negative) * n_categories),) * len(category.negative))


def followups_from_mapping(data: Any, where: str = "follow-up set") -> FollowupSet:
    """Validate `{"<category>": {"positive": [...], "negative": [...]}}`."""
    if not isinstance(data, Mapping) or not data:
        got = "an empty object" if isinstance(data, Mapping) else type(data).__name__
        raise FollowupSetError(
            f'{where}: expected an object like {{"relevance": {{"positive": [...], '
            f'"negative": [...]}}}}; got {got}'
        )
    if not any(k != PROVENANCE for k in data):
        raise FollowupSetError(f"{where}: no categories, only a provenance block")
    categories = []
    limits = InputLimits.current()
    count = chars = 0
    any_weight = False
    if PROVENANCE in data and not isinstance(data[PROVENANCE], Mapping):
        raise FollowupSetError(f'{where}: "{PROVENANCE}" is reserved for where a tuned set came '
                               "from and must be an object; rename that category")
    for name, lists in data.items():
        if name == PROVENANCE:
            continue  # written by `flr tune`: data, folds, cross-validated figures
        if not isinstance(name, str) or not name.strip():
            raise FollowupSetError(f"{where}: category names must be non-empty strings; got {shorten(repr(name))}")
        if not isinstance(lists, Mapping):
            raise FollowupSetError(f"{where}: category {shorten(name)!r} must be an object with 'positive' and 'negative' lists")
        extra = set(lists) - {POSITIVE, NEGATIVE}
        if extra:
            raise FollowupSetError(
                f"{where}: category {name!r} has unknown field(s) {', '.join(sorted(map(str, extra)))}; "
                "only 'positive' and 'negative' are allowed"
            )
        parts: dict[str, tuple[str, ...]] = {}
        weights: dict[str, tuple[float | None, ...]] = {}
        for side in (POSITIVE, NEGATIVE):
            items = lists.get(side)
            if not isinstance(items, list) or not items:
                raise FollowupSetError(
                    f"{where}: category {name!r} needs a non-empty '{side}' list of strings"
                )
            count += len(items)
            if count > limits.followups:
                raise FollowupSetError(
                    f"{where}: more than {limits.followups:,} follow-ups; a set this large holds "
                    f"the model for long; trim it, or raise the limit with {hint('followups')}")
            read = [_utterance(item, f"{where}: category {shorten(name)!r}, {side}[{i}]")
                    for i, item in enumerate(items)]
            for i, (text, _) in enumerate(read):
                if len(text) > limits.followup_chars:
                    raise FollowupSetError(
                        f"{where}: category {shorten(name)!r}, {side}[{i}]: a follow-up of "
                        f"{len(text):,} characters is over the limit of {limits.followup_chars:,}; "
                        f"follow-ups are short replies; shorten it, or raise the limit with "
                        f"{hint('followup_chars')}")
            chars += sum(len(t) for t, _ in read)
            if chars > limits.followup_set_chars:
                raise FollowupSetError(
                    f"{where}: more than {limits.followup_set_chars:,} characters of follow-ups "
                    "in all; every one is scored after the whole conversation, so a set this "
                    "large holds the model for long; use fewer or shorter follow-ups, or raise "
                    f"the limit with {hint('followup_set_chars')}")
            parts[side] = tuple(t for t, _ in read)
            weights[side] = tuple(w for _, w in read)
            any_weight = any_weight or any(w is not None for w in weights[side])
        categories.append((str(name), parts, weights))
    n = len(categories)
    out = []
    for name, parts, weights in categories:
        plain = Category(name, parts[POSITIVE], parts[NEGATIVE])
        if any_weight:  # a plain string in a weighted set keeps its plain-set weight
            defaults = effective_weights(plain, n)
            plain = Category(name, parts[POSITIVE], parts[NEGATIVE],
                             *(tuple(d if w is None else w for w, d in zip(weights[side], default))
                               for side, default in zip((POSITIVE, NEGATIVE), defaults)))
        out.append(plain)
    return FollowupSet(tuple(out))


def _utterance(item: Any, where: str) -> tuple[str, float | None]:
    """(text, weight or None) of a list item: a string or {"text": ..., "weight": w}."""
    if isinstance(item, str):
        if not item.strip():
            raise FollowupSetError(f"{where} must be a non-empty string; got {shorten(repr(item))}")
        return item, None
    if isinstance(item, Mapping):
        extra = set(item) - {TEXT, WEIGHT}
        text, weight = item.get(TEXT), item.get(WEIGHT)
        if extra:
            raise FollowupSetError(f"{where} has unknown field(s) {', '.join(sorted(map(str, extra)))}; "
                                   'an utterance object holds only "text" and "weight"')
        if not isinstance(text, str) or not text.strip():
            raise FollowupSetError(f'{where}: "text" must be a non-empty string; got {text!r}')
        if weight is None:
            return text, None
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise FollowupSetError(f'{where}: "weight" must be a finite number; got {weight!r}')
        return text, float(weight)
    raise FollowupSetError(f'{where} must be a non-empty string or {{"text": ..., "weight": w}}; '
                           f"got {item!r}")


def load_followups(path: str | Path | None = None) -> FollowupSet:
    """The set in a JSON file, or the bundled default set when `path` is None."""
    path = Path(path) if path is not None else DEFAULT_PATH
    text = read_text(path, FollowupSetError, what="follow-up set")
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


def chosen_followups(text: str | None, categories: Sequence[str] | None,
                     where: str = "follow-up set editor") -> FollowupSet:
    """The set written in `text` (the bundled default when `text` is empty, as an editor left
    blank is), narrowed to `categories`; `where` names the text in errors."""
    return followups_or_default(text, where).select(list(categories or []))


def followups_or_default(text: str | None, where: str = "follow-up set editor") -> FollowupSet:
    """The set written in `text`; the bundled default set when `text` is empty."""
    if not text or not text.strip():
        return default_followups()
    return parse_followups(text, where)
