"""`flr serve`: FLR as a live reward for RL trainers, over HTTP.

Endpoints: `POST /get_reward` (OpenRLHF's remote reward model: {"query": [...], "prompts": [...]}
-> {"rewards": [...]}), `POST /v1/score` (native: conversations in any shape `flr score`
accepts, optional "followups" set and "categories"), `GET /health`, `GET /metrics`.
Concurrent requests are scored together in batches; rewards do not depend on the batching.
A trainer's whole burst is admitted (bounded by --max-queue-mb of memory); a request whose client
has gone, or that waited --timeout seconds, is dropped unscored.
Binds to 127.0.0.1 unless --host says otherwise; set a token (--token or FLR_SERVE_TOKEN)
before exposing it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from core.cli.flags import add_scoring_arguments, config_from_args
from core.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve FLR rewards over HTTP (OpenRLHF, TRL, verl)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--token", help="require this token on every request (default: $FLR_SERVE_TOKEN)")
    add_scoring_arguments(parser)
    parser.add_argument("--max-batch-wait-ms", type=float, default=5.0,
                        help="wait this long for more requests to score together (default 5)")
    parser.add_argument("--max-batch", type=int, default=64,
                        help="conversations scored together at most (default 64; 1 = no batching)")
    parser.add_argument("--max-queue", type=int, default=16384,
                        help="requests allowed to wait (default 16384: a trainer's whole rollout, sent at "
                             "once, is admitted); more get 503 + Retry-After")
    parser.add_argument("--max-queue-mb", type=float, default=1024.0,
                        help="memory the waiting requests may hold, in MB; beyond it 503 + Retry-After "
                             "at once (default 1024)")
    parser.add_argument("--timeout", type=float, default=170.0,
                        help="seconds a request may wait to be scored; then 504 and it is dropped unscored "
                             "(default 170: just under OpenRLHF's 180 s client timeout)")
    parser.add_argument("--read-timeout", type=float, default=30.0,
                        help="seconds a request's headers and body may take to arrive (default 30)")
    parser.add_argument("--limit-concurrency", type=int,
                        help="open connections at most; more get 503 from uvicorn (default: --max-queue + 256)")
    parser.add_argument("--allowed-hosts", metavar="NAME,...",
                        help="Host header names answered, '*' for any (default without a token: "
                             "127.0.0.1, localhost, ::1 and --host, against DNS rebinding; with a token: any)")
    parser.add_argument("--max-pairs", type=int, default=65536,
                        help="conversations x follow-ups per request at most; more get 413 (default 65536)")
    parser.add_argument("--max-followup-chars", type=int, default=8_000_000,
                        help="conversations x follow-up characters per request at most; more get 413 "
                             "(default 8000000: 512 conversations x the default set)")
    parser.add_argument("--context-chars", type=int, default=64,
                        help="characters of one conversation per token of the model's context at most; "
                             "more get 413 (default 64)")
    parser.add_argument("--strip-reasoning", action="store_true",
                        help="cut <think>...</think> reasoning traces from /get_reward responses before scoring")
    parser.add_argument("--max-request-mb", type=float, default=8.0,
                        help="largest request body in MB; larger get 413 (default 8)")
    parser.add_argument("--max-conversations", type=int, default=512,
                        help="conversations per request at most; more get 413 (default 512)")
    parser.add_argument("--query-template", metavar="MODEL_OR_NAME",
                        help="chat template of /get_reward queries: chatml, llama3, mistral, gemma, phi3, "
                             "plain, or a local model folder (default: recognised per query)")
    parser.add_argument("--reward-weights", metavar="CAT=W,...",
                        help="weight categories in the reward (unnamed categories weigh 1)")
    parser.add_argument("--normalize", action="store_true",
                        help="normalise rewards by their running mean and standard deviation")
    parser.add_argument("--clip", type=float, help="clip rewards to [-CLIP, CLIP] (after normalising)")
    parser.set_defaults(func=run)


def serve_config_from_args(args: argparse.Namespace) -> Any:
    from core.serving.server import TOKEN_ENV, ServeConfig
    from core.serving.shaping import ShapingConfig, parse_weights

    for flag, value, low in (("--port", args.port, 1), ("--max-batch", args.max_batch, 1),
                             ("--max-queue", args.max_queue, 1),
                             ("--max-conversations", args.max_conversations, 1),
                             ("--max-pairs", args.max_pairs, 1), ("--limit-concurrency", args.limit_concurrency or 1, 1),
                             ("--max-followup-chars", args.max_followup_chars, 1),
                             ("--context-chars", args.context_chars, 1)):
        if value < low:
            raise ConfigError(f"{flag} must be at least {low}; got {value}")
    if args.max_batch_wait_ms < 0 or args.max_request_mb <= 0:
        raise ConfigError("--max-batch-wait-ms must be >= 0 and --max-request-mb > 0")
    for flag, value in (("--max-queue-mb", args.max_queue_mb), ("--timeout", args.timeout),
                        ("--read-timeout", args.read_timeout)):
        if value <= 0:
            raise ConfigError(f"{flag} must be more than 0; got {value:g}")
    hosts = tuple(h.strip() for h in args.allowed_hosts.split(",") if h.strip()) if args.allowed_hosts else None
    shaping = ShapingConfig(parse_weights(args.reward_weights), args.normalize, args.clip)
    return ServeConfig(host=args.host, port=args.port, token=args.token or os.environ.get(TOKEN_ENV) or None,
                       max_batch_wait_ms=args.max_batch_wait_ms, max_batch=args.max_batch,
                       max_queue=args.max_queue, max_body_bytes=int(args.max_request_mb * (1 << 20)),
                       max_conversations=args.max_conversations, query_template=args.query_template,
                       max_queue_bytes=int(args.max_queue_mb * (1 << 20)), request_timeout_s=args.timeout,
                       read_timeout_s=args.read_timeout, limit_concurrency=args.limit_concurrency,
                       allowed_hosts=hosts, max_pairs=args.max_pairs, strip_reasoning=args.strip_reasoning,
                       max_followup_chars=args.max_followup_chars, context_chars=args.context_chars,
                       shaping=shaping)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from core.engine.followups import load_followups
    from core.engine.scorer import load_scorer
    from core.serving.server import create_app, is_loopback
    from core.serving.templates import template_named

    config = serve_config_from_args(args)
    scoring = config_from_args(args)
    followups = load_followups(args.followups)
    config.shaping.check_categories(followups.names)
    if config.query_template:
        template_named(config.query_template)  # a bad name fails before the model loads
    if not is_loopback(config.host) and not config.token:
        print(f"warning: serving on {config.host} without a token: anyone who can reach this port can "
              "use the model; set --token or FLR_SERVE_TOKEN", file=sys.stderr)
    scorer = load_scorer(scoring)
    app = create_app(scorer, followups, config, model=scoring.model, device=str(scorer.loaded.device))
    print(f"FLR reward server on http://{config.host}:{config.port} (model {scoring.model}, "
          f"device {scorer.loaded.device}); POST /get_reward, /v1/score; GET /health, /metrics",
          file=sys.stderr)
    uvicorn.run(app, **uvicorn_options(config))
    return 0


def uvicorn_options(config: Any) -> dict[str, Any]:
    """How uvicorn serves the app: the header deadline, the connection limit, and file descriptors
    for that many connections (the soft limit is raised to the hard one where it is lower)."""
    from core.serving.protocol import header_deadline_protocol

    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = config.connection_limit + 256
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY
                                                        else min(wanted, hard), hard))
    except (ImportError, ValueError, OSError):  # Windows, or a limit this process may not raise
        pass
    return {"host": config.host, "port": config.port, "log_level": "warning",
            "http": header_deadline_protocol(config.read_timeout_s),
            "limit_concurrency": config.connection_limit, "backlog": max(2048, config.connection_limit),
            "timeout_keep_alive": 5}
