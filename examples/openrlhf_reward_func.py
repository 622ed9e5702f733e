"""FLR as OpenRLHF's custom `reward_func`, scored by a running `flr serve`.

    flr serve --port 8000 --token "$FLR_SERVE_TOKEN" &
    ray job submit --runtime-env-json='{"env_vars": {"FLR_SERVE_URL": "http://127.0.0.1:8000",
                                                     "FLR_SERVE_TOKEN": "..."}}' \
        -- python3 -m openrlhf.cli.train_ppo_ray ... --reward.remote_url examples/openrlhf_reward_func.py

A second way in beside `--reward.remote_url http://.../get_reward`: the token travels in a header
rather than in the URL, and a busy server is retried with backoff (honouring Retry-After) for as
long as `FLR_RETRIES` allows, instead of OpenRLHF's own five tries one second apart.

What it matches, read in OpenRLHF/OpenRLHF at commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7:
- `openrlhf/utils/agent.py` `SingleTurnAgentExecutor`: a `--reward.remote_url` ending in `.py` is
  loaded with `importlib` and its `reward_func` is called as `reward_func(queries, prompts,
  labels)` through `asyncio.to_thread`, one sample per call (`batch_size = 1`), every sample of a
  rollout concurrently. `queries` are prompt+response decoded with special tokens kept, so
  `/get_reward` splits them back into turns by their chat template.
- The answer is a dict: "rewards" (used for advantages), "scores" (dynamic filtering; falls back
  to "rewards") and "extra_logs", each value a tensor, as OpenRLHF's `examples/python/
  reward_func.py` returns them; `openrlhf/trainer/ppo_utils/samples_generator.py` logs each
  extra_logs key (`value.flatten()[0].item()` for tensors), so every FLR category shows up as
  `flr_<category>` beside the reward.

Settings come from the environment of OpenRLHF's vLLM workers (hence `runtime-env-json` above):
FLR_SERVE_URL (default http://127.0.0.1:8000), FLR_SERVE_TOKEN, FLR_TIMEOUT (seconds per try,
600) and FLR_RETRIES (8). Needs `httpx` (installed with OpenRLHF's transformers) and torch.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import httpx
import torch

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF_S = 30.0

# OpenRLHF calls a plain function from many threads; one thread-safe httpx.Client per process
# keeps connections open between them.
_CLIENTS: dict[tuple[str | None, float], httpx.Client] = {}
_LOCK = threading.Lock()


class FLRRewardError(RuntimeError):
    """The reward server could not be reached, or refused the sample."""


def _settings() -> tuple[str, str | None, float, int]:
    url = os.environ.get("FLR_SERVE_URL", "http://127.0.0.1:8000").rstrip("/")
    return (url, os.environ.get("FLR_SERVE_TOKEN") or None, float(os.environ.get("FLR_TIMEOUT", "600")),
            int(os.environ.get("FLR_RETRIES", "8")))


def _client(token: str | None, timeout: float) -> httpx.Client:
    with _LOCK:
        if (token, timeout) not in _CLIENTS:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            _CLIENTS[(token, timeout)] = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, pool=None),
                                                      limits=httpx.Limits(max_connections=256))
        return _CLIENTS[(token, timeout)]


def _wait(attempt: int, retry_after: str | None) -> float:
    backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2)
    try:
        asked = float(retry_after) if retry_after else 0.0
    except ValueError:
        asked = 0.0
    return min(MAX_BACKOFF_S, max(backoff, asked))


def _post(body: dict[str, Any]) -> dict[str, Any]:
    url, token, timeout, retries = _settings()
    client = _client(token, timeout)
    for attempt in range(retries + 1):
        try:
            response = client.post(f"{url}/get_reward", json=body)
        except httpx.TransportError as err:  # timeouts, refused and dropped connections
            if attempt == retries:
                raise FLRRewardError(f"FLR reward: cannot reach {url} after {attempt + 1} tries "
                                     f"({type(err).__name__}: {err}); is `flr serve` running there "
                                     "and FLR_SERVE_URL set in the workers' environment?") from None
            time.sleep(_wait(attempt, None))
            continue
        if response.status_code in RETRY_STATUSES and attempt < retries:
            time.sleep(_wait(attempt, response.headers.get("retry-after")))
            continue
        if response.status_code != 200:
            raise FLRRewardError(f"FLR reward: {url}/get_reward answered {response.status_code}: "
                                 f"{response.text[:300]}")
        return response.json()
    raise AssertionError("unreachable")


def reward_func(queries: list[str], prompts: list[str], labels: list[Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """FLR of each query's last reply: {"rewards", "scores", "extra_logs": {"flr_<category>": ...}}."""
    answer = _post({"query": list(queries), "prompts": list(prompts)})
    rewards = torch.tensor(answer["rewards"], dtype=torch.float)
    extra_logs = {key: torch.tensor(values, dtype=torch.float)
                  for key, values in answer.get("extra_logs", {}).items()}
    return {"rewards": rewards, "scores": torch.tensor(answer["scores"], dtype=torch.float),
            "extra_logs": extra_logs}
