"""Score tab, "why this score": per-token explanations of one conversation, and the follow-ups
whose likelihood changed most between two replies.

`core.engine.explain` computes the values; `tokens_html` only draws them: every token of a
follow-up coloured by its log-probability (darker = less likely), the follow-ups that moved the
FLR most first. Handlers are plain functions of (state, inputs...), as in `ui.tabs.score`.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd

from core.engine.conversation import parse_conversation, prompt_with_reply
from core.engine.explain import EFFECT, Explanation, compare, explain
from core.errors import ConfigError
from core.engine.config import ScoringConfig
from core.engine.followups import FollowupSet, chosen_followups
from ui.errors import user_errors
from ui.gpu import CALL_SECONDS, SLACK, conversation_tokens, followup_count, held_scorer, load_seconds, on_gpu, scoring_seconds
from ui.state import AppState, ScorerFactory
from ui.plots import display_frame

SHOWN = 30  # follow-ups drawn as coloured tokens; the table has them all
_LOW = -12.0  # log-probability drawn at full colour


def _colour(value: float, paper: bool) -> str:
    """Green for likely tokens, red for unlikely (paper aggregation: raw logits, scaled)."""
    share = min(1.0, max(0.0, (value / _LOW) if not paper else 1.0 - (value + 10.0) / 20.0))
    red, green = int(255 * share), int(180 * (1 - share))
    return f"rgba({red}, {green}, 80, {0.15 + 0.45 * share:.2f})"


def tokens_html(explanation: Explanation, shown: int = SHOWN) -> str:
    """The follow-ups' tokens as coloured spans, one line per follow-up, biggest effect first."""
    paper = explanation.aggregation == "paper"
    unit = "raw logit" if paper else "log-probability"
    lines = [f"<p class='flr-note'>Each token coloured by its {unit} (hover for the value); "
             "follow-ups ordered by how much they moved the FLR (effect = signed weight x "
             "(score - mean score)).</p>"]
    for f in explanation.followups[:shown]:
        spans = "".join(
            f"<span title='{v:.3f}' style='background:{_colour(v, paper)};padding:1px 0;"
            f"border-radius:3px'>{html.escape(t)}</span>" for t, v in f.tokens)
        sign = "praise" if f.sign > 0 else "complaint"
        lines.append(f"<div style='margin:4px 0'><code>{f.effect:+.4f}</code> "
                     f"<small>{html.escape(f.category)} {sign}</small> {spans} "
                     f"<small>(score {f.score:.3f})</small></div>")
    if len(explanation.followups) > shown:
        lines.append(f"<p class='flr-note'>... {len(explanation.followups) - shown} more in the table.</p>")
    return "\n".join(lines)


def _explainable(scorer: Any) -> Any:
    if not hasattr(scorer, "read_packed"):
        raise ConfigError("this scorer cannot explain its scores (no per-token values)")
    return scorer


def _explain_seconds(factory: ScorerFactory, config: ScoringConfig, conversations: list,
                     followups: FollowupSet) -> float:
    work = scoring_seconds(config, [conversation_tokens(c) for c in conversations], followup_count(followups))
    return CALL_SECONDS + load_seconds(config) + 2 * SLACK * work  # twice: per-token values read back too


@on_gpu(_explain_seconds)
@user_errors  # inside the ZeroGPU worker: only a gr.Error crosses back with its message
def explain_conversations(factory: ScorerFactory, config: ScoringConfig, conversations: list,
                          followups: FollowupSet) -> list[Explanation]:
    """Explanations of `conversations`, by the model this process holds (`ui.gpu`)."""
    scorer = _explainable(held_scorer(factory, config))
    return [explain(scorer, c, followups) for c in conversations]


def explain_all(state: AppState, config: ScoringConfig, conversations: list,
                followups: FollowupSet) -> list[Explanation]:
    """On ZeroGPU in its worker; elsewhere with the app's own scorer, holding a model slot."""
    with state.model_slots:
        if state.settings.zero_gpu:
            return explain_conversations(state.factory, config, list(conversations), followups)
        scorer = _explainable(state.scorer(config))
        return [explain(scorer, c, followups) for c in conversations]


def explanation_frame(explanation: Explanation) -> pd.DataFrame:
    frame = explanation.frame()
    frame["tokens"] = [" | ".join(f"{t!r} {v:.2f}" for t, v in tokens) for tokens in frame["tokens"]]
    return display_frame(frame)


@user_errors
def explain_conversation(state: AppState, text: str, followups_text: str, categories: list[str],
                         model: str, mode: str, aggregation: str, progress: gr.Progress = gr.Progress()
                         ) -> tuple[str, pd.DataFrame]:
    """Explain handler: coloured tokens and the table of every follow-up by effect."""
    conversation = parse_conversation(text, "pasted conversation")
    followups = chosen_followups(followups_text, categories)
    progress(0.3, desc="Reading every follow-up token's value")
    [result] = explain_all(state, state.config_for(model, mode, aggregation), [conversation], followups)
    return tokens_html(result), explanation_frame(result)


@user_errors
def explain_comparison(state: AppState, context: str, reply_a: str, reply_b: str, followups_text: str,
                       categories: list[str], model: str, mode: str, aggregation: str,
                       progress: gr.Progress = gr.Progress()) -> pd.DataFrame:
    """The follow-ups whose score changed most from reply A to reply B."""
    conv_a = prompt_with_reply(context, reply_a, "reply A")
    conv_b = prompt_with_reply(context, reply_b, "reply B")
    followups = chosen_followups(followups_text, categories)
    progress(0.3, desc="Reading every follow-up token's value")
    a, b = explain_all(state, state.config_for(model, mode, aggregation), [conv_a, conv_b], followups)
    frame = compare(a, b)
    return display_frame(frame.rename(columns={EFFECT: "effect on FLR (B − A)"}))
