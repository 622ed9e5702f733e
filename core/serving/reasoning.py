"""Reasoning traces cut from a reply before it is judged.

Reasoning policies write `<think>...</think>` (DeepSeek-R1, Qwen3; also `<thinking>` and
`<reasoning>`) before the answer; FLR should judge the answer the user reads, not the trace.
Chat templates of such models often put the opening `<think>` in the prompt, so a completion may
hold only the closing tag: everything before the last closing tag is trace. A trace that never
closes (generation cut by max tokens) leaves no answer: the reply becomes what precedes it.
Opt-in everywhere (`strip_reasoning=`, `--strip-reasoning`), since a reply may mention the tags.
"""

from __future__ import annotations

import re

TAGS = ("think", "thinking", "reasoning")
_CLOSED = re.compile(r"<(%s)>.*?</\1>" % "|".join(TAGS), re.DOTALL | re.IGNORECASE)
_LAST_CLOSE = re.compile(r"^.*</(?:%s)>" % "|".join(TAGS), re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<(?:%s)>.*\Z" % "|".join(TAGS), re.DOTALL | re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """`text` without its reasoning trace(s), stripped of surrounding whitespace."""
    text = _CLOSED.sub("", text)
    text = _LAST_CLOSE.sub("", text)  # a trace opened in the prompt, closed in the reply
    text = _OPEN.sub("", text)  # a trace cut short: no answer after it
    return text.strip()
