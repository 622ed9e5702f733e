"""Conversations to be judged: parsing the input formats users bring.

A `Conversation` is the paper's shape: utterances alternating user / assistant, user first,
ending with the assistant reply being judged, plus an optional system message. Accepted inputs:
a list of utterances (the paper's format), OpenAI-style message lists, and pasted text with role
prefixes (`User:` / `Assistant:`, `Human:` / `Assistant:`, as in HH-RLHF transcripts).

Shortcut taken on purpose: an utterance list of odd length is handled as the paper's scripts
do (the first utterance is dropped, typically an assistant greeting), with a warning that the
result carries; everything else that does not fit is rejected, never reinterpreted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from core.errors import ConversationError, InputError
from core.limits import InputLimits

USER, ASSISTANT, SYSTEM = "user", "assistant", "system"

_ROLE_ALIASES = {
    "user": USER, "human": USER, "prompter": USER,
    "assistant": ASSISTANT, "gpt": ASSISTANT, "bot": ASSISTANT, "model": ASSISTANT,
    "system": SYSTEM,
}
_PREFIX = re.compile(r"^\s*(user|human|assistant|system)\s*:\s?", re.IGNORECASE)


@dataclass(frozen=True)
class Conversation:
    """User-first alternating utterances ending with the assistant reply being judged."""

    utterances: tuple[str, ...]
    system: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if len(self.utterances) < 2 or len(self.utterances) % 2:
            raise ConversationError(
                "expected a list of utterances ending with the assistant's reply; got "
                f"{len(self.utterances)} utterance(s) ending with the "
                f"{'user' if len(self.utterances) % 2 else 'assistant'}'s"
            )

    @property
    def reply(self) -> str:
        """The assistant reply being judged."""
        return self.utterances[-1]

    @property
    def last_user(self) -> str:
        return self.utterances[-2]

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style messages, system message first when there is one."""
        out = [{"role": SYSTEM, "content": self.system}] if self.system else []
        for i, text in enumerate(self.utterances):
            out.append({"role": USER if i % 2 == 0 else ASSISTANT, "content": text})
        return out

    def with_reply(self, reply: str) -> "Conversation":
        """The same conversation with another candidate reply (for side-by-side comparison)."""
        return Conversation(self.utterances[:-1] + (reply,), self.system, self.warnings)

    def drop_oldest_exchange(self) -> "Conversation":
        """Drop the oldest user/assistant pair (used when the context is too long)."""
        if len(self.utterances) <= 2:
            raise ConversationError("cannot drop turns from a single-exchange conversation")
        return Conversation(self.utterances[2:], self.system, self.warnings)


def from_utterances(items: Sequence[Any], where: str = "conversation") -> Conversation:
    """The paper's format: a list of strings, user first, ending with the judged reply."""
    if not isinstance(items, (list, tuple)):
        raise ConversationError(f"{where}: expected a list of utterances; got {type(items).__name__}")
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise ConversationError(
                f"{where}: utterance {i} must be a string; got {type(text).__name__}"
            )
    InputLimits.current().check_turns(items, where, ConversationError)
    _reject_empty(list(items), where)
    warnings: tuple[str, ...] = ()
    utterances = tuple(items)
    if len(utterances) % 2:
        if len(utterances) == 1:
            raise ConversationError(
                f"{where}: expected at least a user turn and the assistant's reply; got 1 utterance"
            )
        warnings = (
            f"{where}: {len(utterances)} utterances (odd); dropped the first one as the paper's "
            "scripts do, so the list starts with a user turn and ends with the judged reply",
        )
        utterances = utterances[1:]
    return Conversation(utterances, None, warnings)


def from_messages(messages: Sequence[Any], where: str = "conversation") -> Conversation:
    """OpenAI-style `[{"role", "content"}]` (also ShareGPT `{"from", "value"}`)."""
    turns, system = parse_turns(messages, where)
    return _judged(turns, system, where)


def parse_turns(messages: Sequence[Any], where: str = "conversation",
                error: type[InputError] = ConversationError) -> tuple[list[tuple[str, str]], str | None]:
    """(role, text) turns of OpenAI / ShareGPT messages, and the system message or None.

    Checks what every message list must satisfy: each message an object with a known role
    (aliases such as `human` / `gpt` accepted) and string content, a system message only first,
    user and assistant alternating from the user. Which role must come last is the caller's
    check (the assistant's reply for judging, the user's turn for a policy to answer); `error`
    is the `InputError` subclass to raise.
    """
    system: str | None = None
    turns: list[tuple[str, str]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise error(f"{where}: message {i} must be an object; got {type(msg).__name__}")
        raw_role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        role = _ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise error(f"{where}: message {i} has role {raw_role!r}; expected user, assistant or system")
        if not isinstance(content, str):
            raise error(f"{where}: message {i} needs a string 'content'")
        if role == SYSTEM:
            if turns or system is not None:
                raise error(f"{where}: message {i}: a system message may only come first")
            system = content
            continue
        turns.append((role, content))
    _check_alternation(turns, where, error)
    return turns, system


def from_text(text: str, where: str = "pasted text") -> Conversation:
    """Pasted text where each turn starts with `User:`, `Human:`, `Assistant:` or `System:`."""
    system: str | None = None
    turns: list[tuple[str, str]] = []
    current: list[str] | None = None
    role: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _PREFIX.match(line)
        if match:
            new_role = _ROLE_ALIASES[match.group(1).lower()]
            if new_role == SYSTEM and role is not None:
                raise ConversationError(
                    f"{where}, line {lineno}: a 'System:' turn may only come first, before the "
                    "first 'User:' turn"
                )
            if role is not None:
                system, turns = _close_turn(role, current, system, turns)
            role = new_role
            current = [line[match.end():]]
        elif role is None:
            if line.strip():
                raise ConversationError(
                    f"{where}, line {lineno}: text before the first role prefix; start each turn "
                    "with 'User:' (or 'Human:') and 'Assistant:'"
                )
        else:
            assert current is not None
            current.append(line)
    if role is None:
        raise ConversationError(
            f"{where}: no turns found; start each turn with 'User:' (or 'Human:') and 'Assistant:'"
        )
    system, turns = _close_turn(role, current, system, turns)
    _check_alternation(turns, where, ConversationError)
    return _judged(turns, system, where)


def parse_conversation(value: Any, where: str = "conversation") -> Conversation:
    """Any supported shape: utterance list, message list, role-prefixed text, JSON text, or an
    object with a `conversation` / `messages` field."""
    if isinstance(value, Conversation):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            raise ConversationError(f"{where}: empty; paste a conversation ending with the assistant's reply")
        if stripped[0] in "[{":
            try:
                decoded = json.loads(stripped)
            except json.JSONDecodeError as err:
                raise ConversationError(
                    f"{where}: looks like JSON but is not valid (line {err.lineno}, column {err.colno}: {err.msg})"
                ) from None
            return parse_conversation(decoded, where)
        return from_text(value, where)
    if isinstance(value, dict):
        for key in ("conversation", "messages"):
            if key in value:
                return parse_conversation(value[key], where)
        raise ConversationError(f"{where}: object has no 'conversation' or 'messages' field")
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConversationError(f"{where}: empty list; expected utterances ending with the assistant's reply")
        if all(isinstance(v, dict) for v in value):
            return from_messages(value, where)
        return from_utterances(value, where)
    raise ConversationError(f"{where}: expected text, a list of utterances or a list of messages; got {type(value).__name__}")


def _close_turn(role: str, lines: list[str] | None, system: str | None,
                turns: list[tuple[str, str]]) -> tuple[str | None, list[tuple[str, str]]]:
    content = "\n".join(lines or []).strip()
    if role == SYSTEM:
        return content, turns
    return system, turns + [(role, content)]


def _check_alternation(turns: list[tuple[str, str]], where: str, error: type[InputError]) -> None:
    for i, (role, _) in enumerate(turns):
        expected = USER if i % 2 == 0 else ASSISTANT
        if role != expected:
            raise error(
                f"{where}: turn {i + 1} is from the {role} but the {expected} was expected; "
                "turns must alternate, user first"
            )


def _judged(turns: list[tuple[str, str]], system: str | None, where: str) -> Conversation:
    """Alternating turns as the conversation to judge: they must end with the assistant."""
    if not turns:
        raise ConversationError(f"{where}: no user or assistant turns")
    if turns[-1][0] != ASSISTANT:
        raise ConversationError(
            f"{where}: expected a conversation ending with the assistant's reply; got "
            f"{len(turns)} turn(s) ending with the user's"
        )
    texts = [t for _, t in turns]
    InputLimits.current().check_turns(texts, where, ConversationError)
    _reject_empty(texts, where)
    return Conversation(tuple(texts), system)


def _reject_empty(texts: list[str], where: str) -> None:
    if texts and not texts[-1].strip():
        raise ConversationError(f"{where}: the assistant reply being judged is empty")
