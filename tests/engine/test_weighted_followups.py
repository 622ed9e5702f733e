"""Weighted follow-up sets: parsing, fingerprints, the weighted FLR, and that plain sets score
exactly as before weights existed."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

import pytest

from core.engine.config import ScoringConfig
from core.engine.followups import default_followups, followups_from_mapping, parse_followups
from core.errors import FollowupSetError
from core.evaluation.detect import detect_benchmarks
from core.evaluation.runner import EvaluationOptions, run_evaluation
from tests.fakes import FakeScorer

PLAIN = {"a": {"positive": ["p1", "p2"], "negative": ["n1"]},
         "b": {"positive": ["q1"], "negative": ["m1", "m2"]}}


def weighted(**weights: float) -> dict:
    """PLAIN with {"text", "weight"} for the named utterances."""
    return {cat: {side: [{"text": t, "weight": weights[t]} if t in weights else t for t in texts]
                  for side, texts in lists.items()} for cat, lists in PLAIN.items()}


def test_the_default_sets_fingerprint_is_unchanged_so_caches_stay_valid() -> None:
    assert default_followups().fingerprint() == "c7ef600ab40bb8e2"
    assert not default_followups().weighted


def test_weights_change_the_fingerprint_and_round_trip() -> None:
    plain = followups_from_mapping(PLAIN)
    w = followups_from_mapping(weighted(p1=0.7))
    assert w.weighted and w.fingerprint() != plain.fingerprint()
    assert w.unweighted().fingerprint() == plain.fingerprint()
    again = parse_followups(json.dumps(w.to_dict()))
    assert again.fingerprint() == w.fingerprint()
    # a plain string in a weighted set keeps its plain weight: 1 / (side size x categories)
    assert w.weights() == [0.7, 0.25, 0.5, 0.5, 0.25, 0.25]
    assert plain.weights() == [0.25, 0.25, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize("item, message", [
    ({"text": "x", "weight": "high"}, "must be a finite number"),
    ({"text": "x", "weight": float("nan")}, "must be a finite number"),
    ({"text": "", "weight": 1}, '"text" must be a non-empty string'),
    ({"text": "x", "weigth": 1}, "unknown field"),
    (3, "must be a non-empty string or"),
])
def test_bad_weighted_utterances_are_named(item, message) -> None:
    data = {"a": {"positive": [item], "negative": ["n"]}}
    with pytest.raises(FollowupSetError, match=message) as err:
        followups_from_mapping(data, "set.json")
    assert "set.json: category 'a', positive[0]" in str(err.value)


def test_a_provenance_block_is_not_a_category() -> None:
    s = followups_from_mapping({**weighted(p1=1.0), "provenance": {"tool": "flr tune"}})
    assert s.names == ("a", "b")
    with pytest.raises(FollowupSetError, match="reserved"):
        followups_from_mapping({**PLAIN, "provenance": ["x"]})


def test_weighted_flr_is_the_weighted_sum_and_plain_is_the_mean_of_means() -> None:
    from tests.fakes import followup_offset, text_hash_value
    from core.engine.conversation import parse_conversation

    conv = parse_conversation(["Hi?", "Hello there."])
    plain = FakeScorer().score(conv, followups_from_mapping(PLAIN))
    q = text_hash_value("Hello there.")
    pos = {t: q + followup_offset(t) for t in ("p1", "p2", "q1")}
    neg = {t: -q + followup_offset(t) for t in ("n1", "m1", "m2")}
    expected_plain = fmean([fmean([pos["p1"], pos["p2"]]) - neg["n1"],
                            pos["q1"] - fmean([neg["m1"], neg["m2"]])])
    assert plain.flr == expected_plain  # exactly the arithmetic plain sets always had
    w = FakeScorer().score(conv, followups_from_mapping(weighted(p1=2.0, n1=-1.0, m2=0.0)))
    expected = (2.0 * pos["p1"] + 0.25 * pos["p2"] - (-1.0) * neg["n1"]) + (0.5 * pos["q1"] - 0.25 * neg["m1"])
    assert w.flr == pytest.approx(expected, abs=1e-12)
    assert w.category("a").flr == pytest.approx(2.0 * pos["p1"] + 0.25 * pos["p2"] + neg["n1"], abs=1e-12)
    # every weight written out equal to the plain ones: the plain FLR again
    same = followups_from_mapping(weighted(p1=0.25))
    assert FakeScorer().score(conv, same).flr == pytest.approx(plain.flr, abs=1e-12)


def _pairs(path: Path) -> Path:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}" * (1 + i % 3), "rejected": f"bad {i}"} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(paths, followups, cache=None, factory=None):
    return run_evaluation(detect_benchmarks(paths), scorer_factory=factory or FakeScorer,
                          config=ScoringConfig(model="fake"), followups=followups, cache_path=cache,
                          options=EvaluationOptions(bootstrap_samples=100))


def test_a_weighted_set_reads_the_plain_sets_cached_scores(tmp_path: Path) -> None:
    data = _pairs(tmp_path / "pairs.jsonl")
    cache = tmp_path / "scores.sqlite"
    plain_report = _run([data], followups_from_mapping(PLAIN), cache)
    made = []
    w = followups_from_mapping(weighted(p1=1.0, n1=0.0, q1=0.0, m1=0.0, m2=0.0, p2=0.0))
    report = _run([data], w, cache, factory=lambda: made.append(1) or FakeScorer())
    assert made == []  # scores of the follow-ups do not depend on their weights
    rows = report.benchmarks[0].rows
    plain_rows = plain_report.benchmarks[0].rows
    from tests.fakes import followup_offset, text_hash_value

    for conv, flr in zip(rows["conversation"], rows["flr"]):
        assert flr == pytest.approx(text_hash_value(conv.reply) + followup_offset("p1"), abs=1e-12)
    assert list(plain_rows["flr"]) != list(rows["flr"])
    assert report.settings["followups"] == w.fingerprint() != plain_report.settings["followups"]


def test_precomputed_lists_take_a_matching_weighted_set_and_ignore_a_mismatched_one(tmp_path: Path) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    for side, sign in (("accept", 1), ("reject", -1)):
        lines = [{"conversation": [f"q{i}", f"{side} {i}"], "positive": [sign * i, -sign * 5.0],
                  "negative": [0.0]} for i in range(1, 5)]
        (folder / f"x_{side}_a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    plain = _run([folder], followups_from_mapping(PLAIN)).benchmarks[0]
    # plain: accept mean(i, -5) = (i - 5) / 2 < 0 < (5 - i) / 2 = reject mean(-i, 5)
    assert plain.metrics["accuracy"] == 0.0
    flip = followups_from_mapping({"a": {"positive": [{"text": "p1", "weight": 1.0},
                                                      {"text": "p2", "weight": 0.0}], "negative": ["n1"]}})
    good = _run([folder], flip).benchmarks[0]
    assert good.metrics["accuracy"] == 1.0 and not good.warnings
    wrong = followups_from_mapping({"a": {"positive": [{"text": "p1", "weight": 1.0}], "negative": ["n1"]}})
    bad = _run([folder], wrong).benchmarks[0]
    assert bad.metrics["accuracy"] == plain.metrics["accuracy"]
    assert any("plain FLR is reported" in w for w in bad.warnings)
