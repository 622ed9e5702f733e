"""Metrics against hand-computed golden values, and ELO name matching."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from core.evaluation import metrics as M
from core.evaluation.elo import EloTable, default_elo, load_elo, match_models
from core.errors import BenchmarkFormatError


def test_pairwise_accuracy_counts_a_tie_as_half() -> None:
    # outcomes: 3>1 win, 1=1 tie, 2<4 loss, 5>2 win -> (1 + 0.5 + 0 + 1) / 4 = 0.625
    est = M.pairwise_accuracy([3, 1, 2, 5], [1, 1, 4, 2])
    assert est.value == 0.625 and est.n == 4
    assert est.ci_low <= est.value <= est.ci_high
    assert 0.0 <= est.ci_low and est.ci_high <= 1.0


def test_bootstrap_is_seeded_and_reproducible() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=40), rng.normal(size=40)
    assert M.correlation("pearson", a, b) == M.correlation("pearson", a, b)
    assert M.correlation("pearson", a, b, seed=1) != M.correlation("pearson", a, b, seed=2)


def test_accuracy_interval_is_wilson_and_honest_at_small_n() -> None:
    # 5 of 5: a percentile bootstrap gives [1, 1]; Wilson (z = 1.96) gives [0.566, 1].
    est = M.pairwise_accuracy([1] * 5, [0] * 5)
    assert est.value == 1.0 and est.ci_high == 1.0
    assert est.ci_low == pytest.approx(0.5655, abs=1e-3)
    # 8 of 10: Wilson 95% = [0.490, 0.943]
    assert M.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-3)
    assert M.ACCURACY_INTERVAL == "wilson"


def test_paired_difference_is_zero_for_identical_runs_and_signed_otherwise() -> None:
    a = np.array([1.0, 0.0, 1.0, 1.0])
    same = M.paired_difference(a, a)
    assert (same.value, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    up = M.paired_difference(a, np.zeros(4))
    assert up.value == 0.75 and 0.0 <= up.ci_low <= up.ci_high <= 1.0


def test_correlations_of_a_four_row_golden_case() -> None:
    # x = 1 2 3 4, y = 1 3 2 4. Deviations from the mean 2.5: dx = -1.5 -.5 .5 1.5,
    # dy = -1.5 .5 -.5 1.5; sum dx*dy = 2.25 - .25 - .25 + 2.25 = 4; sum dx^2 = sum dy^2 = 5,
    # so Pearson = 4/5 = 0.8; the values are their own ranks, so Spearman = 0.8 too.
    # Kendall: of the 6 pairs only (2,3) is discordant: (5 - 1) / 6 = 2/3.
    found = M.correlations([1, 2, 3, 4], [1, 3, 2, 4])
    assert found["pearson"].value == pytest.approx(0.8, abs=1e-12)
    assert found["spearman"].value == pytest.approx(0.8, abs=1e-12)
    assert found["kendall"].value == pytest.approx(2 / 3, abs=1e-12)
    assert found["kendall"].p_value == pytest.approx(stats.kendalltau([1, 2, 3, 4], [1, 3, 2, 4]).pvalue)


def test_constant_input_gives_nan_not_an_error() -> None:
    est = M.correlation("pearson", [1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(est.value) and math.isnan(est.ci_low)


def test_vectorised_bootstrap_kendall_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(30, 25)).astype(float)
    y = rng.integers(0, 4, size=(30, 25)).astype(float)
    expected = [stats.kendalltau(x[i], y[i]).statistic for i in range(30)]
    assert np.allclose(M._kendall_rows(x, y), expected, atol=1e-12)


def test_ranking_correlation_of_model_means() -> None:
    # per-model means: a = (4+2)/2 = 3, b = 1, c = 2; ELO a < b < c.
    # Spearman: rank differences 2, -1, -1 -> 1 - 6*6 / (3*(9-1)) = -0.5.
    # Kendall: (a,b) and (a,c) discordant, (b,c) concordant -> (1 - 2) / 3 = -1/3.
    values = np.array([[4.0, 2.0], [1.0, 1.0], [2.0, 2.0]])
    found = M.ranking_correlations(values, [1000, 1100, 1200])
    assert found["spearman"].value == pytest.approx(-0.5)
    assert found["kendall"].value == pytest.approx(-1 / 3)
    assert found["spearman"].n == 3


def test_weighted_mean_weights_by_rows() -> None:
    assert M.weighted_mean([0.5, 1.0], [100, 300]) == pytest.approx(0.875)
    assert M.weighted_mean([float("nan"), 1.0], [100, 300]) == 1.0


# ----------------------------------------------------------------------------- ELO

ARENA_TO_ELO = {
    "llama-3-70b-instruct": "Meta-Llama-3-70B-Instruct",
    "gemini-1.5-pro-api-0514": "gemini-1.5-pro",
    "dbrx-instruct-preview": "dbrx-instruct@together",
    "mistral-7b-instruct": "Mistral-7B-Instruct-v0.2",
    "qwen1.5-72b-chat": "Qwen1.5-72B-Chat",
    "llama-2-70b-chat": "Llama-2-70b-chat-hf",
    "gpt-4o-2024-05-13": "gpt-4o-2024-05-13",
}


def test_arena_names_match_the_papers_elo_table() -> None:
    table = default_elo()
    assert len(table) == 30 and table.ratings["gpt-4o-2024-05-13"] == 1283.0
    found = {m.model: m.elo_name for m in match_models([*ARENA_TO_ELO, "gpt-4-0314"], table)}
    assert found == {**ARENA_TO_ELO, "gpt-4-0314": None}  # no ELO for the 0314 snapshot


def test_ambiguous_names_stay_unmatched_and_manual_mapping_wins() -> None:
    table = EloTable("t", {"model-x-v1": 1.0, "model-x-v2": 2.0})
    (m,) = match_models(["model-x"], table)
    assert m.elo_name is None and m.how == "unmatched"
    (m,) = match_models(["model-x"], table, manual={"model-x": "model-x-v2"})
    assert (m.elo_name, m.elo, m.how) == ("model-x-v2", 2.0, "manual")


def test_elo_files_in_json_list_and_csv(tmp_path: Path) -> None:
    (tmp_path / "elo.json").write_text(json.dumps([{"model": "a", "elo": 1000}, {"model": "b", "rating": 900}]))
    (tmp_path / "elo.csv").write_text("Model,Arena Elo\na,1000\nb,900\n")
    assert load_elo(tmp_path / "elo.json").ratings == {"a": 1000.0, "b": 900.0}
    assert load_elo(tmp_path / "elo.csv").ratings == {"a": 1000.0, "b": 900.0}
    (tmp_path / "nested.json").write_text(json.dumps({"a": {"elo": 1000, "ci": 5}, "b": {"rating": 900}}))
    assert load_elo(tmp_path / "nested.json").ratings == {"a": 1000.0, "b": 900.0}
    (tmp_path / "bad.json").write_text('{"a": "high"}')
    with pytest.raises(BenchmarkFormatError, match="ELO of 'a': the rating must be a number; got 'high'"):
        load_elo(tmp_path / "bad.json")
    for bad in ("NaN", "Infinity", "1e400"):
        (tmp_path / "bad.json").write_text('{"a": %s}' % bad)
        with pytest.raises(BenchmarkFormatError, match="ELO of 'a': the rating must be a finite number"):
            load_elo(tmp_path / "bad.json")
