"""Cancellation reaches the model work: a scoring call under `stop_when` stops between passes."""

from __future__ import annotations

import threading

import pytest

from core.engine.config import ScoringConfig
from core.engine.conversation import Conversation
from core.engine.followups import default_followups
from core.engine.models import load_model
from core.engine.scorer import FLRScorer
from core.engine.stopping import stop_when
from core.errors import StoppedError


@pytest.fixture(scope="module")
def scorer(tiny_model_dir) -> FLRScorer:
    config = ScoringConfig(model=str(tiny_model_dir), device="cpu", batch_size=1)
    return FLRScorer(load_model(config), config)


def test_a_stop_request_ends_scoring_after_the_pass_in_flight(scorer: FLRScorer) -> None:
    followups = default_followups()
    conversations = [Conversation((f"question {i}", f"answer {i}")) for i in range(4)]
    assert scorer.score_many(conversations[:1], followups)  # warm (self-check) outside the block
    passes = 0
    original = scorer._run_pass

    def counting(*args, **kwargs):
        nonlocal passes
        passes += 1
        return original(*args, **kwargs)

    scorer._run_pass = counting
    try:
        with stop_when(lambda: passes >= 2), pytest.raises(StoppedError, match="stopped on request"):
            scorer.score_many(conversations, followups)
    finally:
        del scorer._run_pass
    assert passes == 2  # batch size 1: dozens of passes were planned


def test_outside_the_block_nothing_stops(scorer: FLRScorer) -> None:
    cancel = threading.Event()
    cancel.set()
    with stop_when(cancel.is_set):
        pass
    assert scorer.score(Conversation(("q", "a")), default_followups()).flr is not None
