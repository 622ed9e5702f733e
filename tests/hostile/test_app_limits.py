"""Per-visitor limits in hosted mode (issue 27 item 3): one client cannot take every queue slot by
making up session hashes, nor upload without bound; another client still gets in.

The app runs as its own process started like a Space (`SPACE_ID` set, a fresh HOME and TMPDIR,
no FLR_ALLOWED_MODELS), from tests/hostile/gated_app.py: its scorer waits for a gate file, so the
first Score request holds the model slot and the flood stays waiting until the test opens it.

Clients are told apart by X-Forwarded-For: the test connects from 127.0.0.1, which uvicorn (as
gradio starts it) trusts as a proxy, so `request.client.host` becomes the rightmost forwarded
address, as a Space's proxy makes it; anything a visitor writes to the left of it is ignored.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from core.errors import ConfigError
from tests.app_process import stop, wait_until_answering
from tests.ui.test_app_client import free_port
from ui import client_limits
from ui.client_limits import TrustedProxies, client_address
from ui.settings import AppSettings

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90  # seconds for the app to come up on a busy machine (not a measurement)
EVENTS = 4  # the default FLR_MAX_EVENTS_PER_CLIENT
UPLOADS, UPLOAD_MB = 3, 1
CONVERSATION = "User: What is the capital of France?\nAssistant: Paris."


@contextmanager
def space_app(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """Start the gated app as on a Space; yield its URL, the gate file and its upload folder."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    port, gate = free_port(), tmp_path / "gate"
    drop = ("FLR_", "GRADIO_", "SPACE", "HF_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environ.update(HOME=str(home), TMPDIR=str(tmp), SPACE_ID="someone/flr-studio", FLR_TEST_GATE=str(gate),
                   GRADIO_SERVER_PORT=str(port), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
                   FLR_MAX_UPLOADS_PER_CLIENT=str(UPLOADS), FLR_MAX_UPLOAD_MB_PER_CLIENT=str(UPLOAD_MB))
    log = tmp_path / "app.log"
    with open(log, "w", encoding="utf-8") as out:
        server = subprocess.Popen([sys.executable, "-m", "tests.hostile.gated_app"], cwd=ROOT, env=environ,
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, url + "/", START_TIMEOUT, log.read_text)
        yield url, gate, tmp / "gradio"
    finally:
        gate.touch()
        stop(server)


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    with space_app(tmp_path_factory.mktemp("limits")) as running:
        yield running


def visitor(address: str) -> dict[str, str]:
    """Headers of a request from `address` through the Space's proxy, with a made-up hop before it."""
    forged = ".".join(str(random.randint(1, 254)) for _ in range(4))
    return {"X-Forwarded-For": f"{forged}, {address}"}


def join(url: str, fn_index: int, address: str) -> httpx.Response:
    """One Score request through gradio's queue, as the page sends it, with a fresh session hash."""
    body = {"data": [CONVERSATION, "", ["relevance"], "embedded", "base", "mean"], "fn_index": fn_index,
            "session_hash": uuid.uuid4().hex[:11], "event_data": None, "trigger_id": None}
    return httpx.post(f"{url}/gradio_api/queue/join", json=body, headers=visitor(address), timeout=30)


def score_index(url: str) -> int:
    config = httpx.get(f"{url}/config", timeout=30).json()
    return next(dep["id"] for dep in config["dependencies"] if dep.get("api_name") == "score")


def test_one_client_gets_at_most_its_share_of_the_queue_whatever_its_session_hashes(app) -> None:
    url, gate, _ = app
    fn = score_index(url)
    flood = [join(url, fn, "198.51.100.7") for _ in range(EVENTS)]
    assert [r.status_code for r in flood] == [200] * EVENTS, [r.text for r in flood]
    refused = join(url, fn, "198.51.100.7")
    assert refused.status_code == 429, refused.text
    # gradio 6.31's page shows `detail` of a non-503, non-422 answer from queue/join: its client
    # bundle turns it into a status `{stage: "error", message: e.detail||e.error}` and Blocks into
    # an error toast, `log_cb(s?._title??"Error", message, ..., "error")`: "Error" over this
    # sentence (a 503 would show only "This application is currently busy. Please try again.")
    message = refused.json()["detail"]
    assert message == client_limits.queue_refusal(EVENTS)
    assert "at most 4 requests per visitor" in message and "flr evaluate" in message
    assert join(url, fn, "203.0.113.9").status_code == 200  # another visitor still gets in
    gate.touch()  # the first request loads its scorer: the queue drains
    deadline = time.monotonic() + 60
    while (again := join(url, fn, "198.51.100.7")).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert again.status_code == 200  # a finished request gives its slot back


def upload(url: str, address: str, data: bytes, *, chunked: bool = False) -> httpx.Response:
    boundary = "flrboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jsonl\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    content = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    return httpx.post(f"{url}/gradio_api/upload", content=content, timeout=60,
                      headers={**visitor(address), "Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_uploads_per_client_are_capped_in_number_and_bytes(app) -> None:
    url, _, uploads_dir = app
    answers = [upload(url, "198.51.100.20", b'{"conversation": ["q", "a"]}\n') for _ in range(UPLOADS)]
    assert [r.status_code for r in answers] == [200] * UPLOADS, [r.text for r in answers]
    refused = upload(url, "198.51.100.20", b"{}\n")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    # the page shows an upload's failure as "HTTP 429: <text>" (@gradio/client `upload_files`)
    assert refused.text.startswith(f"This server accepts at most {UPLOADS} uploads or {UPLOAD_MB} MB per visitor")
    assert upload(url, "203.0.113.20", b"{}\n").status_code == 200  # another visitor still can


@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "chunked"])
def test_an_upload_over_the_byte_budget_is_refused_and_not_kept(app, chunked: bool) -> None:
    url, _, uploads_dir = app
    address = "198.51.100.30" if chunked else "198.51.100.31"
    marker = uuid.uuid4().hex.encode()
    big = marker + b"x" * (UPLOAD_MB * 1024 * 1024 + 1)
    refused = upload(url, address, big, chunked=chunked)
    assert refused.status_code == 429, refused.text[:300]
    assert f"or {UPLOAD_MB} MB per visitor" in refused.text
    kept = [p for p in uploads_dir.rglob("*") if p.is_file() and p.stat().st_size > 1024 * 1024]
    assert not kept, kept
    # announced: refused before a byte is read, so small files still fit; chunked: cut off once over,
    # and what did arrive counts
    assert upload(url, address, b"{}\n").status_code == (429 if chunked else 200)


def test_the_client_is_the_last_untrusted_hop() -> None:
    space = TrustedProxies(client_limits.SPACE_PROXIES)
    # on a Space the peer is the Hub's proxy at a private address; it appends the visitor's address
    assert client_address("10.16.3.80", ["6.6.6.6, 198.51.100.7"], space) == "198.51.100.7"
    assert client_address("10.16.3.80", ["6.6.6.6", "198.51.100.7:5123, 10.0.0.2"], space) == "198.51.100.7"
    assert client_address("198.51.100.7", ["6.6.6.6"], space) == "198.51.100.7"  # a direct visitor
    assert client_address("10.16.3.80", [], space) == "10.16.3.80"
    assert client_address("10.16.3.80", ["[2001:db8::1]:443"], space) == "2001:db8::1"
    assert client_address("10.16.3.80", ["6.6.6.6"], TrustedProxies(())) == "10.16.3.80"
    # only on a Space is a private peer a proxy; on a LAN it is a visitor who may write anything
    assert AppSettings.from_env({"SPACE_ID": "me/flr"}).trusted_proxies == client_limits.SPACE_PROXIES
    assert AppSettings.from_env({"FLR_ALLOWED_MODELS": "org/a"}).trusted_proxies == ()
    assert AppSettings(allowed_models=("org/a",)).trusted_proxies == ()
    assert AppSettings.from_env({"SPACE_ID": "me/flr", "FLR_TRUSTED_PROXIES": "10.1.0.0/16"}).trusted_proxies == (
        "10.1.0.0/16",)
    with pytest.raises(ConfigError, match="FLR_TRUSTED_PROXIES: 'proxy.local' is not an IP address"):
        AppSettings.from_env({"FLR_TRUSTED_PROXIES": "proxy.local"})
    with pytest.raises(ConfigError, match="FLR_MAX_EVENTS_PER_CLIENT must be at least 1"):
        AppSettings.from_env({"FLR_MAX_EVENTS_PER_CLIENT": "0"})


def test_limits_only_in_hosted_mode_and_the_gradio_internals_they_read(tmp_path) -> None:
    from gradio import queueing

    from tests.fakes import FakeScorer
    from ui.gradio_app import build_app, launch_options

    local = AppSettings(work_dir=tmp_path)
    hosted = AppSettings.from_env({"SPACE_ID": "me/flr", "FLR_WORK_DIR": str(tmp_path),
                                   "FLR_MAX_EVENTS_PER_CLIENT": "2"})
    assert hosted.events_per_client == 2
    assert build_app(local, scorer_factory=FakeScorer)._queue.push.__func__ is queueing.Queue.push
    demo = build_app(hosted, scorer_factory=FakeScorer)
    assert demo._queue.push.__name__ == "limited_push" and isinstance(demo._queue.event_ids_to_events, dict)
    assert "app_kwargs" not in launch_options(local)
    assert launch_options(hosted)["app_kwargs"]["middleware"][0].cls is client_limits.UploadLimit
    # what the count reads of gradio: Event(session_hash, fn, request, username).request
    event = queueing.Event("s", next(iter(demo.fns.values())), "the request", None)
    assert event.request == "the request"
    with pytest.raises(RuntimeError, match="per-visitor queue limit"):
        client_limits.limit_queue(object(), 2, TrustedProxies(()))
