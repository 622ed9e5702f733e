"""Turning failures into messages in the page, so a bad input never stops the server.

Errors from `core.errors` already say what is wrong and what to do; they become `gr.Error`
with that message. Anything unexpected is logged with its traceback and shown as a short
message pointing at the server log. Messages never show the server's own folders (a temporary
upload path becomes the file's name) and are cut to `MESSAGE_CHARS`. Every handler runs under
the app's per-request input caps (`ui.limits`).
"""

import functools
import logging
import os
import re
import tempfile
from pathlib import PurePath
from typing import Any, Callable, TypeVar

import gradio as gr

from core.errors import FLRError, ModelLoadError
from core.limits import shorten, use_limits
from core.locations import cache_dir
from ui.limits import app_limits

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
MESSAGE_CHARS = 1000  # an error box longer than this is not read


def to_gr_error(err: BaseException) -> gr.Error:
    """`err` as a gr.Error whose message says what went wrong and what to do. Gradio prints the
    traceback of a gr.Error unless `print_exception` is off; an unexpected error is logged here
    once, with its traceback, and a visitor's mistake needs none."""
    if isinstance(err, gr.Error):
        if not str(err.message or "").strip():  # an empty toast titled "Error" helps nobody
            err.message = ("This step failed without saying why. Try again; if it keeps failing, "
                           "the server log has the details.")
        err.print_exception = False
        return err
    if isinstance(err, ModelLoadError):
        return gr.Error(f"{public_message(str(err))} Check the model name, or choose another model.",
                        title="Model not loaded", print_exception=False)
    if isinstance(err, FLRError):
        text = public_message(str(err)) or f"this input cannot be used ({type(err).__name__})"
        return gr.Error(text, title="Cannot use this input", print_exception=False)
    log.error("unexpected error in a UI handler", exc_info=err)
    detail = public_message(str(err))
    return gr.Error(f"Something went wrong on the server ({type(err).__name__}"
                    + (f": {detail}" if detail else "") + "). This is a bug, not your input: try "
                    "again, and if it keeps happening report it with the time; the server log has "
                    "the details.", title="Unexpected error", print_exception=False)


def public_message(message: str) -> str:
    """`message` fit for a visitor: the server's private folders (temporary uploads, the work
    and cache folders) cut down to the file name, and long quoted input shortened."""
    roots = {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR", ""), str(cache_dir()),
             os.environ.get("FLR_WORK_DIR", "")}
    pattern = "|".join(re.escape(r.rstrip("/\\")) for r in sorted(roots, key=len, reverse=True) if r)
    if pattern:
        message = re.sub(rf"(?:{pattern})[/\\][^\s:'\",;)]*",
                         lambda m: PurePath(m.group(0)).name, message)
    return shorten(message, MESSAGE_CHARS)


def user_errors(fn: F) -> F:
    """Decorator for event handlers: every exception reaches the page as a readable gr.Error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with use_limits(app_limits()):  # per-request input caps (ui.limits)
                return fn(*args, **kwargs)
        except gr.Error as err:
            raise to_gr_error(err) from None
        except Exception as err:
            raise to_gr_error(err) from err

    wrapper.user_errors = True  # type: ignore[attr-defined]  # checked for every event (tests/ui)
    return wrapper  # type: ignore[return-value]
