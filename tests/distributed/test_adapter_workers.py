"""`--model ADAPTER_DIR` on Ray workers: each worker loads the adapter folder on its recorded base
(through `core.engine.models.load_model`, as every command does) and the scores are those of one
process, to the last bit, and not the base model's. Local Ray instance with 2 CPUs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.cli.main import main


def test_score_with_an_adapter_on_two_workers_matches_one_process(
        ray_instance: Any, tiny_adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FLR_CACHE_DIR", str(tmp_path / "cache"))
    convs = tmp_path / "convs.jsonl"
    convs.write_text("".join(json.dumps([f"Question {i}?", f"Answer number {i}" + "!" * i]) + "\n"
                             for i in range(5)))
    common = ["--input", str(convs), "--mode", "feedback", "--device", "cpu"]
    adapter = [*common, "--model", str(tiny_adapter_dir)]
    assert main(["score", *adapter, "--output", str(tmp_path / "one.jsonl")]) == 0
    assert main(["score", *adapter, "--output", str(tmp_path / "two.jsonl"),
                 "--ray", "local", "--workers", "2", "--shard-size", "2"]) == 0
    assert "5 scored on 2 Ray worker(s), 0 from the score cache" in capsys.readouterr().err
    assert main(["score", *common, "--model", str(tiny_model_dir), "--output", str(tmp_path / "base.jsonl")]) == 0
    one, two, base = ([json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
                      for name in ("one", "two", "base"))
    # same numbers up to float summation order on the workers (Ray shards pack differently)
    assert [r["flr"] for r in two] == pytest.approx([r["flr"] for r in one], abs=1e-6)
    assert all(abs(a["flr"] - b["flr"]) > 1e-3 for a, b in zip(one, base))  # the workers applied the adapter
