"""`python -m core COMMAND ...`: the command line for clusters and scripts.

Each command lives in its own module exposing `add_parser(subparsers)`, which registers the
subcommand and sets `func` to a `run(args) -> int`. Errors meant for the user (`FLRError`)
become one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from typing import Sequence

from core.engine.config import AGGREGATIONS, DTYPES, MODES, ScoringConfig
from core.errors import FLRError

COMMAND_MODULES = ("core.cli.score", "core.cli.evaluate", "core.cli.mine")


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that scores (defaults come from FLR_* variables)."""
    parser.add_argument("--model", help="Hub id, local folder, .gguf file or 'embedded' (default)")
    parser.add_argument("--followups", help="follow-up set JSON (default: the bundled set)")
    parser.add_argument("--mode", choices=MODES, help="base (default) or feedback (role-swapped scorer)")
    parser.add_argument("--aggregation", choices=AGGREGATIONS,
                        help="mean (default) or sum of follow-up token log-probs; paper = released scripts")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", choices=DTYPES, help="auto (default): bf16/fp16 on GPU, fp32 on CPU")
    parser.add_argument("--batch-size", type=int, help="a pass holds N follow-ups of up to 64 tokens (default 32); scores do not depend on it")
    parser.add_argument("--max-length", type=int, help="token budget per sequence (default: model context)")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="allow model code from the Hub (off by default)")


def config_from_args(args: argparse.Namespace) -> ScoringConfig:
    return ScoringConfig.from_env(
        model=args.model, mode=args.mode, aggregation=args.aggregation, device=args.device,
        dtype=args.dtype, batch_size=args.batch_size, max_length=args.max_length,
        trust_remote_code=args.trust_remote_code,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="FLR Studio command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FLRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
