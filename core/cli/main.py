"""`flr COMMAND ...` (also `python -m core COMMAND ...`): the command line for clusters and scripts.

Each command lives in its own module of this package exposing `add_parser(subparsers)`, which
registers the subcommand and sets `func` to a `run(args) -> int`. The command modules import
only the standard library and `core.names` at the top, so `flr --help` is quick; each imports
pandas or torch when it runs. Errors meant for the user (`FLRError`) become one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from core.cli import compare, evaluate, followups, mine, score, serve, tune
from core.errors import FLRError

COMMANDS = (score, evaluate, mine, serve, tune, followups, compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flr", description="FLR Studio command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
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


def run() -> None:
    """The `flr` console script."""
    sys.exit(main())
