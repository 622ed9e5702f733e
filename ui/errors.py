"""Turning failures into messages in the page, so a bad input never stops the server.

Errors from `core.errors` already say what is wrong and what to do; they become `gr.Error`
with that message. Anything unexpected is logged with its traceback and shown as a short
message pointing at the server log.
"""

import functools
import logging
from typing import Any, Callable, TypeVar

import gradio as gr

from core.errors import FLRError, ModelLoadError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def to_gr_error(err: BaseException) -> gr.Error:
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, ModelLoadError):
        return gr.Error(f"{err} Check the model name, or choose another model.",
                        title="Model not loaded", print_exception=False)
    if isinstance(err, FLRError):
        return gr.Error(str(err), title="Cannot use this input", print_exception=False)
    log.exception("unexpected error in a UI handler", exc_info=err)
    return gr.Error(f"Unexpected error: {type(err).__name__}: {err} (details in the server log)")


def user_errors(fn: F) -> F:
    """Decorator for event handlers: every exception reaches the page as a readable gr.Error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:
            raise to_gr_error(err) from err

    return wrapper  # type: ignore[return-value]
