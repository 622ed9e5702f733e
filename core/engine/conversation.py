"""Conversations to be judged: parsing the input formats users bring.

A `Conversation` is the paper's shape: utterances alternating user / assistant, user first,
ending with the assistant reply being judged, plus an optional system message. A `Prompt` is
the same up to the user's last turn, which a reply (sampled by mining, or typed into the Score
tab's side-by-side) completes with `Prompt.with_reply`. Accepted inputs: a list of utterances
(the paper's format), OpenAI-style message lists, and pasted text with role prefixes (`User:` /
`Assistant:`, `Human:` / `Assistant:`, as in HH-RLHF transcripts).

`transcript_turns` is the one parser of role-prefixed text, used by `flr score`, the app, the
server's plain template and benchmark files alike; `ROLE_ALIASES` the one table of role names.
An HH-RLHF transcript (text starting `Human:` with `\\n\\nHuman:` / `\\n\\nAssistant:` markers) is
split only at those markers, so a reply quoting a chat log (`User: ...` on a line of its own)
stays one reply; other text is split at every line that starts with a role prefix.

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

ROLE_ALIASES = {  # every spelling of a role that inputs use (OpenAI, ShareGPT, HH-RLHF, Gemma)
    "user": USER, "human": USER, "prompter": USER,
    "assistant": ASSISTANT, "gpt": ASSISTANT, "bot": ASSISTANT, "model": ASSISTANT,
    "system": SYSTEM,
}
TEXT_ROLES = ("user", "human", "assistant", "system")  # the prefixes a pasted turn may start with
# One turn's role prefix at the start of a line (`ROLE_ALIASES` names the role it stands for).
ROLE_PREFIX = rf"[^\S\n]*(?P<role>{'|'.join(TEXT_ROLES)})[^\S\n]*:[^\S\n]?"
_PREFIX = re.compile(ROLE_PREFIX, re.IGNORECASE)
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")  # HH-RLHF's own turn markers


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
        return _messages(self.utterances, self.system)

    def with_reply(self, reply: str) -> "Conversation":
        """The same conversation with another candidate reply (for side-by-side comparison)."""
        return Conversation(self.utterances[:-1] + (reply,), self.system, self.warnings)

    def drop_oldest_exchange(self) -> "Conversation":
        """Drop the oldest user/assistant pair (used when the context is too long)."""
        if len(self.utterances) <= 2:
            raise ConversationError("cannot drop turns from a single-exchange conversation")
        return Conversation(self.utterances[2:], self.system, self.warnings)


@dataclass(frozen=True)
class Prompt:
    """User-first alternating turns ending with the user turn a reply answers."""

    turns: tuple[str, ...]
    system: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.turns or len(self.turns) % 2 == 0:
            raise ConversationError(f"expected turns ending with the user's; got {len(self.turns)} "
                                    "turn(s) ending with the assistant's")

    @property
    def text(self) -> str:
        """The user turn being answered."""
        return self.turns[-1]

    @property
    def history(self) -> list[tuple[str, str]]:
        """Earlier (user, assistant) exchanges, oldest first."""
        earlier = self.turns[:-1]
        return [(earlier[i], earlier[i + 1]) for i in range(0, len(earlier), 2)]

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style messages for a chat template, system message first when there is one."""
        return _messages(self.turns, self.system)

    def with_reply(self, reply: str) -> Conversation:
        """The conversation a scorer judges: these turns, then `reply` as the assistant's."""
        return Conversation(self.turns + (reply,), self.system, self.warnings)


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
        role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
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


def is_hh_transcript(text: str) -> bool:
    """Text in HH-RLHF form: `Human: ...\\n\\nAssistant: ...` (leading blank lines allowed)."""
    return text.lstrip().startswith("Human:") and _HH_TURN.search(text) is not None


def is_transcript(text: str) -> bool:
    """Text that starts with a user's role prefix (`User:` / `Human:`): turns, not a bare question."""
    match = _PREFIX.match(text.lstrip())
    return match is not None and ROLE_ALIASES[match.group("role").lower()] == USER


def transcript_turns(text: str, where: str = "pasted text",
                     error: type[InputError] = ConversationError) -> list[tuple[str, str]]:
    """(role, text) turns of role-prefixed text, a system turn only first (see the module
    docstring for where turns are split). Alternation and which role comes last are the
    caller's checks; `error` is the `InputError` subclass to raise."""
    if is_hh_transcript(text):
        parts = _HH_TURN.split("\n\n" + text.lstrip())[1:]
        return [(USER if role == "Human" else ASSISTANT, content.strip())
                for role, content in zip(parts[::2], parts[1::2])]
    turns: list[tuple[str, str]] = []
    current: list[str] = []
    role: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _PREFIX.match(line)
        if match:
            new_role = ROLE_ALIASES[match.group("role").lower()]
            if new_role == SYSTEM and role is not None:
                raise error(
                    f"{where}, line {lineno}: a 'System:' turn may only come first, before the "
                    "first 'User:' turn"
                )
            if role is not None:
                turns.append((role, "\n".join(current).strip()))
            role = new_role
            current = [line[match.end():]]
        elif role is None:
            if line.strip():
                raise error(
                    f"{where}, line {lineno}: text before the first role prefix; start each turn "
                    "with 'User:' (or 'Human:') and 'Assistant:'"
                )
        else:
            current.append(line)
    if role is None:
        raise error(
            f"{where}: no turns found; start each turn with 'User:' (or 'Human:') and 'Assistant:'"
        )
    return turns + [(role, "\n".join(current).strip())]


def from_text(text: str, where: str = "pasted text") -> Conversation:
    """Pasted text where each turn starts with `User:`, `Human:`, `Assistant:` or `System:`."""
    turns, system = _split_system(transcript_turns(text, where))
    _check_alternation(turns, where, ConversationError)
    return _judged(turns, system, where)


def prompt_from_text(text: str, where: str = "pasted text") -> Prompt:
    """Role-prefixed text up to the user's last turn (the reply comes separately)."""
    turns, system = _split_system(transcript_turns(text, where))
    return _prompt(turns, system, where)


def parse_prompt(value: Any, where: str = "prompt") -> Prompt:
    """A conversation up to the user's last turn, in any shape `parse_conversation` accepts:
    role-prefixed text, JSON text, an utterance list (an even one loses its first utterance,
    with a warning, as in `from_utterances`), a message list, or an object with a
    `conversation` / `messages` field."""
    if isinstance(value, Prompt):
        return value
    if isinstance(value, str):
        decoded = _json_of(value, where, "paste the turns up to the user's last message")
        return prompt_from_text(value, where) if decoded is None else parse_prompt(decoded, where)
    if isinstance(value, dict):
        for key in ("conversation", "messages"):
            if key in value:
                return parse_prompt(value[key], where)
        raise ConversationError(f"{where}: object has no 'conversation' or 'messages' field")
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, dict) for v in value):
            turns, system = parse_turns(value, where)
            return _prompt(turns, system, where)
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise ConversationError(
                    f"{where}: utterance {i} must be a string; got {type(text).__name__}")
        texts, warnings = tuple(value), ()
        if len(texts) % 2 == 0:
            texts, warnings = texts[1:], (
                f"{where}: {len(texts)} utterances (even); dropped the first one as the paper's "
                "scripts do, so the list starts with a user turn and ends with the one answered",)
        InputLimits.current().check_turns(texts, where, ConversationError)
        return Prompt(texts, None, warnings)
    if isinstance(value, (list, tuple)):
        raise ConversationError(f"{where}: empty list; expected utterances ending with the user's turn")
    raise ConversationError(f"{where}: expected text, a list of utterances or a list of messages; "
                            f"got {type(value).__name__}")


def prompt_with_reply(context: Any, reply: str, label: str = "the reply") -> Conversation:
    """A conversation up to the user's last turn (any shape `parse_prompt` reads) completed with
    a candidate reply: the input of a side-by-side comparison. `label` names the reply."""
    if not isinstance(reply, str) or not reply.strip():
        raise ConversationError(f"{label} is empty; write the assistant reply to score")
    limits = InputLimits.current()
    if isinstance(context, str):
        limits.check_paste(context, "pasted conversation", ConversationError)
    limits.check_text(reply, label, "reply", ConversationError)
    if context is None or (isinstance(context, str) and not context.strip()):
        raise ConversationError("the conversation is empty; paste the turns up to the user's last message")
    return parse_prompt(context, "conversation (up to the user's last message)").with_reply(reply)


def parse_conversation(value: Any, where: str = "conversation") -> Conversation:
    """Any supported shape: utterance list, message list, role-prefixed text, JSON text, or an
    object with a `conversation` / `messages` field."""
    if isinstance(value, Conversation):
        return value
    if isinstance(value, str):
        decoded = _json_of(value, where, "paste a conversation ending with the assistant's reply")
        return from_text(value, where) if decoded is None else parse_conversation(decoded, where)
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


def _json_of(value: str, where: str, what: str) -> Any:
    """Text that starts like JSON, decoded (a list or an object); None for other text."""
    stripped = value.strip()
    if not stripped:
        raise ConversationError(f"{where}: empty; {what}")
    if stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as err:
        raise ConversationError(
            f"{where}: looks like JSON but is not valid (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None


def _prompt(turns: list[tuple[str, str]], system: str | None, where: str) -> Prompt:
    """Alternating turns as a prompt: they must end with the user's."""
    _check_alternation(turns, where, ConversationError)
    if not turns:
        raise ConversationError(f"{where}: no user turn; write the user's message to answer")
    if turns[-1][0] != USER:
        raise ConversationError(
            f"{where}: expected turns ending with the user's last message (the reply is given "
            f"on its own); got {len(turns)} turn(s) ending with the assistant's")
    texts = tuple(t for _, t in turns)
    InputLimits.current().check_turns(texts, where, ConversationError)
    return Prompt(texts, system)


def _messages(texts: Sequence[str], system: str | None) -> list[dict[str, str]]:
    out = [{"role": SYSTEM, "content": system}] if system else []
    return out + [{"role": USER if i % 2 == 0 else ASSISTANT, "content": t} for i, t in enumerate(texts)]


def _split_system(turns: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str | None]:
    if turns and turns[0][0] == SYSTEM:
        return turns[1:], turns[0][1]
    return turns, None


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
