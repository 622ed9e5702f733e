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

from core.cli import align, compare, evaluate, finetune, followups, mine, score, serve, tune
from core.errors import FLRError
from core.limits import InputLimits, shorten, use_limits

MESSAGE_LIMIT = 2000  # characters of an error line; quoted input beyond this is cut

COMMANDS = (score, evaluate, mine, serve, tune, followups, compare, finetune, align)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flr", description="FLR Studio command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--limit", dest="input_limits", action="append", default=[], metavar="NAME=N",
                        help="raise an input limit for this run, e.g. --limit turns=20000 "
                             "(turn_chars, conversation_chars, turns, records, followups, "
                             "followup_chars, file_mb; also FLR_MAX_<NAME>)")
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
        with use_limits(InputLimits.from_env().with_flags(args.input_limits)):
            return int(args.func(args) or 0)
    except FLRError as err:
        print(f"error: {shorten(str(err), MESSAGE_LIMIT)}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the checks did not foresee (full disk, vanished folder)
        if args.verbose:
            raise
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: {where}{err.strerror or err}; check the path, its permissions and the free "
              "space", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; use smaller inputs or a smaller --batch-size", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The `flr` console script."""
    sys.exit(main())
