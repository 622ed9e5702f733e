"""FLR as a verl custom reward function, scored by a running `flr serve`.

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info)` per response
(and, with `reward_model.reward_manager=batch`, `compute_score_batch(data_sources,
solution_strs, ground_truths, extra_infos)` once per batch, which lets the server score the
whole batch in shared passes). verl passes the response text only, so the question must be in
the dataset's `extra_info` as "question" (or the chat so far as "messages"), which verl's data
preparation scripts usually already write.

Standard library only, so it runs in verl's reward workers without FLR Studio installed:

    flr serve --port 8000 --token "$FLR_SERVE_TOKEN" &
    python -m verl.trainer.main_ppo ... \
        custom_reward_function.path=examples/verl_flr_reward.py \
        custom_reward_function.name=compute_score            # or compute_score_batch with
                                                             # reward_model.reward_manager=batch

Settings come from the environment: FLR_SERVE_URL (default http://127.0.0.1:8000) and
FLR_SERVE_TOKEN (when the server has one).
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any


def _conversation(solution_str: str, extra_info: dict[str, Any] | None) -> list[dict[str, str]]:
    info = extra_info or {}
    if isinstance(info.get("messages"), list):
        history = list(info["messages"])
        if history and history[-1].get("role") == "assistant":
            history = history[:-1]  # a reference answer in the data, not the reply being judged
    elif info.get("question") or info.get("prompt"):
        history = [{"role": "user", "content": str(info.get("question") or info.get("prompt"))}]
    else:
        raise ValueError("FLR reward: put the question in the dataset's extra_info as 'question' "
                         "(or the chat as 'messages') so the reply can be judged in context")
    return history + [{"role": "assistant", "content": solution_str}]


def _post(conversations: list[list[dict[str, str]]]) -> list[float]:
    url = os.environ.get("FLR_SERVE_URL", "http://127.0.0.1:8000").rstrip("/") + "/v1/score"
    headers = {"Content-Type": "application/json"}
    if os.environ.get("FLR_SERVE_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["FLR_SERVE_TOKEN"]
    request = urllib.request.Request(url, json.dumps({"conversations": conversations}).encode(), headers)
    with urllib.request.urlopen(request, timeout=600) as response:
        return [float(r["reward"]) for r in json.loads(response.read())["results"]]


def compute_score(data_source: Any, solution_str: str, ground_truth: Any = None,
                  extra_info: dict[str, Any] | None = None, **kwargs: Any) -> float:
    """One response's FLR reward (verl's default reward manager)."""
    return _post([_conversation(solution_str, extra_info)])[0]


def compute_score_batch(data_sources: list[Any], solution_strs: list[str], ground_truths: list[Any],
                        extra_infos: list[dict[str, Any] | None], **kwargs: Any) -> list[float]:
    """All responses of a batch in one request (verl's batch reward manager)."""
    return _post([_conversation(s, e) for s, e in zip(solution_strs, extra_infos)])
