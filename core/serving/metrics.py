"""Counters and histograms of a reward server, rendered in Prometheus' text format.

Kept in the standard library on purpose (no prometheus_client dependency): a handful of
counters and two fixed-bucket histograms, updated under one lock.
"""

from __future__ import annotations

import threading
from collections import Counter

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # conversations per scoring pass
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # seconds


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {self.sum:.6f}", f"{name}_count{suffix} {self.total}"]
        return out


class Metrics:
    """What `/metrics` reports; safe to update from the worker and the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (endpoint, status) -> count
        self.conversations = 0
        self.batches = _Histogram(BATCH_BUCKETS)
        self.latency: dict[str, _Histogram] = {}

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, conversations: int) -> None:
        with self._lock:
            self.conversations += conversations
            self.batches.observe(conversations)

    def render(self, queue_depth: int) -> str:
        with self._lock:
            lines = ["# HELP flr_requests_total HTTP requests by endpoint and status.",
                     "# TYPE flr_requests_total counter"]
            lines += [f'flr_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP flr_conversations_scored_total Conversations scored.",
                      "# TYPE flr_conversations_scored_total counter",
                      f"flr_conversations_scored_total {self.conversations}",
                      "# HELP flr_batch_size_conversations Conversations per score_many pass.",
                      "# TYPE flr_batch_size_conversations histogram",
                      *self.batches.lines("flr_batch_size_conversations"),
                      "# HELP flr_request_latency_seconds Time from request to response.",
                      "# TYPE flr_request_latency_seconds histogram"]
            for endpoint, histogram in sorted(self.latency.items()):
                lines += histogram.lines("flr_request_latency_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP flr_queue_depth Requests waiting or being scored.",
                      "# TYPE flr_queue_depth gauge", f"flr_queue_depth {queue_depth}"]
        return "\n".join(lines) + "\n"
