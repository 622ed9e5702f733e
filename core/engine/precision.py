"""Which floating-point type a model runs in, and how bfloat16 runs on a CPU without bf16 hardware.

`--dtype auto` on CPU would pick bfloat16 only where the CPU multiplies bf16 natively (Intel
AMX-BF16 or AVX512-BF16, read from /proc/cpuinfo at run time), where oneDNN's bf16 matrix
multiplies run at two to three times the fp32 rate, and only while bf16's measured agreement
with fp32 holds (`BF16_CPU_AGREEMENT`: the preferred reply of at most `MAX_CHANGED_SHARE` of
held-out pairs may change). It does not hold: on an AVX512-BF16 CPU bf16 scored the long reply
of `benchmarks/bench_scoring.py` 1.5-1.8x faster than fp32 but changed the preferred reply on 7
of 200 held-out pairs (3.5%), so `auto` stays float32 on every CPU and says why; `--dtype
bfloat16` is the user's choice of speed over that agreement. The rounding that changes those
pairs is bf16's own (inputs rounded to 8 bits of mantissa, fp32 accumulation), the same on AMX.

On a CPU without bf16 hardware torch has no fast bf16 matrix multiply at all: measured on an
AMD EPYC (Zen 3, AVX2) with one thread,
`torch.nn.functional.linear` in bf16 ran at 7-9 GFLOP/s against 50-80 in fp32 at the embedded
model's projection shapes, so a bf16 model ran the long reply of `benchmarks/bench_scoring.py`
about 7x slower than fp32.

When a user asks for bfloat16 on such a CPU anyway (half the weight memory), `compute_in_fp32`
makes the model's linear layers multiply in fp32: activations and weights are widened for the
multiply and the result is rounded back to bf16, so the model's values keep bf16's rounding
(what native bf16 hardware would give, to its accumulation order) at fp32's speed. The shortcut
taken on purpose: each call widens its weight again (a few hundred microseconds at the embedded
model's shapes, against tens of milliseconds of multiply) instead of keeping an fp32 copy, which
would give back the memory bf16 was asked for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs that multiply bf16 natively
MAX_CHANGED_SHARE = 0.01  # bf16 may change the preferred reply of at most this share of held-out pairs
CPUINFO = Path("/proc/cpuinfo")
_WIDEN_BLOCK = 4096  # weight rows widened to fp32 at once (4096 x 576 x 4 bytes: 9 MB)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and the bf16-relevant flags it reports."""

    name: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    def describe(self) -> str:
        """e.g. "AMD EPYC (avx2; no amx_bf16, avx512_bf16)"."""
        have = [f for f in ("avx2", "avx512f", *NATIVE_BF16_FLAGS, "amx_tile") if f in self.flags]
        lack = [f for f in NATIVE_BF16_FLAGS if f not in self.flags]
        parts = ", ".join(have) or "no vector flags read"
        return f"{self.name} ({parts}" + (f"; no {', '.join(lack)})" if lack else ")")


@dataclass(frozen=True)
class DtypeDecision:
    """What `--dtype` resolved to, and why (recorded in a report's provenance)."""

    requested: str
    dtype: str  # "float32", "bfloat16", "float16"
    reason: str
    cpu: str | None  # CpuInfo.describe() when the model runs on a CPU

    def as_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "dtype": self.dtype, "reason": self.reason, "cpu": self.cpu}


@dataclass(frozen=True)
class Agreement:
    """A measurement of bf16 against fp32 on held-out pairs (`benchmarks/bench_scoring.py`)."""

    pairs: int
    changed: int  # pairs whose preferred reply changed
    where: str  # model and CPU it was measured on

    @property
    def changed_share(self) -> float:
        return self.changed / self.pairs if self.pairs else 1.0  # no measurement: nothing holds

    @property
    def holds(self) -> bool:
        return self.changed_share <= MAX_CHANGED_SHARE

    def describe(self) -> str:
        return (f"bf16 changed the preferred reply on {self.changed} of {self.pairs} held-out pairs "
                f"({self.changed_share:.1%}; at most {MAX_CHANGED_SHARE:.0%} allowed) on {self.where}")


# Measured 2026-12-04 by `benchmarks/bench_scoring.py --dtype bfloat16 --pairs 200` (the README's
# Speed section has the whole run). Another measurement that holds, on more models, is what
# would let `auto` pick bf16 on native-bf16 CPUs.
BF16_CPU_AGREEMENT = Agreement(
    pairs=200, changed=7, where="the embedded SmolLM2-135M-Instruct, AMD EPYC with avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU, read once per process (empty flags where /proc/cpuinfo is absent)."""
    return parse_cpuinfo(CPUINFO.read_text(errors="replace") if CPUINFO.is_file() else "")


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's `model name` and `flags` lines of /proc/cpuinfo text."""
    name, flags = "", ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key == "flags" and not flags:
            flags = value
    if not name:
        import platform

        name = platform.processor() or platform.machine() or "unknown CPU"
    return CpuInfo(name, frozenset(flags.split()))


def decide_dtype(requested: str, device: Any, cpu: CpuInfo | None = None) -> DtypeDecision:
    """The dtype a model loads in for `requested` ("auto" or a dtype name) on `device`.

    "auto": bfloat16 on CUDA GPUs that support it, else float16 on GPU; float16 on Apple MPS;
    on CPU bfloat16 only where the CPU has native bf16 (`NATIVE_BF16_FLAGS`) and
    `BF16_CPU_AGREEMENT` holds, else float32.
    An explicit dtype is always taken as asked."""
    on_cpu = device.type == "cpu"
    cpu = (cpu or cpu_info()) if on_cpu else None
    described = cpu.describe() if cpu is not None else None
    if requested != "auto":
        reason = "asked for"
        if requested == "bfloat16" and cpu is not None and not cpu.native_bf16:
            reason += ("; this CPU has no bf16 hardware, so linear layers multiply in float32 "
                       "and round to bf16")
        return DtypeDecision(requested, requested, reason, described)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return DtypeDecision(requested, "bfloat16", "auto: the GPU supports bfloat16", None)
        return DtypeDecision(requested, "float16", "auto: the GPU has no bfloat16", None)
    if device.type == "mps":
        return DtypeDecision(requested, "float16", "auto: Apple GPU", None)
    if cpu is not None and cpu.native_bf16:
        have = ", ".join(f for f in NATIVE_BF16_FLAGS if f in cpu.flags)
        if BF16_CPU_AGREEMENT.holds:
            return DtypeDecision(requested, "bfloat16", f"auto: the CPU multiplies bf16 natively ({have})",
                                 described)
        return DtypeDecision(requested, "float32",
                             f"auto: the CPU multiplies bf16 natively ({have}), but "
                             f"{BF16_CPU_AGREEMENT.describe()}; --dtype bfloat16 is faster here",
                             described)
    return DtypeDecision(requested, "float32",
                         f"auto: the CPU has no native bf16 ({' or '.join(NATIVE_BF16_FLAGS)}), "
                         "where bf16 is slower than float32", described)


def emulated_bf16(dtype: Any, device: Any) -> bool:
    """Whether `dtype` on `device` is bf16 on a CPU that has no bf16 hardware."""
    return dtype == torch.bfloat16 and device.type == "cpu" and not cpu_info().native_bf16


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear`, multiplied in fp32 when the operands are bf16 on a CPU without bf16 hardware
    (the result keeps the input's dtype)."""
    if not emulated_bf16(x.dtype, x.device):
        return F.linear(x, weight, bias)
    wide = x.float()
    if weight.shape[0] <= _WIDEN_BLOCK:
        return F.linear(wide, weight.float(), None if bias is None else bias.float()).to(x.dtype)
    # A large weight (an output head) is widened a block of rows at a time: a whole widened
    # 49152 x 576 head is 113 MB of fresh pages per call, slower than the multiply itself.
    out = torch.empty(*x.shape[:-1], weight.shape[0], dtype=x.dtype, device=x.device)
    for first in range(0, weight.shape[0], _WIDEN_BLOCK):
        end = first + _WIDEN_BLOCK
        out[..., first:end] = F.linear(wide, weight[first:end].float(),
                                       None if bias is None else bias[first:end].float())
    return out


class Fp32ComputeLinear(torch.nn.Linear):
    """An `nn.Linear` whose multiply goes through `linear` (same parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def compute_in_fp32(model: torch.nn.Module) -> int:
    """Make every plain `nn.Linear` of a bf16 model on a CPU without bf16 hardware multiply in
    fp32 (`Fp32ComputeLinear`); elsewhere, or for other dtypes, nothing changes. Returns how
    many layers were switched (idempotent: 0 the second time)."""
    switched = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and emulated_bf16(module.weight.dtype, module.weight.device):
            module.__class__ = Fp32ComputeLinear
            switched += 1
    return switched
