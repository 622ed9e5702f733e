"""Datasets by name through the `datasets` library: a local folder laid out as on the Hub
(never a download), and the offline error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputError
from core.evaluation.detect import detect_benchmarks
from core.evaluation.named_datasets import dataset_file

pytest.importorskip("datasets")


def hub_folder(root: Path) -> Path:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"poor {i}",
             "subset": "alpacaeval-easy" if i < 3 else "donotanswer", "id": i} for i in range(5)]
    (root / "data").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "data" / "filtered-00000-of-00001.parquet")
    pd.DataFrame(rows[:2]).to_parquet(root / "data" / "raw-00000-of-00001.parquet")
    return root


def test_a_split_of_a_dataset_folder_is_evaluated_like_a_file(tmp_path: Path) -> None:
    folder = hub_folder(tmp_path / "reward-bench")
    path = dataset_file(str(folder), "filtered", folder=tmp_path / "out", datasets_cache=tmp_path / "hf")
    (b,) = detect_benchmarks([path])
    assert b.name == "reward-bench_filtered" and b.n == 5 and b.source_format == "rewardbench"
    assert set(b.frame["subset"]) == {"alpacaeval-easy", "donotanswer"}
    with pytest.raises(InputError, match="several splits .*filtered, raw.*--split"):
        dataset_file(str(folder), None, folder=tmp_path / "out", datasets_cache=tmp_path / "hf")
    with pytest.raises(InputError, match="Unknown split"):
        dataset_file(str(folder), "nope", folder=tmp_path / "out", datasets_cache=tmp_path / "hf")


def test_offline_error_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError) as err:
        dataset_file("no-such-org/no-such-dataset", "test", folder=tmp_path / "out",
                     datasets_cache=tmp_path / "hf")
    assert "no-such-org/no-such-dataset" in str(err.value) and "datasets cache" in str(err.value)


def test_cli_dataset_flag_errors_and_a_report_that_is_never_overwritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from core.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--split", "raw", "--no-cache"]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", str(tmp_path / "none"), "--elo-map", "bad", "--no-cache"]) == 2
    assert "expected MODEL=ELO_NAME" in capsys.readouterr().err
    for side, value in (("accept", 1.0), ("reject", 0.0)):
        (tmp_path / f"p_{side}_relevance.jsonl").write_text("".join(
            json.dumps({"conversation": [f"q{i}", f"{side} {i}"], "positive": [value], "negative": [0.0]}) + "\n"
            for i in range(3)))
    (tmp_path / "REPORT.json").write_text("{}")  # an earlier report
    files = [str(tmp_path / "p_accept_relevance.jsonl"), str(tmp_path / "p_reject_relevance.jsonl")]
    assert main(["evaluate", *files, "--no-cache"]) == 0
    assert main(["evaluate", *files, "--no-cache"]) == 0
    assert (tmp_path / "REPORT.json").read_text() == "{}"
    assert json.loads((tmp_path / "REPORT-3.json").read_text())["benchmarks"][0]["n"] == 3
    assert "report: " + str(tmp_path / "REPORT-3.json") in capsys.readouterr().out
