"""Every failure reaches the visitor as a sentence, and the server log holds one traceback at most."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pytest
from gradio.utils import is_allowed_file

from core.errors import BenchmarkFormatError
from tests.fakes import FakeScorer
from ui.gradio_app import build_app, served_paths
from ui.errors import to_gr_error, user_errors
from ui.settings import AppSettings


def test_every_event_handler_turns_failures_into_messages(tmp_path):
    demo = build_app(AppSettings(work_dir=tmp_path), scorer_factory=FakeScorer)
    bare = [getattr(f.fn, "__qualname__", repr(f.fn)) for f in demo.fns.values()
            if not getattr(f.fn, "user_errors", False) and getattr(f.fn, "__module__", "") != "gradio.helpers"]
    assert bare == [], f"handlers whose exceptions would reach the page as a bare 'Error': {bare}"


def test_an_unexpected_error_is_logged_once_and_shown_as_a_sentence(caplog):
    @user_errors
    def broken() -> None:
        {}["missing"]

    with caplog.at_level(logging.ERROR), pytest.raises(gr.Error) as raised:
        broken()
    err = raised.value
    assert "KeyError" in err.message and "server log" in err.message and "try again" in err.message
    assert err.print_exception is False  # gradio would print the traceback a second time
    assert [r.exc_info is not None for r in caplog.records] == [True]


@pytest.mark.parametrize("err", [gr.Error(""), BenchmarkFormatError("")])
def test_an_error_without_words_gets_some(err):
    message = to_gr_error(err).message
    assert len(message.split()) >= 4, message


def test_a_visitors_mistake_keeps_its_message_and_logs_no_traceback(caplog):
    @user_errors
    def refuses() -> None:
        raise gr.Error("choose a model first")

    with caplog.at_level(logging.DEBUG), pytest.raises(gr.Error) as raised:
        refuses()
    assert raised.value.message == "choose a model first" and raised.value.print_exception is False
    assert not [r for r in caplog.records if r.exc_info]


def test_only_the_exports_folder_of_the_work_dir_is_served(tmp_path):
    """Checked with gradio's own matcher (gradio/utils.py `is_allowed_file`), as both
    `_check_allowed` (handing out a returned file) and `file_fetch` (GET /file=) call it."""
    settings = AppSettings(work_dir=tmp_path / "work")
    allowed, blocked = served_paths(settings)

    def verdict(path: Path) -> str:
        return is_allowed_file(path, blocked_paths=blocked, allowed_paths=allowed, created_paths=[])[1]

    assert verdict(settings.exports_dir / "batch-x1" / "REPORT.json") == "allowed"
    for name in ("scores.sqlite", "scores.sqlite-wal", "scores.sqlite-shm", "scores.sqlite-journal"):
        assert verdict(settings.work_dir / name) == "in_blocklist"
    assert verdict(settings.work_dir / "other.txt") == "not_created_or_allowed"
    assert verdict(tmp_path / "uploaded.jsonl") == "not_created_or_allowed"


def test_the_score_cache_stays_blocked_even_inside_an_allowed_folder(tmp_path):
    settings = AppSettings(work_dir=tmp_path / "work")
    allowed, blocked = served_paths(settings)
    verdict = is_allowed_file(settings.cache_path, blocked_paths=blocked,
                              allowed_paths=allowed + [str(tmp_path)], created_paths=[])
    assert verdict == (False, "in_blocklist")
