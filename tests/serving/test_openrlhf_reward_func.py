"""examples/openrlhf_reward_func.py called the way OpenRLHF calls a custom reward function, against a
live server on the tiny model.

Matched in OpenRLHF/OpenRLHF at commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7:
`openrlhf/utils/agent.py` `SingleTurnAgentExecutor.__init__` loads the file with
`importlib.util.spec_from_file_location("reward_func", path)`; `execute` decodes prompt+response
with `skip_special_tokens=False` and calls `_fetch_rewards_via_func([query], [prompt], [label])`,
which runs `reward_func` in `asyncio.to_thread` (one sample per call, every sample at once) and
takes the first answer; `rewards`, `scores` (else `rewards`) and `extra_logs` are read from it, and
`openrlhf/trainer/ppo_utils/samples_generator.py` turns each extra_logs tensor into
`value.flatten()[0].item()`."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
import torch
from transformers import AutoTokenizer

from core.engine.conversation import parse_conversation
from core.engine.followups import default_followups
from core.serving.server import ServeConfig
from tests.serving.conftest import CONVERSATIONS
from tests.serving.test_burst import Serving
from tests.serving.verl_rows import ROOT

TOKEN = "orl-s3cret"


def load_reward_func():
    spec = importlib.util.spec_from_file_location("reward_func", ROOT / "examples" / "openrlhf_reward_func.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def openrlhf_sample(reward_func, query: str, prompt: str, label) -> dict:
    """`execute`'s reward part for one sample: what ends up in its Experience."""
    rewards_info = (await asyncio.gather(asyncio.to_thread(reward_func, [query], [prompt], [label])))[0]
    scores = rewards_info.get("scores")
    reward = rewards_info.get("rewards")
    logs = {}
    for key, value in (rewards_info.get("extra_logs") or {}).items():
        logs[key] = value.flatten()[0].item() if isinstance(value, torch.Tensor) else value
    return {"reward": torch.tensor([reward]).flatten()[0].item(),
            "score": torch.tensor([scores if scores is not None else reward]).flatten()[0].item(),
            "extra_logs": logs}


def test_reward_func_as_openrlhf_calls_it_gives_flr_and_each_category(tiny_scorer, tiny_model_dir, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    samples = []
    for utterances in CONVERSATIONS * 4:  # 16 concurrent one-sample calls
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": u}
                    for i, u in enumerate(utterances[:-1])]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] + \
            tokenizer(utterances[-1] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        samples.append((tokenizer.decode(ids, skip_special_tokens=False), prompt, None))
    module = load_reward_func()
    with Serving(tiny_scorer, ServeConfig(token=TOKEN)) as serving:
        monkeypatch.setenv("FLR_SERVE_URL", serving.url)
        monkeypatch.setenv("FLR_SERVE_TOKEN", TOKEN)

        async def rollout():
            return await asyncio.gather(*(openrlhf_sample(module.reward_func, *s) for s in samples))

        got = asyncio.run(rollout())
        monkeypatch.setenv("FLR_SERVE_TOKEN", "wrong")
        with pytest.raises(module.FLRRewardError, match="401"):
            module.reward_func(*[[x] for x in samples[0]])
    want = tiny_scorer.score_many([parse_conversation(u) for u in CONVERSATIONS], default_followups())
    for i, sample in enumerate(got):
        expected = want[i % len(CONVERSATIONS)]
        assert sample["reward"] == pytest.approx(expected.flr, abs=1e-4)
        assert sample["score"] == pytest.approx(expected.flr, abs=1e-4)
        assert sample["extra_logs"] == pytest.approx({f"flr_{c.name}": c.flr for c in expected.categories},
                                                     abs=1e-4)
