"""`flr followups report`: per-follow-up figures, wrong-way and duplicate flags, a pruned set
whose effect is cross-validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main as cli_main
from core.engine.followups import followups_from_mapping, load_followups
from core.tuning.diagnostics import diagnose, pruned_linear, pruned_set
from core.tuning.features import examples_from_results, plain_signs
from tests.tuning.synthetic import BAD, GOOD, SET, WRONG_WAY, SignalScorer, write_pairs
from tests.tuning.test_tune import evaluate

# "Nice." twice: identical scores, so one duplicates the other
DUP = followups_from_mapping({**SET.to_dict(), "extra": {"positive": ["Nice."], "negative": ["Try again."]}})


@pytest.fixture(scope="module")
def diag(tmp_path_factory: pytest.TempPathFactory):
    path = write_pairs(tmp_path_factory.mktemp("diag") / "pairs.jsonl", prompts=60, per_prompt=4, seed=2)
    examples = examples_from_results(evaluate(path, DUP).benchmarks, DUP, "pairwise")
    return examples, diagnose(examples, DUP, folds=5, bootstrap=200)


def test_each_followup_alone_matches_a_direct_count(diag) -> None:
    examples, d = diag
    good = d.table[d.table["follow-up"] == GOOD].iloc[0]
    k = int(good["#"])
    assert good["alone"] == pytest.approx(float(np.mean(examples.features[:, k] > 0)))
    assert good["alone"] > 0.7 and good["auc"] > 0.6 and good["ci low"] < good["alone"] < good["ci high"]
    bad = d.table[d.table["follow-up"] == BAD].iloc[0]
    assert bad["alone"] > 0.7  # a complaint counts against the reply: its signal is minus its score


def test_wrong_way_and_duplicates_are_flagged(diag) -> None:
    _, d = diag
    flags = dict(zip(d.table["follow-up"], d.table["flags"]))
    assert "wrong way" in flags[WRONG_WAY]
    dups = d.table[d.table["flags"].str.contains("duplicate")]
    assert set(dups["follow-up"]) <= {"Nice.", "Try again."} and len(dups) >= 1
    assert (d.table[d.table["follow-up"] == "Nice."]["max |r| with another"] > 0.999).all()
    assert d.correlations.shape == (len(d.table), len(d.table))


def test_pruned_set_drops_them_and_its_cross_validated_effect_is_reported(diag) -> None:
    _, d = diag
    assert d.pruned is not None
    assert WRONG_WAY not in d.pruned.utterances()
    assert d.cv["pruned"]["value"] > d.cv["plain"]["value"]
    assert len(d.cv["pruned"]["per_fold"]) == 5


def test_pruned_linear_is_the_pruned_sets_plain_flr() -> None:
    keep = np.ones(len(DUP.utterances()), dtype=bool)
    keep[[0, 5, 16]] = False  # 16: the extra category's only praise -> the category goes
    pruned = pruned_set(DUP, keep)
    assert pruned.names == ("helpful", "correct")
    w = pruned_linear(DUP, keep)
    assert w[16] == w[17] == 0.0
    kept_weights = w[keep & (w != 0)]
    assert np.allclose(kept_weights, plain_signs(pruned))


def test_cli_report_writes_the_pruned_set_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import core.engine.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "load_scorer", lambda config: SignalScorer())
    data = write_pairs(tmp_path / "pairs.jsonl", prompts=20, per_prompt=2, seed=4)
    base = tmp_path / "set.json"
    base.write_text(json.dumps(SET.to_dict()), encoding="utf-8")
    assert cli_main(["followups", "report", str(data), "--followups", str(base), "--folds", "3",
                     "--output", str(tmp_path / "pruned.json"), "--table", str(tmp_path / "t.csv"),
                     "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "suggested pruned set" in out and WRONG_WAY in out
    assert WRONG_WAY not in load_followups(tmp_path / "pruned.json").utterances()
    assert (tmp_path / "t.csv").read_text(encoding="utf-8").startswith("#,category,polarity")
