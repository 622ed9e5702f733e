"""The speed benchmark script runs end to end and checks that its timed paths agree.

On the tiny model the timings mean nothing; what is tested is that the script still runs, that
the engine and the paper's loop give the same scores on both conversations (its exit status),
and that every figure the README table quotes is written.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_scoring", ROOT / "benchmarks" / "bench_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_and_engine_agrees_with_the_loop(tiny_model_dir, shared_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = _bench_module().main(["--model", str(tiny_model_dir), "--data", str(shared_data / "mt_bench_questions"),
                                   "--skip-lm-eval", "--repeats", "2", "--json", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    assert [row["name"] for row in report["rows"]] == ["2-turn", "long"]
    for row in report["rows"]:
        assert row["agree"] is True
        assert row["loop_s"] > 0 and row["engine_s"] > 0 and row["floor_s"] > 0
        assert len(row["engine_floor_pairwise_all"]) == 2
        assert row["engine_floor_pairwise"] > 0
    assert "agree" in capsys.readouterr().out


def test_benchmark_fails_when_scores_disagree(tiny_model_dir, shared_data, tmp_path, monkeypatch):
    module = _bench_module()
    real = module.FLRScorer.score_reference
    monkeypatch.setattr(module.FLRScorer, "score_reference",
                        lambda self, requests: [v + 1e-2 for v in real(self, requests)])
    status = module.main(["--model", str(tiny_model_dir), "--data", str(shared_data / "mt_bench_questions"),
                          "--conversations", "2-turn", "--skip-lm-eval", "--repeats", "1"])
    assert status == 1


@pytest.mark.embedded  # the script takes its token ids from the embedded model's tokenizer
def test_gpu_script_runs_on_a_small_shape_on_cpu(shared_data, capsys):
    """`benchmarks/gpu_8b_random.py` is meant for a lent GPU; a small shape runs it here, so the
    script works when one is lent (the MT-Bench data and the embedded tokenizer are needed)."""
    spec = importlib.util.spec_from_file_location("gpu_8b_random", ROOT / "benchmarks" / "gpu_8b_random.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shape = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 49152}
    assert module.main(["--device", "cpu", "--dtype", "float32", "--context", "200", "--repeats", "1",
                        "--layers", "2", "--shape", json.dumps(shape)]) == 0
    out = capsys.readouterr().out
    assert "follow-up tokens per second" in out and "engine's own linear-layer arithmetic" in out
    difference = float(out.split("one full pass each: |difference| ")[1].split()[0])
    assert difference < 1e-4
