"""Dashboards tab: plots of this session's evaluation reports and of uploaded REPORT.json files.

Reports are rebuilt with `EvaluationReport.from_dict`; the frames come from the report
(`metrics_frame`, `rating_points`, `ranking_frame`) and `ui.plots` draws them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.errors import BenchmarkFormatError
from core.evaluation.compare import compare_reports
from core.evaluation.report import EvaluationReport, load_report_data
from core.names import (ACCURACY, CATEGORY, COL_BENCHMARK, COL_KIND, COL_METRIC, COL_MODEL, COL_SIGNAL,
                        COL_TRUTH, COL_VALUE, CORRELATIONS, DIRECT, FLR, KENDALL, OVERALL, PAIRWISE,
                        PEARSON, RANK_CORRELATIONS, RANKING, RATING, SPEARMAN)
from ui import plots
from ui.context import AppContext
from ui.errors import user_errors

HEATMAP_METRICS = (SPEARMAN, PEARSON, KENDALL, ACCURACY)


def read_reports(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Uploaded REPORT.json files, checked enough to be drawn (named by file name only: a
    server path is never shown to a visitor)."""
    return [load_report_data(path, BenchmarkFormatError, label=Path(path).name) for path in paths]


def combine(reports: Sequence[dict[str, Any]]) -> EvaluationReport:
    """All benchmarks of all reports in one report; repeated names get a numbered suffix."""
    benchmarks = []
    seen: dict[str, int] = {}
    for data in reports:
        for b in EvaluationReport.from_dict(data).benchmarks:
            seen[b.name] = seen.get(b.name, 0) + 1
            if seen[b.name] > 1:
                b.name = f"{b.name} ({seen[b.name]})"
            benchmarks.append(b)
    return EvaluationReport(benchmarks)


def names_of(report: EvaluationReport, kind: str) -> list[str]:
    return [b.name for b in report.benchmarks if b.kind == kind]


def accuracy_by_benchmark(report: EvaluationReport) -> go.Figure:
    frame = report.metrics_frame()
    frame = frame[(frame[COL_KIND] == PAIRWISE) & (frame[CATEGORY] == OVERALL)]
    return plots.accuracy_figure(frame, x=COL_BENCHMARK, value=COL_VALUE, color=COL_SIGNAL,
                                 title="Pairwise accuracy per benchmark: FLR and baselines (95% CI)")


def accuracy_by_category(report: EvaluationReport) -> go.Figure:
    frame = report.metrics_frame()
    frame = frame[(frame[COL_KIND] == PAIRWISE) & (frame[COL_SIGNAL] == FLR)]
    return plots.accuracy_figure(frame, x=CATEGORY, value=COL_VALUE, color=COL_BENCHMARK,
                                 title="Pairwise accuracy per follow-up category (95% CI)")


def rating_figure(report: EvaluationReport, name: str | None) -> go.Figure:
    names = names_of(report, RATING)
    if not names:
        return plots.empty_figure("No rating benchmarks in these results")
    name = name if name in names else names[0]
    b = report.benchmark(name)
    points = report.rating_points(name)
    correlations = {m: b.metrics.get(m) for m in CORRELATIONS}
    return plots.rating_scatter(points, x=COL_TRUTH, y=FLR, correlations=correlations, hover=COL_MODEL,
                                title=f"{name}: FLR against the ground-truth rating",
                                x_title="ground-truth rating", y_title="FLR")


def heatmap_figure(report: EvaluationReport, metric: str) -> go.Figure:
    frame = report.metrics_frame()
    frame = frame[(frame[COL_SIGNAL] == FLR) & (frame[COL_METRIC] == metric)]
    title = f"{metric} per category and benchmark"
    scale = (0.0, 0.5, 1.0) if metric == ACCURACY else (-1.0, 0.0, 1.0)
    return plots.correlation_heatmap(frame, row=CATEGORY, column=COL_BENCHMARK, value=COL_VALUE,
                                     title=title, scale=scale)


def ranking_figure(report: EvaluationReport, name: str | None) -> go.Figure:
    names = names_of(report, RANKING)
    if not names:
        return plots.empty_figure("No ranking benchmarks in these results")
    name = name if name in names else names[0]
    b = report.benchmark(name)
    frame = report.ranking_frame(name)
    correlations = {m: b.metrics.get(m) for m in RANK_CORRELATIONS}
    return plots.ranking_scatter(frame, x="elo", y="flr", label=COL_MODEL, correlations=correlations,
                                 title=f"{name}: model ranking, mean FLR against Arena ELO",
                                 x_title="reference ELO", y_title="mean FLR")


@user_errors
def draw(session_reports: list[dict[str, Any]] | None, uploads: Any, rating_name: str | None,
         ranking_name: str | None, metric: str
         ) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], go.Figure, go.Figure, go.Figure,
                    go.Figure, go.Figure, pd.DataFrame]:
    """Every figure from the session's reports plus the uploaded ones; the heatmap metric falls
    back to one the reports have."""
    paths = [str(getattr(f, "name", f)) for f in (uploads or [])]
    reports = list(session_reports or []) + read_reports(paths)
    report = combine(reports)
    ratings, rankings = names_of(report, RATING), names_of(report, RANKING)
    frame = report.metrics_frame()
    available = [m for m in HEATMAP_METRICS if (frame[COL_METRIC] == m).any()]
    metric = metric if metric in available or not available else available[0]
    rating_name = rating_name if rating_name in ratings else (ratings[0] if ratings else None)
    ranking_name = ranking_name if ranking_name in rankings else (rankings[0] if rankings else None)
    note = (f"{len(report.benchmarks)} benchmark(s) from {len(session_reports or [])} run(s) in this "
            f"session and {len(paths)} uploaded report(s)." if reports else
            "No results yet: run an evaluation in the Batch tab or upload REPORT.json files.")
    table = frame[frame[COL_SIGNAL] == FLR].drop(columns=[COL_SIGNAL]).round(4)
    return (note,
            gr.update(choices=ratings, value=rating_name),
            gr.update(choices=rankings, value=ranking_name),
            gr.update(value=metric),
            accuracy_by_benchmark(report), accuracy_by_category(report),
            rating_figure(report, rating_name), heatmap_figure(report, metric),
            ranking_figure(report, ranking_name), table)


@user_errors
def compare_runs(session_reports: list[dict[str, Any]] | None, file_a: Any, file_b: Any) -> pd.DataFrame:
    """Two runs side by side on the rows both judged, with a paired bootstrap interval of B - A
    (`core.evaluation.compare`): the uploaded A and B, else this session's last two runs."""
    paths = [str(getattr(f, "name", f)) for f in (file_a, file_b) if f]
    if paths and len(paths) < 2:
        raise BenchmarkFormatError("upload both reports, A and B (or neither, to compare this "
                                   "session's last two runs)")
    picked = read_reports(paths) if paths else list(session_reports or [])[-2:]
    if len(picked) < 2:
        raise BenchmarkFormatError("comparing needs two reports: upload A and B, or run two "
                                   "evaluations in the Batch tab")
    a, b = (EvaluationReport.from_dict(r) for r in picked)
    return compare_reports(a, b, signals=(FLR, DIRECT)).round(4)


def build(ctx: AppContext) -> None:
    with gr.Row():
        uploads = gr.File(file_count="multiple", file_types=[".json"], elem_id="report-upload",
                          label="Upload REPORT.json files (from the Batch tab or `python -m core evaluate`)")
        with gr.Column():
            note = gr.Markdown(elem_id="dashboards-note")
            refresh = gr.Button("Redraw", elem_id="dashboards-refresh")
    nothing = plots.empty_figure("No results yet: run an evaluation in the Batch tab or upload a report")
    with gr.Row():
        by_benchmark = gr.Plot(nothing, label="Accuracy per benchmark", elem_id="plot-accuracy-benchmark")
        by_category = gr.Plot(nothing, label="Accuracy per category", elem_id="plot-accuracy-category")
    with gr.Row():
        with gr.Column():
            rating_name = gr.Dropdown([], label="Rating benchmark", elem_id="rating-choice")
            rating = gr.Plot(nothing, label="FLR against rating", elem_id="plot-rating")
        with gr.Column():
            metric = gr.Dropdown(list(HEATMAP_METRICS), value=SPEARMAN, label="Heatmap metric")
            heatmap = gr.Plot(nothing, label="Per category and benchmark", elem_id="plot-heatmap")
    ranking_name = gr.Dropdown([], label="Ranking benchmark", elem_id="ranking-choice")
    ranking = gr.Plot(nothing, label="Model ranking", elem_id="plot-ranking")
    with gr.Accordion("FLR figures as a table", open=False):
        table = gr.Dataframe(interactive=False, show_search="filter", elem_id="dashboards-table")
    with gr.Accordion("Compare two runs on the same rows (paired bootstrap interval of B - A)", open=False):
        with gr.Row():
            file_a = gr.File(file_types=[".json"], label="Report A (default: the session's second-last run)",
                             elem_id="compare-a")
            file_b = gr.File(file_types=[".json"], label="Report B (default: the session's last run)",
                             elem_id="compare-b")
        compare_button = gr.Button("Compare", elem_id="compare-run")
        comparison = gr.Dataframe(interactive=False, wrap=True, elem_id="compare-table")
    compare_button.click(compare_runs, [ctx.reports, file_a, file_b], [comparison], api_visibility="private")

    _followup_section(ctx)

    inputs = [ctx.reports, uploads, rating_name, ranking_name, metric]
    outputs = [note, rating_name, ranking_name, metric, by_benchmark, by_category, rating, heatmap, ranking, table]
    for trigger in (ctx.reports.change, uploads.change, refresh.click, metric.input, rating_name.input,
                    ranking_name.input):
        trigger(draw, inputs, outputs, api_visibility="private")


def _followup_section(ctx: AppContext) -> None:
    """Per-follow-up diagnostics on labelled files (`ui.tabs.dashboards_followups`)."""
    from ui.tabs.dashboards_followups import followup_diagnostics
    from ui.state import bind

    with gr.Accordion("Follow-up diagnostics: which follow-ups separate good replies from bad",
                      open=False, elem_id="followup-diagnostics"):
        with gr.Row():
            files = gr.File(file_count="multiple", label="Labelled benchmark files (pairs or ratings)",
                            elem_id="diagnostics-files")
            with gr.Column():
                followups_file = gr.File(label="Follow-up set (.json; default: the bundled set)",
                                         file_types=[".json"])
                objective = gr.Radio(["pairwise", "rating"], value="pairwise", label="Labels")
                limit = gr.Number(value=None, label="First N pairs / rows per file (empty: all)",
                                  precision=0)
                run = gr.Button("Diagnose", variant="primary", elem_id="diagnostics-button")
        summary = gr.Markdown(elem_id="diagnostics-summary")
        heatmap = gr.Plot(label="Correlation between follow-ups", elem_id="diagnostics-heatmap")
        table = gr.Dataframe(label="Every follow-up: alone = its accuracy (or correlation) as a reward by "
                             "itself; click a header to sort", interactive=False, show_search="filter",
                             wrap=True, elem_id="diagnostics-table")
    run.click(bind(followup_diagnostics, ctx.state),
              [files, followups_file, objective, limit, *ctx.scoring_inputs], [summary, heatmap, table],
              api_visibility="private", concurrency_id="model",
              concurrency_limit=ctx.state.settings.concurrency)
