"""The batching worker: scores in a batch equal scores alone; one bad request fails alone."""

from __future__ import annotations

import threading

import pytest

from core.engine.conversation import parse_conversation
from core.errors import ConversationError
from core.serving.batcher import BatchWorker, ServerBusy
from tests.fakes import FakeScorer
from tests.serving.conftest import CONVERSATIONS


def test_batched_requests_equal_scoring_each_alone(tiny_scorer, followups):
    conversations = [parse_conversation(c) for c in CONVERSATIONS]
    alone = [tiny_scorer.score(c, followups) for c in conversations]
    worker = BatchWorker(tiny_scorer, max_wait_ms=200, max_batch=64)
    futures = [worker.submit([c], followups) for c in conversations]  # queued before the worker runs
    worker.start()
    try:
        batched = [f.result(60)[0] for f in futures]
    finally:
        worker.stop()
    assert worker.metrics.batches == 1 and worker.metrics.conversations == len(conversations)
    for a, b in zip(alone, batched):
        for ca, cb in zip(a.categories, b.categories):
            assert cb.positive == pytest.approx(ca.positive, abs=1e-4)
            assert cb.negative == pytest.approx(ca.negative, abs=1e-4)


def test_one_bad_request_does_not_fail_the_batch(followups):
    scorer = FakeScorer(reject=lambda c: "cannot score this one" if c.reply == "bad" else None)
    worker = BatchWorker(scorer, max_wait_ms=100)
    good = worker.submit([parse_conversation(["q", "good"])], followups)
    bad = worker.submit([parse_conversation(["q", "bad"])], followups)
    worker.start()
    try:
        assert len(good.result(10)) == 1
        with pytest.raises(ConversationError, match="cannot score this one"):
            bad.result(10)
    finally:
        worker.stop()


def test_a_full_queue_refuses_at_once(followups):
    release = threading.Event()

    class Slow(FakeScorer):
        def score_many(self, conversations, followups, progress=None):
            release.wait(10)
            return super().score_many(conversations, followups, progress)

    worker = BatchWorker(Slow(), max_wait_ms=0, max_queue=1)
    conversation = [parse_conversation(["q", "a"])]
    worker.start()
    try:
        first = worker.submit(conversation, followups)
        while worker.depth == 0 or worker._jobs:  # the worker holds the first request
            threading.Event().wait(0.01)
        second = worker.submit(conversation, followups)  # waits in the queue
        with pytest.raises(ServerBusy, match="queue is full"):
            worker.submit(conversation, followups)
        release.set()
        assert len(first.result(10)) == len(second.result(10)) == 1
    finally:
        release.set()
        worker.stop()
