"""Assembling the tabs into one `gr.Blocks`, and the options it is launched with.

Each tab module exposes `build(ctx: AppContext)`, called inside its `gr.Tab`; the builder owns
the tab itself.
Building the app loads no model: the shared `ScorerHub` loads one on the first request.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from ui import tab_about, tab_batch, tab_dashboards, tab_mine, tab_score
from ui.context import AppContext, render_controls
from ui.settings import AppSettings
from ui.state import AppState, ScorerFactory

log = logging.getLogger(__name__)

CSS = """
#score-summary h2 { margin-bottom: 0.2em; }
.flr-note { color: var(--body-text-color-subdued); font-size: 0.9em; }
/* plotly draws its text and grid in fixed colours; these follow gradio's light or dark theme */
.js-plotly-plot .main-svg .gtitle, .js-plotly-plot .main-svg .xtitle, .js-plotly-plot .main-svg .ytitle,
.js-plotly-plot .main-svg .xtick text, .js-plotly-plot .main-svg .ytick text,
.js-plotly-plot .main-svg .legendtext, .js-plotly-plot .main-svg .annotation-text,
.js-plotly-plot .main-svg .cbtitle text, .js-plotly-plot .main-svg .cbaxis text,
.js-plotly-plot .main-svg .textpoint text, .js-plotly-plot .main-svg .bartext { fill: var(--body-text-color) !important; }
.js-plotly-plot .main-svg .gridlayer path, .js-plotly-plot .main-svg .zerolinelayer path {
  stroke: var(--border-color-primary) !important; }
"""


def build_app(settings: AppSettings | None = None, *, scorer_factory: ScorerFactory | None = None
              ) -> gr.Blocks:
    """The whole app. `scorer_factory` replaces `core.engine.scorer.load_scorer` (tests pass a fake)."""
    settings = settings or AppSettings.from_env()
    state = AppState(settings, scorer_factory)
    # gradio's copies of the files handed to visitors: checked hourly, removed after a day
    with gr.Blocks(title="FLR Studio", delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown(
            "# FLR Studio\nJudge a chatbot reply by how likely the user's **next message** is praise "
            "rather than complaint (Follow-up Likelihood as Reward, AAAI 2025). "
            + ("The model list is fixed by this server's owner." if settings.hosted else
               "The model loads on the first request and is shared by every tab.")
        )
        model, mode, aggregation = render_controls(state)
        ctx = AppContext(state, model, mode, aggregation, reports=gr.State([]))
        with gr.Tabs():
            with gr.Tab("Score", id="score"):
                tab_score.build(ctx)
            with gr.Tab("Batch evaluation", id="batch"):
                tab_batch.build(ctx)
            with gr.Tab("Dashboards", id="dashboards", elem_id="dashboards-tab"):
                tab_dashboards.build(ctx)
            with gr.Tab("Mine preferences", id="mine"):
                tab_mine.build(ctx)
            with gr.Tab("About", id="about"):
                tab_about.build(ctx)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    return demo


def launch_options(settings: AppSettings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `demo.launch`: server address, upload limit, styling."""
    options: dict[str, Any] = dict(
        server_name=settings.server_name, server_port=settings.server_port,
        max_file_size=settings.max_file_size, css=CSS, theme=gr.themes.Soft(),
        allowed_paths=[str(tab_batch.SAMPLES_DIR)],  # bundled samples are served as uploads
    )
    options.update(overrides)
    return options

