"""bf16 on CPU: the `--dtype auto` decision from the CPU's flags, the fp32-multiply path for CPUs
without bf16 hardware, and how far bf16 scores may move from fp32's on the tiny model.

The CPU flags are monkeypatched, so the decision is tested for an AMX Xeon, an AVX512-BF16 CPU
and an AVX2-only AMD on any machine; the flag lines are copied from `lscpu` of such machines.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.engine import precision
from core.engine.config import ScoringConfig
from core.engine.conversation import from_utterances
from core.engine.followups import followups_from_mapping
from core.engine.models import load_model, resolve_dtype
from core.engine.scorer import FLRScorer

XEON_AMX = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
            "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8\n"
            "processor\t: 1\nmodel name\t: ignored\nflags\t\t: fpu\n")
AVX512_BF16 = "model name\t: AMD EPYC 9R14 (Zen 4)\nflags\t\t: avx2 avx512f avx512_bf16\n"
AMD_AVX2 = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx f16c avx2 fma\n"
CPU = torch.device("cpu")


def use_cpu(monkeypatch, cpuinfo: str) -> precision.CpuInfo:
    info = precision.parse_cpuinfo(cpuinfo)
    monkeypatch.setattr(precision, "cpu_info", lambda: info)
    return info


def test_cpuinfo_gives_the_first_processors_name_and_flags():
    info = precision.parse_cpuinfo(XEON_AMX)
    assert info.name == "Intel(R) Xeon(R) Platinum 8481C"
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= info.flags and info.native_bf16
    assert not precision.parse_cpuinfo(AMD_AVX2).native_bf16
    assert precision.parse_cpuinfo(AMD_AVX2).describe() == "AMD EPYC (avx2; no amx_bf16, avx512_bf16)"


HOLDS = precision.Agreement(pairs=200, changed=2, where="a test")  # 1%: the bar, met


@pytest.mark.parametrize("cpuinfo", [XEON_AMX, AVX512_BF16, AMD_AVX2, ""])
def test_auto_stays_fp32_on_every_cpu_while_the_measured_agreement_fails(monkeypatch, cpuinfo):
    """The recorded measurement (7 of 200 pairs changed) fails the 1% bar, so native bf16
    hardware alone does not make `auto` pick bf16; asked-for dtypes are always taken."""
    use_cpu(monkeypatch, cpuinfo)
    assert not precision.BF16_CPU_AGREEMENT.holds
    assert resolve_dtype("auto", CPU) == torch.float32
    assert resolve_dtype("float32", CPU) == torch.float32  # asked for: always fp32
    assert resolve_dtype("bfloat16", CPU) == torch.bfloat16


@pytest.mark.parametrize("cpuinfo, expected", [(XEON_AMX, torch.bfloat16), (AVX512_BF16, torch.bfloat16),
                                               (AMD_AVX2, torch.float32), ("", torch.float32)])
def test_with_an_agreement_that_holds_auto_picks_bf16_on_cpu_only_with_bf16_hardware(monkeypatch, cpuinfo,
                                                                                       expected):
    use_cpu(monkeypatch, cpuinfo)
    monkeypatch.setattr(precision, "BF16_CPU_AGREEMENT", HOLDS)
    assert resolve_dtype("auto", CPU) == expected
    assert resolve_dtype("float32", CPU) == torch.float32


def test_the_agreement_bar_is_one_percent_of_the_pairs():
    assert precision.Agreement(200, 2, "").holds and not precision.Agreement(200, 3, "").holds
    assert not precision.Agreement(0, 0, "").holds  # no measurement: no bf16


def test_the_decision_and_the_cpu_are_stated(monkeypatch):
    use_cpu(monkeypatch, XEON_AMX)
    block = precision.decide_dtype("auto", CPU).as_dict()
    assert block["dtype"] == "float32" and "amx_bf16" in block["reason"]  # native, but the agreement fails
    assert "7 of 200 held-out pairs (3.5%" in block["reason"] and "--dtype bfloat16" in block["reason"]
    assert block["cpu"].startswith("Intel(R) Xeon(R) Platinum 8481C (")
    monkeypatch.setattr(precision, "BF16_CPU_AGREEMENT", HOLDS)
    block = precision.decide_dtype("auto", CPU).as_dict()
    assert block["dtype"] == "bfloat16" and "amx_bf16" in block["reason"]
    use_cpu(monkeypatch, AMD_AVX2)
    block = precision.decide_dtype("auto", CPU).as_dict()
    assert block == {"requested": "auto", "dtype": "float32", "cpu": "AMD EPYC (avx2; no amx_bf16, avx512_bf16)",
                     "reason": block["reason"]}
    assert "no native bf16" in block["reason"]
    assert "multiply in float32" in precision.decide_dtype("bfloat16", CPU).reason


def test_a_loaded_model_and_its_scorer_carry_the_decision_it_was_loaded_under(tiny_model_dir, monkeypatch):
    use_cpu(monkeypatch, XEON_AMX)
    monkeypatch.setattr(precision, "BF16_CPU_AGREEMENT", HOLDS)  # auto picks bf16: the decision is what was loaded
    config = ScoringConfig(model=str(tiny_model_dir), device="cpu", dtype="auto")
    loaded = load_model(config)
    assert loaded.dtype == torch.bfloat16 and loaded.dtype_decision.dtype == "bfloat16"
    assert FLRScorer(loaded, config).dtype_decision == precision.decide_dtype("auto", CPU).as_dict()


def test_emulated_bf16_linear_multiplies_in_fp32_and_rounds_to_bf16(monkeypatch):
    use_cpu(monkeypatch, AMD_AVX2)
    torch.manual_seed(0)
    x = torch.randn(5, 3, 24).bfloat16()
    for rows in (7, 2 * precision._WIDEN_BLOCK + 5):  # one block; several, the last partial
        w, b = torch.randn(rows, 24).bfloat16(), torch.randn(rows).bfloat16()
        got = precision.linear(x, w, b)
        assert got.dtype == torch.bfloat16
        assert torch.equal(got, F.linear(x.float(), w.float(), b.float()).bfloat16())
    assert precision.linear(x.float(), w.float()).dtype == torch.float32  # fp32 is left alone


def test_native_bf16_keeps_torchs_bf16_linear(monkeypatch):
    use_cpu(monkeypatch, XEON_AMX)
    calls = []
    monkeypatch.setattr(precision.F, "linear", lambda *a: calls.append([t.dtype for t in a if t is not None]))
    precision.linear(torch.ones(2, 4).bfloat16(), torch.ones(3, 4).bfloat16())
    assert calls == [[torch.bfloat16, torch.bfloat16]]


def test_only_bf16_models_on_cpus_without_bf16_hardware_are_switched(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    use_cpu(monkeypatch, AMD_AVX2)
    assert precision.compute_in_fp32(model) == 0  # fp32 weights: nothing to do
    model.to(torch.bfloat16)
    use_cpu(monkeypatch, XEON_AMX)
    assert precision.compute_in_fp32(model) == 0
    use_cpu(monkeypatch, AMD_AVX2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert precision.compute_in_fp32(model) == 2 and precision.compute_in_fp32(model) == 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    x = torch.randn(3, 4).bfloat16()
    hidden = F.linear(x.float(), model[0].weight.float(), model[0].bias.float()).bfloat16().relu()
    expected = F.linear(hidden.float(), model[2].weight.float(), model[2].bias.float()).bfloat16()
    assert torch.equal(model(x), expected)


FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["That's exactly what I asked about.", "Thanks, very helpful!"],
                  "negative": ["That has nothing to do with my question.", "No."]},
    "correctness": {"positive": ["Right, that matches what I know."],
                    "negative": ["That's wrong.", "I don't think that's correct at all, sorry."]},
})
CONVERSATIONS = [
    from_utterances(["What is the capital of France?", "Paris is the capital of France."]),
    from_utterances(["Write a short poem about the sea.", "The sea is blue and the sky is too.",
                     "Could you explain that in simpler words, please?", "The sea and sky are blue."]),
]
BF16_BOUND = 0.05  # per-token mean log-likelihood; measured on the tiny model: up to 0.018
FLR_BOUND = 0.03  # a conversation's overall FLR; measured: up to 0.011


@pytest.mark.parametrize("cpuinfo", [AMD_AVX2, XEON_AMX])
def test_bf16_scores_stay_close_to_fp32_and_keep_the_fast_path(tiny_model_dir, monkeypatch, cpuinfo):
    """bf16 per follow-up within `BF16_BOUND` of fp32, the overall FLR within `FLR_BOUND`,
    on the emulated path and on torch's own bf16 kernels (what a bf16 CPU runs); and the
    shared-prefix self-check passes in bf16 (before, bf16 always fell back to per-sequence)."""
    use_cpu(monkeypatch, cpuinfo)
    scores = {}
    for dtype in ("float32", "bfloat16"):
        config = ScoringConfig(model=str(tiny_model_dir), device="cpu", dtype=dtype)
        scorer = FLRScorer(load_model(config), config)
        scores[dtype] = scorer.score_many(CONVERSATIONS, FOLLOWUPS)
        assert scorer.uses_shared_prefix
    for full, half in zip(scores["float32"], scores["bfloat16"]):
        a = [v for c in full.categories for v in c.positive + c.negative]
        b = [v for c in half.categories for v in c.positive + c.negative]
        assert max(abs(x - y) for x, y in zip(a, b)) < BF16_BOUND
        assert a != b  # bf16 really ran
        assert abs(full.flr - half.flr) < FLR_BOUND
