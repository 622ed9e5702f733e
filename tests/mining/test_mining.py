"""Preference mining: prompt files, seeded sampling on the tiny model, scoring, cache and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pytest
import torch

from core.engine.conversation import Conversation
from core.errors import ConfigError, InputError
from core.engine.followups import FollowupSet, followups_from_mapping
from core.mining.mining import CACHE_FOLDER, EMPTY_REPLY, MiningConfig, SampleCache, mine, run_key
from core.mining.policy import Generation, RowSampler, TransformersPolicy, sample_seed
from core.mining.prompts import MiningPrompt, PromptFileError, load_prompts, parse_prompts
from core.engine.results import ConversationScore
from tests.fakes import FakeScorer

FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["Thanks!"], "negative": ["That is off topic."]},
    "correctness": {"positive": ["Right."], "negative": ["That is wrong."]},
})


class TextHashScorer(FakeScorer):
    """The shared fake (rewards from a hash of the reply), recording what it was asked to judge."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(name="text-hash", fail_after=fail_after)
        self.scored: list[Conversation] = []

    def _score_one(self, conversation: Conversation, followups: FollowupSet) -> ConversationScore:
        result = super()._score_one(conversation, followups)
        self.scored.append(conversation)
        return result


class ScriptedPolicy:
    """Replies that name the prompt and sample, so tests can see which were generated."""

    identity = "scripted-policy"

    def __init__(self, empty: set[tuple[int, int]] = frozenset()) -> None:
        self.asked: list[int] = []
        self.empty = empty

    def generate(self, prompts: Sequence[MiningPrompt], indices: Sequence[int],
                 config: MiningConfig) -> list[list[Generation]]:
        self.asked += list(indices)
        return [[Generation("" if (i, k) in self.empty else f"reply {k} to {p.text} (seed {config.seed})",
                            finished=k % 2 == 0)
                 for k in range(config.samples)] for p, i in zip(prompts, indices)]


@pytest.fixture(scope="module")
def tiny_policy(tiny_model_dir: Path) -> TransformersPolicy:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return TransformersPolicy(model, tokenizer, "tiny")


PROMPTS = [MiningPrompt("a", ("What is the capital of France?",)),
           MiningPrompt("b", ("Write a short poem about the sea.",)),
           MiningPrompt("c", ("Hi", "Hello! How can I help?", "Explain that in simpler words."),
                        system="Be brief.")]


# --- prompt files ------------------------------------------------------------------------------

def test_prompt_records_of_every_shape(tmp_path: Path) -> None:
    records = [
        "Plain string prompt",
        {"prompt": "With prompt field", "id": "p1"},
        {"question_id": 81, "category": "writing", "turns": ["First MT-Bench turn", "Second turn"]},
        {"instruction": "Translate", "input": "bonjour", "system": "You translate.",
         "history": [["Hi", "Hello"]]},
        {"conversation": ["u1", "a1", "u2"]},
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "m1"}]},
        [{"from": "human", "value": "sharegpt"}, {"from": "gpt", "value": "r"}, {"from": "human", "value": "q2"}],
        {"conversations": [{"from": "human", "value": "sharegpt record"}], "system": "Sys"},
    ]
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(records))
    prompts = load_prompts(path)
    assert [p.turns for p in prompts] == [
        ("Plain string prompt",), ("With prompt field",), ("First MT-Bench turn",),
        ("Hi", "Hello", "Translate\nbonjour"), ("u1", "a1", "u2"), ("m1",), ("sharegpt", "r", "q2"),
        ("sharegpt record",)]
    assert [p.id for p in prompts] == ["0", "p1", "81", "3", "4", "5", "6", "7"]
    assert prompts[7].system == "Sys"
    assert prompts[3].system == "You translate." and prompts[5].system == "S"
    assert prompts[3].history == [("Hi", "Hello")] and prompts[3].text == "Translate\nbonjour"


def test_prompt_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"question": "one"}\n\n{"question": "two"}\n')
    assert [p.text for p in load_prompts(jsonl)] == ["one", "two"]
    csv_path = tmp_path / "p.csv"
    csv_path.write_text('id,prompt\nx,"Hello, world"\ny,"Second ""quoted"""\n')
    prompts = load_prompts(csv_path)
    assert [(p.id, p.text) for p in prompts] == [("x", "Hello, world"), ("y", 'Second "quoted"')]


@pytest.mark.parametrize("text, fmt, message", [
    ('[{"prompt": "ok"}, {"answer": "no prompt"}]', "json", "item 1: no prompt found"),
    ('{"prompt": "ok"}\n{"prompt": ', "jsonl", "line 2: malformed JSON"),
    ("prompt,id\nok,1\n,2\n", "csv", "row 3, field 'prompt': the prompt is empty"),
    ("text\nhello\n", "csv", "has no prompt column"),
    ('[{"conversation": ["u", "a"]}]', "json", "item 0, field 'conversation': expected utterances ending "
                                               "with the user's turn"),
    ('[{"messages": [{"role": "assistant", "content": "x"}]}]', "json", "turn 1 is from the assistant"),
    ('[{"prompt": "a", "id": 1}, {"prompt": "b", "id": 1}]', "json", "id '1' is used again"),
    ('{"not": "a list"}', "json", "item 0: no prompt found"),
    ("[]", "json", "no prompts found"),
])
def test_prompt_file_errors_name_the_place(text: str, fmt: str, message: str) -> None:
    with pytest.raises(PromptFileError, match=None) as err:
        parse_prompts(text, "prompts.x", fmt)
    assert isinstance(err.value, InputError)
    assert message in str(err.value) and "prompts.x" in str(err.value)


def test_shared_benchmark_question_files_load(shared_data: Path) -> None:
    mt_bench = load_prompts(shared_data / "mt_bench_questions" / "question.jsonl")
    assert len(mt_bench) == 80 and mt_bench[0].id == "81" and mt_bench[0].text.startswith("Compose an engaging")
    arena = load_prompts(shared_data / "arena_hard_v0.1" / "question.jsonl")
    assert len(arena) == 500 and arena[0].text == "Use ABC notation to write a melody in the style of a folk tune."
    assert arena[0].id == "328c149ed45a41c0b9d6f14659e63599"


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match="cannot read"):
        load_prompts(tmp_path / "nope.json")


def test_bundled_demo_prompts_load() -> None:
    path = Path(__file__).resolve().parents[2] / "assets" / "mine_demo_prompts.json"
    prompts = load_prompts(path)
    assert 3 <= len(prompts) <= 10
    assert all(len(p.turns) == 1 and p.text.strip() for p in prompts)


# --- sampling ----------------------------------------------------------------------------------

def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="samples"):
        MiningConfig(samples=0)
    with pytest.raises(ConfigError, match="top-p"):
        MiningConfig(top_p=0)
    with pytest.raises(ConfigError, match="temperature"):
        MiningConfig(temperature=-1)
    assert "batch_size" not in MiningConfig().sampling_key()


def test_row_sampler_matches_the_obvious_computation() -> None:
    torch.manual_seed(0)
    scores = torch.randn(5, 50) * 3
    temperature, top_p = 0.7, 0.8
    chosen = RowSampler([torch.Generator().manual_seed(s) for s in range(5)], temperature, top_p)(None, scores)
    assert ((chosen == 0).sum(dim=-1) == 1).all()  # exactly one token allowed per row
    for row in range(5):
        u = torch.rand((), generator=torch.Generator().manual_seed(row)).item()
        probs = torch.softmax(scores[row] / temperature, dim=-1).tolist()
        ranked = sorted(range(50), key=lambda t: -probs[t])
        nucleus, mass = [], 0.0
        for t in ranked:  # smallest prefix whose mass reaches top_p
            nucleus.append(t)
            mass += probs[t]
            if mass >= top_p:
                break
        target, running, expected = u * sum(probs[t] for t in nucleus), 0.0, nucleus[-1]
        for t in nucleus:
            running += probs[t]
            if running >= target:
                expected = t
                break
        assert chosen[row].argmax().item() == expected


def test_row_sampler_greedy_and_tiny_top_p() -> None:
    scores = torch.tensor([[0.0, 5.0, 1.0], [2.0, 0.0, 1.0]])
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    for sampler in (RowSampler(gens, 0.0, 1.0), RowSampler(gens, 1.0, 1e-6)):
        assert sampler(None, scores).argmax(dim=-1).tolist() == [1, 0]


def test_sample_seed_is_stable_and_distinct() -> None:
    assert sample_seed(0, 1, 2) == sample_seed(0, 1, 2)
    assert len({sample_seed(s, p, k) for s in range(2) for p in range(3) for k in range(3)}) == 18
    assert 0 <= sample_seed(123, 4, 5) < 2**63


def test_tiny_model_sampling_is_deterministic_and_batch_independent(tiny_policy: TransformersPolicy) -> None:
    config = MiningConfig(samples=3, max_new_tokens=10, seed=7, batch_size=3)
    together = tiny_policy.generate(PROMPTS, [0, 1, 2], config)
    again = tiny_policy.generate(PROMPTS, [0, 1, 2], config)
    alone = [tiny_policy.generate([p], [i], config)[0] for i, p in enumerate(PROMPTS)]
    assert together == again == alone
    assert all(len(g) == 3 for g in together)
    texts = [g.text for gens in together for g in gens]
    assert len(set(texts)) > 1  # sampling, not greedy
    other_seed = tiny_policy.generate(PROMPTS, [0, 1, 2], MiningConfig(samples=3, max_new_tokens=10, seed=8))
    assert other_seed != together


def test_tiny_model_uses_the_chat_template(tiny_policy: TransformersPolicy) -> None:
    rendered = tiny_policy.render(PROMPTS[2])
    assert rendered.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert rendered.endswith("<|im_start|>user\nExplain that in simpler words.<|im_end|>\n<|im_start|>assistant\n")


def test_plain_model_gets_the_engines_plain_layout(tiny_plain_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy = TransformersPolicy(AutoModelForCausalLM.from_pretrained(tiny_plain_model_dir),
                                AutoTokenizer.from_pretrained(tiny_plain_model_dir), "plain")
    assert policy.render(PROMPTS[2]) == ("System: Be brief.\n\nUser: Hi\n\nAssistant: Hello! How can I help?"
                                         "\n\nUser: Explain that in simpler words.\n\nAssistant:")
    gens = policy.generate(PROMPTS[:2], [0, 1], MiningConfig(samples=2, max_new_tokens=5))
    assert [len(g) for g in gens] == [2, 2]


def test_prompt_longer_than_the_context_is_refused(tiny_policy: TransformersPolicy) -> None:
    short = TransformersPolicy(tiny_policy.model, tiny_policy.tokenizer, "tiny", max_context=40)
    with pytest.raises(InputError, match="prompt c: .* tokens plus 10 new tokens exceed the policy model's "
                                         "context of 40"):
        short.generate(PROMPTS, [0, 1, 2], MiningConfig(samples=1, max_new_tokens=10))


def test_greedy_samples_are_identical(tiny_policy: TransformersPolicy) -> None:
    gens = tiny_policy.generate(PROMPTS[:1], [0], MiningConfig(samples=2, max_new_tokens=6, temperature=0))[0]
    assert gens[0] == gens[1]


# --- mining, cache, resume --------------------------------------------------------------------

def test_mine_keeps_every_sample_with_rewards(tmp_path: Path) -> None:
    scorer = TextHashScorer()
    policy = ScriptedPolicy(empty={(1, 2)})
    results = mine(PROMPTS, policy, scorer, FOLLOWUPS, MiningConfig(samples=3, batch_size=2))
    assert [r.index for r in results] == [0, 1, 2]
    assert [len(r.samples) for r in results] == [3, 3, 3]
    empty = results[1].samples[2]
    assert empty.flr is None and empty.note == EMPTY_REPLY and empty.rewards == {}
    assert len(scorer.scored) == 8  # the empty reply is never scored
    sample = results[2].samples[1]
    expected = scorer.score(PROMPTS[2].with_reply(sample.response), FOLLOWUPS)
    assert sample.flr == expected.flr
    assert sample.rewards == {"relevance": expected.categories[0].flr,
                              "correctness": expected.categories[1].flr}
    assert sample.finished is False and results[2].samples[0].finished is True
    # The scorer sees the whole prompt conversation plus the sampled reply.
    judged = [c for c in scorer.scored if c.reply == sample.response][0]
    assert judged.utterances[:-1] == PROMPTS[2].turns and judged.system == "Be brief."


def test_progress_counts_replies_as_they_are_scored(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    config = MiningConfig(samples=2, batch_size=2)
    mine(PROMPTS, ScriptedPolicy(), TextHashScorer(), FOLLOWUPS, config, tmp_path,
         progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 6), (1, 6), (2, 6), (3, 6), (4, 6), (4, 6), (5, 6), (6, 6), (6, 6)]
    seen.clear()
    mine(PROMPTS + [MiningPrompt("d", ("New?",))], ScriptedPolicy(), TextHashScorer(), FOLLOWUPS, config,
         tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(6, 8), (7, 8), (8, 8), (8, 8)]  # cached prompts count as done


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path: Path, tiny_policy: TransformersPolicy) -> None:
    prompts = PROMPTS + [MiningPrompt("d", ("Tell me about the weather today.",))]
    config = MiningConfig(samples=2, max_new_tokens=8, seed=3, batch_size=1)
    reference = mine(prompts, tiny_policy, TextHashScorer(), FOLLOWUPS, config, tmp_path / "clean")

    killed = TextHashScorer(fail_after=2 * 2)  # dies on the third prompt (2 samples each)
    with pytest.raises(RuntimeError, match="fake scorer stopped"):
        mine(prompts, tiny_policy, killed, FOLLOWUPS, config, tmp_path / "run")
    cache_files = list((tmp_path / "run" / CACHE_FOLDER).glob("samples-*.jsonl"))
    assert len(cache_files) == 1 and len(cache_files[0].read_text().splitlines()) == 2

    rerun_scorer = TextHashScorer()
    bigger_batches = MiningConfig(samples=2, max_new_tokens=8, seed=3, batch_size=3)
    resumed = mine(prompts, tiny_policy, rerun_scorer, FOLLOWUPS, bigger_batches, tmp_path / "run")
    assert resumed == reference
    assert len(rerun_scorer.scored) == 2 * 2  # only the two unfinished prompts were sampled again


def test_cache_ignores_other_settings_changed_prompts_and_partial_lines(tmp_path: Path) -> None:
    config = MiningConfig(samples=2, batch_size=1)
    mine(PROMPTS, ScriptedPolicy(), TextHashScorer(), FOLLOWUPS, config, tmp_path)
    policy = ScriptedPolicy()
    mine(PROMPTS, policy, TextHashScorer(), FOLLOWUPS, config, tmp_path)
    assert policy.asked == []  # everything came from the cache

    policy = ScriptedPolicy()
    mine(PROMPTS, policy, TextHashScorer(), FOLLOWUPS, MiningConfig(samples=2, seed=1), tmp_path)
    assert policy.asked == [0, 1, 2]  # another seed is another run

    changed = [PROMPTS[0], MiningPrompt("b", ("A different question",)), PROMPTS[2]]
    policy = ScriptedPolicy()
    results = mine(changed, policy, TextHashScorer(), FOLLOWUPS, config, tmp_path)
    assert policy.asked == [1] and results[1].prompt == changed[1]

    cache = SampleCache(tmp_path, run_key(ScriptedPolicy(), TextHashScorer(), FOLLOWUPS, config)).path
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:1]) + "\n" + lines[1][: len(lines[1]) // 2])  # killed mid-write
    policy = ScriptedPolicy()
    results = mine(PROMPTS, policy, TextHashScorer(), FOLLOWUPS, config, tmp_path)
    assert policy.asked == [1, 2]
    again = ScriptedPolicy()
    assert mine(PROMPTS, again, TextHashScorer(), FOLLOWUPS, config, tmp_path) == results
    assert again.asked == []
