"""Running model work on Hugging Face ZeroGPU when the app is hosted there, plainly elsewhere.

`spaces` is imported only if it is installed (it is on Spaces); `spaces.GPU` is a no-op outside
ZeroGPU hardware. On ZeroGPU each decorated call gets the GPU for a limited time, so the model
is loaded in the main process (`ScorerHub`) and only the scoring call runs inside
`spaces.GPU`; batch runs are split into chunks that each fit `AppSettings.gpu_seconds`.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")

try:  # pragma: no cover - only on Hugging Face Spaces
    import spaces as _spaces
except ImportError:
    _spaces = None


def on_spaces() -> bool:
    """True when the `spaces` package is importable (a Hugging Face Space)."""
    return _spaces is not None


def gpu_runner(seconds: int) -> Callable[..., Any]:
    """`run(fn, *args)` calls `fn(*args)` inside `spaces.GPU(duration=seconds)` when available."""

    def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    if _spaces is None:
        return run
    return _spaces.GPU(duration=seconds)(run)
