"""Shards over Ray actors, streamed back as they finish.

Every worker holds one shard at a time; when it finishes, the driver hands it the next one and
then yields the finished shard, so the workers keep computing while the driver writes results.

Failures, as a cluster has them:
- a worker process that dies (killed, out of memory, node lost) is restarted by Ray
  (`max_restarts`) and the shard it held is run again (`max_task_retries`): the caller sees
  nothing but a delay;
- a worker that dies more often than that is dropped and its shard goes to another worker once;
  only if every worker is lost does the run stop (`ClusterError`);
- a shard whose own input makes the worker raise is yielded as failed, with the reason, and
  the rest of the run goes on.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from core.errors import ClusterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardOutcome:
    """One finished shard: the worker's return value, or why the shard failed."""

    shard: int  # position in the list of shards given to `run_shards`
    value: Any = None
    error: str | None = None


def run_shards(ray: Any, actors: Sequence[Any], method: str,
               shards: Sequence[tuple[Any, ...]]) -> Iterator[ShardOutcome]:
    """Call `actor.method(*shard)` for every shard on the free actors; yield in finishing order."""
    queue = deque(range(len(shards)))
    idle = list(actors)
    in_flight: dict[Any, tuple[Any, int]] = {}
    handed_over: set[int] = set()  # shards already moved once from a lost worker

    def submit() -> None:
        while idle and queue:
            actor, index = idle.pop(0), queue.popleft()
            in_flight[getattr(actor, method).remote(*shards[index])] = (actor, index)

    submit()
    try:
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, index = in_flight.pop(ready[0])
            try:
                value = ray.get(ready[0])
            except ray.exceptions.RayTaskError as err:  # the shard's own input broke it
                idle.append(actor)
                submit()
                yield ShardOutcome(index, error=_reason(err))
                continue
            except ray.exceptions.RayActorError as err:  # lost for good, restarts used up
                log.warning("a worker was lost after its restarts (%s)", _reason(err))
                if index in handed_over or not (idle or in_flight):
                    if not (idle or in_flight):
                        raise ClusterError("every Ray worker was lost; scores finished so far are "
                                           "kept, so rerunning the command resumes") from None
                    yield ShardOutcome(index, error=f"its worker was lost twice ({_reason(err)})")
                else:
                    handed_over.add(index)
                    queue.appendleft(index)
                    submit()
                continue
            idle.append(actor)
            submit()
            yield ShardOutcome(index, value=value)
    finally:  # interrupted, or the caller stopped reading: nothing keeps computing for nobody
        for ref in in_flight:
            try:
                ray.cancel(ref)
            except Exception:  # already finished or gone; the actors are killed by the session
                log.debug("could not cancel a shard", exc_info=True)


def _reason(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
