"""Shared fixtures: a tiny random chat model (no download) and the embedded-model marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_adapter, build_tiny_model

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "embedded: needs the embedded SmolLM2 model (slower)")
    config.addinivalue_line("markers", "browser: drives the app in headless Chromium")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat-model"))


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A LoRA adapter folder on the tiny model, as `flr finetune` lays one out (built with PEFT)."""
    return build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("tiny-adapter"))


@pytest.fixture(scope="session")
def tiny_plain_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model without a chat template (plain-text format path)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-plain-model"), chat_template=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared benchmark data not found at {DATA_DIR}")
    return DATA_DIR
