"""Dynamic batching: one worker thread owns the scorer and scores concurrent requests together.

Requests are queued (a bounded queue: a full one is refused at once, so a trainer backs off
instead of hanging); the worker takes the oldest, waits up to `max_wait_ms` for more, and scores
every conversation gathered in one `score_many` call per follow-up set. `score_many` results do
not depend on which conversations share a pass, so a reward never depends on what else was
being scored at the time.

Shortcut taken on purpose: if a gathered batch fails (one request's conversation cannot be
scored), its requests are scored again one by one, so only the bad request gets the error.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.errors import FLRError
from core.serving.metrics import Metrics

if TYPE_CHECKING:  # the scorer module imports torch; this one stays light
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)


class ServerBusy(FLRError):
    """The request queue is full; the caller should retry after a short wait."""


@dataclass
class _Job:
    conversations: list[Conversation]
    followups: FollowupSet
    future: Future = field(default_factory=Future)


class BatchWorker:
    """A thread that scores queued requests in batches; `submit` returns a future of results."""

    def __init__(self, scorer: "Scorer", *, max_wait_ms: float = 5.0, max_batch: int = 64,
                 max_queue: int = 64, metrics: Metrics | None = None) -> None:
        self.scorer = scorer
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_batch = max(1, max_batch)  # conversations gathered into one pass at most
        self.metrics = metrics or Metrics()
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, max_queue))
        self._busy = 0  # requests taken off the queue and not answered yet
        self._thread = threading.Thread(target=self._run, name="flr-batcher", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._started:
            self._queue.put(None)  # wakes the worker; it finishes the batch in hand first
            self._thread.join(timeout)
            self._started = False

    @property
    def depth(self) -> int:
        """Requests waiting or being scored."""
        return self._queue.qsize() + self._busy

    def submit(self, conversations: Sequence[Conversation], followups: FollowupSet) -> "Future[list[ConversationScore]]":
        job = _Job(list(conversations), followups)
        if not job.conversations:
            job.future.set_result([])
            return job.future
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise ServerBusy(f"the scoring queue is full ({self._queue.maxsize} requests waiting); "
                             "retry shortly") from None
        return job.future

    def score(self, conversations: Sequence[Conversation], followups: FollowupSet,
              timeout: float | None = None) -> list[ConversationScore]:
        """Submit and wait (for callers on ordinary threads)."""
        return self.submit(conversations, followups).result(timeout)

    # -- worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._busy = len(batch)
            try:
                self._score(batch)
            finally:
                self._busy = 0
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        batch = [first]
        size = len(first.conversations)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
            size += len(job.conversations)
        return batch, False

    def _score(self, batch: list[_Job]) -> None:
        groups: dict[FollowupSet, list[_Job]] = {}
        for job in batch:
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller gave up (timeout, disconnect); a running future cannot be cancelled
            groups.setdefault(job.followups, []).append(job)
        for followups, jobs in groups.items():
            self._score_group(jobs, followups)

    def _score_group(self, jobs: list[_Job], followups: FollowupSet) -> None:
        conversations = [c for job in jobs for c in job.conversations]
        try:
            results = self.scorer.score_many(conversations, followups)
        except Exception as err:  # noqa: BLE001 - handed to the waiting request(s), never lost
            if len(jobs) > 1:
                for job in jobs:  # only the request that cannot be scored gets the error
                    self._score_group([job], followups)
                return
            if not isinstance(err, FLRError):
                log.exception("scoring failed")
            jobs[0].future.set_exception(err)
            return
        self.metrics.observe_batch(len(conversations))
        start = 0
        for job in jobs:
            n = len(job.conversations)
            job.future.set_result(results[start:start + n])
            start += n
