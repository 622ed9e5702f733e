"""Flags users bring from lm_eval and rewardbench, and the one meaning of each flag name:
`--max NAME=N` (input limits, like `FLR_MAX_*`), `--limit` (rows: a count or a fraction),
`--version`, `--batch-size auto`, `--seed`, `--revision`, `--dataset NAME[:CONFIG]`, and the
progress line a long evaluation writes to a log file."""

from __future__ import annotations

import io
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from core.cli.evaluate import dataset_name
from core.cli.progress import ScoringProgress
from core.cli.main import build_parser, main
from core.engine.config import ScoringConfig
from core.errors import ConfigError
from core.limits import hint

ROOT = Path(__file__).resolve().parents[2]


def tiny_set(tmp_path: Path) -> Path:
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"a": {"positive": ["Thanks!"], "negative": ["No."]}}))
    return path


def test_the_limit_hint_is_a_command_line_that_works(tiny_model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    convs = tmp_path / "c.jsonl"
    convs.write_text(json.dumps(["q", "a", "q2", "a2"]) + "\n")
    out = tmp_path / "o.jsonl"
    command = ["score", "--input", str(convs), "--output", str(out), "--model", str(tiny_model_dir),
               "--followups", str(tiny_set(tmp_path)), "--device", "cpu"]
    assert main(["--max", "turns=3", *command]) == 2
    err = capsys.readouterr().err
    assert hint("turns") in err
    typed = re.search(r"\(or (flr .*)\)", hint("turns")).group(1)  # what the user is told to type
    argv = shlex.split(typed.replace("=N", "=4"))[1:]
    assert argv[-2:] == ["COMMAND", "..."]
    assert main([*argv[:-2], *command]) == 0 and out.is_file()
    out.unlink()
    assert main([*command, *argv[:-2]]) == 0 and out.is_file()  # after the command, too


def test_the_old_spelling_is_refused_naming_the_new_one(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--limit", "turns=20000", "score", "--input", "x.jsonl", "--output", "y.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "flr --max turns=20000 score" in err
    assert main(["--limit", "5", "evaluate", "x.jsonl"]) == 2
    assert "flr evaluate ... --limit 5" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --limit after the command counts rows, never NAME=N
        main(["evaluate", "x.jsonl", "--limit", "turns=3"])
    assert "input limits are set with --max NAME=N" in capsys.readouterr().err


def test_version_is_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"flr {version} (")


def test_batch_size_auto_and_revision_reach_the_config() -> None:
    from core.cli.flags import config_from_args
    from core.engine.models import split_revision

    args = build_parser().parse_args(["evaluate", "x", "--model", "org/rm", "--batch-size", "auto",
                                      "--revision", "v1.0"])
    config = config_from_args(args)
    assert config.batch_size == "auto" and config.model == "org/rm@v1.0"
    assert split_revision(config.model) == ("org/rm", "v1.0") and split_revision("org/rm") == ("org/rm", None)
    assert ScoringConfig.from_env({"FLR_BATCH_SIZE": "auto"}).batch_size == "auto"
    assert not config.same_weights(config_from_args(build_parser().parse_args(
        ["evaluate", "x", "--model", "org/rm", "--revision", "v2.0"])))
    with pytest.raises(ConfigError, match="positive integer; got 'big' .or 'auto'"):
        ScoringConfig(batch_size="big")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "x", "--batch-size", "big"])


def test_revision_of_a_local_model_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.engine.models import load_model, split_revision
    from core.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="'v1' names a branch, tag or commit of a Hub model"):
        load_model(ScoringConfig(model=f"{tiny_model_dir}@v1"))
    with pytest.raises(ModelLoadError, match="local model"):
        split_revision("embedded@main")
    odd = tmp_path / "model@2024"
    odd.mkdir()
    assert split_revision(str(odd)) == (str(odd), None)  # a folder's own '@' is no revision


def test_batch_size_auto_scores_like_a_number(tiny_model_dir: Path) -> None:
    from core.engine.conversation import from_utterances
    from core.engine.followups import followups_from_mapping
    from core.engine.scorer import load_scorer

    followups = followups_from_mapping({"a": {"positive": ["Thanks!", "Great."], "negative": ["No."]}})
    conv = from_utterances(["Hi", "Hello there!"])
    auto = load_scorer(ScoringConfig(model=str(tiny_model_dir), device="cpu", batch_size="auto"))
    two = load_scorer(ScoringConfig(model=str(tiny_model_dir), device="cpu", batch_size=2))
    assert auto._token_budget() == ScoringConfig().batch_size * 64  # on CPU: the default
    assert auto.score(conv, followups).flr == pytest.approx(two.score(conv, followups).flr, abs=1e-5)


def paper_pairs(folder: Path, n: int) -> list[str]:
    """A pair benchmark in the paper's layout, with precomputed follow-up scores (no model)."""
    files = []
    for side, value in (("accept", 1.0), ("reject", 0.0)):
        path = folder / f"p_{side}_relevance.jsonl"
        path.write_text("".join(json.dumps({"conversation": [f"q{i}", f"{side} {i}"],
                                            "positive": [value - 0.1 * (i % 3 == 0)],
                                            "negative": [0.0]}) + "\n" for i in range(n)))
        files.append(str(path))
    return files


def test_limit_as_a_fraction_and_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = paper_pairs(tmp_path, 10)
    report = tmp_path / "r.json"
    assert main(["evaluate", *files, "--limit", "0.25", "--seed", "3", "--batch-size", "auto",
                 "--no-cache", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    (bench,) = data["benchmarks"]
    assert bench["n"] == 3  # ceil(10 * 0.25), as lm_eval rounds
    assert "--limit 0.25: the first 3 of 10 rows" in bench["warnings"] and "the first 3 of 10 rows" in out
    assert data["settings"]["seed"] == 3 and data["settings"]["limit"] == 0.25
    assert main(["evaluate", *files, "--limit", "4", "--no-cache", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["benchmarks"][0]["n"] == 4
    for bad in ("0", "1.5", "-2"):
        assert main(["evaluate", *files, "--limit", bad, "--no-cache", "--report", str(report)]) == 2
        assert "--limit must be a positive number of rows or a fraction" in capsys.readouterr().err


def test_dataset_name_and_config() -> None:
    assert dataset_name("Anthropic/hh-rlhf:helpful-base", None) == ("Anthropic/hh-rlhf", "helpful-base")
    assert dataset_name("Anthropic/hh-rlhf", "harmless-base") == ("Anthropic/hh-rlhf", "harmless-base")
    assert dataset_name("hf://datasets/org/x/data.parquet", None) == ("hf://datasets/org/x/data.parquet", None)
    assert dataset_name("allenai/reward-bench", None) == ("allenai/reward-bench", None)


def hh_folder(root: Path) -> Path:
    """A local dataset folder with two configurations, laid out as Anthropic/hh-rlhf is."""
    card = ["---", "configs:"]
    for config in ("helpful-base", "harmless-base"):
        (root / config).mkdir(parents=True)
        (root / config / "test.jsonl").write_text("".join(json.dumps(
            {"chosen": f"\n\nHuman: {config} question {i}?\n\nAssistant: a careful answer {i}",
             "rejected": f"\n\nHuman: {config} question {i}?\n\nAssistant: no"}) + "\n" for i in range(3)))
        card += [f"- config_name: {config}", "  data_files:", "  - split: test",
                 f"    path: {config}/test.jsonl"]
    (root / "README.md").write_text("\n".join(card + ["---", ""]))
    return root


def test_dataset_with_a_config_on_a_local_folder(tiny_model_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("FLR_CACHE_DIR", str(tmp_path / "cache"))
    folder = hh_folder(tmp_path / "hh-rlhf")
    common = ["--split", "test", "--model", str(tiny_model_dir), "--followups", str(tiny_set(tmp_path)),
              "--device", "cpu", "--no-cache"]
    assert main(["evaluate", "--dataset", str(folder), *common, "--report", str(tmp_path / "x.json")]) == 2
    assert "--dataset NAME:CONFIG" in capsys.readouterr().err  # two configs: say how to choose
    report = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", f"{folder}:helpful-base", *common, "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    (bench,) = data["benchmarks"]
    assert bench["n"] == 3 and "helpful-base" in bench["name"]
    (source,) = data["settings"]["provenance"]["datasets"]
    assert source["config"] == "helpful-base" and source["split"] == "test" and source["rows"] == 3
    assert source["revision"].startswith("files:")  # a local folder: its files' hash; Hub: the commit
    other = tmp_path / "r2.json"
    assert main(["evaluate", "--dataset", str(folder), "--dataset-config", "harmless-base", *common,
                 "--report", str(other)]) == 0
    (source2,) = json.loads(other.read_text())["settings"]["provenance"]["datasets"]
    assert source2["config"] == "harmless-base" and source2["revision"] != source["revision"]
    with (folder / "helpful-base" / "test.jsonl").open("a") as fh:  # the data changes: a new revision
        fh.write(json.dumps({"chosen": "\n\nHuman: new?\n\nAssistant: yes",
                             "rejected": "\n\nHuman: new?\n\nAssistant: no"}) + "\n")
    assert main(["evaluate", "--dataset", f"{folder}:helpful-base", *common, "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["benchmarks"][0]["n"] == 4
    assert data["settings"]["provenance"]["datasets"][0]["revision"] not in (None, source["revision"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_on_a_log_file() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = ScoringProgress(stream=stream, clock=clock, every=10)
    bar(0, 100, "loading the model")
    clock.now = 30  # the model took 30 s to load: not part of the rate
    bar(4, 100, "scored 4 of 100 conversations")
    clock.now = 32
    bar(8, 100, "scored 8")  # within 10 s of the last line: nothing
    clock.now = 40
    bar(24, 100, "scored 24")
    clock.now = 50
    bar(100, 100, "scored 100")
    lines = stream.getvalue().splitlines()
    assert lines == ["scoring: 0/100 conversations (0%), loading the model",
                     "scoring: 4/100 conversations (4%), scored 4 of 100 conversations",
                     "scoring: 24/100 conversations (24%), 2.00/s, about 38s left",
                     "scoring: 100/100 conversations (100%), done"]
