"""Each command stands on shared modules, never on another command: `flr tune` and `flr
followups report` share `core.tuning.labelled.labelled_examples`, and what they write is
written through `core.textfiles` (readable by others, like every output)."""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import pytest

from core.cli.main import COMMANDS
from core.cli.main import main as cli_main
from tests.tuning.synthetic import SET, SignalScorer, write_pairs

CLI = Path(__file__).resolve().parents[2] / "core" / "cli"
COMMAND_MODULES = {c.__name__ for c in COMMANDS}


def test_no_command_imports_another_command() -> None:
    offenders = []
    for name in sorted(COMMAND_MODULES):
        path = CLI / f"{name.rsplit('.', 1)[1]}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            offenders += [f"{path.name} imports {t}" for t in targets if t in COMMAND_MODULES - {name}]
    assert not offenders


@pytest.mark.parametrize("command", (["tune"], ["followups", "report"]))
def test_written_sets_are_readable_by_others(command: list[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import core.engine.scorer as scorer_module

    data = write_pairs(tmp_path / "train.jsonl", prompts=20, per_prompt=2, seed=5)
    base = tmp_path / "set.json"
    base.write_text(json.dumps(SET.to_dict()), encoding="utf-8")
    monkeypatch.setattr(scorer_module, "load_scorer", lambda config: SignalScorer())
    out = tmp_path / "out.json"
    old = os.umask(0o022)
    try:
        assert cli_main([*command, str(data), "--output", str(out), "--followups", str(base),
                         "--folds", "3", "--no-cache", "--limit", "0.5"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert json.loads(out.read_text(encoding="utf-8"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.json")]  # no temporary left


def test_the_elo_map_file_is_read_through_textfiles(tmp_path: Path) -> None:
    from core.cli.evaluate import parse_elo_map
    from core.errors import InputError

    good = tmp_path / "map.json"
    good.write_text(json.dumps({"gpt-4-0613": "gpt-4"}), encoding="utf-8")
    assert parse_elo_map([str(good), "a=b"]) == {"gpt-4-0613": "gpt-4", "a": "b"}
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"mod\xe8le": "x"}'.encode("latin-1"))
    with pytest.raises(InputError, match=r"--elo-map .*latin\.json: not UTF-8 text .*save the ELO map as UTF-8"):
        parse_elo_map([str(latin)])


def test_reports_and_section_maps_are_read_through_textfiles(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from core.errors import BenchmarkFormatError
    from core.evaluation.rewardbench import load_sections

    latin = tmp_path / "latin.json"
    latin.write_bytes('{"s\xe8ction": ["x"]}'.encode("latin-1"))
    with pytest.raises(BenchmarkFormatError, match=r"latin\.json: not UTF-8 text .*section map"):
        load_sections(latin)
    assert cli_main(["compare", str(latin), str(latin)]) == 2  # was a UnicodeDecodeError traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not UTF-8 text" in err and err.count("\n") == 1
    assert cli_main(["compare", str(tmp_path / "none.json"), str(latin)]) == 2
    assert "none.json: cannot read the report" in capsys.readouterr().err
