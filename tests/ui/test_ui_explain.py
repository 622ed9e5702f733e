"""Score tab explanations on the tiny model: coloured tokens, the table, the changed follow-ups."""

from __future__ import annotations

import json

import pytest

from tests.engine.test_scorer import make_scorer
from ui.tabs import score_explain as ui_explain
from ui.tabs import score as tab_score
from ui.settings import AppSettings
from ui.state import AppState

SET = json.dumps({"a": {"positive": ["Thanks!", "Great <b>answer</b>."], "negative": ["No."]},
                  "b": {"positive": ["Nice."], "negative": ["Wrong.", "Huh?"]}})


@pytest.fixture
def state(tmp_path, tiny_model_dir):
    return AppState(AppSettings(work_dir=tmp_path), lambda config: make_scorer(tiny_model_dir))


def test_explain_draws_escaped_coloured_tokens_and_a_table(state):
    html, table = ui_explain.explain_conversation(state, "User: Hi\nAssistant: Hello!", SET, ["a", "b"],
                                                  "embedded", "base", "mean")
    assert html.count("<div") == 6 and "&lt;" in html and "<b>" not in html
    assert len(table) == 6 and list(table.columns)[:3] == ["category", "polarity", "follow-up"]
    effects = table["effect"].abs().tolist()
    assert effects == sorted(effects, reverse=True)


def test_changed_followups_between_two_replies(state):
    table = ui_explain.explain_comparison(state, "User: What is 2 + 2?", "4.", "I like trains.", SET,
                                          ["a", "b"], "embedded", "base", "mean")
    assert len(table) == 6
    changes = table["change"].abs().tolist()
    assert changes == sorted(changes, reverse=True)


def test_weighted_set_summary_says_weighted_sum(state):
    weighted = json.dumps({"a": {"positive": [{"text": "Thanks!", "weight": 2.0}], "negative": ["No."]}})
    summary, *_ , record = tab_score.score_conversation(state, "User: Hi\nAssistant: Hello!", weighted,
                                                        ["a"], "embedded", "base", "mean")
    assert "Weighted sum" in summary
    a = record["categories"]["a"]
    assert record["flr"] == pytest.approx(2.0 * a["positive"][0] - 1.0 * a["negative"][0])
