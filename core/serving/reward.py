"""`FLRReward`: FLR as a TRL reward function, scored locally or by a running `flr serve`.

TRL calls a reward function as `f(prompts=..., completions=..., **columns) -> list[float]`, in
one of two formats: *standard* (prompt and completion are strings) and *conversational* (the
prompt is a message list, the completion a list holding the assistant message). Both become
conversations ending with the completion as the judged reply; a standard prompt that is already
rendered with a known chat template (special tokens and all) is split back into its turns.

All completions of a call are scored in one `score_many` call (locally) or one request (with
`url`), so a GRPO group's completions share forward passes. Empty completions are scored rather
than rejected: a policy produces them, and a training run must not stop on one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet, load_followups
from core.errors import ConfigError, InputError
from core.serving.client import RetryPolicy, RewardClient, RewardServerError, post_json
from core.serving.reasoning import strip_reasoning
from core.serving.shaping import RewardShaper, ShapingConfig
from core.serving.templates import conversation_of, recognise, split_query

if TYPE_CHECKING:
    from core.engine.scorer import Scorer


__all__ = ["FLRReward", "RewardServerError", "post_json", "to_conversation"]


class FLRReward:
    """A TRL-compatible reward function: `FLRReward()(prompts, completions) -> list[float]`.

    Local (default): loads `config`'s model on first call (or uses `scorer`). Remote: `url` of a
    running `flr serve` (its own model, follow-up set and shaping apply; `token` if it has one).
    """

    def __init__(self, config: ScoringConfig | None = None, *, url: str | None = None,
                 token: str | None = None, scorer: "Scorer | None" = None,
                 followups: FollowupSet | str | Path | None = None,
                 categories: Sequence[str] | None = None, shaping: ShapingConfig | None = None,
                 name: str = "flr", timeout: float = 600.0, retry: RetryPolicy | None = None,
                 strip_reasoning: bool = False) -> None:
        if url and (scorer is not None or config is not None or shaping is not None):
            raise ConfigError("FLRReward: with url= the server's model and shaping apply; "
                              "pass config, scorer or shaping only for local scoring")
        self.__name__ = name  # TRL names the reward's log columns after it
        self.url = url.rstrip("/") if url else None
        self.token = token
        self.timeout = timeout
        self.strip_reasoning = strip_reasoning  # judge the answer, not a <think>...</think> trace
        self._client = RewardClient(token, timeout, retry) if url else None
        self.config = config
        self._scorer = scorer
        self._custom_followups = followups is not None
        fs = followups if isinstance(followups, FollowupSet) else load_followups(followups)
        self.followups = fs.select(list(categories)) if categories else fs
        self.categories = list(categories) if categories else None
        self.shaper = RewardShaper(shaping)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        if len(prompts) != len(completions):
            raise InputError(f"FLRReward: {len(prompts)} prompts but {len(completions)} completions")
        if self.strip_reasoning:
            completions = [_without_trace(c) for c in completions]
        conversations = [to_conversation(p, c, f"completion {i}")
                         for i, (p, c) in enumerate(zip(prompts, completions))]
        if not conversations:
            return []
        if self.url:
            rewards, per_category = self._remote(conversations)
        else:
            results = self.scorer.score_many(conversations, self.followups)
            rewards = self.shaper(results)
            per_category = {c.name: [r.category(c.name).flr for r in results] for c in results[0].categories}
        log_metric = kwargs.get("log_metric")  # TRL >= 1.x: GRPOTrainer._log_metric, averaged per step
        if callable(log_metric):
            for category, values in per_category.items():
                log_metric(f"{self.__name__}/{category}", sum(values) / len(values))
        return rewards

    def __getstate__(self) -> dict[str, Any]:
        """Picklable in both modes (TRL's async GRPO sends reward functions to another process):
        a loaded scorer is left behind and loaded again there from its config."""
        state = dict(self.__dict__)
        if state.get("_scorer") is not None:
            state["config"] = state["config"] or state["_scorer"].config
            state["_scorer"] = None
        return state

    @property
    def scorer(self) -> "Scorer":
        if self._scorer is None:
            from core.engine.scorer import load_scorer

            self._scorer = load_scorer(self.config or ScoringConfig.from_env())
        return self._scorer

    def _remote(self, conversations: list[Conversation]) -> tuple[list[float], dict[str, list[float]]]:
        body: dict[str, Any] = {"conversations": [c.messages() for c in conversations]}
        if self._custom_followups:
            body["followups"] = self.followups.to_dict()
        elif self.categories:
            body["categories"] = self.categories
        assert self._client is not None
        answer = self._client.post(f"{self.url}/v1/score", body)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(conversations):
            raise RewardServerError(f"{self.url}/v1/score answered without one result per conversation")
        per_category: dict[str, list[float]] = {}
        for r in results:
            for name, category in r.get("categories", {}).items():
                per_category.setdefault(name, []).append(float(category["flr"]))
        return [float(r["reward"]) for r in results], per_category


def _without_trace(completion: Any) -> Any:
    if isinstance(completion, str):
        return strip_reasoning(completion)
    if isinstance(completion, list):
        return [dict(m, content=strip_reasoning(m["content"])) if isinstance(m, dict)
                and m.get("role") == "assistant" and isinstance(m.get("content"), str) else m for m in completion]
    return completion


def to_conversation(prompt: Any, completion: Any, where: str = "completion") -> Conversation:
    """A TRL (prompt, completion) pair, standard or conversational, as the conversation to judge."""
    if isinstance(prompt, list):
        reply = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        if not all(isinstance(m, dict) for m in prompt + reply):
            raise InputError(f"{where}: conversational prompts and completions must be lists of "
                             "{'role', 'content'} messages")
        return conversation_of(list(prompt) + list(reply), where)
    if not isinstance(prompt, str) or not isinstance(completion, str):
        raise InputError(f"{where}: expected a prompt and a completion that are both strings (standard "
                         f"format) or both message lists (conversational); got {type(prompt).__name__} "
                         f"and {type(completion).__name__}")
    template = recognise(prompt)
    if template is not None and template.special:  # a prompt rendered with a chat template
        return split_query(prompt + completion, prompt, template, where)
    return Conversation((prompt, completion))
