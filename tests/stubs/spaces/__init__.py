"""A stand-in for Hugging Face's `spaces` package: `GPU` behaves like ZeroGPU's at the boundary.

Like the real decorator, `GPU` returns the function untouched unless `SPACES_ZERO_GPU` is true;
then each call asks `duration` (a number, or a function of the call's arguments) for its GPU
time, pickles the arguments, runs the function in a forked child process, and pickles the result
back. As on ZeroGPU, a `gr.Error` raised inside comes back as itself and any other exception as
a generic "ZeroGPU worker error" naming only its class. So a lambda, a lock or a loaded model in
the arguments fails here as it would on a Space.

Every call is counted in `CALLS` (this process) and, when `FLR_STUB_GPU_LOG` names a file, as
one JSON line there (for an app started in another process). The real package keeps a worker
alive between calls; this one forks a fresh child each time, so nothing leaks between calls.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import pickle
from typing import Any, Callable

CALLS: list[dict[str, Any]] = []


def _zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def GPU(task: Callable[..., Any] | None = None, *, duration: Any = None, size: str | None = None,
        **kwargs: Any) -> Any:
    if task is None:
        return functools.partial(GPU, duration=duration, size=size)
    if not _zero_gpu():
        return task

    @functools.wraps(task)
    def gradio_handler(*args: Any, **kwargs: Any) -> Any:
        seconds = duration(*args, **kwargs) if callable(duration) else (duration or 60)
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            raise TypeError(f"duration must give a positive number of seconds; got {seconds!r}")
        payload = pickle.dumps((args, kwargs))  # raises like ZeroGPU for what cannot cross
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(target=_work, args=(task, payload, send), daemon=True)
        worker.start()
        send.close()
        try:
            data = receive.recv_bytes()
        except EOFError:
            raise RuntimeError("ZeroGPU worker error: GPU task aborted") from None
        finally:
            worker.join()
        ok, value = pickle.loads(data)
        _record(task.__name__, seconds, ok)
        if ok:
            return value
        raise value

    gradio_handler.zerogpu = None  # type: ignore[attr-defined]
    return gradio_handler


def _work(task: Callable[..., Any], payload: bytes, send: Any) -> None:
    args, kwargs = pickle.loads(payload)
    try:
        result: tuple[bool, Any] = (True, task(*args, **kwargs))
    except Exception as err:
        result = (False, _crossing_error(err))
    try:
        data = pickle.dumps(result)
    except Exception as err:  # the result itself cannot cross
        data = pickle.dumps((False, _crossing_error(err)))
    send.send_bytes(data)
    send.close()


def _crossing_error(err: Exception) -> Exception:
    import gradio as gr

    if isinstance(err, gr.Error):
        return err
    return gr.Error(f"ZeroGPU worker error: {type(err).__name__}", title="ZeroGPU worker error")


def _record(name: str, seconds: float, ok: bool) -> None:
    entry = {"function": name, "duration": seconds, "ok": ok}
    CALLS.append(entry)
    log = os.environ.get("FLR_STUB_GPU_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
