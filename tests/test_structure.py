"""The shape of `core/` that issue 10 asked for, kept: sub-packages, small modules, one home per fact."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
MAX_LINES = 500


def test_core_is_sub_packages_with_small_modules() -> None:
    packages = {p.parent.name for p in CORE.glob("*/__init__.py")}
    assert {"engine", "evaluation", "mining", "cli"} <= packages
    too_long = {str(p.relative_to(ROOT)): n for p in CORE.rglob("*.py")
                if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_no_importlib_and_no_peeking_at_a_scorer_s_model() -> None:
    offenders = []
    for path in list(CORE.rglob("*.py")) + list((ROOT / "ui").rglob("*.py")):
        text = path.read_text()
        if re.search(r"^\s*(import importlib|from importlib)", text, re.M) or \
                re.search(r"getattr\([^)]*[\"']loaded[\"']", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_the_cache_folder_is_computed_in_one_place() -> None:
    homes = [str(p.relative_to(ROOT)) for p in list(CORE.rglob("*.py")) + list((ROOT / "ui").rglob("*.py"))
             if '"flr-studio"' in p.read_text()]
    assert homes == ["core/locations.py"]


def test_cache_dir_honours_the_variable_at_call_time(monkeypatch, tmp_path) -> None:
    from core.evaluation.report_cache import default_cache_path
    from core.locations import cache_dir
    from ui.settings import AppSettings

    monkeypatch.setenv("FLR_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path and default_cache_path() == tmp_path / "scores.sqlite"
    assert AppSettings.from_env().work_dir == tmp_path / "app" and AppSettings().work_dir == tmp_path / "app"
