"""The tiny scorer and a few conversations, shared by the serving tests."""

from __future__ import annotations

import pytest

from core.engine.config import ScoringConfig
from core.engine.followups import default_followups


@pytest.fixture(scope="session")
def tiny_scorer(tiny_model_dir):
    from core.engine.scorer import load_scorer

    return load_scorer(ScoringConfig(model=str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def followups():
    return default_followups()


CONVERSATIONS = [
    ["What is the capital of France?", "Paris is the capital of France."],
    ["Write a short poem about the sea.", "The sea and the sky, blue and wide."],
    ["Could you explain that?", "No."],
    ["Hi!", "Hello, how can I help?", "What is the weather today?", "It is sunny with a light breeze."],
]
