"""Per-visitor limits of a hosted app: queue slots and uploads, counted per client address.

A visitor can make up any number of session hashes (one client filled 33 of the 32 queue slots
with random ones), so in hosted mode the limits are keyed by the visitor's address instead:
- at most `AppSettings.events_per_client` events of one client waiting or running in gradio's
  queue (`limit_queue`); the next `queue/join` gets a 429 whose sentence the page shows;
- at most `uploads_per_client` upload requests and `upload_mb_per_client` MB per client within
  `upload_window` seconds on gradio's upload route (`UploadLimit`, an ASGI middleware handed to
  gradio's FastAPI app through `launch(app_kwargs=...)`); more get a 429 in plain text.

The client address (`client_address`) follows what gradio 6.31 itself uses for a visitor,
`request.client.host` (gradio/history.py `_is_direct_local_request`, gradio/route_utils.py
`Request`), which is what uvicorn's `ProxyHeadersMiddleware` leaves there: gradio starts uvicorn
with its defaults (gradio/http_server.py `uvicorn.Config(...)`: `proxy_headers=True`,
`forwarded_allow_ips` from FORWARDED_ALLOW_IPS, else 127.0.0.1 and ::1), so X-Forwarded-For is
honoured only from a loopback peer. On a Space the peer is the Hub's proxy at a private address
(10.x, see embeddings-benchmark/mteb#4754), which uvicorn does not trust, so every visitor would
look alike; the same rule as uvicorn's (`_TrustedHosts.get_trusted_client_address`: the
rightmost X-Forwarded-For entry that is not itself a trusted proxy) is applied once more with
`trusted_proxies` (FLR_TRUSTED_PROXIES; by default loopback and private networks on a Space,
where every connection comes from the Hub's proxy, and nothing more than uvicorn's loopback
elsewhere, where a visitor on the LAN must not be believed). A visitor can prepend anything to
X-Forwarded-For, but not change the entry the last proxy appends.

Shortcut taken on purpose: gradio's queue has no public hook for admission, so `limit_queue`
wraps `Queue.push` and counts `Queue.event_ids_to_events` (an event is there from `push` until
its run ends or it is removed), reading each `Event.request`. All of that is in this module and
checked when the app is built: a gradio without them fails at start-up, never silently unlimited
(tests/hostile/test_app_limits.py pins it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict, deque
from typing import Any, Iterable, Sequence

log = logging.getLogger(__name__)

# Loopback and private networks: where a Space's proxy connects from (trusted on a Space only).
SPACE_PROXIES = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                           "fc00::/7")
UPLOAD_PATH = "/gradio_api/upload"  # gradio/routes.py: APIRouter(prefix=API_PREFIX), @router.post("/upload")
MAX_TRACKED_CLIENTS = 10_000  # upload windows kept at once; the least recently seen are dropped first


class TrustedProxies:
    """Addresses (or networks) whose X-Forwarded-For is believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def parse_trusted_proxies(raw: str | None, on_space: bool) -> tuple[str, ...]:
    """FLR_TRUSTED_PROXIES: comma-separated addresses or networks; unset: `SPACE_PROXIES` on a
    Space, none elsewhere; empty (or "none"): none. With none, X-Forwarded-For counts only as far
    as uvicorn already believed it (from a loopback peer)."""
    if raw is None:
        return SPACE_PROXIES if on_space else ()
    if raw.strip().lower() in ("", "none"):
        return ()
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            from core.errors import ConfigError

            raise ConfigError(f"FLR_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                              "(e.g. 10.0.0.0/8)") from None
    return entries


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies) -> str:
    """The visitor behind a request whose (uvicorn-resolved) peer is `peer` and whose
    X-Forwarded-For header values are `forwarded_for`: the peer itself unless it is a trusted
    proxy, else the rightmost forwarded entry that is not a trusted proxy."""
    if not peer:
        return "unknown"
    if peer not in trusted:
        return peer
    hops = [_host(hop) for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


def _host(hop: str) -> str:
    hop = hop.strip()
    if hop.startswith("["):  # [v6]:port
        return hop[1:hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop


def request_client(request: Any, trusted: TrustedProxies) -> str:
    """`client_address` of a Starlette request (or anything with `.client` and `.headers`)."""
    peer = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None)
    forwarded = headers.getlist("x-forwarded-for") if hasattr(headers, "getlist") else []
    return client_address(peer, forwarded, trusted)


def queue_refusal(limit: int) -> str:
    return (f"This server runs at most {limit} requests per visitor at a time, and {limit} of yours "
            "are already waiting or running; wait for one to finish and try again, or run "
            "`flr score` or `flr evaluate` on your own machine.")


def limit_queue(demo: Any, limit: int, trusted: TrustedProxies) -> None:
    """At most `limit` events of one client in `demo`'s queue (waiting or running); the next
    `queue/join` (or `/call/...`) from that client is answered 429 with `queue_refusal(limit)`."""
    from fastapi import HTTPException

    queue = getattr(demo, "_queue", None)
    push = getattr(queue, "push", None)
    if push is None or not isinstance(getattr(queue, "event_ids_to_events", None), dict):
        raise RuntimeError(
            "this gradio version's queue has no `push` or `event_ids_to_events`, which the per-visitor "
            "queue limit reads (ui/client_limits.py); pin gradio to the version in requirements.txt")
    lock = asyncio.Lock()  # between counting and gradio's push registering the event, no other push

    async def limited_push(body: Any, request: Any, username: Any):
        client = request_client(request, trusted)
        async with lock:
            mine = sum(1 for event in list(queue.event_ids_to_events.values())
                       if request_client(getattr(event, "request", None), trusted) == client)
            if mine >= limit:
                log.warning("queue: refused an event of %s, who has %d waiting or running", client, mine)
                raise HTTPException(status_code=429, detail=queue_refusal(limit))
            return await push(body=body, request=request, username=username)

    queue.push = limited_push


def upload_refusal(uploads: int, megabytes: int, window: int, retry: int) -> str:
    minutes = max(1, round(window / 60))
    return (f"This server accepts at most {uploads} uploads or {megabytes} MB per visitor in {minutes} "
            f"minutes, and this one would go over; try again in {max(1, retry)} seconds, or run "
            "`flr evaluate` on your own machine for more files.")


def _over_budget(message: str) -> Exception:
    """What the counting `receive` raises once an upload goes over the budget: gradio's own
    MultiPartException, so that gradio/route_utils.py `GradioMultiPartParser.parse` closes and
    deletes the part files written so far and the upload route answers with `message` (as 400,
    which `UploadLimit` turns into 429)."""
    from gradio.route_utils import MultiPartException

    return MultiPartException(message)


class UploadLimit:
    """ASGI middleware: per client, at most `uploads` POSTs to gradio's upload route and
    `megabytes` MB of their bodies within `window` seconds (bytes are counted as they arrive, so
    a body without Content-Length is cut off as well). Other requests pass untouched."""

    def __init__(self, app: Any, *, uploads: int, megabytes: int, window: int,
                 trusted: Sequence[str] = ()) -> None:
        self.app = app
        self.uploads, self.megabytes, self.window = uploads, megabytes, window
        self.budget = megabytes * 1024 * 1024
        self.trusted = TrustedProxies(trusted)
        self.seen: OrderedDict[str, deque[list[float]]] = OrderedDict()  # client -> [[time, bytes], ...]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                not scope.get("path", "").rstrip("/").endswith(UPLOAD_PATH):
            return await self.app(scope, receive, send)
        from starlette.requests import Request

        request = Request(scope)
        client = request_client(request, self.trusted)
        now = time.monotonic()
        history = self._history(client, now)
        used = sum(entry[1] for entry in history)
        try:
            announced = int(request.headers.get("content-length") or 0)
        except ValueError:
            announced = 0
        if len(history) >= self.uploads or used + announced > self.budget:
            log.warning("uploads: refused an upload of %s (%d in the window)", client, len(history))
            return await self._refuse(scope, receive, send, history, now)
        entry = [now, 0.0]
        history.append(entry)
        over = False

        async def counted_receive() -> dict:
            nonlocal over
            message = await receive()
            if message["type"] == "http.request":
                entry[1] += len(message.get("body", b""))
                if used + entry[1] > self.budget and not over:
                    over = True
                    log.warning("uploads: cut off an upload of %s over %d MB", client, self.megabytes)
                    raise _over_budget(self._message(history, now))
            return message

        async def answered(message: dict) -> None:
            if over and message["type"] == "http.response.start":  # gradio's 400 for our exception
                message = {**message, "status": 429,
                           "headers": list(message.get("headers", [])) + [self._retry_header(history, now)]}
            await send(message)

        await self.app(scope, counted_receive, answered)

    async def _refuse(self, scope: dict, receive: Any, send: Any, history: deque, now: float) -> None:
        from starlette.responses import PlainTextResponse

        response = PlainTextResponse(self._message(history, now), status_code=429,
                                     headers={"Retry-After": str(self._retry(history, now))})
        await response(scope, receive, send)

    def _message(self, history: deque, now: float) -> str:
        return upload_refusal(self.uploads, self.megabytes, self.window, self._retry(history, now))

    def _retry_header(self, history: deque, now: float) -> tuple[bytes, bytes]:
        return b"retry-after", str(self._retry(history, now)).encode()

    def _retry(self, history: deque, now: float) -> int:
        return int(history[0][0] + self.window - now) + 1 if history else 1

    def _history(self, client: str, now: float) -> deque:
        while self.seen:  # forget clients whose last upload is out of the window, oldest first
            oldest = next(iter(self.seen.values()))
            if len(self.seen) <= MAX_TRACKED_CLIENTS and oldest and oldest[-1][0] > now - self.window:
                break
            self.seen.popitem(last=False)
        history = self.seen.pop(client, None) or deque()
        while history and history[0][0] <= now - self.window:
            history.popleft()
        self.seen[client] = history  # now the most recently seen
        return history
