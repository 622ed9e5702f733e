"""The reward server's HTTP API (FastAPI): OpenRLHF's `/get_reward`, the native `/v1/score`,
`/health` and Prometheus `/metrics`.

Every request is checked here before anything reaches the model: the token (401), the body
size and the number of conversations (413), the JSON shape (400 / 422 with a message naming the
field or the query), and the queue (503 with Retry-After). Scoring happens on the one worker
thread of `core.serving.batcher`; handlers only await its futures, so the event loop keeps
answering `/health` while a batch is being scored.

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
from fastapi.responses import JSONResponse, PlainTextResponse

from core.engine.conversation import Conversation, parse_conversation
from core.engine.followups import FollowupSet, followups_from_mapping
from core.errors import FLRError, InputError
from core.serving.batcher import BatchWorker, ServerBusy
from core.serving.metrics import Metrics
from core.serving.shaping import RewardShaper, ShapingConfig
from core.serving.templates import QueryTemplate, split_query, template_named

if TYPE_CHECKING:
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)
TOKEN_ENV = "FLR_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one reward server (the scoring settings are the scorer's `ScoringConfig`)."""

    host: str = "127.0.0.1"  # loopback only unless told otherwise
    port: int = 8000
    token: str | None = None  # when set, every request must carry it (Bearer, X-FLR-Token or ?token=)
    max_batch_wait_ms: float = 5.0  # how long the worker waits for more requests to batch
    max_batch: int = 64  # conversations scored together at most (1 = one request at a time)
    max_queue: int = 64  # requests waiting; more are refused with 503
    max_body_bytes: int = 8 << 20  # larger bodies are refused with 413
    max_conversations: int = 512  # per request; more are refused with 413
    query_template: str | None = None  # force a chat template for /get_reward queries
    request_timeout_s: float = 600.0  # a request still unscored after this gets 504
    shaping: ShapingConfig = field(default_factory=ShapingConfig)


class HTTPProblem(Exception):
    """An answer other than 200, with a message for the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def create_app(scorer: "Scorer", followups: FollowupSet, config: ServeConfig | None = None, *,
               model: str | None = None, device: str = "unknown") -> FastAPI:
    """The app; its worker thread starts now and stops when the app shuts down."""
    config = config or ServeConfig()
    config.shaping.check_categories(followups.names)
    forced: QueryTemplate | None = template_named(config.query_template) if config.query_template else None
    metrics = Metrics()
    worker = BatchWorker(scorer, max_wait_ms=config.max_batch_wait_ms, max_batch=config.max_batch,
                         max_queue=config.max_queue, metrics=metrics)
    shaper = RewardShaper(config.shaping)
    worker.start()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        yield
        worker.stop()

    app = FastAPI(title="FLR reward server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.worker = worker
    app.state.metrics = metrics
    app.state.shaper = shaper

    @app.exception_handler(HTTPProblem)
    async def _problem(_: Request, err: HTTPProblem) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        try:
            _check_token(request, config.token)
            response = await call_next(request)
        except HTTPProblem as err:
            response = JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)
        except Exception:  # noqa: BLE001 - a bug answers 500; the server keeps serving
            log.exception("unexpected error answering %s", request.url.path)
            response = JSONResponse({"error": "internal error; see the server log"}, status_code=500)
        metrics.observe_request(request.url.path, response.status_code, time.perf_counter() - start)
        return response

    async def scored(conversations: list[Conversation], followup_set: FollowupSet) -> list[Any]:
        try:
            future = worker.submit(conversations, followup_set)
        except ServerBusy as err:
            raise HTTPProblem(503, str(err), {"Retry-After": "1"}) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), config.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPProblem(504, f"not scored within {config.request_timeout_s:g} s; retry later") from None
        except FLRError as err:
            raise HTTPProblem(422, str(err)) from None

    @app.post("/get_reward")
    async def get_reward(request: Request) -> JSONResponse:
        body = await _read_json(request, config)
        queries = _string_list(body, "query", config)
        prompts = body.get("prompts")
        if prompts is not None and (not isinstance(prompts, list) or len(prompts) != len(queries)):
            raise HTTPProblem(422, f"'prompts' must be a list of {len(queries)} string(s), one per query, "
                                   "or left out")
        conversations = []
        for i, query in enumerate(queries):
            prompt = prompts[i] if prompts is not None and isinstance(prompts[i], str) else None
            try:
                conversations.append(split_query(query, prompt, forced, f"query {i}"))
            except InputError as err:
                raise HTTPProblem(422, str(err)) from None
        rewards = _shape(shaper, await scored(conversations, followups))
        return JSONResponse({"rewards": rewards, "scores": rewards})

    @app.post("/v1/score")
    async def score(request: Request) -> JSONResponse:
        body = await _read_json(request, config)
        items = body.get("conversations")
        if not isinstance(items, list) or not items:
            raise HTTPProblem(422, "'conversations' must be a non-empty list; each item a list of utterances, "
                                   "a list of {role, content} messages or role-prefixed text")
        _check_count(len(items), config)
        followup_set = _followups(body, followups)
        try:
            conversations = [parse_conversation(item, f"conversations[{i}]") for i, item in enumerate(items)]
        except InputError as err:
            raise HTTPProblem(422, str(err)) from None
        results = await scored(conversations, followup_set)
        rewards = _shape(shaper, results)
        return JSONResponse({"results": [dict(r.to_record(), reward=v) for r, v in zip(results, rewards)]})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model or scorer.config.model, "device": device,
                "queue_depth": worker.depth, "max_queue": config.max_queue,
                "categories": list(followups.names)}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(worker.depth), media_type="text/plain; version=0.0.4")

    return app


def _check_token(request: Request, token: str | None) -> None:
    if not token:
        return
    given = request.headers.get("authorization", "")
    given = given[7:] if given.lower().startswith("bearer ") else request.headers.get("x-flr-token", "")
    given = given or request.query_params.get("token", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPProblem(401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                               "(or X-FLR-Token, or ?token= in the URL)", {"WWW-Authenticate": "Bearer"})


async def _read_json(request: Request, config: ServeConfig) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
        raise HTTPProblem(413, f"request body of {declared} bytes is over the {config.max_body_bytes}-byte limit; "
                               "send fewer or shorter conversations per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > config.max_body_bytes:
            raise HTTPProblem(413, f"request body is over the {config.max_body_bytes}-byte limit; "
                                   "send fewer or shorter conversations per request")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HTTPProblem(400, f"body is not valid JSON ({err}); send a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPProblem(422, f"body must be a JSON object; got {type(body).__name__}")
    return body


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
    return chosen


def _shape(shaper: RewardShaper, results: list[Any]) -> list[float]:
    try:
        return shaper(results)
    except InputError as err:
        raise HTTPProblem(422, str(err)) from None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
