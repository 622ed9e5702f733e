"""HTTP clients of `flr serve`, sync and async, with retries (httpx).

A training step must not stop because the reward server was busy for a moment: 429/502/503/504
answers, timeouts and refused or dropped connections are retried with exponential backoff and
jitter, waiting at least what the server's `Retry-After` asks. Anything else (401, 413, 422) is
the caller's mistake and raised at once, with the server's message. One `httpx` client per
instance keeps connections open between calls; it is made on first use and left out of pickles,
so an object holding a client can be sent to another process (TRL's async GRPO, Ray, verl).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import FLRError

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RewardServerError(FLRError):
    """A reward server that cannot be reached or answers with an error."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a busy or unreachable server."""

    retries: int = 8  # tries after the first one
    backoff_s: float = 0.5  # first wait; doubled after each try
    max_backoff_s: float = 30.0  # longest wait between tries (a longer Retry-After is capped here too)

    def wait(self, attempt: int, retry_after: str | None) -> float:
        backoff = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)
        try:
            asked = float(retry_after) if retry_after else 0.0
        except ValueError:  # an HTTP date: not worth parsing for a reward server
            asked = 0.0
        return min(self.max_backoff_s, max(backoff, asked))


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"  # never ?token=: URLs end up in logs
    return headers


def _decoded(url: str, response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise RewardServerError(f"{url} answered {response.status_code}: {response.text[:300]}")
    try:
        return response.json()
    except ValueError:
        raise RewardServerError(f"{url} answered 200 with a body that is not JSON: {response.text[:100]!r}") from None


def _unreachable(url: str, err: Exception, tries: int) -> RewardServerError:
    return RewardServerError(f"cannot reach the reward server at {url} after {tries} tries "
                             f"({type(err).__name__}: {err}); is `flr serve` running there?")


class RewardClient:
    """POSTs JSON to a reward server, retrying busy answers and timeouts; reuses its connections."""

    def __init__(self, token: str | None = None, timeout: float = 600.0, retry: RetryPolicy | None = None) -> None:
        self.token = token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._client: httpx.Client | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # open sockets do not travel

    def post(self, url: str, body: Any) -> Any:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=_headers(self.token))
        for attempt in range(self.retry.retries + 1):
            last = attempt == self.retry.retries
            try:
                response = self._client.post(url, json=body)
            except httpx.TransportError as err:  # timeouts, refused and dropped connections
                if last:
                    raise _unreachable(url, err, attempt + 1) from None
                time.sleep(self.retry.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                time.sleep(self.retry.wait(attempt, response.headers.get("retry-after")))
                continue
            return _decoded(url, response)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class AsyncRewardClient:
    """The async `RewardClient` (verl's reward loop, TRL's async reward functions).

    An `httpx.AsyncClient` belongs to one event loop, so one is kept per running loop."""

    def __init__(self, token: str | None = None, timeout: float = 600.0, retry: RetryPolicy | None = None) -> None:
        self.token = token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._clients: dict[int, httpx.AsyncClient] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_clients": {}}

    def _client(self) -> httpx.AsyncClient:
        key = id(asyncio.get_running_loop())
        if key not in self._clients:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            self._clients[key] = httpx.AsyncClient(timeout=self.timeout, headers=_headers(self.token), limits=limits)
        return self._clients[key]

    async def post(self, url: str, body: Any) -> Any:
        client = self._client()
        for attempt in range(self.retry.retries + 1):
            last = attempt == self.retry.retries
            try:
                response = await client.post(url, json=body)
            except httpx.TransportError as err:
                if last:
                    raise _unreachable(url, err, attempt + 1) from None
                await asyncio.sleep(self.retry.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                await asyncio.sleep(self.retry.wait(attempt, response.headers.get("retry-after")))
                continue
            return _decoded(url, response)
        raise AssertionError("unreachable")


def post_json(url: str, body: Any, token: str | None = None, timeout: float = 600.0,
              retry: RetryPolicy | None = None) -> Any:
    """POST a JSON body once-off (retrying as `RewardClient` does) and decode the JSON answer."""
    client = RewardClient(token, timeout, retry)
    try:
        return client.post(url, body)
    finally:
        client.close()
