"""Dynamic batching: one worker thread owns the scorer and scores concurrent requests together.

A trainer sends its whole rollout at once, often one sample per request (OpenRLHF posts every
sample of a 1024-sample rollout batch together, verl calls `compute_score` once per sample,
concurrently). So admission is bounded by what the waiting requests cost in memory (their text,
`max_queue_bytes`) and by a generous count (`max_queue`), not by a small number of requests: a
burst of thousands is admitted, and only a burst beyond what memory allows is refused at once
(`ServerBusy`, which the server answers with 503 and Retry-After).

The worker takes the oldest request, waits up to `max_wait_ms` for more (not at all when more are
already waiting), and scores every conversation gathered, up to `max_batch`, in one `score_many`
call per follow-up set. `score_many` results do not depend on which conversations share a pass,
so a reward never depends on what else was being scored at the time. A request whose client went
away or timed out (`abandon`) is dropped before it is scored, and a batch being scored stops
after the pass in flight once none of its requests is waited for. When the queue is empty the
worker hands freed memory back to the operating system (`allocator.release_freed_memory`).

Shortcut taken on purpose: if a gathered batch fails (one request's conversation cannot be
scored), its requests are scored again one by one, so only the bad request gets the error.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.engine.fast import allocator
from core.engine.stopping import stop_when
from core.errors import FLRError, StoppedError
from core.serving.metrics import Metrics

if TYPE_CHECKING:  # the scorer module imports torch; this one stays light
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)
REQUEST_OVERHEAD_BYTES = 4096  # a waiting request's objects, futures and socket buffers, roughly


class ServerBusy(FLRError):
    """The server holds as much waiting work as it may; the caller should retry after a short wait."""


def cost_bytes(conversations: Sequence[Conversation]) -> int:
    """What a request holds in memory while it waits: its text (4 bytes a character at most) and overhead."""
    return REQUEST_OVERHEAD_BYTES + 4 * sum(len(u) for c in conversations for u in c.utterances)


@dataclass
class _Job:
    conversations: list[Conversation]
    followups: FollowupSet
    cost: int = 0
    future: Future = field(default_factory=Future)


class BatchWorker:
    """A thread that scores queued requests in batches; `submit` returns a future of results."""

    def __init__(self, scorer: "Scorer", *, max_wait_ms: float = 5.0, max_batch: int = 64,
                 max_queue: int = 16384, max_queue_bytes: int = 1 << 30,
                 metrics: Metrics | None = None) -> None:
        self.scorer = scorer
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_batch = max(1, max_batch)  # conversations gathered into one pass at most
        self.max_queue = max(1, max_queue)
        self.max_queue_bytes = max(1, max_queue_bytes)
        self.metrics = metrics or Metrics()
        self._jobs: deque[_Job] = deque()
        self._bytes = 0  # cost of the jobs in `_jobs`
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = 0  # requests taken off the queue and not answered yet
        self._thread: threading.Thread | None = None
        self._abandoned: weakref.WeakSet[Future] = weakref.WeakSet()  # see `abandon`

    def start(self) -> None:
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="flr-batcher", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True  # the worker finishes the batch in hand first
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    @property
    def depth(self) -> int:
        """Requests waiting or being scored."""
        return len(self._jobs) + self._busy

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def submit(self, conversations: Sequence[Conversation], followups: FollowupSet) -> "Future[list[ConversationScore]]":
        job = _Job(list(conversations), followups, cost_bytes(conversations))
        if not job.conversations:
            job.future.set_result([])
            return job.future
        with self._cond:
            if len(self._jobs) >= self.max_queue:
                raise ServerBusy(f"the scoring queue is full ({len(self._jobs)} requests waiting, the limit of "
                                 "--max-queue); retry shortly")
            if self._jobs and self._bytes + job.cost > self.max_queue_bytes:
                raise ServerBusy(f"the waiting requests already hold {self._bytes >> 20} MB of the "
                                 f"{self.max_queue_bytes >> 20} MB the server may queue (--max-queue-mb); "
                                 "retry shortly")
            self._jobs.append(job)
            self._bytes += job.cost
            self._cond.notify()
        return job.future

    def score(self, conversations: Sequence[Conversation], followups: FollowupSet,
              timeout: float | None = None) -> list[ConversationScore]:
        """Submit and wait (for callers on ordinary threads)."""
        return self.submit(conversations, followups).result(timeout)

    # -- worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._gather()
            if batch is None:
                return
            try:
                self._score(batch)
            finally:
                with self._cond:
                    self._busy = 0
                    idle = not self._jobs
            if idle:  # a long-lived process: one large request's peak must not stay resident
                allocator.release_freed_memory()

    def _take(self) -> _Job | None:
        """The oldest job still wanted; cancelled ones are dropped here, unscored."""
        while self._jobs:
            job = self._jobs.popleft()
            self._bytes -= job.cost
            if job.future.set_running_or_notify_cancel():
                return job
            self.metrics.observe_dropped()
        return None

    def _gather(self) -> list[_Job] | None:
        with self._cond:
            first = None
            while first is None:
                first = self._take()
                if first is None:
                    if self._stopping:
                        return None
                    self._cond.wait()
            batch, size = [first], len(first.conversations)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch and not self._stopping:
                if self._jobs and size + len(self._jobs[0].conversations) > self.max_batch:
                    break  # the next request would overfill the pass; it starts the next one
                job = self._take()
                if job is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                    continue
                batch.append(job)
                size += len(job.conversations)
            self._busy = len(batch)
            return batch

    def _score(self, batch: list[_Job]) -> None:
        groups: dict[FollowupSet, list[_Job]] = {}
        for job in batch:
            groups.setdefault(job.followups, []).append(job)
        for followups, jobs in groups.items():
            self._score_group(jobs, followups)

    def abandon(self, future: Future) -> None:
        """Nobody waits for `future` any more (its client went away or timed out): dropped
        unscored if it is still queued, and the pass in flight stops once every request of its
        batch is abandoned."""
        future.cancel()
        self._abandoned.add(future)

    def _score_group(self, jobs: list[_Job], followups: FollowupSet) -> None:
        conversations = [c for job in jobs for c in job.conversations]

        def nobody_waits() -> bool:
            return all(job.future in self._abandoned for job in jobs)

        try:
            with stop_when(nobody_waits):
                results = self.scorer.score_many(conversations, followups)
        except StoppedError:
            self.metrics.observe_dropped()
            for job in jobs:
                job.future.set_exception(StoppedError("dropped: its client went away or timed out"))
            return
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
