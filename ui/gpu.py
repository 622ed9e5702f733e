"""Model work as module-level functions that Hugging Face ZeroGPU can run in its GPU worker.

On ZeroGPU (`SPACES_ZERO_GPU` true) each function below is wrapped in `spaces.GPU` when this
module is imported, as Spaces documents: a call runs in a forked worker process, its arguments
and its result are pickled across the boundary, only a `gr.Error` comes back as itself, and the
GPU time asked for (`duration`) is computed from the work by a function taking the same
arguments. So these functions take and return plain data (the scorer factory by reference, a
`ScoringConfig`, conversations, follow-up sets, benchmark frames, score records), never a loaded
scorer, a lambda or a `threading.Event`. The model lives in the process that runs them: loaded on
the first call there and reused by later calls the same process serves (`held_scorer`).

Elsewhere (`SPACES_ZERO_GPU` unset, CPU Spaces included) nothing is wrapped and the tabs score in
this process with the app's own `ScorerHub`, with progress per conversation.

Shortcut on purpose: `_HELD` is module-level state, because ZeroGPU's worker is a process that
outlives one call and only module state survives between calls there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from ui.errors import user_errors
from ui.state import ScorerFactory, ScorerHub

if TYPE_CHECKING:
    from core.evaluation.benchmark import Benchmark
    from core.evaluation.report import EvaluationReport
    from core.evaluation.runner import EvaluationOptions
    from core.mining.mining import MiningConfig, PromptSamples
    from core.mining.prompts import MiningPrompt
    from ui.state import AppState

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

LOAD_SECONDS = 40  # asked on top of the work: the first call in a worker loads the model
SECONDS_PER_CONVERSATION = 2  # one conversation's follow-ups, generously, on a ZeroGPU slice
SECONDS_PER_TOKEN = 0.05  # sampling one new token for one reply
MAX_SECONDS = 300  # ZeroGPU refuses longer calls for most accounts


def zero_gpu(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs on ZeroGPU hardware: `SPACES_ZERO_GPU` is truthy (as `spaces`
    reads it); having the `spaces` package installed is not enough (CPU Spaces have it too)."""
    env = os.environ if environ is None else environ
    return env.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true", "yes")


def on_gpu(duration: Callable[..., float]) -> Callable[[F], F]:
    """`spaces.GPU(duration=duration)` on ZeroGPU, applied at import time; elsewhere the function
    itself. `duration` takes the function's own arguments and returns seconds."""

    def decorate(fn: F) -> F:
        if not zero_gpu():
            return fn
        import spaces  # present on every Space; imported before torch, as ZeroGPU wants

        return spaces.GPU(duration=lambda *a, **k: int(min(MAX_SECONDS, duration(*a, **k))))(fn)

    return decorate


# -- the model held by this process --------------------------------------------------------

_HELD: dict[Any, ScorerHub] = {}  # factory -> its hub: the model(s) this process holds
_HELD_LOCK = threading.Lock()


def held_scorer(factory: ScorerFactory, config: ScoringConfig) -> Any:
    """The scorer for `config` in this process, loaded on first use and kept for later calls."""
    with _HELD_LOCK:
        hub = _HELD.setdefault(factory, ScorerHub(factory))
    return hub.get(config)


# -- the GPU functions ---------------------------------------------------------------------

def _score_seconds(factory: ScorerFactory, config: ScoringConfig, conversations: Sequence[Conversation],
                   followups: FollowupSet) -> float:
    return LOAD_SECONDS + SECONDS_PER_CONVERSATION * len(conversations)


@on_gpu(_score_seconds)
@user_errors  # inside the worker: only a gr.Error crosses back with its message
def score_conversations(factory: ScorerFactory, config: ScoringConfig, conversations: Sequence[Conversation],
                        followups: FollowupSet) -> list[ConversationScore]:
    """Every conversation scored against `followups` (Score tab, side-by-side comparison)."""
    return list(held_scorer(factory, config).score_many(list(conversations), followups))


@dataclass(frozen=True)
class Deadline:
    """Duck-typed `threading.Event` for `run_evaluation(cancel=...)`, made inside the worker:
    set once the chunk's time is up."""

    at: float

    def is_set(self) -> bool:
        return time.monotonic() > self.at


def _chunk_seconds(factory: ScorerFactory, config: ScoringConfig, benchmarks: Sequence["Benchmark"],
                   followups: FollowupSet, cache_path: Path, options: "EvaluationOptions",
                   seconds: float) -> float:
    return LOAD_SECONDS + seconds * 1.25  # the metrics at the end of a chunk take a moment too


@on_gpu(_chunk_seconds)
@user_errors
def evaluate_chunk(factory: ScorerFactory, config: ScoringConfig, benchmarks: Sequence["Benchmark"],
                   followups: FollowupSet, cache_path: Path, options: "EvaluationOptions",
                   seconds: float) -> "EvaluationReport":
    """Score for about `seconds`, writing scores to the cache at `cache_path`, and report; the
    report says `cancelled` when time ran out first, and the next chunk resumes from the cache."""
    from core.evaluation.runner import run_evaluation

    return run_evaluation(benchmarks, scorer_factory=lambda: held_scorer(factory, config), config=config,
                          followups=followups, cache_path=cache_path, options=options,
                          cancel=Deadline(time.monotonic() + seconds))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Mined:
    """What mining returns across the boundary: the samples and who wrote and scored them."""

    results: list["PromptSamples"]
    policy_identity: str
    scorer_identity: str


def _mine_seconds(factory: ScorerFactory, policy_factory: Callable[..., Any], config: ScoringConfig,
                  prompts: Sequence["MiningPrompt"], followups: FollowupSet, mining: "MiningConfig") -> float:
    replies = len(prompts) * mining.samples
    return LOAD_SECONDS + replies * (SECONDS_PER_TOKEN * mining.max_new_tokens + SECONDS_PER_CONVERSATION)


@on_gpu(_mine_seconds)
@user_errors
def mine_samples(factory: ScorerFactory, policy_factory: Callable[..., Any], config: ScoringConfig,
                 prompts: Sequence["MiningPrompt"], followups: FollowupSet, mining: "MiningConfig") -> Mined:
    """Sample replies to `prompts` with the policy and score each (Mine tab)."""
    from core.mining.mining import mine

    scorer = held_scorer(factory, config)
    policy = policy_factory(config, scorer)
    results = mine(list(prompts), policy, scorer, followups, mining)
    return Mined(list(results), policy.identity, scorer.identity)



# -- what the tabs call: here or on ZeroGPU ------------------------------------------------

def score(state: "AppState", config: ScoringConfig, conversations: Sequence[Conversation],
          followups: FollowupSet) -> list[ConversationScore]:
    """`score_conversations` on ZeroGPU; elsewhere the app's own scorer, in this process. Either
    way one of the app's model-job slots is held while it runs."""
    with state.model_slots:
        if state.settings.zero_gpu:
            return score_conversations(state.factory, config, list(conversations), followups)
        return list(state.scorer(config).score_many(list(conversations), followups))
