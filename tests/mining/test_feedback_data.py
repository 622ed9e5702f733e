"""Fine-tuning data for the feedback-mode scorer: role-swapped (question, answer, feedback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.mining.feedback_data import FeedbackFileError, export_feedback_data, load_triples, parse_triples
from core.engine.rendering import FEEDBACK_INSTRUCTION
from tests.llamafactory_schema import check_llamafactory_dataset


TRIPLES = [{"question": "What is 2+2?", "answer": "5", "feedback": "Not quite: 2+2 is 4."},
           {"instruction": "Name a colour.", "response": "Blue", "critique": "Correct."}]


def test_feedback_data_role_swapped_layout(tmp_path: Path) -> None:
    path = tmp_path / "triples.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in TRIPLES))
    files = export_feedback_data(load_triples(path), tmp_path / "out")
    out = tmp_path / "out"
    sharegpt = check_llamafactory_dataset(out, "flr_feedback_sharegpt")
    assert sharegpt[0] == {"conversations": [
        {"from": "human", "value": FEEDBACK_INSTRUCTION}, {"from": "gpt", "value": "What is 2+2?"},
        {"from": "human", "value": "5"}, {"from": "gpt", "value": "Not quite: 2+2 is 4."}]}
    alpaca = check_llamafactory_dataset(out, "flr_feedback_alpaca")
    assert alpaca[1] == {"instruction": "Blue", "input": "", "output": "Correct.",
                         "history": [[FEEDBACK_INSTRUCTION, "Name a colour."]]}
    assert FEEDBACK_INSTRUCTION == "Please ask me a question and provide feedback to my answer."
    assert set(files) == {"flr_feedback_sharegpt", "flr_feedback_alpaca", "dataset_info"}


def test_feedback_triples_from_csv_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('question,answer,feedback\n"Q, one",A1,F1\n')
    assert [(t.question, t.answer, t.feedback) for t in load_triples(path)] == [("Q, one", "A1", "F1")]
    with pytest.raises(FeedbackFileError, match=r"t.csv, row 2: missing field 'feedback'"):
        parse_triples("question,answer\nq,a\n", "t.csv", "csv")
    with pytest.raises(FeedbackFileError, match=r"item 0: field 'answer' must be non-empty text"):
        parse_triples('[{"question": "q", "answer": " ", "feedback": "f"}]', "t.json", "json")
    with pytest.raises(FeedbackFileError, match="no triples"):
        parse_triples("[]", "t.json", "json")
