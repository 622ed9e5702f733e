"""Issue 27 item 4 on a real uvicorn server (loopback, fake scorer): slow-drip headers and bodies
are cut at the read deadline, JSON bombs get 400 (never a 500 with a traceback), bodies must be
application/json, a server without a token answers only Host names of this machine (DNS
rebinding), and one request cannot ask for more conversation x follow-up pairs than the cap.
`/metrics` stays valid Prometheus text with a fixed set of route labels after odd paths."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.serving.server import ServeConfig
from core.serving.metrics import OTHER_ROUTE, ROUTES
from tests.fakes import FakeScorer
from tests.serving.test_burst import Serving

GOOD = {"conversations": [["q", "a"]]}


@pytest.fixture(scope="module")
def serving():
    with Serving(FakeScorer(), ServeConfig(read_timeout_s=1.0, max_body_bytes=1 << 20)) as s:
        yield s


def _open(serving) -> socket.socket:
    return socket.create_connection(("127.0.0.1", serving.config.port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes (or answers and closes) within `seconds`, with data trickling in."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"X")  # one byte of a header line at a time: a slow-drip client
        except OSError:
            return True
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def _read_until_closed(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes: headers and body may come in separate segments
    (CI once saw the 408's headers alone in the first recv)."""
    sock.settimeout(seconds)
    chunks = []
    while True:
        try:
            chunk = sock.recv(4096)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_drip_headers_are_cut_at_the_deadline(serving):
    socks = [_open(serving) for _ in range(5)]
    try:
        for s in socks:
            s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert all(_closed_within(s, 4.0) for s in socks), "a slow-drip header connection stayed open"
    finally:
        for s in socks:
            s.close()


def test_a_slow_drip_body_gets_408(serving):
    with _open(serving) as s:
        s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"conv")
        answer = _read_until_closed(s, 5.0)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer


@pytest.mark.parametrize("name, raw", [
    ("100,000 nested [", b"[" * 100_000),
    ("100,000 nested [ inside the conversations", b'{"conversations": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("a 5,000-digit integer", b'{"conversations": [["q", "a"]], "n": ' + b"9" * 5000 + b"}"),
    ("deep follow-ups", b'{"conversations": [["q", "a"]], "followups": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}"),
])
def test_json_bombs_get_400_with_a_sentence(serving, name, raw):
    answer = httpx.post(f"{serving.url}/v1/score", content=raw, headers={"Content-Type": "application/json"},
                        timeout=30)
    assert answer.status_code == 400, answer.text[:300]
    assert "Traceback" not in answer.text and len(answer.json()["error"]) < 400
    assert httpx.post(f"{serving.url}/v1/score", json=GOOD, timeout=30).status_code == 200


def test_only_json_bodies_are_read(serving):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = httpx.post(f"{serving.url}/v1/score", content=b'{"conversations": [["q", "a"]]}',
                            headers=headers, timeout=30)
        assert answer.status_code == 415 and "application/json" in answer.json()["error"]


def test_without_a_token_only_this_machines_host_names_are_answered(serving):
    port = serving.config.port
    for host in ("evil.example", "evil.example:80", f"rebind.attacker.test:{port}"):
        answer = httpx.post(f"{serving.url}/v1/score", json=GOOD, headers={"Host": host}, timeout=30)
        assert answer.status_code == 400 and "--allowed-hosts" in answer.json()["error"], host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert httpx.post(f"{serving.url}/v1/score", json=GOOD, headers={"Host": host}, timeout=30).status_code == 200


def test_host_check_defaults():
    assert ServeConfig().host_names() == frozenset({"127.0.0.1", "localhost", "::1"})
    assert ServeConfig(host="0.0.0.0").host_names() == frozenset({"127.0.0.1", "localhost", "::1"})
    assert ServeConfig(token="t").host_names() is None  # a token protects the server
    assert ServeConfig(token="t", allowed_hosts=("rm.lan",)).host_names() == {"rm.lan"}
    assert ServeConfig(allowed_hosts=("*",)).host_names() is None


def test_conversations_times_followups_are_capped(serving):
    followups = {"c": {"positive": [f"p{i}" for i in range(400)], "negative": [f"n{i}" for i in range(400)]}}
    answer = httpx.post(f"{serving.url}/v1/score", timeout=30,
                        json={"conversations": [["q", "a"]] * 100, "followups": followups})
    assert answer.status_code == 413 and "80000 pairs" in answer.json()["error"]


def test_metrics_parse_after_odd_paths_with_a_fixed_set_of_routes(serving):
    for path in ('/a%22b', '/a"b\\c', "/x\ny", "/%0a", "/" + "z" * 300, "/v1/score/../../etc"):
        httpx.get(serving.url + path.replace("\n", "%0A"), timeout=30)
    httpx.post(f"{serving.url}/v1/score", json=GOOD, timeout=30)
    text = httpx.get(f"{serving.url}/metrics", timeout=30).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    routes = {s.labels["endpoint"] for s in families["flr_requests"].samples}
    assert routes <= {*ROUTES, OTHER_ROUTE} and OTHER_ROUTE in routes and "/v1/score" in routes
    scored = [s.value for s in families["flr_conversations_scored"].samples if s.name.endswith("_total")]
    assert scored and scored[0] >= 1
    assert "flr_queue_depth" in families and "flr_requests_dropped" in families
