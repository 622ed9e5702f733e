"""Assembling the tabs into one `gr.Blocks`, and the options it is launched with.

Each tab module exposes `build(ctx: AppContext)`, called inside its `gr.Tab`; the builder owns
the tab itself.
Building the app loads no model: the shared `ScorerPool` loads one on the first request.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from ui import client_limits
from ui.tabs import about as tab_about
from ui.tabs import batch as tab_batch
from ui.tabs import dashboards as tab_dashboards
from ui.tabs import mine as tab_mine
from ui.tabs import score as tab_score
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
    if settings.hosted:  # a visitor's random session hashes do not buy more queue slots
        client_limits.limit_queue(demo, settings.events_per_client,
                                  client_limits.TrustedProxies(settings.trusted_proxies))
    return demo


def launch_options(settings: AppSettings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `demo.launch`: server address, upload limit, styling, which of
    the server's folders gradio may hand to visitors (`served_paths`), and in hosted mode the
    per-visitor upload limit (`ui.client_limits.UploadLimit`, a middleware of gradio's app)."""
    allowed, blocked = served_paths(settings)
    options: dict[str, Any] = dict(
        server_name=settings.server_name, server_port=settings.server_port,
        max_file_size=settings.max_file_size, css=CSS, theme=gr.themes.Soft(),
        allowed_paths=allowed, blocked_paths=blocked,
    )
    if settings.hosted:
        from starlette.middleware import Middleware

        options["app_kwargs"] = {"middleware": [Middleware(
            client_limits.UploadLimit, uploads=settings.uploads_per_client,
            megabytes=settings.upload_mb_per_client, window=settings.upload_window,
            trusted=settings.trusted_proxies)]}
    options.update(overrides)
    return options


def served_paths(settings: AppSettings) -> tuple[list[str], list[str]]:
    """`allowed_paths` and `blocked_paths` for `launch`: the bundled samples and the exports
    folder may be handed out; the score cache never.

    How gradio 6 matches them (gradio/utils.py `is_allowed_file`, `is_in_or_equal`): a path is
    refused when it lies in or equals a blocked path (compared lower-cased), otherwise accepted
    when it lies in or equals an allowed path (both resolved). Two places ask:
    - a file a handler returns is copied into gradio's cache only if it is in `allowed_paths`,
      the working directory or the system temp dir (gradio/processing_utils.py `_check_allowed`);
      every run writes its downloads under `FLR_WORK_DIR/exports` (~/.cache/... by default, a
      Space's /home/user), which is neither, so that folder must be listed or every download fails
      with InvalidPathError;
    - `GET /gradio_api/file=PATH` serves only files in `allowed_paths` or in gradio's own upload
      and cache folders (gradio/route_utils.py `file_fetch`); working and temp dir are not served.
    So only `exports/` is opened, not `FLR_WORK_DIR` itself: the score cache next to it
    (scores.sqlite and SQLite's -wal/-shm/-journal files) stays unreachable, and is blocked as
    well in case an owner puts the work dir inside an allowed folder. Visitors are given the
    cache copies' URLs, never a path under exports/, whose run folders have random names.
    Uploads stay where gradio keeps them (its upload folder, served by gradio's own rule only).
    """
    cache = str(settings.cache_path)
    allowed = [str(tab_batch.SAMPLES_DIR),  # bundled samples are loaded as uploads
               str(settings.exports_dir)]
    blocked = [cache] + [cache + suffix for suffix in ("-wal", "-shm", "-journal")]
    return allowed, blocked

