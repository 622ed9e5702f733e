"""`flr tune`: on synthetic pairs where only a few follow-ups carry signal, it names them, and
the weighted set it writes beats plain FLR on separate unseen pairs; folds are grouped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main as cli_main
from core.engine.followups import load_followups
from core.evaluation.detect import detect_benchmarks
from core.evaluation.runner import EvaluationOptions, run_evaluation
from core.tuning.features import examples_from_results
from core.tuning.folds import connected_groups, grouped_folds
from core.tuning.report import weights_frame
from core.tuning.tune import PLAIN, TUNED, TuneOptions, tune
from tests.tuning.synthetic import BAD, GOOD, SET, WRONG_WAY, SignalScorer, write_pairs


def evaluate(path: Path, followups=SET, cache: Path | None = None):
    return run_evaluation(detect_benchmarks([path]), scorer_factory=SignalScorer,
                          config=SignalScorer.config, followups=followups, cache_path=cache,
                          options=EvaluationOptions(bootstrap_samples=100))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("tune")
    report = evaluate(write_pairs(folder / "train.jsonl", prompts=60, per_prompt=4, seed=1))
    examples = examples_from_results(report.benchmarks, SET, "pairwise")
    return examples, tune(examples, SET, TuneOptions(folds=5, bootstrap=200))


def test_tune_names_the_followups_that_carry_signal(tuned) -> None:
    examples, result = tuned
    table = weights_frame(result, examples)
    assert set(table["follow-up"].head(3)) == {GOOD, BAD, WRONG_WAY}
    weights = dict(zip(table["follow-up"], table["weight"]))
    assert weights[GOOD] > 0 and weights[BAD] > 0  # both point the way their side says
    assert weights[WRONG_WAY] < 0  # a complaint that grows likelier with better replies
    assert table["direction"][table["follow-up"] == WRONG_WAY].item() == "wrong way"
    assert abs(np.abs(result.weights).sum() - 2.0) < 1e-9


def test_cross_validated_tuned_beats_plain_on_the_same_folds(tuned) -> None:
    examples, result = tuned
    assert result.n == 240 and result.n_groups == 60  # four pairs per prompt: one group each
    tuned_fig, plain_fig = result.figures[TUNED], result.figures[PLAIN]
    assert tuned_fig.value > plain_fig.value + 0.15
    assert tuned_fig.ci[0] <= tuned_fig.value <= tuned_fig.ci[1]
    assert len(tuned_fig.per_fold) == 5
    # plain FLR needs no fitting: its pooled figure is its accuracy on every pair
    assert plain_fig.value == pytest.approx(float(np.mean(examples.plain > 0)))


def test_the_written_set_beats_plain_flr_on_unseen_pairs(tuned, tmp_path: Path) -> None:
    _, result = tuned
    unseen = write_pairs(tmp_path / "unseen.jsonl", prompts=50, per_prompt=2, seed=99)
    plain = evaluate(unseen).benchmarks[0].metrics["accuracy"]
    weighted = evaluate(unseen, result.tuned_set).benchmarks[0].metrics["accuracy"]
    assert weighted > plain + 0.15


def test_cli_writes_a_loadable_set_with_provenance_and_reuses_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import core.engine.scorer as scorer_module

    data = write_pairs(tmp_path / "train.jsonl", prompts=30, per_prompt=2, seed=5)
    base = tmp_path / "set.json"
    base.write_text(json.dumps(SET.to_dict()), encoding="utf-8")
    made = []
    monkeypatch.setattr(scorer_module, "load_scorer", lambda config: made.append(1) or SignalScorer())
    args = ["tune", str(data), "--output", str(tmp_path / "tuned.json"), "--followups", str(base),
            "--folds", "3", "--cache", str(tmp_path / "cache.sqlite")]
    assert cli_main(["evaluate", str(data), "--followups", str(base), "--report",
                     str(tmp_path / "R.json"), "--cache", str(tmp_path / "cache.sqlite")]) == 0
    assert made == [1]
    monkeypatch.setattr(scorer_module, "load_scorer", lambda config: pytest.fail("model loaded"))
    assert cli_main(args) == 0  # everything scored by the evaluation: no model
    out = capsys.readouterr().out
    assert "tuned" in out and "plain" in out and "length" in out and GOOD in out
    saved = json.loads((tmp_path / "tuned.json").read_text(encoding="utf-8"))
    cv = saved["provenance"]["cv"]
    assert cv["tuned"]["accuracy"] > cv["plain"]["accuracy"]
    assert saved["provenance"]["folds"]["k"] == 3 and saved["provenance"]["data"] == [str(data)]
    loaded = load_followups(tmp_path / "tuned.json")
    assert loaded.weighted and loaded.unweighted().fingerprint() == SET.fingerprint()


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_pairs(tmp_path / "few.jsonl", prompts=2, per_prompt=3, seed=5)
    assert cli_main(["tune", str(data), "--output", str(tmp_path / "t.json"), "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_groups_join_rows_through_shared_prompts_and_replies() -> None:
    keys = [("p1", "r1"), ("p2", "r2"), ("p3", "r1"), ("p3", "r4"), ("p5", "r5"), ("p1", "r6")]
    groups = connected_groups(keys)
    # rows 0, 2, 3, 5 are linked (r1 joins 0 and 2, p3 joins 2 and 3, p1 joins 0 and 5)
    assert groups[0] == groups[2] == groups[3] == groups[5]
    assert len({groups[0], groups[1], groups[4]}) == 3


def test_grouped_folds_never_split_a_group_and_balance_rows() -> None:
    groups = np.repeat(np.arange(40), np.arange(40) % 5 + 1)
    folds = grouped_folds(groups, 5, seed=3)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 5
    with pytest.raises(Exception, match="only 3 independent group"):
        grouped_folds(np.array([0, 0, 1, 2]), 5)


def test_pairs_sharing_a_prompt_share_a_fold(tuned) -> None:
    examples, _ = tuned
    groups = connected_groups(examples.keys)
    folds = grouped_folds(groups, 5)
    prompts = [k[0] for k in examples.keys]
    for p in set(prompts):
        assert len({f for f, q in zip(folds, prompts) if q == p}) == 1
