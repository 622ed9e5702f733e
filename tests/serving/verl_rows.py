"""verl's preprocessed rows and its reward-loop call, rebuilt from verl's sources for the tests.

Read in volcengine/verl at commit b178a3cd56f58b2d502255daba591e92833930a7:
- `examples/data_preprocess/full_hh_rlhf.py` `generate_rl_dataset`: from a Dahoas/full-hh-rlhf
  example `{"prompt", "response"}` (prompt: the HH transcript up to its last "\\n\\nAssistant:")
  it writes `data_source`, `prompt=[{"role": "user", "content": prompt}]`, `ability="alignment"`,
  `reward_model={"style": "model", "ground_truth": response}`, `extra_info={"split", "index"}`.
- `examples/data_preprocess/gsm8k.py`: the question plus verl's instruction as the user message,
  `reward_model={"style": "rule", "ground_truth": <number after ####>}`,
  `extra_info={"split", "index", "answer", "question"}`.
- the call: `verl/utils/dataset/rl_dataset.py` `__getitem__` sets `raw_prompt` to the row's
  prompt messages; `verl/experimental/agent_loop/agent_loop.py` `_agent_loop_postprocess` copies
  it into `extra_fields`; `verl/experimental/reward_loop/reward_manager/naive.py` `run_single`
  updates `extra_info` with those fields, adds `num_turns` and `rollout_reward_scores`, and calls
  the function (awaited if async) with keywords; `verl/trainer/ppo/reward.py`
  `_call_with_kwargs_async` merges `custom_reward_function.reward_kwargs` over them;
  `verl/experimental/reward_loop/reward_loop.py` `compute_score_batch` gathers one task per sample.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import inspect
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Dahoas/full-hh-rlhf examples in its layout: the prompt is an HH transcript up to its last
# "\n\nAssistant:", the response what follows (with its leading space).
DAHOAS_EXAMPLES = [
    {"prompt": "\n\nHuman: What are some good cheeses for a picnic?\n\nAssistant:",
     "response": " Cheddar, brie and gouda travel well and go with bread and fruit."},
    {"prompt": "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for about nine "
               "minutes.\n\nHuman: And for a soft yolk?\n\nAssistant:",
     "response": " About six minutes, then cool it in cold water."},
]
GSM8K_INSTRUCTION = 'Let\'s think step by step and output the final answer after "####".'
# Two examples in the layout of openai/gsm8k "main" (question, answer with "#### N").
GSM8K_EXAMPLES = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
                 "in May. How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
               "altogether in April and May.\n#### 72"},
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                 "How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned "
               "0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"},
]


def dahoas_from_hh(path: Path, n: int) -> list[dict[str, str]]:
    """Dahoas/full-hh-rlhf `{"prompt", "response"}` from the first `n` Anthropic HH pairs of a
    file (Dahoas's prompt is the chosen transcript up to its last "\\n\\nAssistant:")."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            chosen = json.loads(line)["chosen"]
            cut = chosen.rfind("\n\nAssistant:") + len("\n\nAssistant:")
            out.append({"prompt": chosen[:cut], "response": chosen[cut:]})
            if len(out) == n:
                break
    return out


def hh_rows(examples: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rows as full_hh_rlhf.py's `process_fn` writes them (split "train")."""
    return [{"data_source": "Dahoas/full-hh-rlhf", "prompt": [{"role": "user", "content": ex["prompt"]}],
             "ability": "alignment", "reward_model": {"style": "model", "ground_truth": ex["response"]},
             "extra_info": {"split": "train", "index": idx}} for idx, ex in enumerate(examples)]


def gsm8k_rows() -> list[dict[str, Any]]:
    """Rows as gsm8k.py's `process_fn` writes them (split "test")."""
    rows = []
    for idx, ex in enumerate(GSM8K_EXAMPLES):
        solution = re.search("#### (\\-?[0-9\\.\\,]+)", ex["answer"]).group(0).split("#### ")[1].replace(",", "")
        rows.append({"data_source": "openai/gsm8k",
                     "prompt": [{"role": "user", "content": ex["question"] + " " + GSM8K_INSTRUCTION}],
                     "ability": "math", "reward_model": {"style": "rule", "ground_truth": solution},
                     "extra_info": {"split": "test", "index": idx, "answer": ex["answer"],
                                    "question": ex["question"]}})
    return rows


def load_reward_module() -> ModuleType:
    """examples/verl_flr_reward.py loaded by path, as verl's `load_extern_object` does."""
    path = ROOT / "examples" / "verl_flr_reward.py"
    spec = importlib.util.spec_from_file_location("custom_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reward_loop_call(fn: Any, row: dict[str, Any], response: str, reward_kwargs: dict[str, Any]) -> Any:
    """One sample through verl's path: the awaitable (async fn) or the result (sync fn)."""
    extra_info = dict(row["extra_info"])
    extra_info.update({"raw_prompt": row["prompt"]}.items())  # the agent loop's extra_fields
    extra_info["num_turns"] = 2
    extra_info["rollout_reward_scores"] = {}
    call = {"data_source": row["data_source"], "solution_str": response,
            "ground_truth": row["reward_model"]["ground_truth"], "extra_info": extra_info}
    return fn(**{**call, **reward_kwargs})


async def reward_loop_batch(fn: Any, rows: list[dict[str, Any]], responses: list[str],
                            reward_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """`compute_score_batch`: every sample its own concurrent task, as verl's reward loop does."""
    assert inspect.iscoroutinefunction(fn), "verl's reward loop awaits only coroutine functions"
    tasks = [asyncio.create_task(reward_loop_call(fn, r, s, reward_kwargs)) for r, s in zip(rows, responses)]
    return list(await asyncio.gather(*tasks))
