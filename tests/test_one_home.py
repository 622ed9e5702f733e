"""One home per fact, checked (issue 22). No module uses another module's private names (the
Dashboards' follow-up report imported the Batch tab's `_detect` and `_paths`; `flr tune` called
`cli/evaluate._evaluate`): a name another module needs is public in its one home. One list of
true / false words."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(root)}: from {node.module} import {alias.name}")
    return found


def test_no_module_imports_a_private_name_of_another_module():
    found = []
    for path in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "ui").rglob("*.py"), ROOT / "app.py"]):
        found += _private_imports(path)
    assert found == []


def test_the_check_sees_a_private_import(tmp_path):
    sample = tmp_path / "ui" / "probe.py"
    sample.parent.mkdir()
    sample.write_text("from ui.tabs.batch import _detect, upload_paths\n", encoding="utf-8")
    assert _private_imports(sample, tmp_path) == ["ui/probe.py: from ui.tabs.batch import _detect"]


def test_one_list_of_true_and_false_words():
    """Three lists accepted different words (issue 22 item 5); now only core/names.py has one."""
    found = []
    for path in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]):
        if path == ROOT / "core" / "names.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                words = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if {"true", "yes"} <= words or {"false", "no"} <= words:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_app_settings_defaults_live_in_the_fields_and_every_variable_is_read(tmp_path):
    """`AppSettings.from_env` is a loop over its fields (like `ScoringConfig.from_env`): with no
    variables it gives the fields' own defaults, and each field's variable reaches that field."""
    from dataclasses import fields

    from ui.settings import AppSettings

    env = {"FLR_CACHE_DIR": str(tmp_path)}
    assert [f.name for f in fields(AppSettings) if "env" not in f.metadata] == ["config"]
    assert AppSettings.from_env(env) == AppSettings(work_dir=tmp_path / "app")
    for f in fields(AppSettings):
        name = f.metadata.get("env")
        if name is None or f.name in ("trusted_proxies", "space_id", "allowed_models"):
            continue  # those three depend on each other; tests/ui/test_hosting.py covers them
        value = {"zero_gpu": "true", "work_dir": str(tmp_path / "w"), "allowed_datasets": "org/set",
                 "max_file_size": "7mb", "server_name": "0.0.0.0"}.get(f.name, "12345")
        read = getattr(AppSettings.from_env({**env, name: value}), f.name)
        assert read != getattr(AppSettings(work_dir=tmp_path / "app"), f.name), name
