"""DataFrame -> plotly Figure, and nothing else.

Every function takes a frame that `core` returned (column names from `core.names` or the
report's metric frames) and returns a `go.Figure`; no scoring and no statistics happen here:
correlations written on a chart are passed in from the report that computed them.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core import names as C

POSITIVE_COLOR = "#2a9d8f"
NEGATIVE_COLOR = "#e76f51"
NEUTRAL_COLOR = "#457b9d"
A_COLOR, B_COLOR = "#457b9d", "#f4a261"
# Readable on light and dark pages alike: half-transparent grey for lines, transparent
# backgrounds; text colours come from the page's theme (CSS in ui/gradio_app.py), so none is set here.
GUIDE_COLOR = "rgba(128, 128, 128, 0.7)"
CLEAR = "rgba(0, 0, 0, 0)"
_AXIS = dict(gridcolor=GUIDE_COLOR, zerolinecolor=GUIDE_COLOR, linecolor=GUIDE_COLOR, automargin=True)
_TEMPLATE = go.layout.Template(layout=dict(xaxis=_AXIS, yaxis=_AXIS, colorway=[
    NEUTRAL_COLOR, B_COLOR, POSITIVE_COLOR, NEGATIVE_COLOR, "#8d6cab", "#6c8d4f"]))
_LAYOUT = dict(template=_TEMPLATE, paper_bgcolor=CLEAR, plot_bgcolor=CLEAR,
               margin=dict(l=60, r=20, t=60, b=60), height=380)


def display_frame(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A frame as a table shows it: numbers rounded to `digits` places."""
    return frame.round(digits)


def empty_figure(message: str) -> go.Figure:
    """A blank chart that says why it is blank (no data yet, metric not in the report)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(**{**_LAYOUT, "height": 260})
    return fig


def category_reward_figure(frame: pd.DataFrame) -> go.Figure:
    """Reward per category (mean positive - mean negative), green above zero, red below."""
    if frame.empty:
        return empty_figure("No categories scored")
    colors = [POSITIVE_COLOR if v >= 0 else NEGATIVE_COLOR for v in frame[C.REWARD]]
    fig = go.Figure(go.Bar(x=frame[C.CATEGORY], y=frame[C.REWARD], marker_color=colors,
                           text=[f"{v:+.3f}" for v in frame[C.REWARD]], textposition="outside",
                           cliponaxis=False, name=C.REWARD))
    fig.add_hline(y=0, line_color=GUIDE_COLOR, line_width=1)
    fig.update_layout(title="Reward per category (mean positive − mean negative)",
                      yaxis_title="reward", showlegend=False, **_LAYOUT)
    return fig


def category_means_figure(frame: pd.DataFrame) -> go.Figure:
    """Mean positive and mean negative follow-up score per category, side by side."""
    if frame.empty:
        return empty_figure("No categories scored")
    fig = go.Figure([
        go.Bar(x=frame[C.CATEGORY], y=frame[C.MEAN_POSITIVE], name=C.MEAN_POSITIVE,
               marker_color=POSITIVE_COLOR),
        go.Bar(x=frame[C.CATEGORY], y=frame[C.MEAN_NEGATIVE], name=C.MEAN_NEGATIVE,
               marker_color=NEGATIVE_COLOR),
    ])
    fig.update_layout(title="Mean follow-up log-likelihood per category", barmode="group",
                      yaxis_title="log-likelihood", legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return fig


def comparison_figure(frame: pd.DataFrame, a: str = "reply A", b: str = "reply B") -> go.Figure:
    """Reward per category for two replies to the same conversation."""
    if frame.empty:
        return empty_figure("Nothing compared yet")
    fig = go.Figure([
        go.Bar(x=frame[C.CATEGORY], y=frame[a], name=a, marker_color=A_COLOR),
        go.Bar(x=frame[C.CATEGORY], y=frame[b], name=b, marker_color=B_COLOR),
    ])
    fig.add_hline(y=0, line_color=GUIDE_COLOR, line_width=1)
    fig.update_layout(title="Reward per category, reply A vs reply B", barmode="group",
                      yaxis_title="reward", legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return fig


def accuracy_figure(frame: pd.DataFrame, *, x: str, value: str = "accuracy", low: str = "ci_low",
                    high: str = "ci_high", color: str | None = None, title: str = "Pairwise accuracy",
                    chance: float | None = 0.5) -> go.Figure:
    """Bars of accuracy with 95% CI error bars; one bar group per `color` value if given."""
    frame = frame.dropna(subset=[value])
    if frame.empty:
        return empty_figure("No pairwise benchmarks in these results")
    groups = [(None, frame)] if color is None else list(frame.groupby(color, sort=False))
    fig = go.Figure()
    for name, part in groups:
        error = None
        if low in part and high in part:
            error = dict(type="data", symmetric=False, array=(part[high] - part[value]).tolist(),
                         arrayminus=(part[value] - part[low]).tolist(), color=GUIDE_COLOR)
        fig.add_trace(go.Bar(x=part[x], y=part[value], error_y=error,
                             name=str(name) if name is not None else value,
                             text=[f"{v:.3f}" for v in part[value]], textposition="inside"))
    if chance is not None:
        fig.add_hline(y=chance, line_dash="dot", line_color=GUIDE_COLOR,
                      annotation_text="chance", annotation_position="top left")
    fig.update_layout(title=title, barmode="group", yaxis_title=value, yaxis_range=[0, 1.05],
                      showlegend=color is not None, legend=dict(orientation="h", y=-0.25), **_LAYOUT)
    return fig


def rating_scatter(frame: pd.DataFrame, *, x: str, y: str, correlations: Mapping[str, float] | None = None,
                   title: str = "FLR against the ground-truth rating", hover: str | None = None,
                   x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """One point per rated response, a least-squares trend line, the correlations written on it."""
    frame = frame.dropna(subset=[x, y])
    if frame.empty:
        return empty_figure("No rating benchmarks in these results")
    fig = go.Figure(go.Scatter(
        x=frame[x], y=frame[y], mode="markers", name="responses",
        marker=dict(color=NEUTRAL_COLOR, opacity=0.6, size=7),
        text=frame[hover] if hover and hover in frame else None,
    ))
    xs = frame[x].to_numpy(dtype=float)
    if len(np.unique(xs)) >= 2:
        slope, intercept = np.polyfit(xs, frame[y].to_numpy(dtype=float), 1)
        line_x = np.array([xs.min(), xs.max()])
        fig.add_trace(go.Scatter(x=line_x, y=slope * line_x + intercept, mode="lines",
                                 name="trend", line=dict(color=NEGATIVE_COLOR, width=2)))
    _annotate_correlations(fig, correlations)
    fig.update_layout(title=title, xaxis_title=x_title or x, yaxis_title=y_title or y, showlegend=False,
                      **_LAYOUT)
    return fig


def correlation_heatmap(frame: pd.DataFrame, *, row: str, column: str, value: str,
                        title: str = "Correlation per category and benchmark",
                        scale: tuple[float, float, float] = (-1.0, 0.0, 1.0)) -> go.Figure:
    """A `row` x `column` grid of `value` (e.g. Spearman per category per benchmark); `scale` is
    (low, neutral, high) of the colour scale: (-1, 0, 1) for correlations, (0, 0.5, 1) for accuracy."""
    frame = frame.dropna(subset=[value])
    if frame.empty:
        return empty_figure("No correlations in these results")
    grid = frame.pivot_table(index=row, columns=column, values=value, aggfunc="first", sort=False)
    z = grid.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in grid.columns], y=[str(r) for r in grid.index],
        colorscale="RdBu", zmin=scale[0], zmid=scale[1], zmax=scale[2], colorbar=dict(title=value),
        text=[[("" if _isnan(v) else f"{v:.2f}") for v in row_values] for row_values in z],
        texttemplate="%{text}",
    ))
    fig.update_layout(title=title, **{**_LAYOUT, "height": max(300, 60 + 40 * len(grid.index))})
    return fig


def ranking_scatter(frame: pd.DataFrame, *, x: str, y: str, label: str,
                    correlations: Mapping[str, float] | None = None,
                    title: str = "Model ranking: FLR against Arena ELO",
                    x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """One labelled point per model: mean FLR against its reference ELO."""
    frame = frame.dropna(subset=[x, y])
    if frame.empty:
        return empty_figure("No ranking benchmarks in these results")
    fig = go.Figure(go.Scatter(x=frame[x], y=frame[y], mode="markers+text", text=frame[label],
                               textposition="top center", textfont=dict(size=10),
                               marker=dict(color=NEUTRAL_COLOR, size=9)))
    _annotate_correlations(fig, correlations)
    fig.update_layout(title=title, xaxis_title=x_title or x, yaxis_title=y_title or y, showlegend=False,
                      **{**_LAYOUT, "height": 480})
    return fig


def _annotate_correlations(fig: go.Figure, correlations: Mapping[str, float] | None) -> None:
    """Write "name = value" lines in the top-left corner of the plot."""
    if not correlations:
        return
    text = "<br>".join(f"{name} = {value:.3f}" for name, value in correlations.items()
                       if value is not None and not _isnan(value))
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.02, y=0.98, showarrow=False,
                       align="left", bgcolor="rgba(128, 128, 128, 0.12)", bordercolor=GUIDE_COLOR)


def _isnan(value: float) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def followup_correlation_heatmap(matrix: pd.DataFrame, title: str = "Follow-up signals: correlation "
                                 "with each other (on pair differences or replies)") -> go.Figure:
    """A square follow-up x follow-up grid of correlations (`core.tuning.diagnostics`)."""
    if matrix.empty:
        return empty_figure("No follow-ups to compare")
    labels = [str(c) for c in matrix.columns]
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(dtype=float), x=labels, y=labels, colorscale="RdBu",
                               zmin=-1.0, zmid=0.0, zmax=1.0, colorbar=dict(title="r")))
    size = max(420, 120 + 9 * len(labels))
    fig.update_layout(title=title, **{**_LAYOUT, "height": size})
    fig.update_yaxes(autorange="reversed")
    return fig
