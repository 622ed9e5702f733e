"""Per-token explanations: the fast path's token values equal one full pass per follow-up, they
aggregate to the scores `score` reports, and the effects add up to the FLR."""

from __future__ import annotations

import pytest

from core.engine.conversation import from_utterances
from core.engine.explain import compare, explain, reference_tokens
from core.engine.followups import followups_from_mapping
from tests.engine.test_scorer import make_scorer

SET = followups_from_mapping({
    "relevance": {"positive": ["Thanks, that helps!", "Exactly what I asked."],
                  "negative": ["That is off topic.", "Thanks, but no."]},
    "correctness": {"positive": ["Correct."], "negative": ["That is wrong, sorry.", "No."]},
})
CONV = from_utterances(["What is the capital of France?", "Paris is the capital of France."])


@pytest.mark.parametrize("aggregation", ["mean", "sum", "paper"])
def test_token_values_equal_the_reference_and_aggregate_to_the_scores(tiny_model_dir, aggregation) -> None:
    scorer = make_scorer(tiny_model_dir, aggregation=aggregation, batch_size=2)
    fast = explain(scorer, CONV, SET)
    slow = reference_tokens(scorer, CONV, SET)
    assert scorer.uses_shared_prefix
    by_text = {f.text: f for f in slow.followups}
    for f in fast.followups:
        ref = by_text[f.text]
        assert [t for t, _ in f.tokens] == [t for t, _ in ref.tokens] and f.tokens
        assert [v for _, v in f.tokens] == pytest.approx([v for _, v in ref.tokens], abs=1e-4)
    result = scorer.score(CONV, SET)
    scores = {t: v for c in result.categories for t, v in
              (*zip(c.positive_texts, c.positive), *zip(c.negative_texts, c.negative))}
    for f in fast.followups:
        assert f.score == pytest.approx(scores[f.text], abs=1e-5)
    # the effects decompose the FLR; the largest first
    assert sum(f.effect for f in fast.followups) == pytest.approx(result.flr, abs=1e-5)
    effects = [abs(f.effect) for f in fast.followups]
    assert effects == sorted(effects, reverse=True)


def test_token_strings_spell_the_followup(tiny_model_dir) -> None:
    fast = explain(make_scorer(tiny_model_dir), CONV, SET)
    for f in fast.followups:
        assert f.text in "".join(t for t, _ in f.tokens)


def test_compare_ranks_followups_by_change(tiny_model_dir) -> None:
    scorer = make_scorer(tiny_model_dir)
    a = explain(scorer, CONV, SET)
    b = explain(scorer, CONV.with_reply("I do not know, maybe Lyon."), SET)
    table = compare(a, b)
    assert len(table) == len(SET.utterances())
    changes = table["change"].abs().tolist()
    assert changes == sorted(changes, reverse=True)
    flr_a, flr_b = scorer.score_many([CONV, CONV.with_reply("I do not know, maybe Lyon.")], SET)
    assert table["effect"].sum() == pytest.approx(flr_b.flr - flr_a.flr, abs=1e-5)
