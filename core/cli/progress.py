"""Progress on stderr while a command scores conversations, shared by the commands that do.

On a terminal, a tqdm bar; otherwise (stderr is a log file, a cluster job's output) a plain line
every `PROGRESS_SECONDS`: conversations done / total, the rate and the time left, measured from
the first scored chunk on so that loading the model does not count.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

PROGRESS_SECONDS = 10.0  # a progress line this often when stderr is a log file, not a terminal


class ScoringProgress:
    """A tqdm bar on stderr while conversations are scored; when stderr is not a terminal (a
    log file, a cluster job), a plain line every `PROGRESS_SECONDS`: done / total, rate, time
    left."""

    def __init__(self, stream: Any = None, clock: Any = time.monotonic,
                 every: float = PROGRESS_SECONDS) -> None:
        self._bar: Any = None
        self._stream = stream if stream is not None else sys.stderr
        self._clock, self._every = clock, every
        self._started: float | None = None  # when the first chunk was reported scored
        self._first_done = 0  # conversations done by then
        self._last = -math.inf  # when the last line was written
        self._last_done = -1  # conversations done as of that line

    def __enter__(self) -> "ScoringProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def __call__(self, done: int, total: int, message: str) -> None:
        if self._bar is None:
            if not self._stream.isatty():
                self._line(done, total, message)
                return
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="conv", file=sys.stderr, desc="scoring")
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.n = done
        self._bar.refresh()

    def _line(self, done: int, total: int, message: str) -> None:
        now = self._clock()
        if done > 0 and self._started is None:  # the rate is measured from the first chunk on,
            self._started, self._first_done = now, done  # not over the model's loading
        if (now - self._last < self._every and done < total) or self._last_done == total:
            return
        self._last, self._last_done = now, done
        elapsed = now - self._started if self._started is not None else 0.0
        rate = (done - self._first_done) / elapsed if elapsed > 0 else 0.0
        if done >= total:
            tail = "done"
        elif rate > 0:
            tail = f"{rate:.2f}/s, about {_duration((total - done) / rate)} left"
        else:
            tail = message
        print(f"scoring: {done}/{total} conversations ({100 * done / max(total, 1):.0f}%), {tail}",
              file=self._stream, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
