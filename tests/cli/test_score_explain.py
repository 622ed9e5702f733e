"""`flr score --explain` and `flr score` with a weighted set, on the tiny model."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main

SET = {"a": {"positive": ["Thanks!", "Great."], "negative": ["No."]},
       "b": {"positive": ["Nice."], "negative": ["Wrong.", "Huh?"]}}


def test_explain_lists_tokens_and_the_biggest_effects_first(tiny_model_dir, tmp_path):
    convs = tmp_path / "convs.jsonl"
    convs.write_text('["Hi", "Hello!"]\n')
    (tmp_path / "set.json").write_text(json.dumps(SET))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--input", str(convs), "--output", str(out), "--model", str(tiny_model_dir),
                 "--followups", str(tmp_path / "set.json"), "--device", "cpu", "--explain"]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    explanation = row["explanation"]
    assert len(explanation) == 6
    assert sum(e["effect"] for e in explanation) == pytest.approx(row["flr"], abs=1e-5)
    assert [abs(e["effect"]) for e in explanation] == sorted((abs(e["effect"]) for e in explanation), reverse=True)
    for e in explanation:
        values = [v for _, v in e["tokens"]]
        assert all(v <= 0 for v in values)  # log-probabilities
        assert e["score"] == pytest.approx(sum(values) / len(values), abs=1e-5)


def test_a_weighted_set_scores_as_its_weighted_sum(tiny_model_dir, tmp_path):
    convs = tmp_path / "convs.jsonl"
    convs.write_text('["Hi", "Hello!"]\n')
    weighted = {"a": {"positive": [{"text": "Thanks!", "weight": 1.5}, "Great."], "negative": ["No."]},
                "b": {"positive": ["Nice."], "negative": ["Wrong.", {"text": "Huh?", "weight": -0.5}]}}
    (tmp_path / "w.json").write_text(json.dumps(weighted))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--input", str(convs), "--output", str(out), "--model", str(tiny_model_dir),
                 "--followups", str(tmp_path / "w.json"), "--device", "cpu"]) == 0
    row = json.loads(out.read_text())
    a, b = row["categories"]["a"], row["categories"]["b"]
    expected_a = 1.5 * a["positive"][0] + 0.25 * a["positive"][1] - 0.5 * a["negative"][0]
    expected_b = 0.5 * b["positive"][0] - 0.25 * b["negative"][0] - (-0.5) * b["negative"][1]
    assert a["flr"] == pytest.approx(expected_a) and b["flr"] == pytest.approx(expected_b)
    assert row["flr"] == pytest.approx(expected_a + expected_b)
