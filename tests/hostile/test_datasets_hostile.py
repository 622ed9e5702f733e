"""'Dataset by name' in hosted mode (issue 27): a path, a glob or a URL never reaches the disk or
the network; only the owner's Hub ids (`FLR_ALLOWED_DATASETS`) load, under the record and byte
caps, their downloads are removed, and no message quotes a server path or a file's keys.

The Hub is never contacted: `datasets.load_dataset_builder` is replaced by one that either fails
the test when called, or builds the real `parquet` builder on a local folder for a listed id.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError, InputError
from core.evaluation import named_datasets as hub
from tests.hostile.cases import HOSTILE_DATASET_NAMES
from tests.ui.test_ui_batch import REQUEST, no_progress
from tests.fakes import FakeScorer
from ui.tabs import batch as tab_batch
from ui.settings import AppSettings
from ui.state import AppState

datasets = pytest.importorskip("datasets")


def hosted(tmp_path: Path, **kw) -> AppState:
    return AppState(AppSettings(work_dir=tmp_path / "work", allowed_models=("embedded",), **kw),
                    lambda config: FakeScorer(config, lambda reply: len(reply) / 1000))


def run(state: AppState, dataset: str, split: str = "", limit=None):
    return tab_batch.run(state, None, tab_batch.AUTO, "", None, None, limit, "embedded", "base", "mean",
                         [], REQUEST, no_progress, None, False, dataset, split)


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way `datasets` could open a file or a URL fails the test (and is recorded)."""
    calls: list[str] = []

    def refuse(what):
        def called(*args, **kwargs):
            calls.append(what)
            raise AssertionError(f"{what} called for a refused name: {args}")
        return called

    for attr in ("load_dataset", "load_dataset_builder", "load_from_disk"):
        monkeypatch.setattr(datasets, attr, refuse(attr))
    return calls


@pytest.fixture
def listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """`owner/bench` on the 'Hub' is a local folder of pairs read by the real parquet builder."""
    rows = [{"prompt": f"q{i}", "chosen": f"a good answer {i}", "rejected": "no", "subset": "s"}
            for i in range(5)]
    folder = tmp_path / "hub-owner-bench"
    folder.mkdir()
    pd.DataFrame(rows).to_parquet(folder / "test.parquet")
    real = datasets.load_dataset_builder
    seen: dict = {"calls": 0, "cache_dirs": []}

    def builder(path, name=None, **kwargs):
        assert path == "owner/bench", path
        seen["calls"] += 1
        seen["cache_dirs"].append(kwargs.get("cache_dir"))
        return real("parquet", data_files={"test": str(folder / "test.parquet")}, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset_builder", builder)
    return seen


@pytest.mark.parametrize("name", HOSTILE_DATASET_NAMES)
def test_hosted_mode_refuses_paths_globs_and_urls_without_touching_anything(
        tmp_path: Path, no_loading: list[str], name: str) -> None:
    import gradio as gr

    for state in (hosted(tmp_path), hosted(tmp_path, allowed_datasets=("owner/bench",))):
        with pytest.raises(gr.Error) as raised:
            run(state, name)
        message = str(raised.value.message)
        assert "switched off on this server" in message or "not offered on this server" in message, message
        assert "FLR_ALLOWED_DATASETS" in message or "owner/bench" in message
    assert no_loading == []
    assert not (tmp_path / "work" / "datasets").exists()


def test_without_a_list_datasets_by_name_are_off_and_the_page_says_how_to_enable_them(
        tmp_path: Path, no_loading: list[str]) -> None:
    import gradio as gr

    state = hosted(tmp_path)
    with pytest.raises(gr.Error, match="FLR_ALLOWED_DATASETS"):
        tab_batch.preview(None, tab_batch.AUTO, "", "allenai/reward-bench", "filtered", settings=state.settings)
    assert "Datasets by name are off" in tab_batch.hosted_note(state.settings)
    assert "at most 2,000 conversations" in tab_batch.hosted_note(state.settings)
    assert tab_batch.hosted_note(AppSettings(work_dir=tmp_path)) == ""


def test_a_listed_dataset_is_evaluated_and_its_download_is_not_kept(tmp_path: Path, listed: dict) -> None:
    state = hosted(tmp_path, allowed_datasets=("owner/bench",))
    headline, metrics, *_ = run(state, "owner/bench", "test")
    assert "n = 5" in headline and "accuracy 1.000" in headline
    copies = sorted(p.relative_to(state.settings.datasets_dir) for p in state.settings.datasets_dir.rglob("*")
                    if p.is_file())
    assert copies == [Path("allowed/owner-bench_test.parquet")]  # the download folder is gone
    assert all(Path(d).parent == state.settings.datasets_dir / "allowed" for d in listed["cache_dirs"])
    run(state, "owner/bench", "test")
    assert listed["calls"] == 1  # the copy is reused while fresh


def test_a_listed_dataset_over_the_record_cap_is_refused(tmp_path: Path, listed: dict,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio as gr

    monkeypatch.setenv("FLR_MAX_RECORDS", "3")
    state = hosted(tmp_path, allowed_datasets=("owner/bench",))
    with pytest.raises(gr.Error, match=r"5 rows is over the limit of 3 records"):
        run(state, "owner/bench", "test")
    assert not list((state.settings.datasets_dir / "allowed").glob("*.parquet"))


def test_a_split_with_slicing_or_a_path_is_refused(tmp_path: Path, no_loading: list[str]) -> None:
    import gradio as gr

    state = hosted(tmp_path, allowed_datasets=("owner/bench",))
    for split in ("train[:10%]", "../../etc", "a/b"):
        with pytest.raises(gr.Error, match="a split is named with letters"):
            run(state, "owner/bench", split)
    assert no_loading == []


def test_hosted_errors_never_quote_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio as gr

    def leaky(*args, **kwargs):
        raise FileNotFoundError("/srv/private/notes.json has keys api_key, password")

    monkeypatch.setattr(datasets, "load_dataset_builder", leaky)
    state = hosted(tmp_path, allowed_datasets=("owner/bench",))
    with pytest.raises(gr.Error) as raised:
        run(state, "owner/bench", "test")
    message = str(raised.value.message)
    assert "cannot load it from the Hugging Face Hub (FileNotFoundError)" in message
    assert "/srv" not in message and "api_key" not in message and "notes.json" not in message


def test_the_owner_list_holds_hub_ids_only() -> None:
    assert hub.parse_allowed_datasets(" allenai/reward-bench , squad, org/set:cfg ") == (
        "allenai/reward-bench", "squad", "org/set:cfg")
    for bad in ("/srv/data", "hf://datasets/x/y", "a/../b", "org/*", "a/b/c"):
        with pytest.raises(ConfigError, match="not a Hub dataset id"):
            AppSettings.from_env({"SPACE_ID": "me/space", "FLR_ALLOWED_DATASETS": bad})
    settings = AppSettings.from_env({"SPACE_ID": "me/space", "FLR_ALLOWED_DATASETS": "org/set:cfg"})
    assert settings.dataset_policy == ("org/set:cfg",)
    assert AppSettings.from_env({"FLR_ALLOWED_DATASETS": "org/set"}).dataset_policy is None  # local: free


def test_outside_hosted_mode_a_local_folder_still_loads(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "chosen": "good", "rejected": "bad"}] * 2
    folder = tmp_path / "local-set"
    (folder / "data").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "data" / "train-00000-of-00001.parquet")
    path = hub.dataset_file(str(folder), "train", folder=tmp_path / "out", datasets_cache=tmp_path / "hf")
    assert path.is_file()
    with pytest.raises(InputError, match="switched off"):
        hub.dataset_file(str(folder), "train", allowed=())


def test_the_public_evaluate_api_refuses_a_glob_in_hosted_mode(tmp_path: Path, no_loading: list[str]) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.ui.test_app_client import running_app

    with running_app(tmp_path / "app", allowed_models=("embedded",)) as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="switched off on this server") as raised:
            client.predict([], "detect from the files", "", None, None, None, "embedded", "base", "mean",
                           "", False, "/tmp/*/*pairs.jsonl", "", api_name="/evaluate")
    assert "/tmp" not in str(raised.value).replace("'/tmp/*/*pairs.jsonl'", "")
    assert no_loading == []
