"""The README's command reference is what the parsers print (`scripts/cli_reference.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.main import main
from core.cli.reference import END, START, WIDTH, command_parsers, reference_markdown, with_reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_holds_the_generated_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(START) == 1 and readme.count(END) == 1
    assert with_reference(readme) == readme, "run: python scripts/cli_reference.py"


def test_each_block_is_what_help_prints(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    reference = reference_markdown()
    progs = [prog for prog, _ in command_parsers()]
    assert {"flr", "flr evaluate", "flr followups report", "flr compare"} <= set(progs)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    for prog in progs:
        with pytest.raises(SystemExit):
            main([*prog.split()[1:], "--help"])
        printed = capsys.readouterr().out
        assert f"### `{prog}`\n\n```text\n{printed.rstrip()}\n```" in reference, prog


def test_the_script_checks_and_writes(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{START}\nan out-of-date reference\n{END}\n\nmore\n", encoding="utf-8")
    script = [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--readme", str(stale)]
    check = subprocess.run([*script, "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "out of date" in check.stderr
    assert subprocess.run(script, capture_output=True, text=True, timeout=120).returncode == 0
    text = stale.read_text(encoding="utf-8")
    assert "out-of-date reference" not in text and text.endswith(f"{END}\n\nmore\n") and "### `flr tune`" in text
    assert subprocess.run([*script, "--check"], capture_output=True, timeout=120).returncode == 0


def test_help_has_no_doubled_percent_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "%%" not in reference_markdown()  # `flr compare --help` printed "95%%"
