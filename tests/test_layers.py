"""Layering: `core` must work without Gradio or plotly, and never hard-codes a CUDA device.

Modules are found by globbing core/**/*.py, so a module added later is covered without touching
this file. The import check runs in a subprocess with an import hook that refuses `gradio` and
`plotly`, so it cannot be fooled by modules another test already imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
BLOCKED = ("gradio", "plotly")

# __main__ runs the command line when imported, so it is checked statically only.
CORE_FILES = sorted(CORE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


CORE_MODULES = [_module_name(p) for p in CORE_FILES if p.stem != "__main__"]

_CHILD = r"""
import importlib, json, sys, traceback

BLOCKED = tuple(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: core must not import it")
        return None

sys.meta_path.insert(0, Block())
results = {}
for blocked in BLOCKED:  # the hook itself must work, or the check below proves nothing
    try:
        importlib.import_module(blocked)
        results["<hook>"] = f"importing {blocked} was not blocked"
    except ImportError:
        pass
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
        results[name] = None
    except BaseException:
        results[name] = traceback.format_exc(limit=-6)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
results["<leaked>"] = ", ".join(leaked) or None
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def import_results() -> dict[str, str | None]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, ",".join(BLOCKED), *CORE_MODULES],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, f"import check crashed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("RESULTS "):])


def test_core_modules_are_found():
    assert "core.engine.config" in CORE_MODULES
    assert "core.engine.conversation" in CORE_MODULES


def test_the_block_hook_works(import_results):
    assert import_results.get("<hook>") is None, import_results["<hook>"]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_gradio_or_plotly(import_results, module):
    assert module in import_results
    assert import_results[module] is None, f"{module} failed to import:\n{import_results[module]}"


def test_no_gradio_or_plotly_module_was_loaded(import_results):
    assert import_results["<leaked>"] is None


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names.append((node.lineno, node.args[0].value))
    return names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_no_ui_import_anywhere_in_core_source(path):
    """Also catches imports inside functions, which the subprocess check cannot see."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{path.name}:{line}: {name}" for line, name in _imported_names(tree)
           if name.split(".")[0] in BLOCKED]
    assert not bad, "core must not import UI libraries: " + "; ".join(bad)


def _is_cuda_literal(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.strip().lower().split(":")[0] == "cuda")


def _hard_coded_cuda(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "cuda":
            found.append((node.lineno, ".cuda()"))
        if isinstance(func, ast.Attribute) and func.attr == "to" and any(map(_is_cuda_literal, node.args)):
            found.append((node.lineno, '.to("cuda")'))
        for keyword in node.keywords:
            if keyword.arg in ("device", "device_map") and _is_cuda_literal(keyword.value):
                found.append((node.lineno, f'{keyword.arg}="cuda"'))
    return found


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_no_hard_coded_cuda_device(path):
    """The device comes from the config; `torch.cuda.is_available()` in the resolver is fine."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{path.name}:{line}: {what}" for line, what in _hard_coded_cuda(tree)]
    assert not bad, "use the configured device instead of: " + "; ".join(bad)


def test_cuda_detector_catches_the_usual_forms():
    source = (
        'x = t.cuda()\n'
        'y = t.to("cuda")\n'
        "z = torch.zeros(3, device='cuda:0')\n"
        'm = Model.from_pretrained(p, device_map="cuda")\n'
        'ok = torch.cuda.is_available()\n'
        'ok2 = t.to(config_device)\n'
    )
    assert [line for line, _ in _hard_coded_cuda(ast.parse(source))] == [1, 2, 3, 4]


def test_ui_import_detector_catches_the_usual_forms():
    source = (
        "import gradio as gr\n"
        "from plotly import graph_objects\n"
        "def f():\n    import plotly.express as px\n"
        "importlib.import_module('gradio')\n"
        "import pandas\n"
    )
    names = [name for _, name in _imported_names(ast.parse(source)) if name.split(".")[0] in BLOCKED]
    assert sorted(names) == ["gradio", "gradio", "plotly", "plotly.express"]
