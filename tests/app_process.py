"""An app started as its own process, the way a user starts it: wait until its page answers,
stop it afterwards. Shared by the tests that start `app.py` (or a test app module) in a
subprocess (tests/ui/test_browser_as_started.py, tests/ui/test_zero_gpu.py,
tests/hostile/test_app_limits.py), and `free_port` for every test that starts a server."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Callable

import httpx
import pytest


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it; free again once closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(server: subprocess.Popen, url: str, timeout: float, log: Callable[[], str],
                         name: str = "the app", poll: float = 0.3) -> None:
    """Return once GET `url` answers 200; fail the test with the end of `log()` if the process
    stops first or nothing answers within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"{name} stopped while starting:\n" + log()[-3000:])
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer on {url} within {timeout} s:\n" + log()[-3000:])
        time.sleep(poll)


def stop(server: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate the process, killing it when it does not end within `timeout` seconds."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
