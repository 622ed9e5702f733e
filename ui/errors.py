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
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, ModelLoadError):
        return gr.Error(f"{public_message(str(err))} Check the model name, or choose another model.",
                        title="Model not loaded", print_exception=False)
    if isinstance(err, FLRError):
        return gr.Error(public_message(str(err)), title="Cannot use this input", print_exception=False)
    log.exception("unexpected error in a UI handler", exc_info=err)
    return gr.Error(f"Unexpected error: {type(err).__name__}: {public_message(str(err))} "
                    "(details in the server log)")


def public_message(message: str) -> str:
    """`message` fit for a visitor: the server's private folders (temporary uploads, the work
    and cache folders) cut down to the file name, and long quoted input shortened."""
    roots = {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR", ""), str(cache_dir())}
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
        except gr.Error:
            raise
        except Exception as err:
            raise to_gr_error(err) from err

    return wrapper  # type: ignore[return-value]
