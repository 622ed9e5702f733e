"""What each ZeroGPU call asks for is sized from the work in it (issue 20): a chunk of 8
conversations on the 135M model asked 40 + 48 x 1.25 = 100 s before, most of an anonymous
visitor's daily ~120 s."""

from __future__ import annotations

import pytest

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import default_followups
from ui import gpu

FOLLOWUPS = default_followups()


def conversations(n: int, words: int = 40) -> list[Conversation]:
    return [Conversation((f"Question {i}: how do I keep basil alive on a windowsill?",
                          " ".join(["Water it when the soil is dry."] * (words // 7))))
            for i in range(n)]


def chunk_request(model: str, n: int) -> float:
    config = ScoringConfig(model=model)
    plan = gpu.chunk_plan(config, conversations(n), FOLLOWUPS, budget=60)
    return gpu._chunk_seconds(None, config, [], FOLLOWUPS, None, None, plan.work_for(n))


@pytest.mark.parametrize("name, size", [("embedded", 0.135), ("HuggingFaceTB/SmolLM2-135M-Instruct", 0.135),
                                        ("Qwen/Qwen2.5-1.5B-Instruct", 1.5), ("meta-llama/Llama-3.1-8B", 8),
                                        ("mistralai/Mixtral-8x7B-v0.1", 56), ("/models/my-finetune", 8)])
def test_the_model_size_comes_from_its_name(name, size):
    assert gpu.model_params_b(name) == pytest.approx(size)


def test_a_chunk_of_8_conversations_on_the_135m_model_asks_seconds():
    asked = chunk_request("embedded", 8)
    assert asked < 30, asked
    assert asked > gpu.load_seconds(ScoringConfig())  # the work is not free either


def test_the_request_grows_with_conversations_followups_and_model_size():
    config = ScoringConfig()
    few, many = (gpu.scoring_seconds(config, [200] * n, 20) for n in (8, 80))
    assert many == pytest.approx(10 * few)
    assert gpu.scoring_seconds(config, [200] * 8, 40) == pytest.approx(2 * few)
    assert chunk_request("Qwen/Qwen2.5-7B-Instruct", 8) > chunk_request("embedded", 8)
    long_one = gpu.scoring_seconds(config, [4000], 20)
    capped = gpu.scoring_seconds(ScoringConfig(max_length=512), [4000], 20)
    assert capped < long_one  # the scorer cuts each sequence to max_length


def test_a_big_run_is_split_into_calls_that_each_fit_the_budget():
    config = ScoringConfig(model="Qwen/Qwen2.5-1.5B-Instruct")
    todo = conversations(400)
    plan = gpu.chunk_plan(config, todo, FOLLOWUPS, budget=60)
    assert plan.calls > 1
    left = len(todo)
    while left > 0:
        asked = gpu._chunk_seconds(None, config, [], FOLLOWUPS, None, None, plan.work_for(left))
        assert asked <= 60 + 1e-9
        left -= len(todo) // plan.calls
    assert plan.requested == pytest.approx(
        plan.calls * (gpu.CALL_SECONDS + gpu.load_seconds(config) + gpu.METRICS_SECONDS) + gpu.SLACK * plan.work)


def test_the_visitor_is_told_before_a_run_their_quota_will_not_cover():
    small = gpu.chunk_plan(ScoringConfig(), conversations(8), FOLLOWUPS, budget=60)
    assert small.quota_warning() == ""
    big = gpu.chunk_plan(ScoringConfig(model="Qwen/Qwen2.5-7B-Instruct"), conversations(500), FOLLOWUPS, budget=60)
    warning = big.quota_warning()
    assert f"{big.calls} call(s) for 500 conversation(s)" in warning
    assert "anonymous visitor" in warning and "120 s" in warning and "first N" in warning


def test_conversations_to_score_skip_precomputed_files_and_duplicates(tmp_path):
    from core.evaluation.detect import detect_benchmarks
    from tests.ui.paper_pair import write_paper_pair

    precomputed = detect_benchmarks(write_paper_pair(tmp_path / "pair"))
    assert gpu.conversations_to_score(precomputed, None) == []
    import json

    hh = tmp_path / "hh.jsonl"
    row = {"chosen": "\n\nHuman: hi?\n\nAssistant: hello there", "rejected": "\n\nHuman: hi?\n\nAssistant: no"}
    hh.write_text("".join(json.dumps(r) + "\n" for r in [row, row, {**row, "rejected": row["rejected"] + "!"}]))
    [bench] = detect_benchmarks([hh])
    assert len(gpu.conversations_to_score([bench], None)) == 3  # chosen once, two distinct rejected
    assert len(gpu.conversations_to_score([bench], 1)) == 2


def test_what_the_score_cache_holds_is_not_counted_again(tmp_path):
    """A resumed run asks only for what is left, so its quota warning does not repeat."""
    import json

    from core.evaluation.detect import detect_benchmarks
    from core.evaluation.runner import EvaluationOptions, run_evaluation
    from tests.fakes import FakeScorer

    hh = tmp_path / "hh.jsonl"
    hh.write_text("".join(json.dumps({"chosen": f"\n\nHuman: q{i}?\n\nAssistant: yes",
                                      "rejected": f"\n\nHuman: q{i}?\n\nAssistant: no"}) + "\n"
                          for i in range(5)))
    benchmarks = detect_benchmarks([hh])
    config, cache = ScoringConfig(model="fake"), tmp_path / "scores.sqlite"

    def left() -> int:
        return len(gpu.conversations_to_score(benchmarks, None, cache_path=cache, config=config,
                                              followups=FOLLOWUPS))

    assert left() == 10
    run_evaluation(benchmarks, scorer_factory=lambda: FakeScorer(config), config=config,
                   followups=FOLLOWUPS, cache_path=cache, options=EvaluationOptions(limit=2))
    assert left() == 6  # the first 2 pairs are cached
