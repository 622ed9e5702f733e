"""One real uvicorn server on 127.0.0.1: concurrent clients all get their own, correct rewards."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import uvicorn

from core.engine.conversation import parse_conversation
from core.serving.server import ServeConfig, create_app
from core.serving.client import RetryPolicy
from core.serving.reward import FLRReward, RewardServerError, post_json
from tests.serving.conftest import CONVERSATIONS
from tests.app_process import free_port

TOKEN = "t0ken"


@pytest.fixture(scope="module")
def server(tiny_scorer, followups):
    port = free_port()
    app = create_app(tiny_scorer, followups, ServeConfig(port=port, token=TOKEN, max_batch_wait_ms=20))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started and thread.is_alive():
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(10)


def test_eight_concurrent_clients_get_correct_rewards(server, tiny_scorer, followups):
    url, app = server
    pairs = [[f"Question {i}: what is {i} + {i}?", f"It is {2 * i}."] for i in range(16)]
    expected = [tiny_scorer.score(parse_conversation(p), followups).flr for p in pairs]

    def client(k: int) -> list[tuple[int, float]]:
        out = []
        for i in (2 * k, 2 * k + 1):
            query = f"<|im_start|>user\n{pairs[i][0]}<|im_end|>\n<|im_start|>assistant\n{pairs[i][1]}<|im_end|>"
            answer = post_json(f"{url}/get_reward", {"query": [query]}, TOKEN, timeout=60)
            out.append((i, answer["rewards"][0]))
        return out

    with ThreadPoolExecutor(8) as pool:
        got = dict(pair for result in pool.map(client, range(8)) for pair in result)
    assert [got[i] for i in range(16)] == pytest.approx(expected, abs=1e-4)
    assert app.state.metrics.conversations >= 16
    with pytest.raises(RewardServerError, match="401"):
        post_json(f"{url}/get_reward", {"query": ["x"]}, None)


def test_flr_reward_through_the_server_equals_local(server, tiny_scorer):
    url, _ = server
    prompts = [[{"role": "user", "content": c[0]}] for c in CONVERSATIONS[:3]]
    completions = [[{"role": "assistant", "content": c[1]}] for c in CONVERSATIONS[:3]]
    remote = FLRReward(url=url, token=TOKEN)(prompts, completions)
    local = FLRReward(scorer=tiny_scorer)(prompts, completions)
    assert remote == pytest.approx(local, abs=1e-4)
    with pytest.raises(RewardServerError, match="cannot reach"):
        FLRReward(url="http://127.0.0.1:9", timeout=5, retry=RetryPolicy(retries=1, backoff_s=0.01))(["q"], ["a"])

