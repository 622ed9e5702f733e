"""A trainer's burst on a real uvicorn server (loopback, fake scorer): thousands of single-sample
requests in flight are all admitted and batched; a client that has gone is not scored; overload
beyond the memory budget answers 503 at once; OpenRLHF's `extra_logs` carry each category.

The client behaves as OpenRLHF's `_fetch_rewards_via_http` (openrlhf/utils/agent.py): one sample
per request, every request at once, {"query", "prompts", "labels"} bodies."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn

from core.cli.serve import uvicorn_options
from core.engine.conversation import Conversation
from core.engine.followups import default_followups
from core.serving.server import ServeConfig, create_app
from core.serving.batcher import BatchWorker, ServerBusy
from tests.fakes import FakeScorer
from tests.app_process import free_port

CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


class Serving:
    """`create_app` under uvicorn with `flr serve`'s own options, on a free loopback port."""

    def __init__(self, scorer, config: ServeConfig) -> None:
        self.config = ServeConfig(**{**config.__dict__, "port": free_port()})
        self.app = create_app(scorer, default_followups(), self.config)
        self.server = uvicorn.Server(uvicorn.Config(self.app, **uvicorn_options(self.config)))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.config.port}"

    def __enter__(self) -> "Serving":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def body(i: int) -> dict:
    prompt = CHATML.format(q=f"Question {i}: what is {i} + {i}?")
    return {"query": [prompt + f"It is {2 * i}.<|im_end|>"], "prompts": [prompt], "labels": [None]}


async def burst(url: str, n: int, timeout: float = 60.0) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        return await asyncio.gather(*(client.post(f"{url}/get_reward", json=body(i)) for i in range(n)))


def test_a_burst_of_2000_single_sample_requests_is_admitted_and_batched():
    scorer = FakeScorer()
    with Serving(scorer, ServeConfig()) as serving:
        answers = asyncio.run(burst(serving.url, 2000))
        assert [a.status_code for a in answers] == [200] * 2000, {a.status_code: a.text for a in answers}
        metrics = serving.app.state.metrics
        assert metrics.conversations == 2000
        assert metrics.batches <= 2000 // 8, "single-sample requests were not gathered into passes"
    followups = default_followups()
    for i in (0, 999, 1999):
        expected = scorer.score(Conversation((f"Question {i}: what is {i} + {i}?", f"It is {2 * i}.")), followups)
        got = answers[i].json()
        assert got["rewards"] == pytest.approx([expected.flr])
        assert got["extra_logs"] == {f"flr_{c.name}": pytest.approx([c.flr]) for c in expected.categories}


def test_overload_beyond_the_memory_budget_answers_503_at_once_and_nothing_is_lost():
    release = threading.Event()

    class Held(FakeScorer):
        def score_many(self, conversations, followups, progress=None):
            release.wait(20)
            return super().score_many(conversations, followups, progress)

    # Room for about 20 waiting requests of this size: the rest are refused, fast, with Retry-After.
    with Serving(Held(), ServeConfig(max_queue_bytes=20 * 4300, max_batch=1)) as serving:
        async def run() -> tuple[list[httpx.Response], float]:
            start = time.monotonic()
            async with httpx.AsyncClient(timeout=30) as client:
                tasks = [asyncio.ensure_future(client.post(f"{serving.url}/get_reward", json=body(i)))
                         for i in range(60)]
                while sum(t.done() for t in tasks) < 35 and time.monotonic() - start < 10:
                    await asyncio.sleep(0.05)
                refused_after = time.monotonic() - start
                release.set()
                return await asyncio.gather(*tasks), refused_after

        answers, refused_after = asyncio.run(run())
    codes = [a.status_code for a in answers]
    assert set(codes) == {200, 503} and 30 <= codes.count(503) <= 45, codes
    assert refused_after < 10, "503s were not answered while the queue was full"
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["Retry-After"] == "1" and "--max-queue-mb" in busy.json()["error"]


def test_a_request_whose_client_has_gone_is_dropped_unscored():
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    class Held(FakeScorer):
        def score_many(self, conversations, followups, progress=None):
            seen.extend(c.reply for c in conversations)
            entered.set()
            release.wait(20)
            return super().score_many(conversations, followups, progress)

    with Serving(Held(), ServeConfig(max_batch=1, max_batch_wait_ms=0)) as serving:
        async def run() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                first = asyncio.ensure_future(client.post(f"{serving.url}/get_reward", json=body(1)))
                while not entered.is_set():
                    await asyncio.sleep(0.01)
                with pytest.raises(httpx.TimeoutException):  # OpenRLHF's client giving up at its timeout
                    await client.post(f"{serving.url}/get_reward", json=body(2), timeout=0.5)
                await asyncio.sleep(0.3)
                release.set()
                assert (await first).status_code == 200

        asyncio.run(run())
        time.sleep(0.3)
        assert seen == ["It is 2."], "the abandoned request was scored"
        assert serving.app.state.metrics.dropped == 1


def test_a_request_waiting_past_the_timeout_gets_504_and_is_not_scored(followups):
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    class Held(FakeScorer):
        def score_many(self, conversations, followups, progress=None):
            seen.extend(c.reply for c in conversations)
            entered.set()
            release.wait(20)
            return super().score_many(conversations, followups, progress)

    worker_config = ServeConfig(max_batch=1, max_batch_wait_ms=0, request_timeout_s=0.5)
    with Serving(Held(), worker_config) as serving:
        with httpx.Client(timeout=30) as client:
            threading.Thread(target=client.post, args=(f"{serving.url}/get_reward",), kwargs={"json": body(1)},
                             daemon=True).start()
            assert entered.wait(10)
            late = client.post(f"{serving.url}/get_reward", json=body(2))
            release.set()
        assert late.status_code == 504 and "--timeout" in late.json()["error"]
        time.sleep(0.3)
        assert "It is 4." not in seen


def test_cancelled_jobs_are_skipped_by_the_worker(followups):
    scorer = FakeScorer()
    worker = BatchWorker(scorer, max_wait_ms=0)
    kept = worker.submit([Conversation(("q", "kept"))], followups)
    gone = worker.submit([Conversation(("q", "gone"))], followups)
    assert gone.cancel()
    worker.start()
    try:
        assert [r.flr for r in kept.result(10)] == [scorer.score(Conversation(("q", "kept")), followups).flr]
    finally:
        worker.stop()
    assert worker.metrics.dropped == 1 and worker.metrics.conversations == 1


def test_the_memory_budget_admits_a_first_request_of_any_size_and_refuses_the_next(followups):
    worker = BatchWorker(FakeScorer(), max_queue_bytes=10_000)  # not started: everything waits
    worker.submit([Conversation(("q", "x" * 5000))], followups)  # over the budget alone: still admitted
    with pytest.raises(ServerBusy, match="--max-queue-mb"):
        worker.submit([Conversation(("q", "a"))], followups)
