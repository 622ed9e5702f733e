"""FLR as verl's custom reward function, scored by a running `flr serve`.

    flr serve --port 8000 --token "$FLR_SERVE_TOKEN" &
    python -m verl.trainer.main_ppo ... \
        custom_reward_function.path=examples/verl_flr_reward.py \
        custom_reward_function.name=compute_score \
        +custom_reward_function.reward_kwargs.flr_url=http://127.0.0.1:8000 \
        +custom_reward_function.reward_kwargs.flr_token="$FLR_SERVE_TOKEN"

`compute_score` is async, for verl's default reward loop (`reward_model.use_reward_loop=true`)
and its default manager, `naive`. With `reward_model.use_reward_loop=false` verl's older managers
call the function synchronously: name `compute_score_sync` there instead. (verl's `dapo` manager
passes only the row's own `extra_info`, without "raw_prompt": there the rows need a "question".)

What it matches, read in volcengine/verl at commit b178a3cd56f58b2d502255daba591e92833930a7:
- `verl/trainer/ppo/reward.py` `get_custom_reward_fn`: `custom_reward_function.reward_kwargs` is
  merged into every call and wins over verl's own keywords; an `async def` is awaited.
- `verl/experimental/reward_loop/reward_loop.py` `compute_score_batch`: one task per sample, all
  gathered at once, so a rollout reaches the server as that many concurrent one-sample requests
  (which `flr serve` admits and batches).
- `verl/experimental/reward_loop/reward_manager/naive.py` `run_single`: the call is
  `compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **extra)` where `extra`
  may hold `reward_router_address` and `reward_model_tokenizer`; a dict result needs "score" and
  every key of it becomes a `reward_extra_info` column (logged by the trainer), so each FLR
  category comes back as `flr_<category>` beside "score". `extra_info` is the row's own, updated
  with the agent loop's `extra_fields`, which hold "raw_prompt" (`verl/experimental/agent_loop/
  agent_loop.py` `_agent_loop_postprocess`): the row's `prompt` messages.
- `examples/data_preprocess/full_hh_rlhf.py` writes `extra_info={"split", "index"}` only, and a
  prompt of one user message holding the whole Dahoas transcript ("\\n\\nHuman: ...\\n\\nAssistant:");
  so the chat is read from "raw_prompt", and such a transcript is split back into its turns.
  `examples/data_preprocess/gsm8k.py` also writes `extra_info["question"]` (without the
  instruction verl appends); "raw_prompt" is preferred, as it is what the policy saw.

Settings: `flr_url` (default $FLR_SERVE_URL, else http://127.0.0.1:8000), `flr_token` (default
$FLR_SERVE_TOKEN), `flr_timeout` (seconds per try, 600) and `flr_retries` (8), all from
`reward_kwargs`. Busy answers (429/502/503/504), timeouts and dropped connections are retried with
exponential backoff, waiting at least the server's Retry-After; other errors raise at once with
the server's message, since a silent zero reward would train the policy on nothing.

This file needs only `httpx` (which verl's `transformers`/`huggingface_hub` install), not FLR
Studio itself: verl's reward workers load it by path.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from typing import Any

try:
    import httpx
except ImportError as err:  # pragma: no cover - depends on the trainer's environment
    raise ImportError("examples/verl_flr_reward.py needs httpx: pip install httpx") from err

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
EXTRA_PREFIX = "flr_"
MAX_BACKOFF_S = 30.0
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")

# One connection pool per (event loop, url, token): verl calls a plain module function, so the
# module is the only place to keep connections between calls. An httpx.AsyncClient belongs to the
# loop it was made in; verl's reward loop worker keeps one loop for its lifetime.
_ASYNC_CLIENTS: dict[tuple[int, str, str | None], httpx.AsyncClient] = {}
_SYNC_CLIENTS: dict[tuple[str, str | None], httpx.Client] = {}


class FLRRewardError(RuntimeError):
    """The reward server could not be reached, or refused the sample."""


def conversation(solution_str: str, extra_info: dict[str, Any] | None) -> list[dict[str, str]]:
    """The chat to judge: the prompt verl's policy saw, then `solution_str` as the assistant's reply."""
    info = extra_info or {}
    history: list[dict[str, str]] | None = None
    for key in ("raw_prompt", "messages", "prompt"):
        value = info.get(key)
        if value is not None and not isinstance(value, str) and len(value) > 0:
            history = [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
            break
        if isinstance(value, str) and value.strip():
            history = [{"role": "user", "content": value}]
            break
    if history is None and info.get("question"):
        history = [{"role": "user", "content": str(info["question"])}]
    if history is None:
        raise FLRRewardError(
            "FLR reward: extra_info has no 'raw_prompt' (verl's agent loop adds it), 'messages', 'prompt' "
            f"or 'question' to judge the reply against; it has {sorted(info)}. Run with verl's reward loop "
            "(reward_model.use_reward_loop=true) or write the question into the dataset's extra_info")
    if history[-1]["role"] == "assistant":
        history = history[:-1]  # a reference answer in the data, not the reply being judged
    if len(history) == 1 and history[0]["role"] == "user":
        history = _hh_turns(history[0]["content"]) or history
    return history + [{"role": "assistant", "content": solution_str}]


def _hh_turns(text: str) -> list[dict[str, str]] | None:
    """A Dahoas/Anthropic HH transcript ("\\n\\nHuman: q\\n\\nAssistant: a ... \\n\\nAssistant:") as
    messages, without the final empty assistant turn; None for any other text."""
    parts = _HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip() or parts[1] != "Human":
        return None
    turns = [{"role": "user" if role == "Human" else "assistant", "content": content.strip()}
             for role, content in zip(parts[1::2], parts[2::2])]
    if turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns = turns[:-1]
    if any(t["role"] != ("user" if i % 2 == 0 else "assistant") for i, t in enumerate(turns)):
        return None  # not a clean alternation: leave the text as one user message
    return turns


def _settings(kwargs: dict[str, Any]) -> tuple[str, str | None, float, int]:
    url = str(kwargs.get("flr_url") or os.environ.get("FLR_SERVE_URL") or DEFAULT_URL).rstrip("/")
    token = kwargs.get("flr_token") or os.environ.get("FLR_SERVE_TOKEN") or None
    return url, token, float(kwargs.get("flr_timeout", 600.0)), int(kwargs.get("flr_retries", 8))


def _wait(attempt: int, retry_after: str | None) -> float:
    backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2)
    try:
        asked = float(retry_after) if retry_after else 0.0
    except ValueError:
        asked = 0.0
    return min(MAX_BACKOFF_S, max(backoff, asked))


def _client_options(token: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # No pool deadline: a rollout queues thousands of samples behind 256 connections on purpose.
    return {"headers": headers, "timeout": httpx.Timeout(timeout, pool=None),
            "limits": httpx.Limits(max_connections=256, max_keepalive_connections=256)}


def _result(url: str, response: httpx.Response) -> dict[str, float]:
    if response.status_code != 200:
        raise FLRRewardError(f"FLR reward: {url} answered {response.status_code}: {response.text[:300]}")
    record = response.json()["results"][0]
    scores = {"score": float(record["reward"])}
    for name, category in record.get("categories", {}).items():
        scores[EXTRA_PREFIX + name] = float(category["flr"])
    return scores


def _unreachable(url: str, err: Exception, tries: int) -> FLRRewardError:
    return FLRRewardError(f"FLR reward: cannot reach {url} after {tries} tries ({type(err).__name__}: {err}); "
                          "is `flr serve` running there, and is flr_url right?")


async def compute_score(data_source: Any, solution_str: str, ground_truth: Any = None,
                        extra_info: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, float]:
    """One sample's FLR reward for verl's reward loop: {"score": reward, "flr_<category>": FLR, ...}."""
    url, token, timeout, retries = _settings(kwargs)
    body = {"conversations": [conversation(solution_str, extra_info)]}
    key = (id(asyncio.get_running_loop()), url, token)
    if key not in _ASYNC_CLIENTS:
        _ASYNC_CLIENTS[key] = httpx.AsyncClient(**_client_options(token, timeout))
    client = _ASYNC_CLIENTS[key]
    for attempt in range(retries + 1):
        try:
            response = await client.post(f"{url}/v1/score", json=body)
        except httpx.TransportError as err:  # timeouts, refused and dropped connections
            if attempt == retries:
                raise _unreachable(url, err, attempt + 1) from None
            await asyncio.sleep(_wait(attempt, None))
            continue
        if response.status_code in RETRY_STATUSES and attempt < retries:
            await asyncio.sleep(_wait(attempt, response.headers.get("retry-after")))
            continue
        return _result(url, response)
    raise AssertionError("unreachable")


def compute_score_sync(data_source: Any, solution_str: str, ground_truth: Any = None,
                       extra_info: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, float]:
    """`compute_score` for verl's older, synchronous reward managers (`use_reward_loop=false`)."""
    url, token, timeout, retries = _settings(kwargs)
    body = {"conversations": [conversation(solution_str, extra_info)]}
    if (url, token) not in _SYNC_CLIENTS:
        _SYNC_CLIENTS[(url, token)] = httpx.Client(**_client_options(token, timeout))
    client = _SYNC_CLIENTS[(url, token)]
    for attempt in range(retries + 1):
        try:
            response = client.post(f"{url}/v1/score", json=body)
        except httpx.TransportError as err:
            if attempt == retries:
                raise _unreachable(url, err, attempt + 1) from None
            time.sleep(_wait(attempt, None))
            continue
        if response.status_code in RETRY_STATUSES and attempt < retries:
            time.sleep(_wait(attempt, response.headers.get("retry-after")))
            continue
        return _result(url, response)
    raise AssertionError("unreachable")
