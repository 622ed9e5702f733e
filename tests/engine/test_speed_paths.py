"""Every fast path of the engine against the obvious computation (one full pass per follow-up).

Packing several follow-ups into a row, several conversations into a pass, chunked prefix
scores and logits, the out-of-memory retry and the CUDA token budget: each must give the
reference scores to 1e-4 in float32 on the tiny model, whatever the batch size.
"""

from __future__ import annotations

import pytest
import torch

from core.engine.fast import attention

from core.engine.fast import packing

from core.engine import scorer as scorer_module
from core.engine.config import ScoringConfig
from core.engine.conversation import from_utterances
from core.engine.followups import followups_from_mapping
from core.engine.models import load_model
from core.engine.fast.packing import Segment, pack_rows, plan_passes, row_width
from core.engine.rendering import render, shared_prefix_length
from core.engine.scorer import FLRScorer

FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["That's exactly what I asked about.", "Thanks, very helpful!"],
                  "negative": ["That has nothing to do with my question.", "No."]},
    "correctness": {"positive": ["Right, that matches what I know."],
                    "negative": ["That's wrong.", "I don't think that's correct at all, sorry.",
                                 "Wrong.", "Could you explain that in simpler words, please? "
                                 "The weather today is sunny with a light breeze. " * 2]},
})
CONVERSATIONS = [
    from_utterances(["What is the capital of France?", "Paris is the capital of France."]),
    from_utterances(["What is the capital of France?", "Paris.", "And what is it famous for?",
                     "The Eiffel Tower, museums and food."]),
    from_utterances(["Write a short poem about the sea.", "The sea is blue and the sky is too."]),
]


def make_scorer(model_dir, **settings) -> FLRScorer:
    config = ScoringConfig(model=str(model_dir), device="cpu", **settings)
    return FLRScorer(load_model(config), config)


def reference_scores(scorer: FLRScorer, conversation) -> list[float]:
    texts = list(dict.fromkeys(FOLLOWUPS.utterances()))
    rendered = render(scorer.loaded.tokenizer, conversation, texts, mode=scorer.config.mode,
                      aggregation=scorer.config.aggregation, max_length=scorer.max_length)
    values = dict(zip(texts, scorer.score_reference(rendered.requests)))
    return [values[t] for t in FOLLOWUPS.utterances()]


def flat(result) -> list[float]:
    return [v for c in result.categories for v in c.positive + c.negative]


# -- packing (pure, worked out by hand) ------------------------------------------------------

def test_first_fit_decreasing_fills_rows_without_mixing_conversations():
    segments = [Segment(0, 0, 3), Segment(0, 1, 5), Segment(0, 2, 2), Segment(0, 3, 4),
                Segment(1, 0, 6), Segment(1, 1, 1)]
    rows = pack_rows(segments, width=8)
    # group 0, longest first: 5 -> row A (3 left), 4 -> row B (4 left), 3 -> A (0 left), 2 -> B.
    assert [[(s.key, off) for s, off in row.segments] for row in rows] == [
        [(1, 0), (0, 5)], [(3, 0), (2, 4)], [(0, 0), (1, 6)]]
    assert [row.group for row in rows] == [0, 0, 1]
    passes = plan_passes(rows, width=8, token_budget=16)
    assert [len(p.rows) for p in passes] == [2, 1]
    assert passes[0].row_ranges == ((0, 0, 2),)
    assert plan_passes(rows, 8, 100)[0].row_ranges == ((0, 0, 2), (1, 2, 3))
    assert plan_passes(rows, 8, 1)[0].rows == (rows[0],)  # at least one row per pass


def test_row_width_grows_for_long_segments_and_rejects_what_cannot_fit():
    assert row_width(lambda width: [Segment(0, 0, 3)], 3) == packing.MIN_ROW_WIDTH
    assert row_width(lambda width: [Segment(0, 0, 3), Segment(0, 1, 200)], 200) == 200
    with pytest.raises(ValueError):
        pack_rows([Segment(0, 0, 9)], width=8)


def test_own_mask_lets_a_slot_see_itself_and_its_ancestors_only():
    # slots: a, a>b, a>b>c, a>d (a second branch), e (another first token), pad
    parents = torch.tensor([[-1, 0, 1, 0, -1, -1]])
    visible = attention.PackedBatch.mask_from_parents(parents)[0] == 0
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(visible, expected)


# -- the engine against the reference ---------------------------------------------------------

@pytest.mark.parametrize("aggregation", ["mean", "sum", "paper"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_score_many_packs_conversations_and_equals_the_reference(tiny_model_dir, aggregation,
                                                                  batch_size):
    scorer = make_scorer(tiny_model_dir, aggregation=aggregation, batch_size=batch_size)
    results = scorer.score_many(CONVERSATIONS, FOLLOWUPS)
    assert scorer.uses_shared_prefix
    for conversation, result in zip(CONVERSATIONS, results):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


def test_feedback_mode_packed_equals_the_reference(tiny_model_dir):
    scorer = make_scorer(tiny_model_dir, mode="feedback", batch_size=2)
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, FOLLOWUPS)):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


def test_one_pass_holds_several_conversations(tiny_model_dir, monkeypatch):
    scorer = make_scorer(tiny_model_dir, batch_size=64)
    scorer.score(CONVERSATIONS[0], FOLLOWUPS)  # self-check done
    passes = []
    original = scorer._run_pass
    monkeypatch.setattr(scorer, "_run_pass", lambda step, *a: passes.append(step) or original(step, *a))
    scorer.score_many(CONVERSATIONS, FOLLOWUPS)
    assert len(passes) == 1
    assert [g for g, _, _ in passes[0].row_ranges] == [0, 1, 2]


def test_results_do_not_depend_on_packing_or_batch_size(tiny_model_dir):
    baseline = make_scorer(tiny_model_dir, batch_size=1).score_many(CONVERSATIONS, FOLLOWUPS)
    for batch_size in (2, 7, 500):
        other = make_scorer(tiny_model_dir, batch_size=batch_size).score_many(CONVERSATIONS, FOLLOWUPS)
        for a, b in zip(baseline, other):
            assert flat(a) == pytest.approx(flat(b), abs=1e-5)


def test_chunked_prefix_scores_and_logits_equal_the_reference(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(attention, "_MAX_SCORE_ELEMENTS", 256)  # a chunk per row
    monkeypatch.setattr(scorer_module, "_MAX_LOGIT_ELEMENTS", 1000)  # two logit rows per chunk
    scorer = make_scorer(tiny_model_dir, batch_size=4)
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, FOLLOWUPS)):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


def test_conversation_groups_bound_the_prefixes_held_at_once(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(scorer_module, "_PREFIX_BUDGET_FACTOR", 0)  # one conversation per group
    scorer = make_scorer(tiny_model_dir)
    texts = list(dict.fromkeys(FOLLOWUPS.utterances()))
    assert [len(g) for g in scorer._conversation_groups(CONVERSATIONS, texts)] == [1, 1, 1]
    results = scorer.score_many(CONVERSATIONS, FOLLOWUPS)
    assert flat(results[2]) == pytest.approx(reference_scores(scorer, CONVERSATIONS[2]), abs=1e-4)


def test_out_of_memory_halves_the_pass_and_retries(tiny_model_dir, monkeypatch, caplog):
    scorer = make_scorer(tiny_model_dir, batch_size=8)
    scorer.score(CONVERSATIONS[0], FOLLOWUPS)
    budgets = []
    original = scorer._run_pass

    def flaky(step, *args):
        budgets.append(len(step.rows) * step.width)
        if len(budgets) == 1:
            raise torch.OutOfMemoryError("simulated")
        return original(step, *args)

    monkeypatch.setattr(scorer, "_run_pass", flaky)
    result = scorer.score(CONVERSATIONS[1], FOLLOWUPS)
    assert len(budgets) >= 2  # the failed pass was planned again
    assert scorer._token_budget() == 8 * scorer_module.TOKENS_PER_SEQUENCE // 2
    assert "out of memory" in caplog.text
    assert flat(result) == pytest.approx(reference_scores(scorer, CONVERSATIONS[1]), abs=1e-4)


def test_cuda_budget_follows_free_memory(tiny_model_dir, monkeypatch):
    scorer = make_scorer(tiny_model_dir, batch_size=10_000)
    monkeypatch.setattr(scorer.loaded, "device", torch.device("cuda"))
    free = 1000 * scorer._bytes_per_token()
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    assert scorer._token_budget() == int(free * scorer_module._CUDA_MEMORY_FRACTION) // scorer._bytes_per_token()
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10**15, 10**15))
    assert scorer._token_budget() == 10_000 * scorer_module.TOKENS_PER_SEQUENCE


def test_progress_reports_every_conversation_in_order(tiny_model_dir):
    seen = []
    make_scorer(tiny_model_dir).score_many(CONVERSATIONS, FOLLOWUPS,
                                           progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_fallback_scorer_scores_every_conversation(tiny_model_dir, monkeypatch):
    scorer = make_scorer(tiny_model_dir)
    monkeypatch.setattr(scorer, "_shared_prefix", False)
    monkeypatch.setattr(scorer, "_checked", True)
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, FOLLOWUPS)):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


@pytest.mark.parametrize("flash", [True, False])
def test_both_attention_kernels_equal_the_reference(tiny_model_dir, monkeypatch, flash):
    """The fused CPU flash kernel (prefix part) and the plain matmul path used on other devices."""
    if flash and not attention._flash_with_lse(torch.empty(1)):
        pytest.skip("this PyTorch has no fused CPU flash kernel")
    monkeypatch.setattr(attention, "_flash_with_lse", lambda q: flash)
    scorer = make_scorer(tiny_model_dir, batch_size=3)
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, FOLLOWUPS)):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


def test_manual_kernel_chunked_equals_the_reference(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(attention, "_flash_with_lse", lambda q: False)
    monkeypatch.setattr(attention, "_MAX_SCORE_ELEMENTS", 256)
    scorer = make_scorer(tiny_model_dir, aggregation="sum", batch_size=2)
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, FOLLOWUPS)):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


@pytest.mark.parametrize("aggregation", ["mean", "paper"])
def test_vocabulary_blocks_of_the_output_head_equal_the_reference(tiny_model_dir, monkeypatch,
                                                                 aggregation):
    vocab = load_model(ScoringConfig(model=str(tiny_model_dir), device="cpu")).model.config.vocab_size
    monkeypatch.setattr(scorer_module, "_VOCAB_BLOCK", {"cpu": 64})  # several blocks, last partial
    assert vocab % 64 and vocab > 128
    monkeypatch.setattr(scorer_module, "_MAX_LOGIT_ELEMENTS", 64 * 5)  # 5 rows per chunk
    scorer = make_scorer(tiny_model_dir, aggregation=aggregation, batch_size=2)
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, FOLLOWUPS)):
        assert flat(result) == pytest.approx(reference_scores(scorer, conversation), abs=1e-4)


# -- follow-ups that share leading tokens (the token trie) ---------------------------------------

SHARED = followups_from_mapping({
    "relevance": {"positive": ["That's exactly what I asked.", "That's exactly what I asked about, thanks.",
                               "That's right.", "Thanks!"],
                  "negative": ["That's not what I asked.", "That's not it.", "No.", "No. That's wrong."]},
})


@pytest.mark.parametrize("aggregation", ["mean", "sum", "paper"])
@pytest.mark.parametrize("narrow", [False, True])
def test_followups_sharing_leading_tokens_equal_the_reference(tiny_model_dir, monkeypatch, aggregation,
                                                               narrow):
    if narrow:  # rows as narrow as the longest follow-up: big subtrees are split, paths copied
        monkeypatch.setattr(packing, "MIN_ROW_WIDTH", 1)
        monkeypatch.setattr(packing, "MAX_ROW_WIDTH", 1)
    scorer = make_scorer(tiny_model_dir, aggregation=aggregation, batch_size=1)
    scorer.score(CONVERSATIONS[0], SHARED)  # self-check done
    passes = []
    original = scorer._run_pass
    monkeypatch.setattr(scorer, "_run_pass", lambda step, *a: passes.append((step, a[1])) or original(step, *a))
    texts = list(dict.fromkeys(SHARED.utterances()))
    suffix_tokens = 0
    for conversation, result in zip(CONVERSATIONS, scorer.score_many(CONVERSATIONS, SHARED)):
        requests = render(scorer.loaded.tokenizer, conversation, texts, mode="base",
                          aggregation=aggregation, max_length=scorer.max_length).requests
        values = dict(zip(texts, scorer.score_reference(requests)))
        assert flat(result) == pytest.approx([values[t] for t in SHARED.utterances()], abs=1e-4)
        prefix = shared_prefix_length(requests)
        suffix_tokens += sum(r.needed_length - prefix for r in requests)

    slots = [(row.group, node) for step, pieces in passes for row in step.rows
             for segment, _ in row.segments for node in pieces[row.group][segment.key].nodes]
    assert len(set(slots)) < suffix_tokens  # shared leading tokens are computed once
    if narrow:
        assert len(slots) > len(set(slots))  # split subtrees carry copies of their path
    else:
        assert len(slots) == len(set(slots))
