"""`ClusterSettings`: where the Ray cluster is and how work is spread over it (stdlib only).

None of these settings changes a score: shards are whole conversations (a conversation's
follow-ups never leave its worker) and mining seeds each (prompt, sample) on its own, so the
numbers are the same with 1 worker or 64. They are therefore never part of a cache key.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError

LOCAL = "local"  # start a Ray instance on this machine for the run
AUTO = "auto"  # join the cluster this machine belongs to (`ray start --head` / `--address`)
CLIENT_PREFIX = "ray://"  # Ray Client: a remote cluster's head at ray://host:10001


@dataclass(frozen=True)
class ClusterSettings:
    """One run's cluster: built once from `--ray`, `--workers`, `--gpus-per-worker`."""

    address: str = LOCAL  # "local", "auto" or "ray://host:port"
    workers: int = 2  # Ray actors; each loads the model once (one per GPU on a GPU cluster)
    gpus_per_worker: float = 0.0  # 0 = CPU workers (1 CPU each); 1 = one GPU per worker
    shard_size: int = 16  # conversations per task: enough for packed multi-conversation passes
    max_restarts: int = 3  # a worker process that dies is started again this many times
    max_task_retries: int = 3  # a shard whose worker died is run again this many times

    def __post_init__(self) -> None:
        address = self.address
        if not isinstance(address, str) or not (address in (LOCAL, AUTO) or address.startswith(CLIENT_PREFIX)
                                                and len(address) > len(CLIENT_PREFIX)):
            raise ConfigError(f"--ray must be 'local', 'auto' or 'ray://host:port'; got {address!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"--workers must be a positive number of workers; got {self.workers!r}")
        if not self.gpus_per_worker >= 0:
            raise ConfigError(f"--gpus-per-worker must be 0 (CPU) or positive; got {self.gpus_per_worker!r}")
        if not isinstance(self.shard_size, int) or self.shard_size < 1:
            raise ConfigError(f"--shard-size must be a positive number of conversations; got {self.shard_size!r}")
        if self.max_restarts < 0 or self.max_task_retries < 0:
            raise ConfigError("worker restarts and shard retries cannot be negative")

    def actor_options(self) -> dict[str, object]:
        """Ray actor options: resources per worker, restarts and retries after a worker dies."""
        resources: dict[str, object] = ({"num_gpus": self.gpus_per_worker, "num_cpus": 1}
                                        if self.gpus_per_worker else {"num_cpus": 1})
        return {**resources, "max_restarts": self.max_restarts, "max_task_retries": self.max_task_retries}
