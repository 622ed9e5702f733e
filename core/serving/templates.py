"""Splitting a query that a policy's chat template rendered back into conversation turns.

RL trainers send the reward a *rendered* text: the prompt after the policy's chat template, then
the sampled response (OpenRLHF's `/get_reward` queries). The FLR scorer re-renders turns with its
own model's template, so the turns must be recovered first. Each known template is data: a
regular expression for its turn headers (the `role` group names the speaker) plus the markers
that close a turn or pad a sequence and are stripped from a turn's text.

Shortcuts taken on purpose: a template is recognised by its headers (the first non-special
text of the query must be one of its headers; Phi-3 and Zephyr share headers and are told apart
by their end-of-turn token), and the text between two headers is one turn. System text a
template writes itself (Llama 3.1's "Cutting Knowledge Date", Qwen2.5's "You are Qwen")
is removed, so a scorer does not render it a second time as the user's; a user's system message
identical to Qwen's default is removed too. Mistral templates write a system prompt into a user
turn (v0.2 the first, v0.3 the last): it stays part of that turn, with a warning. Where the trainer also sends the rendered prompt, the response is everything after it,
so a response that happens to contain a header-like line stays whole. The plain template's
turns are split by the engine's transcript parser, as `flr score` splits pasted text: an
HH-RLHF query only at its `\\n\\nHuman:` / `\\n\\nAssistant:` markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from core.engine.conversation import (
    ASSISTANT,
    ROLE_ALIASES,
    ROLE_PREFIX,
    SYSTEM,
    USER,
    Conversation,
    parse_turns,
    transcript_turns,
)
from core.errors import InputError
from core.limits import InputLimits


class QueryFormatError(InputError):
    """A rendered query whose chat template is not recognised or whose turns do not fit."""


@dataclass(frozen=True)
class QueryTemplate:
    """One chat template's shape, enough to find its turns again."""

    name: str
    header: str  # regex of a turn header; group "role" names the speaker
    markers: tuple[str, ...]  # end-of-turn first, then begin/end-of-text and padding tokens, stripped
    special: bool = True  # has special tokens; plain-text templates are tried last
    default_system: tuple[str, ...] = ()  # regexes of system text the template itself writes
    merges_system: bool = False  # the template writes a system prompt into a user turn
    # header tokens that are not role names (`ROLE_ALIASES` reads those), lower-cased
    header_roles: Mapping[str, str] = field(default_factory=dict, compare=False)
    transcript: bool = False  # role-prefixed text: split by the engine's transcript parser

    def own_system(self, system: str | None) -> str | None:
        """The user's system message without the text the template injects (None if nothing is
        left): Llama 3.1's "Cutting Knowledge Date" header, Qwen2.5's "You are Qwen" default."""
        if system is None:
            return None
        for pattern in self.default_system:
            system = re.sub(pattern, "", system, count=1).strip()
        return system or None

    def headers(self, text: str) -> list[re.Match[str]]:
        return list(re.finditer(self.header, text, re.IGNORECASE))


TEMPLATES: dict[str, QueryTemplate] = {t.name: t for t in (
    QueryTemplate("chatml", r"<\|im_start\|>(?P<role>system|user|assistant)[^\S\n]*\n?",
                  ("<|im_end|>", "<|endoftext|>"),
                  default_system=(r"\AYou are Qwen, created by Alibaba Cloud\. You are a helpful assistant\.\Z",)),
    QueryTemplate("llama3", r"<\|start_header_id\|>(?P<role>system|user|assistant)<\|end_header_id\|>",
                  ("<|eot_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"),
                  default_system=(r"\A(?:Environment: ipython\n)?Cutting Knowledge Date: [^\n]*\n"
                                  r"(?:Today Date: [^\n]*(?:\n|\Z))?",)),
    QueryTemplate("gemma", r"<start_of_turn>(?P<role>user|model|system)[^\S\n]*\n?",
                  ("<end_of_turn>", "<bos>", "<eos>", "<pad>")),
    QueryTemplate("phi3", r"<\|(?P<role>system|user|assistant)\|>[^\S\n]*\n?",
                  ("<|end|>", "<|endoftext|>", "<s>")),  # Phi-3-mini's original template writes <s>
    QueryTemplate("zephyr", r"<\|(?P<role>system|user|assistant)\|>[^\S\n]*\n?",  # also TinyLlama-chat
                  ("</s>", "<s>", "<unk>", "<pad>")),
    QueryTemplate("mistral", r"(?P<role>\[INST\]|\[/INST\]|\[SYSTEM_PROMPT\])",
                  ("</s>", "<s>", "[/SYSTEM_PROMPT]", "<pad>", "<unk>"), merges_system=True,
                  header_roles={"[inst]": USER, "[/inst]": ASSISTANT, "[system_prompt]": SYSTEM}),
    QueryTemplate("plain", r"(?:^|\n)" + ROLE_PREFIX,  # what `flr score` reads as pasted turns
                  ("<|endoftext|>", "</s>", "<s>", "<eos>", "<pad>"), special=False, transcript=True),
)}

_PROBE = [{"role": "user", "content": "Ping?"}, {"role": "assistant", "content": "Pong."}]


def recognise(text: str, forced: QueryTemplate | None = None) -> QueryTemplate | None:
    """The template whose header starts `text` (after leading special tokens), or None."""
    candidates = [forced] if forced is not None else list(TEMPLATES.values())
    matching = []
    for template in candidates:
        body = _strip_markers(text, template).lstrip()
        found = re.match(template.header, body, re.IGNORECASE)
        if found is not None and found.start() == 0:
            matching.append(template)
    # templates with the same headers (Phi-3 and Zephyr) differ in how a turn ends
    return next((t for t in matching if t.markers[0] in text), matching[0] if matching else None)


def split_query(query: str, prompt: str | None = None, forced: QueryTemplate | None = None,
                where: str = "query") -> Conversation:
    """The conversation a rendered query holds: the turns of the prompt, then the response.

    With `prompt` (the rendered prompt the policy generated from) the response is whatever the
    query has after it; without it, the query's last assistant turn is the response."""
    InputLimits.current().check_paste(query, where, QueryFormatError)  # before any pattern runs
    if not isinstance(query, str):
        raise QueryFormatError(f"{where}: expected a string; got {type(query).__name__}")
    template = recognise(query, forced)
    if template is None:
        raise QueryFormatError(f"{where}: {_expected(forced)}; it starts with {query[:40]!r}")
    where = f"{where} ({template.name} template)"
    response = None
    if prompt and query.startswith(prompt) and recognise(prompt, template) is template:
        response = query[len(prompt):]
        turns = _turns(prompt, template, where)
        if turns and turns[-1][0] == "assistant" and not turns[-1][1]:
            turns = turns[:-1]  # the generation prompt's empty assistant header
        turns.append(("assistant", _clean(response, template)))
    else:
        turns = _turns(query, template, where)
    conversation = conversation_of([{"role": role, "content": text} for role, text in turns], where)
    warnings = list(conversation.warnings)
    if template.merges_system and any("\n\n" in u for u in conversation.utterances[:-1:2]):
        warnings.append(f"{where}: this template writes a system prompt into a user turn, so one "
                        "cannot be told apart from the user's text; it is scored as part of that turn")
    return Conversation(conversation.utterances, template.own_system(conversation.system), tuple(warnings))


def conversation_of(messages: list[dict[str, str]], where: str) -> Conversation:
    """Messages ending with the response as a conversation. Unlike `flr score`, an empty
    response is accepted: a policy does generate them, and a training run must not stop there."""
    turns, system = parse_turns(messages, where, QueryFormatError)
    if not turns or turns[-1][0] != "assistant":
        raise QueryFormatError(f"{where}: expected turns ending with the assistant's response; got "
                               f"{len(turns)} turn(s) ending with the {turns[-1][0] if turns else 'prompt'}'s")
    texts = tuple(text for _, text in turns)
    InputLimits.current().check_turns(texts, where, QueryFormatError)  # the same limits as `flr score`
    return Conversation(texts, system)


def template_named(name_or_model: str) -> QueryTemplate:
    """A template by name, or the one a local model's tokenizer renders (`--query-template`)."""
    key = name_or_model.strip().lower()
    if key in TEMPLATES:
        return TEMPLATES[key]
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name_or_model)
    except Exception as err:  # noqa: BLE001 - any loader failure means the same to the user
        raise QueryFormatError(
            f"query template {name_or_model!r} is neither a known template "
            f"({', '.join(TEMPLATES)}) nor a loadable tokenizer ({type(err).__name__}: {err})"
        ) from None
    return template_of_tokenizer(tokenizer, name_or_model)


def template_of_tokenizer(tokenizer: Any, where: str = "tokenizer") -> QueryTemplate:
    """The known template a tokenizer's chat template renders, found by rendering a probe."""
    if not getattr(tokenizer, "chat_template", None):
        return TEMPLATES["plain"]
    rendered = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    template = recognise(rendered)
    if template is None:
        raise QueryFormatError(
            f"{where}: its chat template renders {rendered[:60]!r}, which matches none of the known "
            f"templates ({', '.join(TEMPLATES)}); pass --query-template with one of them"
        )
    return template


def _turns(text: str, template: QueryTemplate, where: str) -> list[tuple[str, str]]:
    if template.transcript:  # split as `flr score` splits pasted text (HH-RLHF markers only)
        turns = transcript_turns(_strip_markers(text, template), where, QueryFormatError)
        return _merge([(role, _clean(content, template)) for role, content in turns])
    headers = template.headers(text)
    turns = []
    for i, match in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        name = match.group("role").lower()
        role = template.header_roles.get(name) or ROLE_ALIASES[name]
        turns.append((role, _clean(text[match.end():end], template)))
    return _merge(turns)


def _merge(turns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Turns without text are dropped, except the assistant's (an empty response is reported
    by the conversation parser, naming it)."""
    return [(role, text) for role, text in turns if text or role == "assistant"]


def _clean(text: str, template: QueryTemplate) -> str:
    return _strip_markers(text, template).strip()


def _strip_markers(text: str, template: QueryTemplate) -> str:
    for marker in template.markers:
        text = text.replace(marker, "")
    return text


def _expected(forced: QueryTemplate | None) -> str:
    if forced is not None:
        return f"does not start with a turn header of the {forced.name} template (forced by --query-template)"
    return ("matches no known chat template; expected a query rendered with ChatML (<|im_start|>), "
            "Llama 3 (<|start_header_id|>), Gemma (<start_of_turn>), Phi-3 or Zephyr (<|user|>), Mistral ([INST]) "
            "or plain 'Human:'/'Assistant:' turns, or start the server with --query-template")
