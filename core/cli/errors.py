"""The one place the command line turns an error meant for the user (`FLRError`) into a message:
one line on stderr, quoted input cut to `MESSAGE_LIMIT` characters, and exit status 2.

`core.cli.main` does it for every command; `user_errors` does the same for a command's `run`
called on its own (`args.func(args)`, as tests and `python -m core.cli.evaluate` do).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from core.errors import FLRError
from core.limits import shorten

MESSAGE_LIMIT = 2000  # characters of an error line; quoted input beyond this is cut
USER_ERROR_STATUS = 2


def error_line(err: FLRError) -> str:
    """`error: <the message>`, cut to `MESSAGE_LIMIT` characters."""
    return f"error: {shorten(str(err), MESSAGE_LIMIT)}"


def user_errors(run: Callable[[Any], int]) -> Callable[[Any], int]:
    """`run` with an `FLRError` printed as `error_line` and answered with status 2."""
    @functools.wraps(run)
    def wrapper(args: Any) -> int:
        try:
            return run(args)
        except FLRError as err:
            print(error_line(err), file=sys.stderr)
            return USER_ERROR_STATUS
    return wrapper
