"""The reward server through FastAPI's TestClient: OpenRLHF and native requests give `flr score`'s
numbers; bad requests get the right status and the server keeps serving."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from transformers import AutoTokenizer

from core.cli.main import main
from core.serving.server import ServeConfig, create_app
from core.serving.shaping import ShapingConfig
from tests.fakes import FakeScorer
from tests.serving.conftest import CONVERSATIONS

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def cli_scores(tiny_model_dir, tmp_path_factory):
    """What `flr score` writes for CONVERSATIONS with the tiny model."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "in.json").write_text(json.dumps(CONVERSATIONS))
    assert main(["score", "--input", str(folder / "in.json"), "--output", str(folder / "out.jsonl"),
                 "--model", str(tiny_model_dir), "--device", "cpu"]) == 0
    return [json.loads(line) for line in (folder / "out.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def client(tiny_scorer, followups):
    app = create_app(tiny_scorer, followups, ServeConfig(token=TOKEN, max_body_bytes=20_000,
                                                         max_conversations=8), model="tiny", device="cpu")
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


def openrlhf_body(tokenizer, conversations, with_prompts=True):
    """Queries as OpenRLHF sends them: the prompt rendered by the policy's template + response + EOS."""
    prompts, queries = [], []
    for utterances in conversations:
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": u}
                    for i, u in enumerate(utterances[:-1])]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append(prompt)
        queries.append(prompt + utterances[-1] + tokenizer.eos_token)
    return {"query": queries, "prompts": prompts} if with_prompts else {"query": queries}


def test_get_reward_with_chatml_queries_equals_flr_score(client, cli_scores, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    expected = [record["flr"] for record in cli_scores]
    for with_prompts in (True, False):
        answer = client.post("/get_reward", json=openrlhf_body(tokenizer, CONVERSATIONS, with_prompts))
        assert answer.status_code == 200, answer.text
        assert answer.json()["rewards"] == pytest.approx(expected, abs=1e-3)


def test_v1_score_equals_flr_score_per_category(client, cli_scores):
    shapes = [CONVERSATIONS[0],  # utterances, messages and role-prefixed text
              [{"role": "user", "content": CONVERSATIONS[1][0]}, {"role": "assistant", "content": CONVERSATIONS[1][1]}],
              f"User: {CONVERSATIONS[2][0]}\nAssistant: {CONVERSATIONS[2][1]}"]
    answer = client.post("/v1/score", json={"conversations": shapes})
    assert answer.status_code == 200, answer.text
    for got, want in zip(answer.json()["results"], cli_scores):
        assert got["flr"] == pytest.approx(want["flr"], abs=1e-3) and got["reward"] == got["flr"]
        for name, category in want["categories"].items():
            assert got["categories"][name]["positive"] == pytest.approx(category["positive"], abs=1e-3)
    one = client.post("/v1/score", json={"conversations": [CONVERSATIONS[0]], "categories": ["relevance"]})
    assert list(one.json()["results"][0]["categories"]) == ["relevance"]
    assert one.json()["results"][0]["flr"] == pytest.approx(cli_scores[0]["categories"]["relevance"]["flr"], abs=1e-3)


def test_bad_requests_get_their_status_and_the_server_keeps_serving(client, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    good = openrlhf_body(tokenizer, CONVERSATIONS[:1])
    cases = [
        (client.post("/get_reward", content=b"{not json", headers={"Content-Type": "application/json"}),
         400, "not valid JSON"),
        (client.post("/get_reward", content=json.dumps(good), headers={"Content-Type": "text/plain"}),
         415, "application/json"),
        (client.post("/get_reward", json=good, headers={"Authorization": ""}), 401, "token"),
        (client.post("/get_reward", json=good, headers={"Authorization": "Bearer wrong"}), 401, "token"),
        (client.post("/get_reward", json={"query": ["x" * 30_000]}), 413, "limit"),
        (client.post("/get_reward", json={"query": ["<|im_start|>user\nq<|im_end|>\n"] * 9}), 413, "limit is 8"),
        (client.post("/get_reward", json={"query": good["query"] + ["plain words"]}), 422, "query 1: matches no known"),
        (client.post("/get_reward", json={"query": "not a list"}), 422, "'query' must be a non-empty list"),
        (client.post("/get_reward", json=[1, 2]), 422, "JSON object"),
        (client.post("/v1/score", json={"conversations": [["only a question"]]}), 422, "conversations[0]"),
        (client.post("/v1/score", json={"conversations": [["q", "a"]], "categories": ["nope"]}), 422, "unknown category"),
    ]
    for answer, status, words in cases:
        assert answer.status_code == status, answer.text
        assert words in answer.json()["error"]
    assert client.post("/get_reward", json=good).status_code == 200
    health = client.get("/health").json()
    assert health["model"] == "tiny" and health["device"] == "cpu" and health["queue_depth"] == 0
    metrics = client.get("/metrics").text
    assert 'flr_requests_total{endpoint="/get_reward",status="401"} 2.0' in metrics
    assert "flr_conversations_scored_total" in metrics and "flr_batch_size_conversations_bucket" in metrics
    assert client.get("/health", params={"token": TOKEN}, headers={"Authorization": ""}).status_code == 200


def test_a_full_queue_answers_503_with_retry_after(followups):
    entered, release = threading.Event(), threading.Event()

    class Slow(FakeScorer):
        def score_many(self, conversations, followups, progress=None):
            entered.set()
            release.wait(10)
            return super().score_many(conversations, followups, progress)

    def wait_until(condition, what: str) -> None:  # bounded: a broken server fails, never hangs
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(0.01)

    app = create_app(Slow(), followups, ServeConfig(max_queue=1, max_batch_wait_ms=0))
    body = {"conversations": [["q", "a"]]}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        results = []

        def post() -> None:
            results.append(client.post("/v1/score", json=body))

        threads = [threading.Thread(target=post) for _ in range(2)]
        threads[0].start()  # the first is taken by the worker and held in score_many ...
        wait_until(entered.is_set, "the worker is scoring the first request")
        threads[1].start()  # ... so the second waits in the one-place queue
        wait_until(lambda: app.state.worker.depth >= 2, "the second request is queued")
        busy = client.post("/v1/score", json=body)
        release.set()
        for t in threads:
            t.join(10)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert [r.status_code for r in results] == [200, 200]


def test_shaping_applies_to_rewards(followups):
    app = create_app(FakeScorer(), followups, ServeConfig(shaping=ShapingConfig(clip=0.01)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        answer = client.post("/get_reward", json={"query": ["Human: q\n\nAssistant: a"]})
    assert answer.json()["rewards"] == [pytest.approx(0.01)] or answer.json()["rewards"] == [pytest.approx(-0.01)]


@pytest.mark.embedded
def test_embedded_model_smollm2_queries_equal_flr_score(tmp_path):
    """The issue's check on the real model: SmolLM2's own ChatML rendering (with its default
    system prompt) through /get_reward, and /v1/score, give `flr score`'s rewards."""
    from core.engine.config import ScoringConfig
    from core.engine.followups import default_followups
    from core.engine.scorer import load_scorer

    conversations = CONVERSATIONS[:2]
    (tmp_path / "in.json").write_text(json.dumps(conversations))
    assert main(["score", "--input", str(tmp_path / "in.json"), "--output", str(tmp_path / "out.jsonl"),
                 "--device", "cpu"]) == 0
    expected = [json.loads(line)["flr"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    scorer = load_scorer(ScoringConfig(device="cpu"))
    body = openrlhf_body(scorer.loaded.tokenizer, conversations)
    assert "<|im_start|>system" in body["query"][0]  # SmolLM2 adds its default system prompt
    with TestClient(create_app(scorer, default_followups()), base_url="http://127.0.0.1") as client:
        rewards = client.post("/get_reward", json=body).json()["rewards"]
        results = client.post("/v1/score", json={"conversations": conversations}).json()["results"]
    assert rewards == pytest.approx(expected, abs=1e-3)
    assert [r["flr"] for r in results] == pytest.approx(expected, abs=1e-3)
