"""Reward shaping: off by default, then weights, running normalisation and clipping."""

from __future__ import annotations

import statistics

import pytest

from core.engine.results import CategoryScore, ConversationScore
from core.errors import ConfigError
from core.serving.shaping import RewardShaper, ShapingConfig, parse_weights


def score(a: float, b: float) -> ConversationScore:
    """Two categories with rewards a and b (positive mean minus negative mean)."""
    return ConversationScore((CategoryScore("x", (a,), (0.0,), ("p",), ("n",)),
                              CategoryScore("y", (b,), (0.0,), ("p",), ("n",))))


def test_off_by_default_the_reward_is_the_flr():
    scores = [score(1.0, 3.0), score(-2.0, 0.0)]
    assert RewardShaper()(scores) == [s.flr for s in scores] == [2.0, -1.0]
    assert not ShapingConfig().active


def test_weights_clip_and_running_normalisation():
    assert RewardShaper(ShapingConfig(weights={"x": 3.0}))([score(1.0, 5.0)]) == [pytest.approx(2.0)]
    assert RewardShaper(ShapingConfig(clip=0.5))([score(1.0, 3.0), score(-1.0, -1.0)]) == [0.5, -0.5]
    shaper = RewardShaper(ShapingConfig(normalize=True))
    first = [1.0, 2.0, 3.0]
    out = shaper([score(v, v) for v in first])
    assert out == pytest.approx([(v - 2.0) / statistics.stdev(first) for v in first])
    later = shaper([score(10.0, 10.0)])  # the statistics now hold all four rewards
    seen = first + [10.0]
    assert later == pytest.approx([(10.0 - statistics.mean(seen)) / statistics.stdev(seen)])


def test_bad_settings_are_named():
    assert parse_weights("relevance=2, correctness=0.5") == {"relevance": 2.0, "correctness": 0.5}
    with pytest.raises(ConfigError, match="'relevance' is not CATEGORY=NUMBER"):
        parse_weights("relevance")
    with pytest.raises(ConfigError, match="finite number >= 0"):
        ShapingConfig(weights={"x": -1.0})
    with pytest.raises(ConfigError, match="weight 0"):
        RewardShaper(ShapingConfig(weights={"x": 0.0, "y": 0.0}))([score(1.0, 1.0)])
