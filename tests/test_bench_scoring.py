"""The speed benchmark script runs end to end and checks that its timed paths agree.

On the tiny model the timings mean nothing; what is tested is that the script still runs, that
the engine and the paper's loop give the same scores on both conversations (its exit status),
and that every figure the README table quotes is written.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_scoring", ROOT / "benchmarks" / "bench_scoring.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_and_engine_agrees_with_the_loop(tiny_model_dir, shared_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = _bench_module().main(["--model", str(tiny_model_dir), "--data", str(shared_data / "mt_bench_questions"),
                                   "--skip-lm-eval", "--repeats", "2", "--pairs", "3", "--int8", "--json", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    precision = report["precision"]
    assert set(precision["dtypes"]) == {"float32", "bfloat16"} and precision["bf16_over_fp32"] > 0
    assert all(row["floor_s"] > 0 and row["shared_prefix"] for row in precision["dtypes"].values())
    agreement = precision["agreement"]  # 3 pairs: 1 HH-RLHF, 2 LLMBar (the second set takes the rest)
    assert agreement["pairs"] == 3 and sum(agreement["sources"].values()) == 3
    assert 0 < agreement["max_followup_difference"] < 0.05  # bf16 really ran, and stayed close
    int8 = precision["int8"]  # int8 dynamic quantisation timed and compared with fp32 on the long reply
    assert int8["engine_s"] > 0 and int8["fp32_engine_s"] > 0 and 0 < int8["max_followup_difference"] < 10
    assert [row["name"] for row in report["rows"]] == ["2-turn", "long"]
    for row in report["rows"]:
        assert row["agree"] is True
        assert row["loop_s"] > 0 and row["engine_s"] > 0 and row["floor_s"] > 0
        assert len(row["engine_floor_pairwise_all"]) == 2
        assert row["engine_floor_pairwise"] > 0
    printed = capsys.readouterr().out
    assert "agree" in printed and "preferred reply changed on" in printed and "native bf16" in printed and "int8 dynamic" in printed


def test_decision_agreement_counts_changed_preferences_and_differences_by_hand():
    """Five hand-made pairs, (FLR, follow-up values) per reply. Pair 0 and 1 keep their preferred
    reply, pair 2 goes from a tie to the chosen one, pair 3 from chosen to rejected, pair 4 from a
    tie to the rejected one (a count of "chosen wins" alone would miss it): 3 of 5 change.
    Follow-up differences: 0.1, 0.1 (pair 0), 0.2 (2), 0.4 (3), 0.02 (4) over 20 values."""
    reference = [((1.0, [0.0, 1.0]), (0.0, [0.0, 0.0])), ((0.0, [0.5, 0.5]), (1.0, [1.0, 1.0])),
                 ((0.5, [0.0, 0.0]), (0.5, [0.0, 0.0])), ((2.0, [2.0, 2.0]), (1.0, [1.0, 1.0])),
                 ((0.3, [0.3, 0.3]), (0.3, [0.3, 0.3]))]
    other = [((0.9, [0.0, 0.9]), (0.1, [0.1, 0.0])), ((0.0, [0.5, 0.5]), (1.0, [1.0, 1.0])),
             ((0.6, [0.0, 0.2]), (0.5, [0.0, 0.0])), ((1.0, [2.0, 2.0]), (1.5, [1.0, 1.4])),
             ((0.3, [0.3, 0.3]), (0.31, [0.3, 0.32]))]
    got = _bench_module().decision_agreement(reference, other)
    assert (got.pairs, got.changed, got.changed_share) == (5, 3, 0.6)
    assert got.max_followup_difference == pytest.approx(0.4)
    assert got.mean_followup_difference == pytest.approx(0.82 / 20)
    assert got.reference_flr == pytest.approx(6.6 / 10) and got.other_flr == pytest.approx(6.21 / 10)
    assert got.flr_difference == pytest.approx(-0.039)
    assert _bench_module().decision_agreement(reference, reference).changed == 0
    with pytest.raises(ValueError, match="different follow-ups"):
        _bench_module().decision_agreement(reference[:1], [((1.0, [0.0]), (0.0, [0.0]))])


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
