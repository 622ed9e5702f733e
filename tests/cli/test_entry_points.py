"""The installed `flr` command and `python -m core` are the same command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("score", "evaluate", "mine")


def _flr() -> str | None:
    """`flr` next to this interpreter (the project's .venv), else on PATH."""
    beside = Path(sys.executable).with_name("flr")
    return str(beside) if beside.is_file() else shutil.which("flr")


@pytest.mark.parametrize("command", COMMANDS)
def test_installed_flr_and_python_m_core_print_the_same_help(command: str) -> None:
    flr = _flr()
    if flr is None:
        pytest.skip("the flr command is not installed (run scripts/setup.sh)")
    installed = subprocess.run([flr, command, "--help"], capture_output=True, text=True, timeout=60)
    module = subprocess.run([sys.executable, "-m", "core", command, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0 and module.returncode == 0, installed.stderr + module.stderr
    assert installed.stdout == module.stdout and f"usage: flr {command}" in installed.stdout


def test_importing_core_loads_neither_torch_nor_pandas() -> None:
    code = ("import sys, core; core.ScoringConfig; "
            "assert not {'torch', 'pandas'} & set(sys.modules), sorted({'torch', 'pandas'} & set(sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_public_api_names_resolve_to_their_home_modules() -> None:
    import core
    from core.engine.scorer import load_scorer
    from core.evaluation.runner import run_evaluation

    assert core.load_scorer is load_scorer and core.run_evaluation is run_evaluation
    assert all(getattr(core, name) is not None for name in core.__all__)
    with pytest.raises(AttributeError):
        core.no_such_name  # noqa: B018
