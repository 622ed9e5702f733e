"""Mine preferences tab handlers with a fake scorer and a scripted policy (no model, no browser)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from core.errors import ConfigError, FLRError
from core.engine.followups import default_followups
from tests.fakes import FakeScorer
from tests.llamafactory_schema import check_llamafactory_dataset
from tests.mining.test_mining import ScriptedPolicy
from ui.tabs import mine as tab_mine
from ui.settings import AppSettings
from ui.state import AppState

ALL = list(default_followups().names)


def no_progress(*args, **kwargs) -> None:
    return None


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    return AppState(AppSettings(work_dir=tmp_path), FakeScorer)


def run(state: AppState, text: str, upload: str | None = None, samples: int = 3, **changes):
    settings = dict(max_new_tokens=16, temperature=0.8, top_p=0.95, seed=0, min_margin=0.0, kto_threshold=None,
                    categories=ALL)
    settings.update(changes)
    policy = ScriptedPolicy()
    out = tab_mine.mine_prompts(state, text, upload, samples, settings["max_new_tokens"], settings["temperature"],
                                settings["top_p"], settings["seed"], settings["min_margin"],
                                settings["kto_threshold"], settings["categories"], "embedded", "base", "mean",
                                no_progress, policy_factory=lambda config, scorer: policy)
    return out, policy


def test_demo_prompts_are_bundled_mt_bench_questions() -> None:
    lines = tab_mine.demo_prompts_text().splitlines()
    assert len(lines) == tab_mine.DEMO_COUNT
    assert lines[0].startswith("David has three sisters")


def test_mine_tab_table_summary_and_downloads(state: AppState) -> None:
    (summary, frame, files), policy = run(state, tab_mine.demo_prompts_text())
    assert policy.asked == [0, 1, 2]
    assert "DPO pairs  3 prompts kept" in summary
    assert len(frame) == 9 and list(frame.columns[:5]) == ["prompt id", "sample", "FLR", "role", "response"]
    assert frame.columns[-1] == "prompt" and set(ALL) <= set(frame.columns)
    assert sorted(frame["role"].tolist()).count("chosen") == 3
    for _, rows in frame.groupby("prompt id"):
        assert rows["FLR"].tolist() == sorted(rows["FLR"].tolist(), reverse=True)
        roles = dict(zip(rows["role"], rows["FLR"]))
        assert roles["chosen"] > roles["rejected"]
    archive = Path(files[0])
    assert archive.suffix == ".zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        folder = archive.parent / "unzipped"
        zf.extractall(folder)
    assert {"dataset_info.json", "flr_dpo_alpaca.json", "flr_kto_sharegpt.json", "flr_sft_alpaca.json",
            "flr_samples.jsonl", "flr_summary.json"} <= names
    for name in json.loads((folder / "dataset_info.json").read_text()):
        check_llamafactory_dataset(folder, name)
    assert all(Path(f).is_file() for f in files)


def test_mine_tab_reads_uploads_and_json(state: AppState, tmp_path: Path) -> None:
    upload = tmp_path / "p.csv"
    upload.write_text("prompt\nFirst?\nSecond?\n")
    (_, frame, _), policy = run(state, "ignored when a file is uploaded", str(upload), samples=2)
    assert frame["prompt"].unique().tolist() == ["First?", "Second?"]
    (_, frame, _), _ = run(state, '[{"prompt": "From JSON"}]', samples=2)
    assert frame["prompt"].unique().tolist() == ["From JSON"]


@pytest.mark.parametrize("text, message", [
    ("", "no prompts"),
    ("\n".join(f"q{i}" for i in range(tab_mine.MAX_PROMPTS + 1)), "at most"),
    ('[{"answer": "x"}]', "item 0: no prompt found"),
])
def test_mine_tab_input_errors(state: AppState, text: str, message: str) -> None:
    with pytest.raises(FLRError, match=message):
        run(state, text)


def test_mine_tab_empty_category_choice(state: AppState) -> None:
    with pytest.raises(FLRError, match="at least one follow-up category"):
        run(state, "Hi?", categories=[])
    with pytest.raises(ConfigError, match="samples"):
        run(state, "Hi?", samples=0)


def test_app_mounts_the_mine_tab(tmp_path: Path) -> None:
    from ui.gradio_app import build_app

    demo = build_app(AppSettings(work_dir=tmp_path), scorer_factory=FakeScorer)
    config = demo.get_config_file() if hasattr(demo, "get_config_file") else demo.config
    labels = [c.get("props", {}).get("label") for c in config["components"]]
    assert "Mine preferences" in labels and "Samples per prompt" in labels


def test_mine_through_the_running_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio_client import Client

    import core.mining.policy
    from tests.ui.test_app_client import running_app

    monkeypatch.setattr(core.mining.policy, "load_policy", lambda config: ScriptedPolicy())
    with running_app(tmp_path, scorer_factory=FakeScorer) as url:
        client = Client(url, verbose=False)
        summary, table, files = client.predict("What is 2 + 2?\nName a colour.", None, 3, 16, 0.8, 0.95, 0, 0.0,
                                               None, ALL, "embedded", "base", "mean", api_name="/mine")
        assert "DPO pairs  2 prompts kept" in summary
        assert len(table["data"]) == 6
        assert any(str(f).endswith(".zip") for f in files)
        with pytest.raises(Exception, match="no prompts"):
            client.predict("", None, 3, 16, 0.8, 0.95, 0, 0.0, None, ALL, "embedded", "base", "mean",
                           api_name="/mine")
