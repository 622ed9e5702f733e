"""The CPU allocator setting: freed activation buffers are reused instead of faulted in again."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from core.engine.fast import allocator

from core.engine import scorer as scorer_module
from core.engine.config import ScoringConfig
from core.engine.models import load_model
from core.engine.scorer import FLRScorer

glibc_only = pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc (Linux)")


def _faults_while_reallocating(megabytes: int, times: int) -> int:
    """Minor page faults while a tensor of this size is allocated, written and freed repeatedly."""
    elements = megabytes * (1 << 20) // 4
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.empty(elements, dtype=torch.float32).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc_only
def test_freed_blocks_are_reused_after_keep_freed_memory():
    assert allocator.keep_freed_memory() is True
    _faults_while_reallocating(16, 5)  # the first rounds grow the heap
    pages = 16 * (1 << 20) // resource.getpagesize()
    # Without the setting each 16 MB tensor is a fresh mmap: about `pages` faults per round, so
    # 10 rounds fault about 10 x `pages`. The best of three measurements: a `malloc_trim` from a
    # long-lived part of an earlier test (an app's last model job ending) can land in one of them
    # and cost one round of faults (CI saw exactly `pages` once).
    assert min(_faults_while_reallocating(16, 10) for _ in range(3)) < pages


def test_keep_freed_memory_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator._glibc() is None
    assert allocator.keep_freed_memory() is False


def test_cpu_scorer_applies_it_and_other_devices_do_not(tiny_model_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(scorer_module.allocator, "keep_freed_memory", lambda: calls.append(1))
    config = ScoringConfig(model=str(tiny_model_dir), device="cpu")
    loaded = load_model(config)
    FLRScorer(loaded, config)
    assert calls == [1]
    loaded.device = torch.device("meta")  # any non-CPU device
    FLRScorer(loaded, config)
    assert calls == [1]
