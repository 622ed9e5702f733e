"""ui.plots: each function draws exactly the frame it is given, and says so when it is empty."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core import names as C
from ui import plots


def category_frame() -> pd.DataFrame:
    return pd.DataFrame({C.CATEGORY: ["relevance", "correctness"], C.MEAN_POSITIVE: [-1.0, -2.0],
                         C.MEAN_NEGATIVE: [-1.5, -1.0], C.REWARD: [0.5, -1.0]})


def test_category_reward_colours_by_sign():
    fig = plots.category_reward_figure(category_frame())
    bar = fig.data[0]
    assert list(bar.x) == ["relevance", "correctness"] and list(bar.y) == [0.5, -1.0]
    assert list(bar.marker.color) == [plots.POSITIVE_COLOR, plots.NEGATIVE_COLOR]
    assert list(bar.text) == ["+0.500", "-1.000"]


def test_category_means_two_bars_per_category():
    fig = plots.category_means_figure(category_frame())
    assert [t.name for t in fig.data] == [C.MEAN_POSITIVE, C.MEAN_NEGATIVE]
    assert list(fig.data[1].y) == [-1.5, -1.0]


def test_accuracy_error_bars_are_distances_to_the_interval():
    frame = pd.DataFrame({"benchmark": ["a", "b"], "value": [0.75, 0.5],
                          "ci_low": [0.5, 0.25], "ci_high": [1.0, 0.625]})
    fig = plots.accuracy_figure(frame, x="benchmark", value="value")
    err = fig.data[0].error_y
    assert list(err.array) == pytest.approx([0.25, 0.125])
    assert list(err.arrayminus) == pytest.approx([0.25, 0.25])


def test_accuracy_one_trace_per_colour_group_and_nan_rows_dropped():
    frame = pd.DataFrame({"benchmark": ["a", "a", "b"], "signal": ["flr", "length", "flr"],
                          "value": [0.75, 0.5, math.nan], "ci_low": [0.5, 0.4, math.nan],
                          "ci_high": [1.0, 0.6, math.nan]})
    fig = plots.accuracy_figure(frame, x="benchmark", value="value", color="signal")
    assert [t.name for t in fig.data] == ["flr", "length"]
    assert list(fig.data[0].x) == ["a"]


def test_rating_scatter_trend_line_through_exact_points():
    frame = pd.DataFrame({"truth": [1.0, 2.0, 3.0, 4.0], "flr": [0.5, 1.0, 1.5, 2.0]})
    fig = plots.rating_scatter(frame, x="truth", y="flr", correlations={"pearson": 1.0, "spearman": 1.0})
    points, line = fig.data
    assert list(line.x) == [1.0, 4.0] and list(line.y) == pytest.approx([0.5, 2.0])  # y = x / 2
    assert fig.layout.annotations[0].text == "pearson = 1.000<br>spearman = 1.000"


def test_heatmap_grid_and_labels():
    frame = pd.DataFrame({"category": ["overall", "overall", "relevance"], "benchmark": ["a", "b", "a"],
                          "value": [0.5, -0.25, 0.125]})
    fig = plots.correlation_heatmap(frame, row="category", column="benchmark", value="value")
    heat = fig.data[0]
    assert list(heat.x) == ["a", "b"] and list(heat.y) == ["overall", "relevance"]
    assert heat.z[0] == pytest.approx((0.5, -0.25)) and math.isnan(heat.z[1][1])
    assert heat.text[1] == ("0.12", "") or list(heat.text[1]) == ["0.12", ""]


def test_ranking_scatter_labels_every_model():
    frame = pd.DataFrame({"model": ["x", "y", "z"], "elo": [1200, 1100, None], "flr": [0.3, 0.1, 0.2]})
    fig = plots.ranking_scatter(frame, x="elo", y="flr", label="model",
                                correlations={"spearman": 1.0, "kendall": None})
    assert list(fig.data[0].text) == ["x", "y"]  # z has no ELO: not drawn
    assert fig.layout.annotations[0].text == "spearman = 1.000"


def test_comparison_bars():
    frame = pd.DataFrame({C.CATEGORY: ["relevance"], "reply A": [0.5], "reply B": [0.25]})
    fig = plots.comparison_figure(frame)
    assert [t.name for t in fig.data] == ["reply A", "reply B"]


@pytest.mark.parametrize("draw", [
    lambda f: plots.category_reward_figure(f),
    lambda f: plots.accuracy_figure(f.assign(value=[]), x="x", value="value"),
    lambda f: plots.rating_scatter(f.assign(a=[], b=[]), x="a", y="b"),
    lambda f: plots.ranking_scatter(f.assign(a=[], b=[], m=[]), x="a", y="b", label="m"),
])
def test_empty_frames_give_a_message_not_an_error(draw):
    fig = draw(pd.DataFrame())
    assert len(fig.data) == 0 and fig.layout.annotations[0].text.startswith("No ")
