"""What a reward server reports on `/metrics`, through `prometheus_client`.

Each app has its own `CollectorRegistry` (two servers in one process, as in the tests, never share
counters). Requests are labelled by route from a fixed set (`ROUTES`, anything else is "other"),
so a client probing odd paths neither adds series nor reaches the exposition text: label values
are escaped by `prometheus_client` itself.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ROUTES = ("/get_reward", "/v1/score", "/health", "/metrics")
OTHER_ROUTE = "other"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # conversations per scoring pass
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # seconds
CONTENT_TYPE = CONTENT_TYPE_LATEST


def route_label(path: str) -> str:
    """The route a path is counted under: one of `ROUTES`, or "other"."""
    return path if path in ROUTES else OTHER_ROUTE


class Metrics:
    """Counters and histograms of one server; safe to update from the worker and the event loop."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("flr_requests", "HTTP requests by route and status.",
                                 ["endpoint", "status"], registry=self.registry)
        self._latency = Histogram("flr_request_latency_seconds", "Time from request to response.",
                                  ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._conversations = Counter("flr_conversations_scored", "Conversations scored.", registry=self.registry)
        self._batches = Histogram("flr_batch_size_conversations", "Conversations per score_many pass.",
                                  buckets=BATCH_BUCKETS, registry=self.registry)
        self._dropped = Counter("flr_requests_dropped", "Requests dropped unscored: their client had gone "
                                "or timed out.", registry=self.registry)
        self._depth = Gauge("flr_queue_depth", "Requests waiting or being scored.", registry=self.registry)
        self.conversations = 0  # plain totals too, for tests and /health
        self.batches = 0
        self.dropped = 0

    def watch_depth(self, depth: Callable[[], int]) -> None:
        self._depth.set_function(depth)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        endpoint = route_label(path)
        self._requests.labels(endpoint, str(status)).inc()
        self._latency.labels(endpoint).observe(seconds)

    def observe_batch(self, conversations: int) -> None:
        self.conversations += conversations
        self.batches += 1
        self._conversations.inc(conversations)
        self._batches.observe(conversations)

    def observe_dropped(self) -> None:
        self.dropped += 1
        self._dropped.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
