"""Dashboards tab, "Follow-up diagnostics": which follow-ups of a set separate good replies from
bad on labelled files, which duplicate each other, which point the wrong way.

The files are scored through the app's score cache exactly as the Batch tab scores them;
`core.tuning.diagnostics` computes the table and the correlations, `ui.plots` draws the heatmap.
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.engine.followups import default_followups, load_followups
from core.tuning.diagnostics import diagnose
from core.tuning.features import examples_from_results
from core.tuning.report import format_diagnostics
from ui import plots
from ui.errors import user_errors
from ui.state import AppState
from ui.markdown import code_block
from ui.tabs.batch import check_run_size, detect_files, evaluate, upload_paths


@user_errors
def followup_diagnostics(state: AppState, files: Any, followups_file: Any, objective: str,
                         limit: float | None, model: str, mode: str, aggregation: str,
                         progress: gr.Progress = gr.Progress()) -> tuple[str, go.Figure, pd.DataFrame]:
    """Summary text, correlation heatmap and the sortable per-follow-up table."""
    benchmarks = detect_files(files, None, "", settings=state.settings)
    config = state.config_for(model, mode, aggregation)
    followups = load_followups(upload_paths(followups_file)[0]) if upload_paths(followups_file) else default_followups()
    n = int(limit) if limit else None
    check_run_size(state, benchmarks, n, config, followups)  # the Batch tab's cap in hosted mode
    report = evaluate(state, benchmarks, config=config, followups=followups, elo=None,
                      limit=n, cancel=threading.Event(),
                      progress=lambda done, total, message: progress((done, max(total, 1)), desc=message))
    examples = examples_from_results(report.benchmarks, followups, objective or "pairwise")
    diag = diagnose(examples, followups, folds=min(5, max(2, len({k[0] for k in examples.keys}))))
    text = format_diagnostics(diag)
    summary = "\n".join(line for line in text.splitlines()[-3:] if line)
    return (code_block(summary), plots.followup_correlation_heatmap(diag.correlations),
            diag.table.round(4))
