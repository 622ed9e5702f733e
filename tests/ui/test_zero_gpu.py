"""Every tab's model work through the stand-in `spaces` (tests/stubs), as on a ZeroGPU Space.

The app runs in its own process, started like a Space (`SPACES_ZERO_GPU=true`, `SPACE_ID` set),
so `ui.gpu` wraps its functions in the stand-in `spaces.GPU` at import: each call pickles its
arguments and its result and runs in a forked child. A lambda, a lock or a loaded model crossing
the boundary fails here, as it would on the Space.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from core.engine.followups import default_followups
from tests.app_process import stop, wait_until_answering
from tests.ui.test_app_client import free_port

ROOT = Path(__file__).resolve().parents[2]
ALL = list(default_followups().names)
CONVERSATION = "User: What is the capital of France?\nAssistant: Paris is the capital of France."
START_TIMEOUT = 90  # seconds for the app to come up on a busy machine (not a measurement)


@contextmanager
def zero_gpu_app(tmp_path: Path, **env: str) -> Iterator[tuple[str, Path]]:
    """Start tests/ui/zero_gpu_app.py; yield its URL and the file listing its GPU calls."""
    port, log = free_port(), tmp_path / "gpu-calls.jsonl"
    environ = {**os.environ, "SPACES_ZERO_GPU": "true", "SPACE_ID": "someone/flr-studio",
               "FLR_WORK_DIR": str(tmp_path / "work"), "FLR_STUB_GPU_LOG": str(log),
               "GRADIO_SERVER_PORT": str(port), "OMP_NUM_THREADS": "1", **env}
    environ.pop("FLR_ALLOWED_MODELS", None)
    app_log = tmp_path / "app.log"  # a file, not a pipe nobody drains while the app runs
    with open(app_log, "w", encoding="utf-8") as out:
        server = subprocess.Popen([sys.executable, "-m", "tests.ui.zero_gpu_app"], cwd=ROOT, env=environ,
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_answering(server, url, START_TIMEOUT, app_log.read_text)
        yield url, log
    finally:
        stop(server)


def gpu_calls(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [json.loads(line)["function"] for line in log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    with zero_gpu_app(tmp_path_factory.mktemp("zero-gpu")) as running:
        yield running


def test_every_tab_runs_its_model_work_through_spaces_gpu(app, tmp_path):
    from gradio_client import Client, handle_file

    url, log = app
    client = Client(url, verbose=False)
    model = "embedded"  # FLR_MODEL's default: the one model this Space offers

    summary, _, _, table, record = client.predict(CONVERSATION, "", ALL, model, "base", "mean",
                                                  api_name="/score")
    assert "Overall FLR" in summary and set(record["categories"]) == set(ALL)
    assert len(table["data"]) == sum(len(c.positive) + len(c.negative) for c in default_followups())
    assert gpu_calls(log) == ["score_conversations"]

    verdict, _, frame = client.predict("User: Hi", "Hello! How can I help you today?", "Hi.", "", ALL,
                                       model, "base", "mean", api_name="/compare")
    assert "FLR" in verdict and len(frame["data"]) == len(ALL)

    pairs = tmp_path / "hh_pairs.jsonl"
    pairs.write_text("".join(json.dumps({
        "chosen": f"\n\nHuman: question {i}?\n\nAssistant: a long and helpful answer {i}",
        "rejected": f"\n\nHuman: question {i}?\n\nAssistant: no {i}"}) + "\n" for i in range(6)))
    headline, metrics, *_ = client.predict([handle_file(str(pairs))], "detect from the files", "", None, None,
                                           None, model, "base", "mean", api_name="/evaluate")
    # benchmark names are Markdown-escaped (a visitor's file name is their text)
    assert r"**hh\_pairs** (pairwise, n = 6)" in headline and "12 conversation(s) scored" in headline
    assert metrics["data"]

    summary, samples, files = client.predict("What is 2 + 2?\nName a colour.", None, 2, 16, 0.8, 0.95, 0, 0.0,
                                             None, ALL, model, "base", "mean", api_name="/mine")
    assert "DPO pairs" in summary and len(samples["data"]) == 4 and files

    calls = gpu_calls(log)
    assert calls[:2] == ["score_conversations", "score_conversations"]
    assert "evaluate_chunk" in calls and calls[-1] == "mine_samples"


def test_precomputed_files_need_no_gpu_call(app, tmp_path):
    from gradio_client import Client, handle_file

    url, log = app
    before = gpu_calls(log)
    conv = ["Hi", "Hello"]
    accept = tmp_path / "toy_accept_relevance.jsonl"
    reject = tmp_path / "toy_reject_relevance.jsonl"
    accept.write_text(json.dumps({"conversation": conv, "positive": [1.0], "negative": [0.0]}) + "\n" * 1)
    reject.write_text(json.dumps({"conversation": conv, "positve": [0.0], "negative": [0.5]}) + "\n")
    headline, *_ = Client(url, verbose=False).predict(
        [handle_file(str(accept)), handle_file(str(reject))], "detect from the files", "", None, None, None,
        "embedded", "base", "mean", api_name="/evaluate")
    assert "accuracy 1.000" in headline and "no model needed" in headline
    assert gpu_calls(log) == before


def test_a_visitor_cannot_name_another_model(app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, log = app
    before = gpu_calls(log)
    with pytest.raises(AppError, match="not offered on this server|not in the list of choices"):
        Client(url, verbose=False).predict(CONVERSATION, "", ALL, "gpt2", "base", "mean", api_name="/score")
    assert gpu_calls(log) == before
