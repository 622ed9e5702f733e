"""The shared scorer (one load under a lock), hosted-mode settings, and gradio-visible binding."""

from __future__ import annotations

import inspect
import threading
import time

import gradio as gr
import pytest
from gradio import utils as gr_utils

from core.engine.config import ScoringConfig
from core.errors import ConfigError, ModelLoadError
from ui.settings import AppSettings
from ui.state import AppState, CancelFlags, ScorerPool, bind


class Counted:
    def __init__(self, config: ScoringConfig) -> None:
        self.config = config

    def with_config(self, config: ScoringConfig) -> None:
        return None  # no weights to share: the hub must call the factory again


def test_hub_loads_once_for_concurrent_first_requests():
    loads = []

    def slow_factory(config):
        loads.append(config)
        time.sleep(0.2)
        return Counted(config)

    hub = ScorerPool(slow_factory)
    config = ScoringConfig()
    got = []
    threads = [threading.Thread(target=lambda: got.append(hub.get(config))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and hub.loads == 1
    assert all(s is got[0] for s in got)


def test_hub_frees_the_old_scorer_before_loading_another():
    held = []

    def factory(config):
        held.append(config.model)
        return Counted(config)

    hub = ScorerPool(factory)
    first = hub.get(ScoringConfig(model="a"))
    assert hub.get(ScoringConfig(model="a")) is first
    second = hub.get(ScoringConfig(model="b"))
    assert second is not first and hub.loaded_config.model == "b" and held == ["a", "b"]


def test_hub_wraps_unexpected_load_errors_and_keeps_working():
    def factory(config):
        if config.model == "bad":
            raise RuntimeError("weights are corrupt")
        return Counted(config)

    hub = ScorerPool(factory)
    with pytest.raises(ModelLoadError, match="could not load model 'bad': RuntimeError: weights are corrupt"):
        hub.get(ScoringConfig(model="bad"))
    assert hub.loaded_config is None
    assert hub.get(ScoringConfig(model="good")).config.model == "good"


def test_hub_keeps_the_working_model_when_another_fails_to_load():
    def factory(config):
        if config.model == "typo":
            raise ModelLoadError("typo: no such folder or file")
        return Counted(config)

    hub = ScorerPool(factory)
    working = hub.get(ScoringConfig(model="good"))
    with pytest.raises(ModelLoadError, match="no such folder"):
        hub.get(ScoringConfig(model="typo"))
    assert hub.loaded_config.model == "good" and hub.get(ScoringConfig(model="good")) is working
    assert hub.loads == 1


def test_settings_from_env():
    settings = AppSettings.from_env({
        "FLR_MODEL": "org/b", "FLR_MODE": "feedback", "FLR_ALLOWED_MODELS": "org/a,org/b,",
        "FLR_MAX_FILE_SIZE": "5mb", "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8000"})
    assert settings.allowed_models == ("org/a", "org/b") and settings.hosted
    assert settings.config.model == "org/b" and settings.config.mode == "feedback"
    assert (settings.max_file_size, settings.server_name, settings.server_port) == ("5mb", "0.0.0.0", 8000)
    local = AppSettings.from_env({})
    assert not local.hosted and local.server_name == "127.0.0.1" and local.server_port == 7860
    assert local.check_model(" my/local-model ") == "my/local-model"
    with pytest.raises(ConfigError, match="GRADIO_SERVER_PORT must be an integer"):
        AppSettings.from_env({"GRADIO_SERVER_PORT": "eighty"})


def test_config_for_applies_choices(tmp_path):
    state = AppState(AppSettings(work_dir=tmp_path), Counted)
    config = state.config_for("embedded", "feedback", "paper")
    assert (config.model, config.mode, config.aggregation) == ("embedded", "feedback", "paper")
    with pytest.raises(ConfigError, match="choose a model"):
        state.config_for("  ", "base", "mean")


def test_cancel_flags_per_session():
    flags = CancelFlags()
    assert not flags.cancel("s1")
    event = flags.start("s1")
    assert not flags.cancel("s2") and not event.is_set()
    assert flags.cancel("s1") and event.is_set()
    flags.finish("s1", event)
    assert not flags.cancel("s1")


def test_bind_keeps_what_gradio_inspects():
    def handler(state, text: str, request: gr.Request, progress=gr.Progress()):
        return state, text

    bound = bind(handler, "STATE")
    assert list(inspect.signature(bound).parameters) == ["text", "request", "progress"]
    assert gr_utils.get_type_hints(bound)["request"] is gr.Request
    assert bound("hi", None) == ("STATE", "hi")


def test_building_the_app_loads_no_model(tmp_path):
    from ui.gradio_app import build_app

    loads = []
    demo = build_app(AppSettings(work_dir=tmp_path), scorer_factory=lambda c: loads.append(c))
    assert isinstance(demo, gr.Blocks) and loads == []


def test_switching_mode_keeps_the_loaded_weights(tiny_model_dir):
    """With the real engine on the tiny model: a new mode or aggregation rewraps, never reloads."""
    from core.engine.conversation import from_utterances
    from core.engine.followups import followups_from_mapping

    hub = ScorerPool()
    base = ScoringConfig(model=str(tiny_model_dir), device="cpu")
    first = hub.get(base)
    second = hub.get(base.with_changes(mode="feedback", aggregation="sum"))
    assert hub.loads == 1 and second.loaded is first.loaded and second.config.mode == "feedback"
    followups = followups_from_mapping({"x": {"positive": ["Thanks!"], "negative": ["Wrong."]}})
    conversation = from_utterances(["Hi", "Hello"])
    assert second.score(conversation, followups).flr != first.score(conversation, followups).flr
    hub.get(base.with_changes(dtype="float32"))
    assert hub.loads == 2
