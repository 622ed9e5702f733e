"""Follow-up sets: the bundled default, custom sets of any shape, and malformed sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import FollowupSetError, InputError
from core.engine.followups import (
    DEFAULT_PATH,
    PAPER_CATEGORIES,
    Category,
    FollowupSet,
    default_followups,
    followups_from_mapping,
    load_followups,
    parse_followups,
)

EXPECTED_CATEGORIES = ("understanding", "relevance", "correctness", "engagingness",
                       "informativeness", "following")


def _write(tmp_path: Path, content: str, name: str = "set.json") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


# --- the default set ------------------------------------------------------------------------


def test_default_set_has_the_six_categories_in_order():
    fset = default_followups()
    assert fset.names == EXPECTED_CATEGORIES == PAPER_CATEGORIES
    assert len(fset) == 6


def test_default_set_has_ten_positive_and_ten_negative_each():
    for category in default_followups():
        assert len(category.positive) == 10, category.name
        assert len(category.negative) == 10, category.name


def test_default_set_utterances_are_all_distinct_and_clean():
    utterances = default_followups().utterances()
    assert len(utterances) == 120
    normalised = {u.strip().lower().rstrip(".!?") for u in utterances}
    assert len(normalised) == 120, "two follow-ups differ only in case or punctuation"
    for text in utterances:
        assert text == text.strip() and text, repr(text)
        assert "\n" not in text


def test_default_file_is_plain_json_in_the_documented_shape():
    raw = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert list(raw) == list(EXPECTED_CATEGORIES)
    for lists in raw.values():
        assert set(lists) == {"positive", "negative"}
    assert load_followups(None) == load_followups(DEFAULT_PATH) == default_followups()


def test_default_set_round_trips_and_has_a_stable_fingerprint():
    fset = default_followups()
    assert followups_from_mapping(fset.to_dict()) == fset
    assert fset.fingerprint() == default_followups().fingerprint()
    assert len(fset.fingerprint()) == 16


# --- custom sets ----------------------------------------------------------------------------


def test_custom_set_with_any_categories_and_sizes(tmp_path):
    data = {
        "politeness": {"positive": ["Thanks, that was kind.", "How polite!", "Nice manners."],
                       "negative": ["That was rude."]},
        "brevity": {"positive": ["Short and sweet."], "negative": ["Too long.", "Way too wordy."]},
    }
    fset = load_followups(_write(tmp_path, json.dumps(data)))
    assert fset.names == ("politeness", "brevity")
    assert fset["politeness"] == Category(
        "politeness", ("Thanks, that was kind.", "How polite!", "Nice manners."), ("That was rude.",)
    )
    assert fset.utterances() == [
        "Thanks, that was kind.", "How polite!", "Nice manners.", "That was rude.",
        "Short and sweet.", "Too long.", "Way too wordy.",
    ]
    assert fset.to_dict() == data
    assert fset.fingerprint() != default_followups().fingerprint()


def test_select_keeps_set_order_and_rejects_unknown_names():
    fset = default_followups()
    chosen = fset.select(["following", "relevance"])
    assert chosen.names == ("relevance", "following")
    with pytest.raises(FollowupSetError, match="unknown category fluency"):
        fset.select(["fluency"])
    with pytest.raises(FollowupSetError, match="at least one"):
        fset.select([])


def test_getitem_unknown_category_raises_keyerror():
    with pytest.raises(KeyError):
        default_followups()["fluency"]


def test_fingerprint_changes_with_content_and_order():
    a = followups_from_mapping({"x": {"positive": ["p"], "negative": ["n"]},
                                "y": {"positive": ["p"], "negative": ["n"]}})
    b = followups_from_mapping({"y": {"positive": ["p"], "negative": ["n"]},
                                "x": {"positive": ["p"], "negative": ["n"]}})
    c = followups_from_mapping({"x": {"positive": ["p!"], "negative": ["n"]},
                                "y": {"positive": ["p"], "negative": ["n"]}})
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3


def test_unicode_follow_ups_load(tmp_path):
    data = {"verständnis": {"positive": ["Genau das meinte ich."], "negative": ["Nein, das meinte ich nicht."]}}
    fset = load_followups(_write(tmp_path, json.dumps(data, ensure_ascii=False)))
    assert fset.names == ("verständnis",)


# --- malformed sets -------------------------------------------------------------------------


def test_errors_are_value_errors():
    assert issubclass(FollowupSetError, InputError)
    assert issubclass(FollowupSetError, ValueError)


def test_not_json_names_file_line_and_column(tmp_path):
    path = _write(tmp_path, '{\n  "relevance": {\n    "positive": ["ok"]\n    "negative": ["bad"]\n  }\n}')
    with pytest.raises(FollowupSetError) as err:
        load_followups(path)
    message = str(err.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert "line 4, column 5" in message


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(FollowupSetError) as err:
        load_followups(path)
    assert str(path) in str(err.value)
    assert "cannot read" in str(err.value)


@pytest.mark.parametrize("text, got", [("[]", "got list"), ("{}", "got an empty object"),
                                       ('"hello"', "got str"), ("null", "got NoneType")])
def test_top_level_must_be_a_non_empty_object(text, got):
    with pytest.raises(FollowupSetError) as err:
        parse_followups(text, "set.json")
    message = str(err.value)
    assert message.startswith("set.json: expected an object like")
    assert got in message


def test_missing_negative_list():
    with pytest.raises(FollowupSetError) as err:
        followups_from_mapping({"relevance": {"positive": ["Spot on."]}}, "set.json")
    message = str(err.value)
    assert "set.json" in message
    assert "'relevance'" in message
    assert "non-empty 'negative' list" in message


def test_empty_positive_list():
    with pytest.raises(FollowupSetError, match="'tone' needs a non-empty 'positive' list"):
        followups_from_mapping({"tone": {"positive": [], "negative": ["Harsh."]}})


@pytest.mark.parametrize("item", [3, None, ["nested"], "", "   "])
def test_non_string_or_blank_item_is_named_by_index(item):
    with pytest.raises(FollowupSetError) as err:
        followups_from_mapping({"tone": {"positive": ["Nice."], "negative": ["Harsh.", item]}})
    message = str(err.value)
    assert "'tone'" in message
    assert "negative[1] must be a non-empty string" in message


def test_list_given_as_string_is_rejected():
    with pytest.raises(FollowupSetError, match="non-empty 'positive' list"):
        followups_from_mapping({"tone": {"positive": "Nice.", "negative": ["Harsh."]}})


def test_unknown_field_is_named():
    with pytest.raises(FollowupSetError) as err:
        followups_from_mapping({"tone": {"positive": ["a"], "negative": ["b"], "neutral": ["c"]}})
    message = str(err.value)
    assert "unknown field(s) neutral" in message
    assert "only 'positive' and 'negative'" in message


def test_category_that_is_not_an_object():
    with pytest.raises(FollowupSetError, match="category 'tone' must be an object"):
        followups_from_mapping({"tone": ["a", "b"]})


def test_blank_category_name():
    with pytest.raises(FollowupSetError, match="category names must be non-empty"):
        parse_followups('{"": {"positive": ["a"], "negative": ["b"]}}')


def test_duplicate_category_is_not_silently_dropped():
    text = ('{"tone": {"positive": ["a"], "negative": ["b"]},\n'
            ' "tone": {"positive": ["c"], "negative": ["d"]}}')
    with pytest.raises(FollowupSetError, match="'tone' appears twice"):
        parse_followups(text, "set.json")


def test_followup_set_is_immutable():
    fset = FollowupSet((Category("a", ("p",), ("n",)),))
    with pytest.raises(AttributeError):
        fset.categories = ()  # type: ignore[misc]
