"""The shape of `core/` that issue 10 asked for, kept: sub-packages, small modules, one home per fact."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Sequence

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


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, module: str, known: set[str]) -> set[str]:
    """Every module of `known` that `path` imports anywhere: at the top, inside a function, or
    under `if TYPE_CHECKING:` (a type-only import still says which module needs which)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return (found & known) - {module}


def import_cycles(root: Path, folders: Sequence[str]) -> list[list[str]]:
    """Groups of modules under `root`/`folders` that import each other, directly or around a
    loop (Tarjan's strongly connected components of the import graph)."""
    files = {_module_name(p, root): p for folder in folders for p in (root / folder).rglob("*.py")}
    graph = {m: sorted(_imported(p, m, set(files))) for m, p in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = [stack.pop()]
            while group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def test_import_cycles_are_found(tmp_path) -> None:
    """The check itself: a loop through a function-level and a type-only import is a cycle."""
    pkg = tmp_path / "core" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from core.pkg.b import B\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import core.pkg.a\n")
    (pkg / "d.py").write_text("from core.pkg import a\n")
    assert import_cycles(tmp_path, ["core"]) == [["core.pkg.a", "core.pkg.b", "core.pkg.c"]]


def test_no_import_cycles_in_core_or_ui() -> None:
    """No two modules need each other, even through an import inside a function or one under
    `TYPE_CHECKING`: a shared type lives in the module that owns it (issue 22)."""
    cycles = import_cycles(ROOT, ["core", "ui"])
    assert not cycles, f"modules that import each other: {cycles}"


_ROLE_NAMES = {"user", "human", "assistant", "system", "gpt", "bot", "model", "prompter"}
# a regex group of role names followed by a colon: `(Human|Assistant):`, `(?P<role>user|...)\s*:`
_ROLE_PREFIX_REGEX = re.compile(r"(?i)\((?:\?P<\w+>)?(?:\w+\|)*(?:human|user|assistant)(?:\|\w+)*\)[^()]{0,25}:")


def role_tables_and_prefix_patterns(root: Path, folders: Sequence[str]) -> list[str]:
    """Where a module spells out role names as a table (a dict or set literal with two or more
    of them) or matches role prefixes with a regular expression of its own."""
    found = []
    for path in sorted(p for folder in folders for p in (root / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, ast.Set) else []
            names = {k.value.lower() for k in items if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            if len(names & _ROLE_NAMES) >= 2:
                found.append(f"{path.relative_to(root)}:{node.lineno} role table")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _ROLE_PREFIX_REGEX.search(node.value):
                found.append(f"{path.relative_to(root)}:{node.lineno} role-prefix pattern {node.value!r}")
    return found


def test_role_prefixes_are_parsed_in_one_module() -> None:
    """One transcript parser (issue 22): role names and the regex for `User:` / `Human:` turns
    live in `core/engine/conversation.py`; every entry point reads transcripts through it."""
    found = role_tables_and_prefix_patterns(ROOT, ["core", "ui"])
    assert found and all(f.startswith("core/engine/conversation.py:") for f in found), found
