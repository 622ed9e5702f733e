"""A Ray session for one command: connect (or start a local instance), create workers, clean up.

`ClusterSession` connects lazily: the first time a command needs workers. A rerun whose scores
are all cached therefore never starts Ray or loads a model anywhere. On exit it kills the
workers it made, and disconnects only if it was the one that connected (a caller, such as a test,
that already holds a Ray connection keeps it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from core.distributed.settings import LOCAL, ClusterSettings
from core.errors import ClusterError

log = logging.getLogger(__name__)

INSTALL_HINT = ("--ray needs Ray, which is not installed: run `.venv/bin/pip install -r requirements-ray.txt` "
                "(or `bash scripts/setup.sh --dev`)")


def require_ray() -> Any:
    """The `ray` module, or a `ClusterError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


class ClusterSession:
    """Ray for one command; `with ClusterSession(settings) as session: session.workers(...)`."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self._connected_here = False
        self._actors: list[Any] = []

    def __enter__(self) -> "ClusterSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> Any:
        """Connect to (or start) Ray once; returns the `ray` module."""
        ray = require_ray()
        if ray.is_initialized():
            return ray
        address = None if self.settings.address == LOCAL else self.settings.address
        # The workers import this project: on this machine they find it through the
        # working directory; on a cluster each node needs FLR Studio installed.
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            kwargs["num_cpus"] = max(os.cpu_count() or 1, self.settings.workers) \
                if not self.settings.gpus_per_worker else None
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ClusterError(f"--ray {self.settings.address}: could not connect to a Ray cluster ({err}); "
                               "start one with `ray start --head`, or use --ray local") from None
        self._connected_here = True
        log.info("Ray session at %s with %s", self.settings.address, ray.cluster_resources())
        return ray

    def workers(self, worker_class: type, *args: Any) -> list[Any]:
        """`settings.workers` Ray actors of `worker_class`, constructed with `args`."""
        ray = self.connect()
        remote = ray.remote(worker_class).options(**self.settings.actor_options())
        actors = [remote.remote(*args) for _ in range(self.settings.workers)]
        self._actors.extend(actors)
        return actors

    def close(self) -> None:
        if self._actors:
            ray = require_ray()
            for actor in self._actors:
                try:
                    ray.kill(actor)
                except Exception:  # an actor already gone; nothing to clean up
                    log.debug("worker already gone", exc_info=True)
            self._actors.clear()
        if self._connected_here:
            require_ray().shutdown()
            self._connected_here = False
