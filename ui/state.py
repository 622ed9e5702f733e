"""The one scorer the whole app shares: loaded on first use, reloaded only when settings change.

Every tab and every visitor asks the same `ScorerPool` for a scorer. The first request loads the
model under a lock (a second request waits for it instead of loading a second copy); a request
with other settings loads the new model first and frees the old one once it has loaded, so a
model that cannot be loaded never costs the app its working one. Nothing is loaded when the app is built.
"""

from __future__ import annotations

import functools
import gc
import inspect
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

from core.engine.config import ScoringConfig
from core.errors import FLRError, ModelLoadError
from core.limits import shorten
from ui.settings import AppSettings

if TYPE_CHECKING:  # core.engine.scorer imports torch; the app must start without it
    from core.engine.scorer import Scorer

log = logging.getLogger(__name__)

ScorerFactory = Callable[[ScoringConfig], "Scorer"]


def default_factory(config: ScoringConfig) -> Scorer:
    from core.engine.scorer import load_scorer  # imports torch; only when a model is first needed

    return load_scorer(config)


class ScorerPool:
    """Holds at most one loaded scorer, keyed by the settings it was loaded with."""

    def __init__(self, factory: ScorerFactory | None = None) -> None:
        self._factory = factory or default_factory
        self._lock = threading.Lock()
        self._scorer: "Scorer | None" = None
        self._config: ScoringConfig | None = None
        self.loads = 0  # how many times model weights were loaded (checked in tests)

    @property
    def loaded_config(self) -> ScoringConfig | None:
        return self._config

    def needs_load(self, config: ScoringConfig) -> bool:
        """Whether `get(config)` would load weights (to tell the visitor why it takes a while)."""
        return self._config is None or not self._config.same_weights(config)

    def get(self, config: ScoringConfig) -> "Scorer":
        """The scorer for `config`, loading it if the current one has other settings."""
        with self._lock:
            if self._scorer is not None and self._config == config:
                return self._scorer
            rewrapped = self._scorer.with_config(config) if self._scorer is not None else None
            if rewrapped is not None:
                self._scorer, self._config = rewrapped, config
                return rewrapped
            # The new model loads while the working one stays: a name that fails to load (a
            # typo, no network) leaves the app as it was. The old one is freed after the swap.
            log.info("loading scorer for model %r (%s mode)", config.model, config.mode)
            try:
                scorer = self._factory(config)
            except FLRError:
                raise
            except Exception as err:  # anything from torch/transformers/the Hub: tell the user why
                raise ModelLoadError(
                    f"could not load model {config.model!r}: {type(err).__name__}: {shorten(str(err), 600)}"
                ) from err
            if self._scorer is not None:
                log.info("settings changed; unloading %s", self._config.model if self._config else "?")
            self._scorer, self._config = scorer, config
            gc.collect()
            self.loads += 1
            return scorer



class CancelFlags:
    """Per-visitor cancel requests for long batch runs (keyed by gradio's session hash)."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        """A fresh, unset flag for a run that is starting in `session`."""
        with self._lock:
            event = self._events[session] = threading.Event()
            return event

    def cancel(self, session: str) -> bool:
        """Ask the run in `session` to stop; False when nothing is running there."""
        with self._lock:
            event = self._events.get(session)
        if event is None or event.is_set():
            return False
        event.set()
        return True

    def finish(self, session: str, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(session) is event:
                del self._events[session]


class ModelSlots:
    """At most `count` model jobs at once (`with slots:` around each). When the last running job
    ends, the memory it freed goes back to the operating system before its slot is released
    (`core.engine.fast.allocator.release_freed_memory`): the app lives for days, and one large
    request must not keep its peak resident after it."""

    def __init__(self, count: int) -> None:
        self._slots = threading.BoundedSemaphore(count)
        self._lock = threading.Lock()
        self._running = 0

    def __enter__(self) -> "ModelSlots":
        self._slots.acquire()
        with self._lock:
            self._running += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                from core.engine.fast import allocator

                allocator.release_freed_memory()
        finally:
            self._slots.release()


class LastResults:
    """The last Score result of each visitor session, kept on the server: the download files are
    written from it, never from a record a client sends (a private endpoint can still be called
    through gradio's queue with any data). The oldest sessions are forgotten beyond `size`."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[dict[str, Any], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session: str, record: dict[str, Any], table: Any) -> None:
        with self._lock:
            self._items[session] = (record, table)
            self._items.move_to_end(session)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, session: str) -> tuple[dict[str, Any], Any] | None:
        with self._lock:
            return self._items.get(session)


class AppState:
    """What every handler needs: the settings, the shared scorer and the model-job slots.

    On ZeroGPU (`settings.zero_gpu`) the model is not loaded here but in the GPU worker, which
    gets `factory` by reference (`ui.gpu`); `model_slots` keeps at most `settings.concurrency`
    model jobs running at once, whichever tab they come from."""

    def __init__(self, settings: AppSettings, factory: ScorerFactory | None = None) -> None:
        self.settings = settings
        self.factory = factory or default_factory
        self.scorers = ScorerPool(self.factory)
        self.cancels = CancelFlags()
        self.results = LastResults()
        self.model_slots = ModelSlots(settings.concurrency)

    def config_for(self, model: str | None, mode: str | None, aggregation: str | None) -> ScoringConfig:
        """The app's default config with a visitor's choices applied (model checked in hosted mode)."""
        changes: dict[str, str] = {"model": self.settings.check_model(model or self.settings.config.model)}
        if mode:
            changes["mode"] = mode
        if aggregation:
            changes["aggregation"] = aggregation
        return self.settings.config.with_changes(**changes)

    def scorer(self, config: ScoringConfig) -> "Scorer":
        return self.scorers.get(config)


def bind(fn: Callable[..., Any], state: AppState) -> Callable[..., Any]:
    """`fn` with its first argument fixed to `state`, as a plain function that gradio can inspect
    (unlike `functools.partial`, whose type hints gradio cannot read, so a `gr.Request`
    parameter would not be filled in)."""

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return fn(state, *args, **kwargs)

    signature = inspect.signature(fn)
    first = next(iter(signature.parameters))
    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    bound.__annotations__ = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if k != first}
    return bound
