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
this process with the app's own `ScorerPool`, with progress per conversation.

Shortcut on purpose: `_HELD` is module-level state, because ZeroGPU's worker is a process that
outlives one call and only module state survives between calls there.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from core.engine.config import EMBEDDED_MODEL, ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet
from core.engine.results import ConversationScore
from core.names import TRUE_WORDS
from ui.errors import user_errors
from ui.state import ScorerFactory, ScorerPool

if TYPE_CHECKING:
    from core.evaluation.benchmark import Benchmark
    from core.evaluation.report import EvaluationReport
    from core.evaluation.runner import EvaluationOptions
    from core.mining.mining import MiningConfig, PromptSamples
    from core.mining.prompts import MiningPrompt
    from ui.state import AppState

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# GPU time each call asks for is sized from the work it holds: ZeroGPU refuses a call asking
# more than the visitor has left, and an anonymous visitor has about 120 s a day. The figures
# below are on purpose pessimistic (a call that runs out of time is killed), but a chunk of 8
# conversations on a 135M model still asks for seconds, not minutes.
CALL_SECONDS = 3.0  # starting the worker, pickling arguments and results
LOAD_BASE_SECONDS = 5.0  # the first call in a worker loads the model: a fixed part...
LOAD_SECONDS_PER_GB = 4.0  # ...plus reading its bf16 weights (~250 MB/s; list the model in preload_from_hub)
# scored (forward) tokens per second on a ZeroGPU slice (an H200 share) for 1B parameters: about a
# fifth of its bf16 peak, an estimate, not a measurement; larger models are that much slower
TOKENS_PER_SECOND_1B = 40_000
MAX_TOKENS_PER_SECOND = 20_000  # small models are bound by per-pass overheads, not by their size
FOLLOWUP_TOKENS = 24  # one follow-up utterance with its chat-template tokens
CHARS_PER_TOKEN = 3.0  # conversation text to tokens, rounded towards more tokens
SLACK = 2.0  # the scoring part asked is twice the estimate
METRICS_SECONDS = 5.0  # a batch chunk's metrics and bootstrap intervals at its end
MIN_WORK_SECONDS = 0.25  # scoring time a batch call holds at least, however small FLR_GPU_SECONDS is
SECONDS_PER_TOKEN = 0.05  # sampling one new token for one reply (Mine tab)
UNKNOWN_PARAMS_B = 8.0  # a model whose size its name does not tell is taken to be this big
MAX_SECONDS = 300  # ZeroGPU refuses longer calls for most accounts
# What ZeroGPU grants a visitor per day (approximate; Hugging Face's ZeroGPU usage tiers).
DAILY_QUOTA_SECONDS = {"an anonymous visitor": 120, "a free account": 210}

_SIZE = re.compile(r"(?:(\d+)x)?(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.IGNORECASE)


def model_params_b(model: str) -> float:
    """Billions of parameters of `model`, read from its name ("SmolLM2-135M-Instruct" 0.135,
    "Qwen2.5-1.5B" 1.5, "Mixtral-8x7B" 56); "embedded" is SmolLM2-135M; else UNKNOWN_PARAMS_B."""
    if model == EMBEDDED_MODEL:
        return 0.135
    found = _SIZE.findall(Path(model).name)
    if not found:
        return UNKNOWN_PARAMS_B
    experts, number, unit = found[-1]
    size = float(number) * (int(experts) if experts else 1)
    return size / 1000 if unit.lower() == "m" else size


def load_seconds(config: ScoringConfig) -> float:
    """Asked on top of the work: the first call in a ZeroGPU worker loads the model."""
    return LOAD_BASE_SECONDS + LOAD_SECONDS_PER_GB * 2 * model_params_b(config.model)


def conversation_tokens(conversation: Any) -> int:
    """A generous token count of one conversation or mining prompt, as the model will read it."""
    turns = getattr(conversation, "utterances", None) or getattr(conversation, "turns", None)
    if turns is None:
        return int(len(str(conversation)) / CHARS_PER_TOKEN) + 16
    text = "".join(turns) + (getattr(conversation, "system", None) or "")
    return int(len(text) / CHARS_PER_TOKEN) + 8 * len(turns) + 16


def scoring_seconds(config: ScoringConfig, tokens: Sequence[int], followups: int) -> float:
    """The estimated GPU seconds to score conversations of `tokens` tokens each against
    `followups` follow-ups: every follow-up is read after its whole conversation (cut to the
    model's length), with no credit for a shared prefix."""
    limit = config.max_length or 1 << 30
    total = sum(followups * min(limit, t + FOLLOWUP_TOKENS) for t in tokens)
    per_second = min(MAX_TOKENS_PER_SECOND, TOKENS_PER_SECOND_1B / model_params_b(config.model))
    return total / per_second


def followup_count(followups: Any) -> int:
    return sum(len(c.positive) + len(c.negative) for c in followups) if followups is not None else 0


def zero_gpu(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs on ZeroGPU hardware: `SPACES_ZERO_GPU` is truthy (as `spaces`
    reads it); having the `spaces` package installed is not enough (CPU Spaces have it too)."""
    env = os.environ if environ is None else environ
    return env.get("SPACES_ZERO_GPU", "").strip().lower() in TRUE_WORDS


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

_HELD: dict[Any, ScorerPool] = {}  # factory -> its hub: the model(s) this process holds
_HELD_LOCK = threading.Lock()


def held_scorer(factory: ScorerFactory, config: ScoringConfig) -> Any:
    """The scorer for `config` in this process, loaded on first use and kept for later calls."""
    with _HELD_LOCK:
        hub = _HELD.setdefault(factory, ScorerPool(factory))
    return hub.get(config)


# -- the GPU functions ---------------------------------------------------------------------

def _score_seconds(factory: ScorerFactory, config: ScoringConfig, conversations: Sequence[Conversation],
                   followups: FollowupSet) -> float:
    work = scoring_seconds(config, [conversation_tokens(c) for c in conversations], followup_count(followups))
    return CALL_SECONDS + load_seconds(config) + SLACK * work


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
    """`seconds` is the chunk's estimated scoring work (`ChunkPlan.work_for`)."""
    return CALL_SECONDS + load_seconds(config) + SLACK * seconds + METRICS_SECONDS


@on_gpu(_chunk_seconds)
@user_errors
def evaluate_chunk(factory: ScorerFactory, config: ScoringConfig, benchmarks: Sequence["Benchmark"],
                   followups: FollowupSet, cache_path: Path, options: "EvaluationOptions",
                   seconds: float) -> "EvaluationReport":
    """Score for about `seconds`, writing scores to the cache at `cache_path`, and report; the
    report says `cancelled` when time ran out first, and the next chunk resumes from the cache."""
    from core.evaluation.runner import run_evaluation

    held_scorer(factory, config)  # the model's loading has its own share of the call's time
    return run_evaluation(benchmarks, scorer_factory=lambda: held_scorer(factory, config), config=config,
                          followups=followups, cache_path=cache_path, options=options,
                          cancel=Deadline(time.monotonic() + SLACK * seconds))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChunkPlan:
    """How a batch run on ZeroGPU is split: its estimated scoring work, the calls, and what
    they ask for in all, to warn a visitor whose daily quota will not cover it."""

    conversations: int
    work: float  # estimated scoring seconds of the whole run
    per_call: float  # scoring seconds one call holds at most
    calls: int
    requested: float  # GPU seconds all calls ask for together

    def work_for(self, remaining: int) -> float:
        """The scoring seconds the next call holds, with `remaining` conversations left."""
        share = self.work * remaining / max(self.conversations, 1)
        return max(MIN_WORK_SECONDS, min(self.per_call, share))

    def quota_warning(self) -> str:
        """A sentence for the visitor when the run asks more than a day's quota; else ""."""
        short = [who for who, seconds in DAILY_QUOTA_SECONDS.items() if self.requested > seconds]
        if not short:
            return ""
        quotas = " and ".join(f"{who} about {s} s" for who, s in DAILY_QUOTA_SECONDS.items())
        return (f"This run needs about {math.ceil(self.requested)} s of ZeroGPU time in {self.calls} "
                f"call(s) for {self.conversations} conversation(s), more than {short[0]} gets in a day "
                f"({quotas}). Log in to Hugging Face, evaluate fewer rows (More options: only the "
                "first N), or run `flr evaluate` on your own machine; what gets scored is cached, "
                "so a later run resumes.")


def conversations_to_score(benchmarks: Sequence["Benchmark"], limit: int | None, *,
                           cache_path: Path | None = None, config: ScoringConfig | None = None,
                           followups: FollowupSet | None = None) -> list[Conversation]:
    """The distinct conversations a run scores (as `run_evaluation` collects them), less those
    the score cache at `cache_path` already holds for `config`: what a visitor's quota must cover."""
    from core.evaluation.score_cache import ScoreCache, conversation_hash, model_key, settings_key
    from core.names import COL_CONVERSATION

    found: dict[str, Conversation] = {}
    for b in benchmarks:
        if b.precomputed:
            continue
        for conv in b.limited(limit).frame[COL_CONVERSATION]:
            if isinstance(conv, Conversation):
                found.setdefault(conversation_hash(conv), conv)
    if found and cache_path is not None and config is not None and followups is not None \
            and Path(cache_path).exists():
        with ScoreCache(cache_path) as cache:
            identity = cache.known_identity(model_key(config))
            if identity is not None:
                scores, failures = cache.get_many(identity, settings_key(config), followups, found)
                found = {h: c for h, c in found.items() if h not in scores and h not in failures}
    return list(found.values())


def chunk_plan(config: ScoringConfig, conversations: Sequence[Any], followups: FollowupSet,
               budget: float) -> ChunkPlan:
    """Split the scoring of `conversations` into GPU calls of at most `budget` seconds each."""
    tokens = [conversation_tokens(c) for c in conversations]
    work = scoring_seconds(config, tokens, followup_count(followups))
    fixed = CALL_SECONDS + load_seconds(config) + METRICS_SECONDS  # as `_chunk_seconds` asks
    # a model whose loading alone fills the budget still gets calls holding real work
    per_call = max(MIN_WORK_SECONDS, (budget - fixed) / SLACK, budget / (2 * SLACK))
    calls = max(1, math.ceil(work / per_call))
    requested = calls * fixed + SLACK * work
    return ChunkPlan(len(conversations), work, per_call, calls, requested)


@dataclass(frozen=True)
class Mined:
    """What mining returns across the boundary: the samples and who wrote and scored them."""

    results: list["PromptSamples"]
    policy_identity: str
    scorer_identity: str


def _mine_seconds(factory: ScorerFactory, policy_factory: Callable[..., Any], config: ScoringConfig,
                  prompts: Sequence["MiningPrompt"], followups: FollowupSet, mining: "MiningConfig") -> float:
    replies = len(prompts) * mining.samples
    sampling = replies * SECONDS_PER_TOKEN * mining.max_new_tokens
    scoring = scoring_seconds(config, [conversation_tokens(p) + mining.max_new_tokens for p in prompts] * mining.samples,
                              followup_count(followups))
    return CALL_SECONDS + load_seconds(config) + SLACK * (sampling + scoring)


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
