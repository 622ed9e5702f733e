"""The reward clients: FLRReward pickles in both modes (TRL's async GRPO pickles reward functions,
trl/experimental/async_grpo/async_rollout_worker.py), logs each category through TRL's
`log_metric` (trl/trainer/grpo_trainer.py `_calculate_rewards`), strips reasoning traces on
request, and retries a busy server's 503 until it answers."""

from __future__ import annotations

import pickle

import httpx
import pytest

from core.engine.conversation import Conversation
from core.engine.followups import default_followups
from core.serving.server import ServeConfig
from core.serving.client import RetryPolicy, RewardClient, RewardServerError
from core.serving.reward import FLRReward
from tests.fakes import FakeScorer
from tests.serving.test_burst import Serving


def test_flr_reward_pickles_in_both_modes_and_scores_the_same_after(tiny_scorer):
    local = FLRReward(scorer=tiny_scorer)
    before = local(["What is 2+2?"], ["4."])
    copy = pickle.loads(pickle.dumps(local))
    assert copy._scorer is None and copy.config == tiny_scorer.config
    assert copy(["What is 2+2?"], ["4."]) == pytest.approx(before, abs=1e-5)
    with Serving(FakeScorer(), ServeConfig()) as serving:
        remote = FLRReward(url=serving.url)
        first = remote(["q"], ["a"])  # opens a connection: it must not travel in the pickle
        assert pickle.loads(pickle.dumps(remote))(["q"], ["a"]) == first


def test_log_metric_gets_each_category_and_reasoning_is_stripped_on_request():
    scorer = FakeScorer()
    logged: dict[str, float] = {}
    reward = FLRReward(scorer=scorer, strip_reasoning=True)
    got = reward(["q"], ["<think>long trace</think>The answer."], log_metric=logged.__setitem__)
    expected = scorer.score(Conversation(("q", "The answer.")), default_followups())
    assert got == pytest.approx([expected.flr])
    assert logged == {f"flr/{c.name}": pytest.approx(c.flr) for c in expected.categories}


def test_the_client_retries_503_honouring_retry_after():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("authorization"))
        if len(calls) < 3:
            return httpx.Response(503, headers={"Retry-After": "0.05"}, json={"error": "busy"})
        return httpx.Response(200, json={"ok": True})

    client = RewardClient("tok", retry=RetryPolicy(retries=5, backoff_s=0.01))
    client._client = httpx.Client(transport=httpx.MockTransport(handler), headers={"Authorization": "Bearer tok"})
    assert client.post("http://rm/v1/score", {}) == {"ok": True}
    assert len(calls) == 3 and calls[0] == "Bearer tok"
    assert all(client.retry.wait(0, "0.05") >= 0.05 for _ in range(20))  # Retry-After is a floor
    client._client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(401, text="no")))
    with pytest.raises(RewardServerError, match="401"):  # the caller's mistake: not retried
        client.post("http://rm/v1/score", {})
