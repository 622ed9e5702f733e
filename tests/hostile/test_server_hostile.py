"""Hostile requests to the reward server: each answered with a 4xx status and a one-line message
in bounded time, never a 500 or a traceback, and the server keeps serving afterwards."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.engine.followups import default_followups
from core.serving.server import ServeConfig, create_app
from tests.fakes import FakeScorer

CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"


@pytest.fixture(scope="module")
def client():
    # A body limit large enough that the input limits, not the byte cap, answer the big cases.
    app = create_app(FakeScorer(), default_followups(), ServeConfig(max_body_bytes=64 << 20))
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def _cases() -> list[tuple[str, str, dict | bytes]]:
    many_turns = [f"turn {i}" for i in range(20_001)]
    return [
        ("one 300,000-character utterance", "/v1/score", {"conversations": [["q", "x" * 300_000]]}),
        ("20,001 turns", "/v1/score", {"conversations": [many_turns]}),
        ("a conversation with an empty reply", "/v1/score", {"conversations": [["q", ""]]}),
        ("a 3,000,000-character query", "/get_reward", {"query": ["z" * 3_000_000]}),
        ("a follow-up set that is not a set", "/v1/score",
         {"conversations": [["q", "a"]], "followups": {"relevance": {"positive": [1, 2]}}}),
        ("a ChatML query with a 300,000-character reply", "/get_reward",
         {"query": [CHATML.format(q="q", a="y" * 300_000)]}),
        ("a query in no known template", "/get_reward", {"query": ["just some text"]}),
        ("bytes that are not UTF-8", "/v1/score", b'{"conversations": [["q", "\xff\xfe"]]}'),
        ("JSON cut short", "/v1/score", b'{"conversations": [["q", '),
        ("a number instead of a body", "/get_reward", b"42"),
    ]


@pytest.mark.parametrize("name, path, body", _cases(), ids=[c[0] for c in _cases()])
def test_hostile_request_gets_a_4xx_with_a_message_and_the_server_keeps_serving(client, name, path, body):
    if isinstance(body, bytes):
        answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        answer = client.post(path, json=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    message = answer.json()["error"]
    assert message and "Traceback" not in message and len(message) < 2_000
    good = client.post("/v1/score", json={"conversations": [["What is 2 + 2?", "4."]]})
    assert good.status_code == 200 and len(good.json()["results"]) == 1
