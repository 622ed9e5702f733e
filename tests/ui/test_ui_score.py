"""Score tab handlers with a fake scorer: results, comparison, follow-up editing, and errors."""

from __future__ import annotations

import json

import gradio as gr
import plotly.graph_objects as go
import pytest

from core import names as C
from core.engine.config import ScoringConfig
from core.engine.followups import default_followups
from core.engine.results import CategoryScore, ConversationScore
from ui.tabs import score as tab_score
from ui.settings import AppSettings
from ui.state import AppState


class FakeScorer:
    """Canned numbers: positive follow-up i scores -1 - i/100 + len(reply)/1000, negative -2 - i/100.

    Unlike `tests.fakes.FakeScorer` (hash-based offsets, used by the batch tests), every reward
    here is known by hand: 1 + len(reply)/1000 in each category, which the page must show."""

    def __init__(self, config: ScoringConfig) -> None:
        self.config = config

    @property
    def identity(self) -> str:
        return f"fake:{self.config.model}"

    def score(self, conversation, followups):
        bonus = len(conversation.reply) / 1000
        cats = tuple(
            CategoryScore(c.name, tuple(-1 - i / 100 + bonus for i in range(len(c.positive))),
                          tuple(-2 - i / 100 for i in range(len(c.negative))), c.positive, c.negative)
            for c in followups)
        return ConversationScore(cats)

    def score_many(self, conversations, followups, progress=None):
        return [self.score(c, followups) for c in conversations]

    def with_config(self, config):
        return None  # made anew by the factory, so the tests can count loads


@pytest.fixture
def state(tmp_path):
    return AppState(AppSettings(work_dir=tmp_path), FakeScorer)


CONVERSATION = "User: What is 2 + 2?\nAssistant: 4."
ALL = list(default_followups().names)


def test_score_conversation_gives_summary_charts_and_table(state):
    summary, reward_fig, means_fig, table, record = tab_score.score_conversation(
        state, CONVERSATION, "", ALL, "embedded", "base", "mean")
    # reward per category = mean(-1 - i/100 + 0.002) - mean(-2 - i/100) = 1.002
    assert record["flr"] == pytest.approx(1.002)
    assert "Overall FLR: +1.0020" in summary
    assert isinstance(reward_fig, go.Figure) and list(reward_fig.data[0].x) == ALL
    assert list(reward_fig.data[0].y) == pytest.approx([1.002] * len(ALL))
    assert [t.name for t in means_fig.data] == [C.MEAN_POSITIVE, C.MEAN_NEGATIVE]
    n_followups = sum(len(c.positive) + len(c.negative) for c in default_followups())
    assert len(table) == n_followups
    assert list(table.columns) == [C.CATEGORY, C.POLARITY, C.FOLLOWUP, C.SCORE]
    assert state.scorers.loads == 1


def test_chosen_categories_only(state):
    _, fig, _, table, record = tab_score.score_conversation(
        state, CONVERSATION, "", ["relevance", "correctness"], "embedded", "base", "mean")
    assert list(fig.data[0].x) == ["relevance", "correctness"]
    assert set(table[C.CATEGORY]) == {"relevance", "correctness"}
    assert set(record["categories"]) == {"relevance", "correctness"}


def test_model_loaded_once_and_reloaded_when_settings_change(state):
    for _ in range(3):
        tab_score.score_conversation(state, CONVERSATION, "", ALL, "embedded", "base", "mean")
    assert state.scorers.loads == 1
    tab_score.score_conversation(state, CONVERSATION, "", ALL, "embedded", "feedback", "mean")
    assert state.scorers.loads == 2
    assert state.scorers.loaded_config.mode == "feedback"


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("User: only a question?", "ending with the user's"),
    ("hello there", "role prefix"),
    ('["unterminated', "not valid"),
])
def test_bad_paste_is_a_readable_error(state, text, message):
    with pytest.raises(gr.Error, match=message):
        tab_score.score_conversation(state, text, "", ALL, "embedded", "base", "mean")
    # the app keeps serving: the next good request works
    assert tab_score.score_conversation(state, CONVERSATION, "", ALL, "embedded", "base", "mean")[4]


def test_no_category_chosen(state):
    with pytest.raises(gr.Error, match="at least one"):
        tab_score.score_conversation(state, CONVERSATION, "", [], "embedded", "base", "mean")


def test_model_that_will_not_load_is_an_error_and_the_app_recovers(tmp_path):
    def factory(config):
        if config.model == "broken/model":
            raise OSError("no such repository")
        return FakeScorer(config)

    state = AppState(AppSettings(work_dir=tmp_path), factory)
    with pytest.raises(gr.Error, match="could not load model 'broken/model'.*no such repository"):
        tab_score.score_conversation(state, CONVERSATION, "", ALL, "broken/model", "base", "mean")
    assert tab_score.score_conversation(state, CONVERSATION, "", ALL, "embedded", "base", "mean")[4]


def test_hosted_mode_refuses_other_models(tmp_path):
    settings = AppSettings.from_env({"FLR_ALLOWED_MODELS": "org/a, org/b", "FLR_WORK_DIR": str(tmp_path)})
    assert settings.hosted and settings.config.model == "org/a"
    state = AppState(settings, FakeScorer)
    with pytest.raises(gr.Error, match="not offered on this server; choose one of org/a, org/b"):
        tab_score.score_conversation(state, CONVERSATION, "", ALL, "evil/model", "base", "mean")
    assert state.scorers.loads == 0
    tab_score.score_conversation(state, CONVERSATION, "", ALL, "org/b", "base", "mean")
    assert state.scorers.loaded_config.model == "org/b"


def test_compare_prefers_the_longer_reply_with_the_fake(state):
    context = "User: How do I reverse a list in Python?"
    long_reply, short_reply = "Use my_list[::-1] or my_list.reverse().", "No."
    verdict, fig, frame = tab_score.compare_replies(
        state, context, short_reply, long_reply, "", ALL, "embedded", "base", "mean")
    diff = (len(short_reply) - len(long_reply)) / 1000
    assert "FLR prefers reply B by" in verdict and f"{abs(diff):.4f}" in verdict
    assert list(frame[tab_score.PREFERRED]) == ["B"] * len(ALL)
    assert frame[tab_score.DIFFERENCE].tolist() == pytest.approx([diff] * len(ALL), abs=1e-4)
    assert [t.name for t in fig.data] == [tab_score.REPLY_A, tab_score.REPLY_B]


def test_compare_accepts_json_contexts(state):
    for context in ('["Hi, can you help?"]', '[{"role": "user", "content": "Hi, can you help?"}]'):
        verdict, _, _ = tab_score.compare_replies(state, context, "Sure!", "Sure!", "", ALL,
                                                  "embedded", "base", "mean")
        assert "same" in verdict


def test_compare_errors(state):
    with pytest.raises(gr.Error, match="reply B is empty"):
        tab_score.compare_replies(state, "User: hi", "hello", " ", "", ALL, "embedded", "base", "mean")
    with pytest.raises(gr.Error, match="conversation is empty"):
        tab_score.compare_replies(state, "", "a", "b", "", ALL, "embedded", "base", "mean")


def test_edited_followup_set_is_used(state):
    custom = json.dumps({"politeness": {"positive": ["Thanks!"], "negative": ["Rude."]}})
    update, message = tab_score.apply_followups(custom)
    assert update["choices"] == ["politeness"] and "1 category, 2 follow-ups" in message
    assert update["value"] == ["politeness"]
    update, _ = tab_score.apply_followups(tab_score.default_followups_json(), ["relevance", "gone"])
    assert update["value"] == ["relevance"]  # the visitor's choice survives an edit
    _, _, _, table, record = tab_score.score_conversation(
        state, CONVERSATION, custom, ["politeness"], "embedded", "base", "mean")
    assert list(table[C.FOLLOWUP]) == ["Thanks!", "Rude."]
    assert record["flr"] == pytest.approx(1.002)


def test_broken_followup_set_errors(state, tmp_path):
    with pytest.raises(gr.Error, match="follow-up set editor: not valid JSON"):
        tab_score.apply_followups("{oops")
    bad = tmp_path / "set.json"
    bad.write_text(json.dumps({"x": {"positive": []}}))
    with pytest.raises(gr.Error, match="set.json: category 'x' needs a non-empty 'positive'"):
        tab_score.upload_followups(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"x": {"positive": ["a"], "negative": ["b"]}}))
    text, update, _ = tab_score.upload_followups(str(good))
    assert json.loads(text) == {"x": {"positive": ["a"], "negative": ["b"]}}
    assert update["value"] == ["x"]
