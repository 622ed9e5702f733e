"""Score tab: one conversation in, its FLR per category and per follow-up out; two replies compared.

Handlers are plain functions of (state, inputs...) so tests call them without a browser; `build`
only lays out components and wires them to the handlers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core import names as C
from core.engine.conversation import Conversation, parse_conversation, prompt_with_reply
from core.errors import ConversationError, FollowupSetError
from core.limits import InputLimits
from core.spreadsheet import csv_text
from core.textfiles import read_text, write_text
from core.engine.followups import (FollowupSet, chosen_followups, default_followups, followups_or_default,
                                   parse_followups)
from core.engine.results import ConversationScore
from core.engine.stopping import stop_when
from ui import examples, exports, gpu, plots
from ui.tabs.score_explain import explain_comparison, explain_conversation
from ui.plots import display_frame
from ui.abandoned import abandoned
from ui.context import AppContext
from ui.errors import user_errors
from ui.markdown import escape
from ui.state import AppState, bind

REPLY_A, REPLY_B = "reply A", "reply B"
DIFFERENCE, PREFERRED = "difference (A − B)", "preferred"
TIE_TOLERANCE = 1e-9  # rewards closer than this count as a tie
FOLLOWUP_COLUMNS = [C.CATEGORY, C.POLARITY, C.FOLLOWUP, C.SCORE]  # ConversationScore.followup_frame()


def default_followups_json() -> str:
    return json.dumps(default_followups().to_dict(), indent=2, ensure_ascii=False)


def summary_markdown(result: ConversationScore, conversation: Conversation, config_text: str) -> str:
    lines = [f"## Overall FLR: {result.flr:+.4f}",
             (f"Weighted sum over {len(result.categories)} categor{'y' if len(result.categories) == 1 else 'ies'}"
              if any(c.weighted for c in result.categories) else
              f"Mean of {len(result.categories)} category reward(s)") + f" · {config_text}"]
    notes = list(conversation.warnings) + list(result.warnings)
    if result.truncated:
        notes.append(f"{result.dropped_turns} oldest utterance(s) were dropped to fit the model's context")
    lines += [f"> ⚠️ {escape(note)}" for note in notes]
    return "\n\n".join(lines)


def describe_config(state: AppState, model: str, mode: str, aggregation: str) -> str:
    config = state.config_for(model, mode, aggregation)
    return f"model {escape(config.model)} · {config.mode} mode · {config.aggregation} aggregation"


def score_all(state: AppState, conversations: list[Conversation], followups: FollowupSet, model: str,
              mode: str, aggregation: str, progress: Any, request: Any = None) -> list[ConversationScore]:
    """Scores for `conversations` with the visitor's settings: in this process, or on ZeroGPU;
    stopped between passes once the visitor of `request` has gone or it has run
    `settings.request_seconds` (`ui.abandoned`)."""
    InputLimits.current().check_pairs(len(conversations), gpu.followup_count(followups),
                                      "this request", ConversationError)
    config = state.config_for(model, mode, aggregation)
    if state.settings.zero_gpu:
        progress(0.1, desc="Scoring on the GPU (the first request there also loads the model)")
    elif state.scorers.needs_load(config):
        progress(0.1, desc=f"Loading {config.model} (once; later requests reuse it)")
    else:
        progress(0.5, desc="Scoring the follow-ups")
    with stop_when(abandoned(request, state.settings.request_seconds)):
        return gpu.score(state, config, conversations, followups)


@user_errors
def score_conversation(state: AppState, text: str, followups_text: str, categories: list[str],
                       model: str, mode: str, aggregation: str, progress: gr.Progress = gr.Progress(track_tqdm=True),
                       request: gr.Request | None = None
                       ) -> tuple[str, go.Figure, go.Figure, pd.DataFrame, dict[str, Any]]:
    """Score handler: summary, reward chart, means chart, follow-up table, JSON record."""
    InputLimits.current().check_paste(text or "", "pasted conversation", ConversationError)
    conversation = parse_conversation(text, "pasted conversation")
    followups = chosen_followups(followups_text, categories)
    [result] = score_all(state, [conversation], followups, model, mode, aggregation, progress, request)
    frame = result.category_frame()
    table, record = display_frame(result.followup_frame()), result.to_record()
    state.results.put(session_of(request), record, table)  # what `result_files` may write
    return (summary_markdown(result, conversation, describe_config(state, model, mode, aggregation)),
            plots.category_reward_figure(frame), plots.category_means_figure(frame), table, record)


def session_of(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def comparison_frame(a: ConversationScore, b: ConversationScore) -> pd.DataFrame:
    rows = []
    for ca, cb in zip(a.categories, b.categories):
        diff = ca.flr - cb.flr
        rows.append({C.CATEGORY: ca.name, REPLY_A: ca.flr, REPLY_B: cb.flr, DIFFERENCE: diff,
                     PREFERRED: _preferred(diff)})
    return pd.DataFrame(rows, columns=[C.CATEGORY, REPLY_A, REPLY_B, DIFFERENCE, PREFERRED])


def _preferred(diff: float) -> str:
    if abs(diff) <= TIE_TOLERANCE:
        return "tie"
    return "A" if diff > 0 else "B"


def verdict_markdown(a: ConversationScore, b: ConversationScore, frame: pd.DataFrame) -> str:
    diff = a.flr - b.flr
    winner = _preferred(diff)
    wins_a = frame.loc[frame[PREFERRED] == "A", C.CATEGORY].tolist()
    wins_b = frame.loc[frame[PREFERRED] == "B", C.CATEGORY].tolist()
    head = ("## FLR rates both replies the same" if winner == "tie"
            else f"## FLR prefers reply {winner} by {abs(diff):.4f}")
    return "\n\n".join([
        head,
        f"Overall FLR: reply A {a.flr:+.4f}, reply B {b.flr:+.4f}.",
        f"Reply A is ahead in: {', '.join(map(escape, wins_a)) or 'no category'}. "
        f"Reply B is ahead in: {', '.join(map(escape, wins_b)) or 'no category'}.",
    ])


@user_errors
def compare_replies(state: AppState, context: str, reply_a: str, reply_b: str, followups_text: str,
                    categories: list[str], model: str, mode: str, aggregation: str,
                    progress: gr.Progress = gr.Progress(track_tqdm=True),
                    request: gr.Request = None) -> tuple[str, go.Figure, pd.DataFrame]:
    """Side-by-side handler: verdict, per-category chart, per-category table."""
    conv_a = prompt_with_reply(context, reply_a, "reply A")
    conv_b = prompt_with_reply(context, reply_b, "reply B")
    followups = chosen_followups(followups_text, categories)
    score_a, score_b = score_all(state, [conv_a, conv_b], followups, model, mode, aggregation, progress,
                                 request)
    frame = comparison_frame(score_a, score_b)
    return (verdict_markdown(score_a, score_b, frame), plots.comparison_figure(frame, REPLY_A, REPLY_B),
            display_frame(frame))


@user_errors
def result_files(state: AppState, request: gr.Request | None = None) -> list[str]:
    """This session's last result as files to download: the JSON record and the follow-up table
    as CSV. Built from what the server computed (`AppState.results`), never from client data."""
    last = state.results.get(session_of(request))
    if last is None:
        return []
    record, table = last
    folder = exports.new_folder(state.settings, "score")
    json_path, csv_path = folder / "flr_result.json", folder / "flr_followups.csv"
    json_path.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    write_text(csv_path, csv_text(table))  # no live formula from a pasted follow-up
    return [str(json_path), str(csv_path)]


@user_errors
def apply_followups(text: str, selected: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """Validate the editor; offer its categories, keeping the chosen ones that still exist
    (all of them when none does)."""
    followups = followups_or_default(text)
    n = sum(len(c.positive) + len(c.negative) for c in followups)
    keep = [name for name in followups.names if name in (selected or [])]
    return (gr.update(choices=list(followups.names), value=keep or list(followups.names)),
            f"✓ Follow-up set in use: {len(followups)} categor{'y' if len(followups) == 1 else 'ies'}, "
            f"{n} follow-ups.")


@user_errors
def upload_followups(path: str | None) -> tuple[str, dict[str, Any], str]:
    """Load an uploaded follow-up set into the editor after checking it."""
    if not path:
        raise ConversationError("no file received; choose a follow-up set JSON file")
    text = read_text(path, FollowupSetError, label=Path(path).name, what="follow-up set")
    followups = parse_followups(text, Path(path).name)
    pretty = json.dumps(followups.to_dict(), indent=2, ensure_ascii=False)
    update, message = apply_followups(pretty)
    return pretty, update, message


@user_errors
def reset_followups() -> tuple[str, dict[str, Any], str]:
    text = default_followups_json()
    update, message = apply_followups(text)
    return text, update, message


def build(ctx: AppContext) -> None:
    state = ctx.state
    names = list(default_followups().names)
    with gr.Row():
        with gr.Column(scale=3):
            conversation = gr.Textbox(
                examples.CONVERSATIONS[0], lines=8, max_lines=30, label="Conversation",
                elem_id="conversation",
                info="Role-prefixed text (User: / Assistant:) or JSON (a list of utterances or of "
                     "messages), ending with the assistant reply to judge",
            )
            gr.Examples([[e] for e in examples.CONVERSATIONS], inputs=[conversation],
                        label="Examples (click to paste)")
        with gr.Column(scale=2):
            categories = gr.CheckboxGroup(names, value=names, label="Follow-up categories",
                                          elem_id="categories")
            score_button = gr.Button("Score", variant="primary", elem_id="score-button")
    with gr.Accordion("Follow-up set (edit or upload)", open=False):
        followups_code = gr.Code(default_followups_json(), language="json", lines=12, max_lines=30,
                                 label="Follow-up set JSON", elem_id="followups-editor")
        with gr.Row():
            followups_file = gr.File(label="Upload a follow-up set (.json)", file_types=[".json"],
                                     elem_id="followups-upload")
            with gr.Column():
                apply_button = gr.Button("Use this set")
                reset_button = gr.Button("Reset to the default set")
                followups_status = gr.Markdown()
    summary = gr.Markdown(elem_id="score-summary")
    with gr.Row():
        reward_plot = gr.Plot(label="Reward per category", elem_id="reward-plot")
        means_plot = gr.Plot(label="Mean positive / negative", elem_id="means-plot")
    table = gr.Dataframe(pd.DataFrame(columns=FOLLOWUP_COLUMNS),  # headers, not 1 2 3, before a score
                         label="Every follow-up (click a column header to sort)", interactive=False,
                         show_search="filter", elem_id="followup-table", wrap=True)
    with gr.Accordion("JSON result", open=False):
        record = gr.JSON(label="Result")
    download = gr.File(label="Download this result (JSON, and every follow-up as CSV)", file_count="multiple",
                       interactive=False, elem_id="score-download", height=110)
    with gr.Accordion("Why this score: every follow-up token's log-probability", open=False,
                      elem_id="explain"):
        explain_button = gr.Button("Explain", elem_id="explain-button")
        explain_tokens = gr.HTML(elem_id="explain-tokens")
        explain_table = gr.Dataframe(label="Every follow-up by its effect on the FLR (click a header to sort)",
                                     interactive=False, show_search="filter", wrap=True,
                                     elem_id="explain-table")

    with gr.Accordion("Side by side: compare two replies", open=False, elem_id="compare"):
        with gr.Row():
            context = gr.Textbox(examples.COMPARISONS[0][0], lines=5, label="Conversation up to the user's last message",
                                 elem_id="compare-context")
            reply_a = gr.Textbox(examples.COMPARISONS[0][1], lines=5, label="Reply A", elem_id="reply-a")
            reply_b = gr.Textbox(examples.COMPARISONS[0][2], lines=5, label="Reply B", elem_id="reply-b")
        gr.Examples(examples.COMPARISONS, inputs=[context, reply_a, reply_b], label="Examples")
        compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        verdict = gr.Markdown(elem_id="compare-verdict")
        compare_plot = gr.Plot(label="Reward per category", elem_id="compare-plot")
        compare_table = gr.Dataframe(pd.DataFrame(columns=[C.CATEGORY, REPLY_A, REPLY_B, DIFFERENCE, PREFERRED]),
                                     label="Per category", interactive=False, elem_id="compare-table")
        changed_button = gr.Button("Which follow-ups changed most?", elem_id="changed-button")
        changed_table = gr.Dataframe(label="Follow-ups by how much their score changed from A to B",
                                     interactive=False, show_search="filter", wrap=True,
                                     elem_id="changed-table")

    model_work = dict(concurrency_id="model", concurrency_limit=state.settings.concurrency)
    score_inputs = [conversation, followups_code, categories, *ctx.scoring_inputs]
    score_outputs = [summary, reward_plot, means_plot, table, record]
    score_button.click(bind(score_conversation, state), score_inputs, score_outputs,
                       api_name="score", **model_work
                       ).success(bind(result_files, state), None, [download],
                                 api_visibility="private", concurrency_id="files")
    compare_button.click(bind(compare_replies, state),
                         [context, reply_a, reply_b, followups_code, categories, *ctx.scoring_inputs],
                         [verdict, compare_plot, compare_table], api_name="compare", **model_work)
    explain_button.click(bind(explain_conversation, state), score_inputs, [explain_tokens, explain_table],
                         api_visibility="private", **model_work)
    changed_button.click(bind(explain_comparison, state),
                         [context, reply_a, reply_b, followups_code, categories, *ctx.scoring_inputs],
                         [changed_table], api_visibility="private", **model_work)
    apply_button.click(apply_followups, [followups_code], [categories, followups_status], api_visibility="private")
    followups_code.blur(apply_followups, [followups_code, categories], [categories, followups_status],
                        api_visibility="private")
    reset_button.click(reset_followups, None, [followups_code, categories, followups_status], api_visibility="private")
    followups_file.upload(upload_followups, [followups_file], [followups_code, categories, followups_status],
                          api_visibility="private")
