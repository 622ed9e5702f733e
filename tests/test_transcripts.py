"""One transcript parser (issue 22): a transcript whose reply quotes a chat log (`User: ...`
lines) is read as the same conversation by every entry point: the engine, `flr score`,
`flr evaluate`'s files, the server's plain template and the app's Score tab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli.score import load_items
from core.engine.conversation import Conversation, from_text, parse_conversation
from core.engine.followups import default_followups
from core.evaluation.detect import detect_benchmarks
from core.names import COL_CONVERSATION
from core.serving.templates import TEMPLATES, recognise, split_query
from tests.fakes import FakeScorer
from ui.tabs import score as tab_score
from ui.settings import AppSettings
from ui.state import AppState

QUOTED = "Here is a log:\nUser: hi\nAssistant: hello\nHuman: bye\nSystem: done"
ASK = "Human: Show me a chat log."
TRANSCRIPT = f"{ASK}\n\nAssistant: {QUOTED}"
EXPECTED = Conversation(("Show me a chat log.", QUOTED))
# the quoted log in an earlier turn, and the reply given on its own (prompt / response fields)
PROMPT = f"{TRANSCRIPT}\n\nHuman: Thanks. Another one?"
REPLY = "Sure:\nUser: hello again"
EXPECTED_LONG = Conversation(("Show me a chat log.", QUOTED, "Thanks. Another one?", REPLY))


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class RecordingScorer(FakeScorer):
    """The fake scorer, keeping every conversation it was asked to score."""

    seen: list[Conversation] = []

    def score_many(self, conversations, followups, progress=None):
        RecordingScorer.seen += list(conversations)
        return super().score_many(conversations, followups, progress)


def test_the_engine_reads_the_quoted_log_as_one_reply() -> None:
    assert from_text(TRANSCRIPT) == EXPECTED
    assert parse_conversation(TRANSCRIPT).utterances == EXPECTED.utterances


def test_flr_score_reads_it_alike(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "in.jsonl", [{"conversation": TRANSCRIPT}])
    [(_, conversation)] = load_items(path)
    assert conversation == EXPECTED


def test_flr_evaluate_reads_it_alike(tmp_path: Path) -> None:
    rating = _write_jsonl(tmp_path / "rated.jsonl", [
        {"conversation": TRANSCRIPT, "score": 1},
        {"prompt": PROMPT, "response": REPLY, "score": 2}])
    pairs = _write_jsonl(tmp_path / "hh.jsonl", [
        {"chosen": TRANSCRIPT, "rejected": f"{ASK}\n\nAssistant: No."}])
    found = {b.name: b for b in detect_benchmarks([rating, pairs])}
    rated, hh = found["rated"], found["hh"]
    assert list(rated.frame[COL_CONVERSATION]) == [EXPECTED, EXPECTED_LONG]
    assert hh.frame[COL_CONVERSATION][0] == EXPECTED


def test_the_servers_plain_template_reads_it_alike() -> None:
    assert recognise(TRANSCRIPT) is TEMPLATES["plain"]
    assert split_query(TRANSCRIPT) == EXPECTED
    assert split_query(TRANSCRIPT, f"{ASK}\n\nAssistant:") == EXPECTED
    assert split_query(f"{PROMPT}\n\nAssistant: {REPLY}") == EXPECTED_LONG


@pytest.mark.parametrize("handler", ["score", "compare"])
def test_the_score_tab_reads_it_alike(tmp_path: Path, handler: str) -> None:
    state = AppState(AppSettings(work_dir=tmp_path), RecordingScorer)
    categories = list(default_followups().names)
    RecordingScorer.seen = []
    if handler == "score":
        tab_score.score_conversation(state, TRANSCRIPT, "", categories, "embedded", "base", "mean")
        assert RecordingScorer.seen == [EXPECTED]
    else:
        tab_score.compare_replies(state, PROMPT, REPLY, "Other.", "", categories, "embedded", "base",
                                  "mean")
        assert RecordingScorer.seen == [EXPECTED_LONG, EXPECTED_LONG.with_reply("Other.")]
