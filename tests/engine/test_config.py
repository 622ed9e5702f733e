"""ScoringConfig: defaults, validation, and reading the environment."""

from __future__ import annotations

import dataclasses

import pytest

from core.engine.config import AGGREGATIONS, DTYPES, EMBEDDED_MODEL, MODES, ScoringConfig
from core.errors import ConfigError, InputError


def test_defaults():
    config = ScoringConfig()
    assert config.model == EMBEDDED_MODEL == "embedded"
    assert config.device == "auto"
    assert config.dtype == "auto"
    assert config.mode == "base"
    assert config.aggregation == "mean"
    assert config.batch_size == 32
    assert config.max_length is None
    assert config.trust_remote_code is False


def test_choices_are_the_documented_ones():
    assert MODES == ("base", "feedback")
    assert AGGREGATIONS == ("mean", "sum", "paper")
    assert DTYPES == ("auto", "float32", "float16", "bfloat16")


def test_config_is_frozen_and_hashable():
    config = ScoringConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "feedback"  # type: ignore[misc]
    assert hash(config) == hash(ScoringConfig())


def test_every_valid_choice_is_accepted():
    for mode in MODES:
        for aggregation in AGGREGATIONS:
            for dtype in DTYPES:
                config = ScoringConfig(mode=mode, aggregation=aggregation, dtype=dtype)
                assert (config.mode, config.aggregation, config.dtype) == (mode, aggregation, dtype)


@pytest.mark.parametrize("changes, fragment", [
    ({"mode": "fast"}, "mode must be one of base, feedback; got 'fast'"),
    ({"aggregation": "max"}, "aggregation must be one of mean, sum, paper; got 'max'"),
    ({"dtype": "int8"}, "dtype must be one of auto, float32, float16, bfloat16; got 'int8'"),
    ({"batch_size": 0}, "batch size must be a positive integer; got 0"),
    ({"batch_size": -3}, "batch size must be a positive integer"),
    ({"batch_size": "8"}, "batch size must be a positive integer; got '8'"),
    ({"batch_size": True}, "batch size must be a positive integer"),
    ({"max_length": 4}, "max length must be an integer of at least 8 tokens; got 4"),
    ({"max_length": "512"}, "max length must be an integer of at least 8 tokens"),
    ({"model": ""}, "model must be a Hub id"),
])
def test_invalid_values_are_rejected_with_the_field_and_value(changes, fragment):
    with pytest.raises(ConfigError) as err:
        ScoringConfig(**changes)
    assert fragment in str(err.value)


def test_config_errors_are_value_errors():
    assert issubclass(ConfigError, InputError)
    with pytest.raises(ValueError):
        ScoringConfig(mode="nope")


def test_with_changes_copies_and_validates():
    base = ScoringConfig()
    changed = base.with_changes(mode="feedback", batch_size=4)
    assert (changed.mode, changed.batch_size) == ("feedback", 4)
    assert base.mode == "base"
    with pytest.raises(ConfigError):
        base.with_changes(aggregation="median")


def test_as_dict_has_every_field():
    assert ScoringConfig().as_dict() == {
        "model": "embedded", "device": "auto", "dtype": "auto", "mode": "base",
        "aggregation": "mean", "batch_size": 32, "max_length": None, "trust_remote_code": False,
        "system_policy": "keep",
    }


def test_scoring_key_ignores_batch_size_and_device():
    a = ScoringConfig(batch_size=1, device="cpu")
    b = ScoringConfig(batch_size=64, device="auto")
    assert a.scoring_key() == b.scoring_key()
    assert ScoringConfig(mode="feedback").scoring_key() != a.scoring_key()
    assert ScoringConfig(aggregation="sum").scoring_key() != a.scoring_key()
    assert ScoringConfig(max_length=128).scoring_key() != a.scoring_key()


# --- from_env -------------------------------------------------------------------------------


def test_from_env_with_nothing_set_gives_defaults():
    assert ScoringConfig.from_env({}) == ScoringConfig()


def test_from_env_reads_every_variable():
    env = {
        "FLR_MODEL": "/models/my-chat",
        "FLR_DEVICE": "cpu",
        "FLR_DTYPE": "bfloat16",
        "FLR_MODE": "feedback",
        "FLR_AGGREGATION": "paper",
        "FLR_BATCH_SIZE": "8",
        "FLR_MAX_LENGTH": "1024",
        "FLR_TRUST_REMOTE_CODE": "true",
    }
    assert ScoringConfig.from_env(env) == ScoringConfig(
        model="/models/my-chat", device="cpu", dtype="bfloat16", mode="feedback",
        aggregation="paper", batch_size=8, max_length=1024, trust_remote_code=True,
    )


def test_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("FLR_BATCH_SIZE", "3")
    monkeypatch.setenv("FLR_MODE", "feedback")
    config = ScoringConfig.from_env()
    assert (config.batch_size, config.mode) == (3, "feedback")


def test_from_env_ignores_empty_and_unrelated_variables():
    env = {"FLR_MODE": "", "FLR_SOMETHING_ELSE": "x", "MODEL": "other", "flr_mode": "feedback"}
    assert ScoringConfig.from_env(env) == ScoringConfig()


@pytest.mark.parametrize("raw", ["none", "None", "auto", "AUTO"])
def test_from_env_max_length_none_or_auto(raw):
    assert ScoringConfig.from_env({"FLR_MAX_LENGTH": raw}).max_length is None


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
])
def test_from_env_trust_remote_code(raw, expected):
    assert ScoringConfig.from_env({"FLR_TRUST_REMOTE_CODE": raw}).trust_remote_code is expected


def test_from_env_unclear_boolean_is_rejected_not_guessed():
    with pytest.raises(ConfigError) as err:
        ScoringConfig.from_env({"FLR_TRUST_REMOTE_CODE": "maybe"})
    assert "FLR_TRUST_REMOTE_CODE" in str(err.value)
    assert "'maybe'" in str(err.value)


@pytest.mark.parametrize("name", ["FLR_BATCH_SIZE", "FLR_MAX_LENGTH"])
def test_from_env_non_integer_names_the_variable(name):
    with pytest.raises(ConfigError) as err:
        ScoringConfig.from_env({name: "lots"})
    assert str(err.value) == f"environment variable {name} must be an integer; got 'lots'"


@pytest.mark.parametrize("name, raw, fragment", [
    ("FLR_MODE", "fast", "mode must be one of"),
    ("FLR_AGGREGATION", "max", "aggregation must be one of"),
    ("FLR_DTYPE", "int4", "dtype must be one of"),
    ("FLR_BATCH_SIZE", "0", "batch size must be a positive integer"),
    ("FLR_MAX_LENGTH", "2", "at least 8 tokens"),
])
def test_from_env_invalid_value_names_the_variable(name, raw, fragment):
    with pytest.raises(ConfigError) as err:
        ScoringConfig.from_env({name: raw})
    message = str(err.value)
    assert message.startswith(f"environment variable {name}:")
    assert fragment in message


def test_from_env_overrides_win_and_none_overrides_are_ignored():
    env = {"FLR_MODE": "feedback", "FLR_BATCH_SIZE": "8"}
    config = ScoringConfig.from_env(env, batch_size=2, mode=None, device="cpu")
    assert (config.mode, config.batch_size, config.device) == ("feedback", 2, "cpu")


def test_from_env_invalid_override_is_rejected():
    with pytest.raises(ConfigError, match="aggregation must be one of"):
        ScoringConfig.from_env({}, aggregation="median")
