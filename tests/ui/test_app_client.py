"""The running app driven through `gradio_client`: scoring, a bad paste, two visitors at once.

The app is launched in-process on a free port with a fake scorer, so no model is loaded.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import pytest

from core.engine.followups import default_followups
from tests.app_process import free_port
from tests.ui.test_ui_score import FakeScorer
from ui.gradio_app import build_app, launch_options
from ui.settings import AppSettings


@contextmanager
def running_app(work_dir, scorer_factory=FakeScorer, **settings) -> Iterator[str]:
    """Launch the app in this process; yield its URL; close it afterwards."""
    app_settings = AppSettings(work_dir=work_dir, server_port=free_port(), **settings)
    demo = build_app(app_settings, scorer_factory=scorer_factory)
    demo.launch(**launch_options(app_settings, prevent_thread_lock=True, quiet=True))
    try:
        yield f"http://127.0.0.1:{app_settings.server_port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    with running_app(tmp_path_factory.mktemp("app")) as url:
        yield url


CONVERSATION = "User: What is the capital of France?\nAssistant: Paris."
ALL = list(default_followups().names)


def score(client, text, categories=ALL):
    return client.predict(text, "", categories, "embedded", "base", "mean", api_name="/score")


def test_score_a_conversation(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    summary, reward_plot, means_plot, table, record = score(client, CONVERSATION)
    # FakeScorer: reward = 1 + len("Paris.")/1000 in every category
    assert "Overall FLR: +1.0060" in summary
    assert record["flr"] == pytest.approx(1.006)
    assert set(record["categories"]) == set(ALL)
    assert reward_plot is not None and means_plot is not None
    assert len(table["data"]) == sum(len(c.positive) + len(c.negative) for c in default_followups())


def test_bad_paste_gives_an_error_and_the_app_keeps_serving(app_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="ending with the user's"):
        score(client, "User: is anyone there?")
    with pytest.raises(AppError, match="empty"):
        score(client, "   ")
    assert score(client, CONVERSATION)[4]["flr"] == pytest.approx(1.006)


def test_compare_endpoint(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    verdict, _, frame = client.predict("User: Hi", "Hello! How can I help?", "Hi.", "", ALL,
                                       "embedded", "base", "mean", api_name="/compare")
    assert "FLR prefers reply A" in verdict
    assert len(frame["data"]) == len(ALL)


def test_two_clients_at_once_both_get_answers(tmp_path):
    """Model work is queued one at a time: the second visitor waits, nobody crashes."""
    active, peak = [0], [0]
    lock = threading.Lock()

    class SlowScorer(FakeScorer):
        def score(self, conversation, followups):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.5)
            with lock:
                active[0] -= 1
            return super().score(conversation, followups)

    from gradio_client import Client

    with running_app(tmp_path, scorer_factory=SlowScorer) as url:
        clients = [Client(url, verbose=False) for _ in range(2)]
        texts = [CONVERSATION, "User: And of Italy?\nAssistant: Rome is the capital of Italy."]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda ct: score(*ct), zip(clients, texts)))
    assert [r[4]["flr"] for r in results] == pytest.approx([1.006, 1.029])
    assert peak[0] == 1  # queued, not run concurrently on the one model


@pytest.mark.embedded
def test_embedded_model_in_the_running_app(tmp_path):
    """The real default model behind the app: a score comes back, a missing model is an error."""
    import math

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with running_app(tmp_path, scorer_factory=None) as url:
        client = Client(url, verbose=False)
        summary, _, _, table, record = score(client, CONVERSATION, ["relevance", "correctness"])
        assert "Overall FLR" in summary and math.isfinite(record["flr"])
        assert set(record["categories"]) == {"relevance", "correctness"}
        assert all(math.isfinite(v) for row in table["data"] for v in row[3:4])
        with pytest.raises(AppError, match="could not load model|not found|does not exist|no such folder"):
            client.predict(CONVERSATION, "", ALL, str(tmp_path / "no-such-model"), "base", "mean",
                           api_name="/score")
        again = score(client, CONVERSATION, ["relevance", "correctness"])[4]
        assert again["flr"] == pytest.approx(record["flr"])


def test_hosted_mode_only_serves_the_listed_models(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    loaded = []

    def factory(config):
        loaded.append(config.model)
        return FakeScorer(config)

    with running_app(tmp_path, scorer_factory=factory, allowed_models=("org/small", "org/large")) as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="not offered on this server|not in the list of choices"):
            client.predict(CONVERSATION, "", ALL, "someone/huge-model", "base", "mean", api_name="/score")
        record = client.predict(CONVERSATION, "", ALL, "org/large", "base", "mean", api_name="/score")[4]
    assert record["flr"] == pytest.approx(1.006)
    assert loaded == ["org/large"]


def test_uploads_over_the_size_limit_are_refused(tmp_path):
    import httpx

    with running_app(tmp_path, max_file_size="1kb") as url:
        big = httpx.post(url + "gradio_api/upload", files={"files": ("big.jsonl", b"x" * 4000)})
        small = httpx.post(url + "gradio_api/upload", files={"files": ("small.jsonl", b"x" * 100)})
    assert big.status_code == 413 and "maximum allowed size" in big.text
    assert small.status_code == 200


def test_a_space_serves_only_its_configured_model_and_never_loads_another(tmp_path):
    """SPACE_ID without FLR_ALLOWED_MODELS: the Model box is fixed; an API call naming any other
    model, a server folder or a missing path is refused with the same answer, and nothing loads."""
    from dataclasses import replace

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    loaded = []

    def factory(config):
        loaded.append(config.model)
        return FakeScorer(config)

    settings = AppSettings.from_env({"SPACE_ID": "someone/flr", "FLR_MODEL": "org/only",
                                     "FLR_WORK_DIR": str(tmp_path)})
    assert settings.allowed_models == ("org/only",)
    settings = replace(settings, server_port=free_port())
    demo = build_app(settings, scorer_factory=factory)
    demo.launch(**launch_options(settings, prevent_thread_lock=True, quiet=True))
    try:
        client = Client(f"http://127.0.0.1:{settings.server_port}/", verbose=False)
        answers = []
        for name in ("gpt2", str(tmp_path), str(tmp_path / "no-such-folder")):
            with pytest.raises(AppError) as refused:
                client.predict(CONVERSATION, "", ALL, name, "base", "mean", api_name="/score")
            answers.append(str(refused.value).replace(name, "NAME"))
        assert loaded == []  # no download, no folder opened
        assert answers[1] == answers[2]  # an existing folder looks like a missing one
        record = client.predict(CONVERSATION, "", ALL, "org/only", "base", "mean", api_name="/score")[4]
    finally:
        demo.close()
    assert record["flr"] == pytest.approx(1.006) and loaded == ["org/only"]


def test_model_free_work_is_not_queued_behind_model_jobs(tmp_path):
    """A file with precomputed values is evaluated while a scoring job holds the model."""
    import json

    from gradio_client import Client, handle_file

    started, gate = threading.Event(), threading.Event()

    class GatedScorer(FakeScorer):
        def score(self, conversation, followups):
            started.set()
            gate.wait(timeout=30)
            return super().score(conversation, followups)

    conv = ["Hi", "Hello"]
    accept, reject = tmp_path / "toy_accept_relevance.jsonl", tmp_path / "toy_reject_relevance.jsonl"
    accept.write_text(json.dumps({"conversation": conv, "positive": [1.0], "negative": [0.0]}) + "\n")
    reject.write_text(json.dumps({"conversation": conv, "positve": [0.0], "negative": [0.5]}) + "\n")
    with running_app(tmp_path / "work", scorer_factory=GatedScorer) as url:
        scoring = Client(url, verbose=False).submit(CONVERSATION, "", ALL, "embedded", "base", "mean",
                                                     api_name="/score")
        assert started.wait(timeout=30)
        try:
            headline = Client(url, verbose=False).predict(
                [handle_file(str(accept)), handle_file(str(reject))], "detect from the files", "", None, None,
                None, "embedded", "base", "mean", api_name="/evaluate")[0]
            still_scoring = not scoring.done()
        finally:
            gate.set()
        assert "accuracy 1.000" in headline and still_scoring
        assert scoring.result()[4]["flr"] == pytest.approx(1.006)
