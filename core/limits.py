"""Input limits and the checks every input path shares (CLI, app, server).

One frozen `InputLimits` holds how much input one request may bring: characters per turn and
per conversation (checked before anything is tokenized, so a 5 MB utterance never reaches the
tokenizer), characters per conversation relative to the model's context (checked once the model
is known), turns per conversation, records per file, follow-ups per set and their characters
all together, conversation x follow-up pairs per request, and bytes of text per file after
decompression (a gzip bomb stops at the cap, not in memory). Defaults are generous
for real use; a user raises one with `FLR_MAX_*` environment variables or the CLI's
`--max NAME=VALUE` flag (named like the variables; `--limit` counts rows), and each message
says which to set.

The number checks (`finite_number`) and the message helper (`shorten`, so a 1.2 MB follow-up
never becomes a 1.2 MB error line) live here too, so every path words them the same way.

Shortcut taken on purpose: readers deep in the evaluation code ask `InputLimits.current()`
when called rather than taking a limits argument through every layer. `current()` is the
limits a caller set for the work in progress with `use_limits` (the CLI's `--max` flags, the
app's smaller per-request caps), else `from_env()`. It is a context variable, so concurrent
app requests and tests never see each other's limits.
"""

from __future__ import annotations

import contextlib
import math
import os
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Any, Iterator, Mapping

from core.errors import ConfigError, InputError

ENV_PREFIX = "FLR_MAX_"
FLAG = "--max"  # the command-line flag, named like the variables: `--max turns=N` ~ FLR_MAX_TURNS
MESSAGE_CHARS = 200  # quoted input in an error message is cut to this many characters


@dataclass(frozen=True)
class InputLimits:
    """How much one input may hold; every field can be raised with `FLR_MAX_<FIELD>`."""

    turn_chars: int = 200_000  # characters of one utterance (~50k tokens; contexts are smaller)
    conversation_chars: int = 2_000_000  # characters of one conversation, all turns together
    turns: int = 10_000  # utterances of one conversation (the oldest are cut to fit the model)
    records: int = 1_000_000  # records (lines, rows, items) of one input file
    followups: int = 2_000  # follow-up utterances of one set, all categories together
    followup_chars: int = 2_000  # characters of one follow-up utterance
    file_mb: int = 512  # megabytes of text of one file after decompression (gzip bombs stop here)
    followup_set_chars: int = 4_000_000  # characters of one set's follow-ups, all together
    context_chars: int = 10_000  # characters of one conversation per token of the model's context
    pairs: int = 1_000_000_000  # conversations x follow-ups of one request (app, server)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"limit {field.name} must be a positive integer; got {value!r}")

    @property
    def file_bytes(self) -> int:
        return self.file_mb * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 base: "InputLimits | None" = None) -> "InputLimits":
        """`base` (default: the defaults above), with any `FLR_MAX_TURNS`, `FLR_MAX_TURN_CHARS`,
        ... variables applied."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw:
                values[field.name] = parse_limit(field.name, raw, f"{ENV_PREFIX}{field.name.upper()}")
        return replace(base or cls(), **values)

    @classmethod
    def current(cls) -> "InputLimits":
        """The limits of the work in progress (`use_limits`), else `from_env()`."""
        return _ACTIVE.get() or cls.from_env()

    def with_flags(self, flags: list[str]) -> "InputLimits":
        """These limits with `NAME=VALUE` flags applied (`flr --max turns=20000`)."""
        values: dict[str, int] = {}
        for flag in flags:
            name, sep, raw = flag.partition("=")
            name = name.strip().lower().replace("-", "_")
            if not sep:
                raise ConfigError(f"{FLAG} {shorten(flag)!r}: expected NAME=VALUE, e.g. {FLAG} turns=20000")
            values[name] = parse_limit(name, raw.strip(), f"{FLAG} {name}")
        return replace(self, **values)

    def check_text(self, text: str, where: str, what: str = "utterance",
                   error: type[InputError] = InputError) -> None:
        """Refuse one utterance longer than `turn_chars`."""
        if len(text) > self.turn_chars:
            raise error(
                f"{where}: {what} of {len(text):,} characters is over the limit of "
                f"{self.turn_chars:,}; shorten it, or raise the limit with {hint('turn_chars')}")

    def check_turns(self, texts: Any, where: str, error: type[InputError] = InputError) -> None:
        """Refuse a conversation with too many utterances or characters (before tokenizing)."""
        if len(texts) > self.turns:
            raise error(
                f"{where}: {len(texts):,} turns is over the limit of {self.turns:,}; keep the "
                f"most recent turns, or raise the limit with {hint('turns')}")
        total = 0
        for i, text in enumerate(texts):
            if isinstance(text, str):
                self.check_text(text, f"{where}, turn {i + 1}", error=error)
                total += len(text)
        if total > self.conversation_chars:
            raise error(
                f"{where}: {total:,} characters in all is over the limit of "
                f"{self.conversation_chars:,}; keep the most recent turns, or raise the limit "
                f"with {hint('conversation_chars')}")

    def check_paste(self, text: str, where: str, error: type[InputError] = InputError) -> None:
        """Refuse pasted or posted text longer than a whole conversation may be (before parsing)."""
        if len(text) > self.conversation_chars:
            raise error(
                f"{where}: {len(text):,} characters is over the limit of "
                f"{self.conversation_chars:,}; paste less, or raise the limit with "
                f"{hint('conversation_chars')}")

    def check_context(self, chars: int, context: int, where: str,
                      error: type[InputError] = InputError) -> None:
        """Refuse a conversation far longer than the model reads: more than `context_chars`
        characters per token of its `context` (only the last `context` tokens are scored)."""
        cap = self.context_chars * context
        if chars > cap:
            raise error(
                f"{where}: {chars:,} characters is over the limit of {cap:,} for this model's "
                f"{context:,}-token context ({self.context_chars:,} characters per token); only "
                "its last turns are read anyway: keep the most recent turns, or raise the limit "
                f"with {hint('context_chars')}")

    def check_pairs(self, conversations: int, followups: int, where: str,
                    error: type[InputError] = InputError) -> None:
        """Refuse a request of more conversation x follow-up pairs than `pairs`."""
        if conversations * followups > self.pairs:
            raise error(
                f"{where}: {conversations:,} conversation(s) x {followups:,} follow-ups = "
                f"{conversations * followups:,} scores in one request is over the limit of "
                f"{self.pairs:,}; score fewer conversations or follow-ups at once, or raise the "
                f"limit with {hint('pairs')}")

    def check_records(self, count: int, where: str, error: type[InputError] = InputError) -> None:
        if count > self.records:
            raise error(
                f"{where}: more than {self.records:,} records; split the file, or raise the limit "
                f"with {hint('records')}")


def hint(name: str) -> str:
    """How a user raises limit `name`: the variable, or the flag in a form argparse accepts
    (before the command or after it)."""
    return f"{ENV_PREFIX}{name.upper()}=N (or flr {FLAG} {name}=N COMMAND ...)"


def parse_limit(name: str, raw: str, source: str) -> int:
    names = [f.name for f in fields(InputLimits)]
    if name not in names:
        raise ConfigError(f"{source}: unknown limit {name!r}; known limits: {', '.join(names)}")
    try:
        value = int(raw.replace("_", "").replace(",", ""))
    except ValueError:
        raise ConfigError(f"{source}: limit {name} must be a positive integer; got {shorten(raw)!r}") from None
    if value < 1:
        raise ConfigError(f"{source}: limit {name} must be a positive integer; got {value}")
    return value


_ACTIVE: ContextVar["InputLimits | None"] = ContextVar("flr_input_limits", default=None)


@contextlib.contextmanager
def use_limits(limits: InputLimits) -> Iterator[InputLimits]:
    """Make `limits` what `InputLimits.current()` returns in this context (thread, task)."""
    token = _ACTIVE.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


def finite_number(value: Any, where: str, *, low: float | None = None, high: float | None = None,
                  what: str = "value", error: type[InputError] = InputError) -> float:
    """`value` as a float that is finite and within [low, high]; raises naming `where`.

    Accepts numbers and numeric strings ("3.5"); refuses booleans, "nan", "inf" and numbers too
    large for a float (1e400 parses as infinity)."""
    if isinstance(value, bool) or value is None:
        raise error(f"{where}: {what} must be a number; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{where}: {what} must be a number; got {shorten(repr(value))}") from None
    if not math.isfinite(number):
        raise error(f"{where}: {what} must be a finite number; got {shorten(str(value))}")
    if (low is not None and number < low) or (high is not None and number > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise error(f"{where}: {what} must be between {lo} and {hi}; got {number:g}")
    return number


def shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` cut to about `limit` characters for a message, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"
