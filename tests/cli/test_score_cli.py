"""`python -m core score` end to end on the tiny model: formats, order, kept fields, errors."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main
from core.records import read_records
from core.errors import InputError


def write_set(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"a": {"positive": ["Thanks!", "Great."], "negative": ["No."]},
                                "b": {"positive": ["Nice."], "negative": ["Wrong.", "Huh?"]}}))
    return path


def test_jsonl_of_utterance_lists_and_objects_in_input_order(tiny_model_dir, tmp_path, capsys):
    convs = tmp_path / "convs.jsonl"
    convs.write_text('["Hi", "Hello!"]\n'
                     '{"id": 7, "conversation": [{"role": "user", "content": "2+2?"},'
                     ' {"role": "assistant", "content": "4"}]}\n'
                     '["x", "y", "z"]\n')
    out = tmp_path / "out" / "scores.jsonl"
    code = main(["score", "--input", str(convs), "--output", str(out), "--model", str(tiny_model_dir),
                 "--followups", str(write_set(tmp_path)), "--device", "cpu", "--batch-size", "2"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("id") for r in rows] == [None, 7, None]
    assert rows[0]["conversation"] == ["Hi", "Hello!"]
    for row in rows:
        assert list(row["categories"]) == ["a", "b"]
        a, b = row["categories"]["a"], row["categories"]["b"]
        assert len(a["positive"]) == 2 and len(b["negative"]) == 2
        assert a["flr"] == pytest.approx(sum(a["positive"]) / 2 - a["negative"][0])
        assert row["flr"] == pytest.approx((a["flr"] + b["flr"]) / 2)
    assert "dropped the first" in rows[2]["warnings"][0]


def test_bad_item_is_reported_before_loading_the_model(tmp_path, capsys):
    convs = tmp_path / "convs.json"
    convs.write_text(json.dumps([["q", "a"], {"text": "no conversation"}]))
    code = main(["score", "--input", str(convs), "--output", str(tmp_path / "o.jsonl"),
                 "--model", str(tmp_path / "no-such-model")])
    assert code == 2
    err = capsys.readouterr().err
    assert "item 2" in err and "'conversation'" in err


def test_read_records_json_list_jsonl_and_errors(tmp_path):
    (tmp_path / "a.jsonl").write_text('["a", "b"]\n["c", "d"]\n')
    assert [r.value for r in read_records(tmp_path / "a.jsonl")] == [["a", "b"], ["c", "d"]]
    (tmp_path / "b.json").write_text('[["a", "b"],\n ["c", ]]\n')
    with pytest.raises(InputError, match=r"b.json, line 2: malformed JSON"):
        read_records(tmp_path / "b.json")
    (tmp_path / "c.jsonl").write_text('{"a": 1}\n{"a": 2,}\n')
    with pytest.raises(InputError, match=r"c.jsonl, line 2"):
        read_records(tmp_path / "c.jsonl")
    (tmp_path / "d.json").write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        read_records(tmp_path / "d.json")
