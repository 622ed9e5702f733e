"""Text from visitors (model names, file and benchmark names, follow-ups, categories) placed in
Markdown as text: a name like `![x](https://tracker/p.png)` or `[log in again](https://...)` must
show as those characters, not as an image or a link that Gradio's deep links would share.
"""

from __future__ import annotations

import html
import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~>])")


def escape(text: object) -> str:
    """`text` with Markdown's punctuation backslash-escaped and HTML's `<`, `>`, `&` as entities."""
    return _SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def code_block(text: str) -> str:
    """`text` in a fenced block that no line of it can close (the fence outgrows its backticks)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
