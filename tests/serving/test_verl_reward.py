"""examples/verl_flr_reward.py on verl's own preprocessed rows, called as verl's reward loop calls it
(see tests/serving/verl_rows.py for what was matched in verl's sources), against a live server on
the tiny model: every sample's "score" is FLR of the conversation the policy saw plus its reply,
each category comes back as `flr_<category>`, URL and token come from `reward_kwargs`."""

from __future__ import annotations

import asyncio
import inspect

import httpx
import pytest

from core.engine.conversation import parse_conversation
from core.engine.followups import default_followups
from core.serving.server import ServeConfig
from tests.serving.test_burst import Serving
from tests.serving.verl_rows import (DAHOAS_EXAMPLES, dahoas_from_hh, gsm8k_rows, hh_rows, load_reward_module,
                                     reward_loop_batch, reward_loop_call)

TOKEN = "verl-s3cret"


@pytest.fixture(scope="module")
def verl_fn():
    return load_reward_module()


@pytest.fixture(scope="module")
def serving(tiny_scorer):
    with Serving(tiny_scorer, ServeConfig(token=TOKEN)) as running:
        yield running


def expected(scorer, messages):
    return scorer.score(parse_conversation(messages), default_followups())


def test_hh_rlhf_transcripts_are_judged_turn_by_turn(verl_fn):
    rows = hh_rows(DAHOAS_EXAMPLES)
    assert set(rows[1]["extra_info"]) == {"split", "index"}  # no question: the old example raised here
    info = {**rows[1]["extra_info"], "raw_prompt": rows[1]["prompt"]}
    assert verl_fn.conversation(" Six minutes.", info) == [
        {"role": "user", "content": "How do I boil an egg?"},
        {"role": "assistant", "content": "Put it in boiling water for about nine minutes."},
        {"role": "user", "content": "And for a soft yolk?"},
        {"role": "assistant", "content": " Six minutes."}]
    gsm = gsm8k_rows()[0]
    assert verl_fn.conversation("72", {**gsm["extra_info"], "raw_prompt": gsm["prompt"]})[0] == gsm["prompt"][0]
    assert verl_fn.conversation("72", gsm["extra_info"])[0]["content"] == gsm["extra_info"]["question"]
    with pytest.raises(verl_fn.FLRRewardError, match="raw_prompt"):
        verl_fn.conversation("x", rows[0]["extra_info"])


def test_reward_loop_scores_hh_and_gsm8k_rows_with_per_category_values(verl_fn, serving, tiny_scorer):
    rows = hh_rows(DAHOAS_EXAMPLES) + gsm8k_rows()
    responses = [" Cheddar and brie.", " About six minutes.", "She sold 72 clips. #### 72", "#### 10"]
    kwargs = {"flr_url": serving.url, "flr_token": TOKEN}
    results = asyncio.run(reward_loop_batch(verl_fn.compute_score, rows, responses, kwargs))
    for row, response, got in zip(rows, responses, results):
        want = expected(tiny_scorer, verl_fn.conversation(response, {"raw_prompt": row["prompt"]}))
        assert got["score"] == pytest.approx(want.flr, abs=1e-4)
        assert got == pytest.approx({"score": want.flr, **{f"flr_{c.name}": c.flr for c in want.categories}},
                                    abs=1e-4)
    multi_turn = expected(tiny_scorer, ["How do I boil an egg?", "Put it in boiling water for about nine minutes.",
                                        "And for a soft yolk?", " About six minutes."])
    assert results[1]["score"] == pytest.approx(multi_turn.flr, abs=1e-4)
    # verl's older managers call it synchronously: same numbers
    assert not inspect.iscoroutinefunction(verl_fn.compute_score_sync)
    assert reward_loop_call(verl_fn.compute_score_sync, rows[2], responses[2], kwargs) == pytest.approx(
        results[2], abs=1e-6)


def test_the_token_comes_from_reward_kwargs_and_a_wrong_one_is_a_clear_error(verl_fn, serving):
    row = gsm8k_rows()[1]
    with pytest.raises(verl_fn.FLRRewardError, match="401"):
        asyncio.run(reward_loop_call(verl_fn.compute_score, row, "10", {"flr_url": serving.url,
                                                                        "flr_token": "wrong"}))
    with pytest.raises(verl_fn.FLRRewardError, match="cannot reach"):
        reward_loop_call(verl_fn.compute_score_sync, row, "10", {"flr_url": "http://127.0.0.1:9",
                                                                 "flr_retries": 1})


def test_busy_answers_are_retried_until_the_server_scores(verl_fn):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("authorization"))
        if len(calls) < 3:
            return httpx.Response(503, headers={"Retry-After": "0.01"}, json={"error": "busy"})
        return httpx.Response(200, json={"results": [{"reward": 0.5, "categories": {"relevance": {"flr": 0.25}}}]})

    async def one() -> dict:
        key = (id(asyncio.get_running_loop()), "http://rm", "t")
        verl_fn._ASYNC_CLIENTS[key] = httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                                        headers={"Authorization": "Bearer t"})
        verl_fn.MAX_BACKOFF_S = 0.05
        return await reward_loop_call(verl_fn.compute_score, gsm8k_rows()[0], "72",
                                      {"flr_url": "http://rm", "flr_token": "t"})

    assert asyncio.run(one()) == {"score": 0.5, "flr_relevance": 0.25}
    assert calls == ["Bearer t"] * 3


def test_real_hh_rlhf_rows_from_the_shared_data(verl_fn, serving, tiny_scorer, shared_data):
    rows = hh_rows(dahoas_from_hh(shared_data / "hh_rlhf" / "helpful-base-test.jsonl.gz", 4))
    responses = [row["reward_model"]["ground_truth"] for row in rows]  # the chosen replies
    results = asyncio.run(reward_loop_batch(verl_fn.compute_score, rows, responses,
                                            {"flr_url": serving.url, "flr_token": TOKEN}))
    for row, response, got in zip(rows, responses, results):
        messages = verl_fn.conversation(response, {"raw_prompt": row["prompt"]})
        assert len(messages) >= 2 and "Human:" not in messages[0]["content"]
        assert got["score"] == pytest.approx(expected(tiny_scorer, messages).flr, abs=1e-4)
