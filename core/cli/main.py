"""`flr COMMAND ...` (also `python -m core COMMAND ...`): the command line for clusters and scripts.

Each command lives in its own module of this package exposing `add_parser(subparsers)`, which
registers the subcommand and sets `func` to a `run(args) -> int`. The command modules import
only the standard library and `core.names` at the top, so `flr --help` is quick; each imports
pandas or torch when it runs. Errors meant for the user (`FLRError`) become one line on stderr
and exit status 2.

Input limits (`--max NAME=N`, like the `FLR_MAX_*` variables) are accepted before the command
and after it; `--limit` is only ever a number of rows (evaluate, tune, mine, finetune).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Sequence

from core.cli import align, compare, evaluate, finetune, followups, loop, mine, score, serve, tune
from core.cli.errors import USER_ERROR_STATUS, error_line
from core.errors import FLRError
from core.limits import FLAG as LIMITS_FLAG
from core.limits import InputLimits, use_limits

COMMANDS = (score, evaluate, mine, serve, tune, followups, compare, finetune, align, loop)
LIMITS_HELP = (f"raise an input limit for this run, e.g. {LIMITS_FLAG} turns=20000 (turn_chars, "
               "conversation_chars, turns, records, followups, followup_chars, file_mb, "
               "followup_set_chars, context_chars, pairs; also "
               "FLR_MAX_<NAME>)")


class _Version(argparse.Action):
    """`flr --version`: the package version (pyproject.toml) and the checkout's commit,
    looked up only when asked for, so `flr --help` stays quick."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(version_line())
        parser.exit()


def version_line() -> str:
    """`flr <version> (<git commit of the checkout, or the package>)`: what `--version` prints."""
    from core.evaluation.provenance import package_version, tool_version

    return f"flr {package_version() or 'unknown'} ({tool_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flr", description="FLR Studio command line")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument(LIMITS_FLAG, dest="input_limits", action="append", default=[],
                        metavar="NAME=N", help=LIMITS_HELP)
    # The old spelling of --max: refused with a message naming the new one (`main`).
    parser.add_argument("--limit", dest="old_input_limits", action="append", default=[],
                        help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    for leaf in _leaf_parsers(subparsers):  # `flr score ... --max turns=N` works too
        leaf.add_argument(LIMITS_FLAG, dest="input_limits_after", action="append", metavar="NAME=N",
                          help=LIMITS_HELP)
    return parser


def _leaf_parsers(subparsers: Any) -> list[argparse.ArgumentParser]:
    """The parsers a command line ends in (`flr followups report`, not `flr followups`)."""
    leaves = []
    for parser in dict.fromkeys(subparsers.choices.values()):
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        leaves += _leaf_parsers(nested[0]) if nested else [parser]
    return leaves


def _old_limit_message(values: Sequence[str], command: str) -> str:
    """What `flr --limit ... COMMAND` (the old spelling of `--max`) is told."""
    if all("=" in v for v in values):
        flags = " ".join(f"{LIMITS_FLAG} {v}" for v in values)
        return (f"input limits are now set with {LIMITS_FLAG} NAME=N, named like the FLR_MAX_* "
                f"variables (--limit counts rows); use: flr {flags} {command} ...")
    return (f"--limit N is a number of rows of the command, so it goes after it: "
            f"flr {command} ... --limit {values[-1]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.old_input_limits:
        print(f"error: {_old_limit_message(args.old_input_limits, args.command)}", file=sys.stderr)
        return 2
    limits = [*args.input_limits, *(getattr(args, "input_limits_after", None) or [])]
    try:
        with use_limits(InputLimits.from_env().with_flags(limits)):
            return int(args.func(args) or 0)
    except FLRError as err:
        print(error_line(err), file=sys.stderr)
        return USER_ERROR_STATUS
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
