"""Keeping freed activation memory in the process on CPU (glibc's malloc).

A packed scoring pass allocates and frees tensors of several megabytes in every layer (MLP
intermediates, attention outputs, logits blocks). glibc serves an allocation above its mmap
threshold with fresh pages from the kernel and hands them back on free, so every such tensor
pays one page fault per 4 KiB on first touch: measured on the embedded model and the 518-token
conversation of `benchmarks/bench_scoring.py`, about 100,000 faults (0.2 s of system time) per
scored reply, and up to 800,000 after the heap had been trimmed. Raising the mmap threshold to
its maximum and the trim threshold far above it keeps freed blocks in the heap, where the next
pass reuses them: no faults after the first pass.

The shortcut taken on purpose: this is process-wide and keeps the process at its peak heap size
(a scoring process reaches that peak on every pass anyway). Other C libraries (musl, macOS)
are left alone.

That is right for a batch command (`flr evaluate`, `flr score`), which ends when its work does.
A long-lived process (the app, `flr serve`) would keep one large request's peak resident for
hours, so it calls `release_freed_memory` once it has no model work left (the app when its last
model job ends, the server when its queue is empty): unreachable Python objects are collected
and glibc's `malloc_trim` hands every free page of every arena back to the kernel. Passes within
a request, and requests that follow each other closely, still reuse the kept blocks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 1 << 30  # never give the top of the heap back for less than this


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to `MMAP_THRESHOLD` for reuse instead of returning them
    to the kernel. Idempotent; returns whether the settings took (False off glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        log.debug("mallopt refused the thresholds; CPU scoring keeps glibc's defaults")
    return ok


def release_freed_memory() -> bool:
    """Collect unreachable Python objects and give the heap's free pages back to the kernel
    (glibc's `malloc_trim(0)`), for a long-lived process between requests. Returns whether
    memory was handed back (False off glibc, where only the collection runs)."""
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    return libc.malloc_trim(0) == 1


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has it; musl's mallopt does nothing
    except (OSError, AttributeError):
        return None
    return libc
