"""What a tab's `build(ctx)` receives: the shared state and the app-wide components.

The model, mode and aggregation controls sit above the tabs and apply to every tab that scores
(one model for the whole app); `reports` holds this session's evaluation reports, which the
batch tab fills and the dashboards read.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core.engine.config import AGGREGATIONS, MODES
from ui.state import AppState

MODE_LABELS = [("base: next user turn", "base"), ("feedback-tuned: role-swapped scorer", "feedback")]
AGGREGATION_LABELS = [("mean per token", "mean"), ("sum over tokens", "sum"),
                      ("paper scripts (raw logits)", "paper")]
assert [v for _, v in MODE_LABELS] == list(MODES)
assert [v for _, v in AGGREGATION_LABELS] == list(AGGREGATIONS)


@dataclass
class AppContext:
    state: AppState
    model: gr.components.Component  # Dropdown in hosted mode, Textbox otherwise
    mode: gr.Radio
    aggregation: gr.Radio
    reports: gr.State  # list of EvaluationReport dicts produced in this session

    @property
    def scoring_inputs(self) -> list[gr.components.Component]:
        """Pass these last to a handler taking (..., model, mode, aggregation)."""
        return [self.model, self.mode, self.aggregation]


def render_controls(state: AppState) -> tuple[gr.components.Component, gr.Radio, gr.Radio]:
    """The model / mode / aggregation row shown above the tabs."""
    settings = state.settings
    with gr.Row(equal_height=True):
        if settings.hosted:
            fixed = len(settings.allowed_models) == 1
            model = gr.Dropdown(list(settings.allowed_models), value=settings.config.model,
                                label="Model", elem_id="model", scale=2, interactive=not fixed,
                                info="The model this server offers" if fixed else "The models this server offers")
        else:
            model = gr.Textbox(settings.config.model, label="Model", elem_id="model", scale=2,
                               info="Hub id, local folder, .gguf file, or 'embedded' (SmolLM2-135M)")
        mode = gr.Radio(MODE_LABELS, value=settings.config.mode, label="Mode", elem_id="mode", scale=2)
        aggregation = gr.Radio(AGGREGATION_LABELS, value=settings.config.aggregation,
                               label="Aggregation", elem_id="aggregation", scale=3)
    return model, mode, aggregation
