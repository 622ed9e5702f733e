"""Hosting settings: a Space's fixed model list, remote code, ZeroGPU flag, queue and disk limits."""

from __future__ import annotations

import json
from types import SimpleNamespace
import os
import time

import pytest

from core.errors import ConfigError
from ui import exports, gpu
from ui.settings import AppSettings


def test_a_space_without_a_model_list_serves_only_its_configured_model(tmp_path):
    space = AppSettings.from_env({"SPACE_ID": "me/flr", "FLR_MODEL": "org/only", "FLR_WORK_DIR": str(tmp_path)})
    assert space.hosted and space.allowed_models == ("org/only",) and space.space_id == "me/flr"
    with pytest.raises(ConfigError, match="not offered on this server"):
        space.check_model(str(tmp_path))  # an existing server folder
    listed = AppSettings.from_env({"SPACE_ID": "me/flr", "FLR_ALLOWED_MODELS": "org/a,org/b"})
    assert listed.allowed_models == ("org/a", "org/b") and listed.config.model == "org/a"
    assert not AppSettings.from_env({}).hosted


def test_remote_code_needs_a_fixed_model_list():
    with pytest.raises(ConfigError, match="FLR_TRUST_REMOTE_CODE.*FLR_ALLOWED_MODELS"):
        AppSettings.from_env({"FLR_TRUST_REMOTE_CODE": "1"})
    assert AppSettings.from_env({"FLR_TRUST_REMOTE_CODE": "1", "FLR_ALLOWED_MODELS": "org/a"}).config.trust_remote_code
    assert AppSettings.from_env({"FLR_TRUST_REMOTE_CODE": "1", "SPACE_ID": "me/flr"}).allowed_models


def test_zero_gpu_only_when_spaces_says_so():
    assert gpu.zero_gpu({"SPACES_ZERO_GPU": "true"}) and gpu.zero_gpu({"SPACES_ZERO_GPU": "1"})
    assert not gpu.zero_gpu({}) and not gpu.zero_gpu({"SPACES_ZERO_GPU": "false"})
    assert not gpu.zero_gpu({"SPACE_ID": "me/flr"})  # a CPU Space has `spaces` installed too
    assert AppSettings.from_env({"SPACES_ZERO_GPU": "True"}).zero_gpu
    assert not AppSettings.from_env({"SPACE_ID": "me/flr"}).zero_gpu


def test_gpu_durations_grow_with_the_work_and_stay_capped():
    from core.engine.config import ScoringConfig
    from core.mining.mining import MiningConfig

    from core.engine.followups import default_followups

    config = ScoringConfig()
    one = gpu._score_seconds(None, config, ["c"], default_followups())
    many = gpu._score_seconds(None, config, ["c"] * 50, default_followups())
    assert gpu.load_seconds(config) < one < many
    small = gpu._mine_seconds(None, None, config, ["p"], None, MiningConfig(samples=2, max_new_tokens=16))
    big = gpu._mine_seconds(None, None, config, ["p"] * 20, None, MiningConfig(samples=8, max_new_tokens=512))
    assert small < big


def test_old_export_folders_are_removed(tmp_path):
    settings = AppSettings(work_dir=tmp_path, export_max_age=3600)
    old = exports.new_folder(settings, "batch")
    (old / "REPORT.json").write_text("{}")
    past = time.time() - 7200
    os.utime(old, (past, past))
    recent = exports.new_folder(settings, "batch")
    newest = exports.new_folder(settings, "score")
    assert not old.exists() and recent.is_dir() and newest.is_dir()
    assert newest.parent == settings.exports_dir and newest.name.startswith("score-")


def test_the_app_bounds_its_queue_and_cache_and_hides_helper_endpoints(tmp_path):
    from tests.ui.test_ui_score import FakeScorer
    from ui.gradio_app import build_app

    demo = build_app(AppSettings(work_dir=tmp_path, queue_size=7), scorer_factory=FakeScorer)
    assert demo._queue.max_size == 7
    assert demo.delete_cache is not None
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert public == {"score", "compare", "evaluate", "mine"}


def test_score_result_download(tmp_path):
    from tests.ui.test_ui_score import FakeScorer
    from ui.tabs import score as tab_score
    from ui.state import AppState

    state = AppState(AppSettings(work_dir=tmp_path), FakeScorer)
    text = "User: What is the capital of France?\nAssistant: Paris."
    visitor, other = SimpleNamespace(session_hash="visitor"), SimpleNamespace(session_hash="other")
    *_, table, record = tab_score.score_conversation(
        state, text, "", ["relevance"], "embedded", "base", "mean", lambda *a, **k: None, visitor)
    json_path, csv_path = tab_score.result_files(state, visitor)
    assert json.loads(open(json_path, encoding="utf-8").read())["flr"] == pytest.approx(record["flr"])
    lines = open(csv_path, encoding="utf-8").read().splitlines()
    assert lines[0] == "category,polarity,follow-up,score" and len(lines) == 1 + len(table)
    assert tab_score.result_files(state, other) == []  # a session that scored nothing gets nothing
