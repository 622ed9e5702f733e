"""Stopping model work on request, between forward passes.

A caller that may want to stop a long scoring call (the app's Cancel button, a server request
whose client went away) runs it under `stop_when(should_stop)`; the scorer calls `check_stop()`
before every forward pass and raises `StoppedError` once `should_stop()` is true, so a cancelled
job frees the CPU or GPU after the pass in flight rather than after the whole batch. Scores
already committed (the evaluation runner's cache chunks) stay.

It is a context variable rather than a scorer argument so that every `Scorer` keeps its
signature; the check runs in the thread (or task) that does the scoring.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

from core.errors import StoppedError

_SHOULD_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("flr_should_stop", default=None)


@contextlib.contextmanager
def stop_when(should_stop: Callable[[], bool] | None) -> Iterator[None]:
    """Scoring inside this block stops (raises `StoppedError`) once `should_stop()` is true."""
    token = _SHOULD_STOP.set(should_stop)
    try:
        yield
    finally:
        _SHOULD_STOP.reset(token)


def check_stop() -> None:
    """Raise `StoppedError` when the work in progress was asked to stop (called between passes)."""
    should_stop = _SHOULD_STOP.get()
    if should_stop is not None and should_stop():
        raise StoppedError("stopped on request; scores committed before the stop are kept")
