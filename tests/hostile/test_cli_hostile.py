"""Hostile inputs through every command: each ends with exit 0 or 2, a one-line message and no
traceback, in bounded work; a damaged cache does not stop the run; an existing output survives
a failed run. The cases live in `tests/hostile/cases.py` (shared with the harness
`benchmarks/hostile_inputs.py`, which runs them as real processes with a time limit)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.main import main
from tests.hostile.cases import Case, cli_cases

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Case]:
    return {c.name: c for c in cli_cases(tmp_path_factory.mktemp("hostile"), str(tiny_model_dir))}



NAMES = [
    "gzip damaged mid-stream", "input not UTF-8", "follow-up set not UTF-8", "follow-up of 1.2 MB",
    "gzip bomb", "output is a folder", "output under a file", "failed run keeps existing output",
    "1,000 turns", "10,002 turns over the limit", "10,002 turns, limit raised",
    "utterance of 300k characters", "missing local folder", "Hub id offline", "batch size 0",
    "mine --temperature nan", "prompt file not UTF-8", "pair with 3 vs 10 values",
    "rating score NaN", "rating score Infinity", "rating score 1e400", 'rating score "inf"',
    "ragged CSV row", "ELO table not UTF-8", "ELO value NaN",
    "score cache garbage", "score cache foreign", "score cache folder",
]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_input_gets_a_message_not_a_traceback(name: str, cases: dict[str, Case],
                                                      capsys: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    case = cases[name]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    code = main(case.argv)
    err = capsys.readouterr().err
    assert code == case.exit, err
    # warnings are logged (stderr in a real process; pytest captures logging itself)
    assert re.search(case.message, err + caplog.text), err + caplog.text
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == (case.exit == 2) and all(len(line) < 2100 for line in errors)
    if case.after is not None:
        case.after()


def test_every_case_is_listed(cases: dict[str, Case]) -> None:
    assert sorted(cases) == sorted(NAMES)


def test_a_real_process_answers_in_one_line(cases: dict[str, Case]) -> None:
    """In a process of its own (what a user runs): exit 2, one line, no traceback."""
    case = cases["gzip damaged mid-stream"]
    done = subprocess.run([sys.executable, "-m", "core", *case.argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and re.search(case.message, done.stderr)
