"""`FLRReward` as TRL calls it: standard and conversational formats, and two real GRPO steps."""

from __future__ import annotations

import pytest

from core import FLRReward
from core.engine.conversation import Conversation, parse_conversation
from core.errors import InputError
from tests.serving.conftest import CONVERSATIONS


def test_both_trl_formats_equal_direct_scoring(tiny_scorer, followups, tiny_model_dir):
    from transformers import AutoTokenizer

    reward = FLRReward(scorer=tiny_scorer)
    assert reward.__name__ == "flr"
    pairs = CONVERSATIONS[:3]
    expected = [tiny_scorer.score(parse_conversation(p), followups).flr for p in pairs]
    standard = reward([p[0] for p in pairs], [p[1] for p in pairs], completion_ids=None, trainer_state=None)
    conversational = reward([[{"role": "user", "content": p[0]}] for p in pairs],
                            [[{"role": "assistant", "content": p[1]}] for p in pairs])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rendered = reward([tokenizer.apply_chat_template([{"role": "user", "content": p[0]}], tokenize=False,
                                                     add_generation_prompt=True) for p in pairs],
                      [p[1] for p in pairs])  # a standard prompt already rendered with a chat template
    for got in (standard, conversational, rendered):
        assert got == pytest.approx(expected, abs=1e-4)
    assert len(reward(["q"], [""])) == 1  # an empty completion is scored, not an error
    with pytest.raises(InputError, match="completion 0"):
        reward([{"role": "user"}], ["a"])


def test_two_grpo_steps_log_the_rewards_of_direct_scoring(tiny_scorer, tiny_model_dir, followups, tmp_path):
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")

    class Recorded(FLRReward):
        def __call__(self, prompts, completions, **kwargs):
            rewards = super().__call__(prompts, completions, **kwargs)
            self.calls.append((prompts, completions, rewards))
            return rewards

    reward = Recorded(scorer=tiny_scorer)
    reward.calls = []
    data = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": c[0]}]} for c in CONVERSATIONS])
    args = trl.GRPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, num_generations=2,
                          max_completion_length=6, use_cpu=True, bf16=False, logging_steps=1, report_to="none",
                          save_strategy="no", seed=0, dataloader_num_workers=0)
    trainer = trl.GRPOTrainer(model=str(tiny_model_dir), reward_funcs=reward, args=args, train_dataset=data)
    trainer.train()
    logged = [h["rewards/flr/mean"] for h in trainer.state.log_history if "rewards/flr/mean" in h]
    assert len(reward.calls) == len(logged) == 2
    for (prompts, completions, rewards), mean in zip(reward.calls, logged):
        direct = [tiny_scorer.score(Conversation((p[0]["content"], c[0]["content"])), followups).flr
                  for p, c in zip(prompts, completions)]
        assert rewards == pytest.approx(direct, abs=1e-4)
        assert mean == pytest.approx(sum(direct) / len(direct), abs=1e-4)
    assert list(trainer._logs["rewards"]["flr"]) == pytest.approx(reward.calls[-1][2], abs=1e-5)
