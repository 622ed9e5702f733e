"""Model work nobody waits for any more is stopped between forward passes.

Gradio drops a queued event whose visitor has gone (the page closed, the API client
disconnected) before it starts, and marks a running one as no longer alive, but cannot stop the
thread that runs it: a large Score request would hold the only model slot for nobody. A handler
that runs model work does so under `stop_when(abandoned(request, seconds))`: the scorer's
`check_stop()` between passes (`core.engine.stopping`) then ends it once gradio has marked every
event of the visitor's session that is running as gone, or once it has run `seconds`.

Shortcut taken on purpose: "gone" is read from gradio's queue (`Blocks._queue.active_jobs`,
events with `alive`), not a public API; when that is not there (another gradio version, a
direct call in a test) only the deadline applies. On ZeroGPU the work runs in another process,
under ZeroGPU's own time limit, and is not stopped from here.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def abandoned(request: Any, seconds: float) -> Callable[[], bool]:
    """A `should_stop` for `core.engine.stopping.stop_when`: true once the visitor of `request`
    (a `gr.Request`, or None) has gone, or `seconds` after this call."""
    deadline = time.monotonic() + seconds
    gone = _gone(request)

    def should_stop() -> bool:
        return time.monotonic() > deadline or gone()

    return should_stop


def _gone(request: Any) -> Callable[[], bool]:
    try:
        session = request.session_hash
        queue = request.request.app.get_blocks()._queue
        queue.active_jobs  # noqa: B018 - present in the gradio versions this reads
    except AttributeError:
        return lambda: False
    if not session:
        return lambda: False

    def gone() -> bool:
        mine = [event for jobs in list(queue.active_jobs) if jobs for event in list(jobs)
                if getattr(event, "session_hash", None) == session]
        return bool(mine) and not any(getattr(event, "alive", True) for event in mine)

    return gone
