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

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import FollowupSet, load_followups
from core.errors import ConfigError, FLRError, InputError
from core.serving.shaping import RewardShaper, ShapingConfig
from core.serving.templates import conversation_of, recognise, split_query

if TYPE_CHECKING:
    from core.engine.scorer import Scorer


class RewardServerError(FLRError):
    """A reward server that cannot be reached or answers with an error."""


class FLRReward:
    """A TRL-compatible reward function: `FLRReward()(prompts, completions) -> list[float]`.

    Local (default): loads `config`'s model on first call (or uses `scorer`). Remote: `url` of a
    running `flr serve` (its own model, follow-up set and shaping apply; `token` if it has one).
    """

    def __init__(self, config: ScoringConfig | None = None, *, url: str | None = None,
                 token: str | None = None, scorer: "Scorer | None" = None,
                 followups: FollowupSet | str | Path | None = None,
                 categories: Sequence[str] | None = None, shaping: ShapingConfig | None = None,
                 name: str = "flr", timeout: float = 600.0) -> None:
        if url and (scorer is not None or config is not None or shaping is not None):
            raise ConfigError("FLRReward: with url= the server's model and shaping apply; "
                              "pass config, scorer or shaping only for local scoring")
        self.__name__ = name  # TRL names the reward's log columns after it
        self.url = url.rstrip("/") if url else None
        self.token = token
        self.timeout = timeout
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
        conversations = [to_conversation(p, c, f"completion {i}")
                         for i, (p, c) in enumerate(zip(prompts, completions))]
        if not conversations:
            return []
        if self.url:
            return self._remote(conversations)
        return self.shaper(self.scorer.score_many(conversations, self.followups))

    @property
    def scorer(self) -> "Scorer":
        if self._scorer is None:
            from core.engine.scorer import load_scorer

            self._scorer = load_scorer(self.config or ScoringConfig.from_env())
        return self._scorer

    def _remote(self, conversations: list[Conversation]) -> list[float]:
        body: dict[str, Any] = {"conversations": [c.messages() for c in conversations]}
        if self._custom_followups:
            body["followups"] = self.followups.to_dict()
        elif self.categories:
            body["categories"] = self.categories
        answer = post_json(f"{self.url}/v1/score", body, self.token, self.timeout)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(conversations):
            raise RewardServerError(f"{self.url}/v1/score answered without one result per conversation")
        return [float(r["reward"]) for r in results]


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


def post_json(url: str, body: Any, token: str | None = None, timeout: float = 600.0) -> Any:
    """POST a JSON body and decode the JSON answer (standard library only)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")[:300]
        raise RewardServerError(f"{url} answered {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        raise RewardServerError(f"cannot reach the reward server at {url} ({err}); is `flr serve` "
                                "running there?") from None
