"""The reward server's HTTP API (FastAPI): OpenRLHF's `/get_reward`, the native `/v1/score`,
`/health` and Prometheus `/metrics`.

Every request is checked here before anything reaches the model: the Host header against the
allowed hosts (400; on by default when no token is set, against DNS rebinding), the token (401),
the content type (415), the body size, the number of conversations, of conversation x
follow-up pairs and of follow-up characters to score, the characters of each conversation
against the model's context (413), the JSON itself (400 for anything `json` cannot decode, at any depth or
size), its shape (422 with a message naming the field or the query), and the queue (503 with
Retry-After, only once waiting requests hold `max_queue_bytes` of memory). Bodies must arrive
within `read_timeout_s` (408); the header deadline is `core.serving.protocol`'s.

Scoring happens on the one worker thread of `core.serving.batcher`; handlers only await its
futures, so the event loop keeps answering `/health` while a batch is being scored. A handler
also listens for its client's disconnect: a request whose client has gone, or that has waited
`request_timeout_s`, is cancelled and dropped by the worker before it is scored.

Defaults are chosen against the trainers' default clients (read from their sources):
OpenRLHF's `openrlhf/utils/agent.py` `_fetch_rewards_via_http` posts every sample of a rollout
as its own request, all at once, with `aiohttp.ClientTimeout(total=180)` and 5 tries 1 s apart
(no Retry-After); so a burst of thousands is admitted, and a request is given up at 170 s, just
before the client would, rather than scored for nobody. verl's reward loop
(`verl/experimental/reward_loop/reward_manager/naive.py`) calls `compute_score` once per sample,
concurrently, and TRL batches a step's completions in one call.

Bodies are read and validated by hand rather than with pydantic models on purpose: the error
messages name the query index and what was expected, in the project's own words.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from core.engine.conversation import Conversation, parse_conversation
from core.engine.followups import FollowupSet, followups_from_mapping
from core.errors import FLRError, InputError
from core.serving.batcher import BatchWorker, ServerBusy
from core.serving.metrics import CONTENT_TYPE, Metrics
from core.serving.reasoning import strip_reasoning
from core.serving.shaping import RewardShaper, ShapingConfig
from core.serving.templates import QueryTemplate, split_query, template_named

if TYPE_CHECKING:
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)
TOKEN_ENV = "FLR_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXTRA_LOG_PREFIX = "flr_"  # OpenRLHF logs each extra_logs key beside reward and score


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one reward server (the scoring settings are the scorer's `ScoringConfig`)."""

    host: str = "127.0.0.1"  # loopback only unless told otherwise
    port: int = 8000
    token: str | None = None  # when set, every request must carry it (Authorization: Bearer, X-FLR-Token)
    max_batch_wait_ms: float = 5.0  # how long the worker waits for more requests to batch
    max_batch: int = 64  # conversations scored together at most (1 = one request at a time)
    max_queue: int = 16384  # requests waiting at most: far above a trainer's burst (OpenRLHF: 1024)
    max_queue_bytes: int = 1 << 30  # memory the waiting requests may hold; beyond it 503 at once
    max_body_bytes: int = 8 << 20  # larger bodies are refused with 413
    max_conversations: int = 512  # per request; more are refused with 413
    max_pairs: int = 65536  # conversations x follow-ups per request (512 x the default 120 fits)
    max_followup_chars: int = 8_000_000  # conversations x follow-up characters per request (512 x 4,180 fits)
    context_chars: int = 64  # characters of one conversation per token of the model's context
    query_template: str | None = None  # force a chat template for /get_reward queries
    request_timeout_s: float = 170.0  # unscored after this: 504 and dropped (OpenRLHF gives up at 180 s)
    read_timeout_s: float = 30.0  # headers and body must arrive within this (slow-drip clients)
    limit_concurrency: int | None = None  # open connections at most (uvicorn); None: max_queue + 256
    allowed_hosts: tuple[str, ...] | None = None  # Host header names; None: this machine's when no token
    strip_reasoning: bool = False  # cut <think>...</think> from /get_reward responses before scoring
    shaping: ShapingConfig = field(default_factory=ShapingConfig)

    @property
    def connection_limit(self) -> int:
        return self.limit_concurrency or self.max_queue + 256

    def host_names(self) -> frozenset[str] | None:
        """Host names a request may name, or None when any may (a token protects the server)."""
        if self.allowed_hosts is not None:
            names = {h.lower() for h in self.allowed_hosts}
            return None if "*" in names or not names else frozenset(names)
        if self.token:
            return None
        return frozenset({*LOOPBACK, self.host.lower()}) - {"0.0.0.0", "::"}


class HTTPProblem(Exception):
    """An answer other than 200, with a message for the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _Guard:
    """Pure ASGI middleware: Host and token checks, a 500 that keeps serving, and metrics.

    Pure ASGI rather than `@app.middleware("http")` so that the handler's `receive` sees the
    client's disconnect directly, and a burst of thousands does not pay for a task group each."""

    def __init__(self, app: Any, config: ServeConfig, metrics: Metrics) -> None:
        self.app = app
        self.config = config
        self.hosts = config.host_names()
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        request = Request(scope)
        try:
            _check_host(request, self.hosts)
            _check_token(request, self.config.token)
            await self.app(scope, receive, sending)
        except HTTPProblem as err:
            await _answer(err.status, err.message, err.headers, sending, status["started"])
        except Exception:  # noqa: BLE001 - a bug answers 500; the server keeps serving
            log.exception("unexpected error answering %s", scope.get("path"))
            await _answer(500, "internal error; see the server log", {}, sending, status["started"])
        self.metrics.observe_request(scope.get("path", ""), status["code"], time.perf_counter() - start)


async def _answer(code: int, message: str, headers: dict[str, str], send: Any, started: bool) -> None:
    if started:  # too late for another status line; the client sees a cut response
        return
    await JSONResponse({"error": message}, status_code=code, headers=headers)({"type": "http"}, None, send)


def create_app(scorer: "Scorer", followups: FollowupSet, config: ServeConfig | None = None, *,
               model: str | None = None, device: str = "unknown") -> FastAPI:
    """The app; its worker thread starts now and stops when the app shuts down."""
    config = config or ServeConfig()
    config.shaping.check_categories(followups.names)
    forced: QueryTemplate | None = template_named(config.query_template) if config.query_template else None
    metrics = Metrics()
    worker = BatchWorker(scorer, max_wait_ms=config.max_batch_wait_ms, max_batch=config.max_batch,
                         max_queue=config.max_queue, max_queue_bytes=config.max_queue_bytes, metrics=metrics)
    metrics.watch_depth(lambda: worker.depth)
    shaper = RewardShaper(config.shaping)
    context = getattr(scorer, "max_length", None)  # tokens the model reads (None: not known)
    worker.start()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        yield
        worker.stop()

    app = FastAPI(title="FLR reward server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.worker = worker
    app.state.metrics = metrics
    app.state.shaper = shaper
    app.add_middleware(_Guard, config=config, metrics=metrics)

    @app.exception_handler(HTTPProblem)
    async def _problem(_: Request, err: HTTPProblem) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

    async def scored(request: Request, conversations: list[Conversation], followup_set: FollowupSet) -> list[Any]:
        try:
            future = worker.submit(conversations, followup_set)
        except ServerBusy as err:
            raise HTTPProblem(503, str(err), {"Retry-After": "1"}) from None
        waiting = asyncio.wrap_future(future)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({waiting, gone}, timeout=config.request_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if waiting not in done:
            worker.abandon(future)  # dropped unscored, or its batch stopped between passes
            waiting.cancel()
            if gone in done:
                raise HTTPProblem(499, "the client closed the connection before its reward was ready")
            raise HTTPProblem(504, f"not scored within {config.request_timeout_s:g} s (--timeout); the server "
                                   "is overloaded: retry later or send fewer requests at once",
                              {"Retry-After": "5"})
        try:
            return waiting.result()
        except FLRError as err:
            raise HTTPProblem(422, str(err)) from None

    @app.post("/get_reward")
    async def get_reward(request: Request) -> JSONResponse:
        body = await _read_json(request, config)
        queries = _string_list(body, "query", config)
        _check_pairs(len(queries), followups, config)
        prompts = body.get("prompts")
        if prompts is not None and (not isinstance(prompts, list) or len(prompts) != len(queries)):
            raise HTTPProblem(422, f"'prompts' must be a list of {len(queries)} string(s), one per query, "
                                   "or left out")
        conversations = []
        for i, query in enumerate(queries):
            prompt = prompts[i] if prompts is not None and isinstance(prompts[i], str) else None
            try:
                conversation = split_query(query, prompt, forced, f"query {i}")
            except InputError as err:
                raise HTTPProblem(422, str(err)) from None
            if config.strip_reasoning:
                conversation = _without_reasoning(conversation)
            conversations.append(conversation)
        _check_context(conversations, context, config, "query")
        results = await scored(request, conversations, followups)
        rewards = _shape(shaper, results)
        return JSONResponse({"rewards": rewards, "scores": rewards, "extra_logs": extra_logs(results)})

    @app.post("/v1/score")
    async def score(request: Request) -> JSONResponse:
        body = await _read_json(request, config)
        items = body.get("conversations")
        if not isinstance(items, list) or not items:
            raise HTTPProblem(422, "'conversations' must be a non-empty list; each item a list of utterances, "
                                   "a list of {role, content} messages or role-prefixed text")
        _check_count(len(items), config)
        followup_set = _followups(body, followups)
        _check_pairs(len(items), followup_set, config)
        try:
            conversations = [parse_conversation(item, f"conversations[{i}]") for i, item in enumerate(items)]
        except InputError as err:
            raise HTTPProblem(422, str(err)) from None
        except RecursionError:
            raise HTTPProblem(400, "a conversation is nested too deeply; send lists of strings or "
                                   "{role, content} messages") from None
        _check_context(conversations, context, config, "conversations")
        results = await scored(request, conversations, followup_set)
        rewards = _shape(shaper, results)
        return JSONResponse({"results": [dict(r.to_record(), reward=v) for r, v in zip(results, rewards)]})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model or scorer.config.model, "device": device,
                "queue_depth": worker.depth, "max_queue": config.max_queue,
                "categories": list(followups.names)}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


def followup_count(followups: FollowupSet) -> int:
    """Follow-ups each conversation is scored with (positive and negative, every category)."""
    return sum(len(c.positive) + len(c.negative) for c in followups)


def extra_logs(results: list[Any]) -> dict[str, list[float]]:
    """Per-category FLR of each query, as OpenRLHF's `extra_logs` (one list per key, one value per
    query, like OpenRLHF's own `openrlhf/cli/serve_rm.py`); the trainer logs each key's mean."""
    names = [c.name for c in results[0].categories] if results else []
    return {EXTRA_LOG_PREFIX + name: [r.category(name).flr for r in results] for name in names}


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is already read, so only a disconnect comes)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _without_reasoning(conversation: Conversation) -> Conversation:
    *context, reply = conversation.utterances
    return Conversation((*context, strip_reasoning(reply)))


def _check_host(request: Request, hosts: frozenset[str] | None) -> None:
    if hosts is None:
        return
    host = request.headers.get("host", "").lower()
    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name not in hosts:
        raise HTTPProblem(400, f"Host {host[:100]!r} is not one this server answers to (it has no token, so "
                               "it only answers requests naming this machine); use http://127.0.0.1, "
                               "or start it with --allowed-hosts NAME or --token")


def _check_token(request: Request, token: str | None) -> None:
    if not token:
        return
    given = request.headers.get("authorization", "")
    given = given[7:] if given.lower().startswith("bearer ") else request.headers.get("x-flr-token", "")
    given = given or request.query_params.get("token", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPProblem(401, "missing or wrong token: send the header 'Authorization: Bearer <token>' "
                               "(or X-FLR-Token: <token>)", {"WWW-Authenticate": "Bearer"})


async def _read_json(request: Request, config: ServeConfig) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPProblem(415, f"expected a body of type application/json; got {media or 'no Content-Type'}: "
                               "send 'Content-Type: application/json'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
        raise HTTPProblem(413, f"request body of {declared} bytes is over the {config.max_body_bytes}-byte limit; "
                               "send fewer or shorter conversations per request")
    try:
        raw = await asyncio.wait_for(_body(request, config.max_body_bytes), config.read_timeout_s)
    except asyncio.TimeoutError:
        raise HTTPProblem(408, f"the request body did not arrive within {config.read_timeout_s:g} s; "
                               "send it at once", {"Connection": "close"}) from None
    try:
        body = json.loads(raw)
    except RecursionError:
        raise HTTPProblem(400, "body is not JSON this server reads: it is nested too deeply; "
                               "send a JSON object of lists of strings") from None
    except ValueError as err:  # JSONDecodeError, bad UTF-8, an integer of over 4,300 digits
        raise HTTPProblem(400, f"body is not valid JSON ({str(err)[:200]}); send a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPProblem(422, f"body must be a JSON object; got {type(body).__name__}")
    return body


async def _body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPProblem(413, f"request body is over the {limit}-byte limit; "
                                   "send fewer or shorter conversations per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _string_list(body: dict[str, Any], key: str, config: ServeConfig) -> list[str]:
    values = body.get(key)
    if not isinstance(values, list) or not values:
        raise HTTPProblem(422, f"'{key}' must be a non-empty list of rendered prompt+response strings")
    _check_count(len(values), config)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise HTTPProblem(422, f"{key} {i}: expected a string; got {type(value).__name__}")
    return values


def _check_count(count: int, config: ServeConfig) -> None:
    if count > config.max_conversations:
        raise HTTPProblem(413, f"{count} conversations in one request; the limit is {config.max_conversations}: "
                               "split the request")


def _check_pairs(conversations: int, followup_set: FollowupSet, config: ServeConfig) -> None:
    """Refuse, before anything is parsed further, a request of too many conversation x follow-up
    pairs, or of too many follow-up characters to score (each is read after its conversation)."""
    followups = followup_count(followup_set)
    if conversations * followups > config.max_pairs:
        raise HTTPProblem(413, f"{conversations} conversations x {followups} follow-ups = "
                               f"{conversations * followups} pairs to score in one request; the limit is "
                               f"{config.max_pairs} (--max-pairs): send fewer conversations or follow-ups")
    chars = sum(len(t) for c in followup_set for t in (*c.positive, *c.negative))
    if conversations * chars > config.max_followup_chars:
        raise HTTPProblem(413, f"{conversations} conversations x {chars} characters of follow-ups = "
                               f"{conversations * chars} characters to score in one request; the limit is "
                               f"{config.max_followup_chars} (--max-followup-chars): send fewer "
                               "conversations, or fewer or shorter follow-ups")


def _check_context(conversations: list[Conversation], context: int | None, config: ServeConfig,
                   what: str) -> None:
    """Refuse a conversation far longer than the model reads (`context_chars` per context token)."""
    if not context:
        return
    cap = config.context_chars * context
    for i, conversation in enumerate(conversations):
        chars = sum(map(len, conversation.utterances)) + len(conversation.system or "")
        if chars > cap:
            name = f"{what}[{i}]" if what == "conversations" else f"{what} {i}"
            raise HTTPProblem(413, f"{name}: {chars} characters is over the limit of {cap} for this "
                                   f"model's {context}-token context ({config.context_chars} per token, "
                                   "--context-chars); only its last turns are read: send only those")


def _followups(body: dict[str, Any], default: FollowupSet) -> FollowupSet:
    chosen = default
    try:
        if body.get("followups") is not None:
            chosen = followups_from_mapping(body["followups"], "'followups'")
        categories = body.get("categories")
        if categories is not None:
            if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
                raise HTTPProblem(422, "'categories' must be a list of category names")
            chosen = chosen.select(categories)
    except InputError as err:
        raise HTTPProblem(422, str(err)) from None
    except RecursionError:
        raise HTTPProblem(400, "'followups' is nested too deeply; send {category: {positive: [...], "
                               "negative: [...]}}") from None
    return chosen


def _shape(shaper: RewardShaper, results: list[Any]) -> list[float]:
    try:
        return shaper(results)
    except InputError as err:
        raise HTTPProblem(422, str(err)) from None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
