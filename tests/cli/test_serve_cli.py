"""`flr serve`: flags become one ServeConfig, bad settings fail before the model loads, and the
app it would run answers on the configured model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.cli.main import main


def test_serve_builds_the_app_from_its_flags(tiny_model_dir, monkeypatch):
    import uvicorn

    ran = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: ran.update(app=app, host=host, port=port))
    monkeypatch.setenv("FLR_SERVE_TOKEN", "from-env")
    code = main(["serve", "--model", str(tiny_model_dir), "--device", "cpu", "--port", "8123",
                 "--reward-weights", "relevance=2", "--clip", "5", "--query-template", "chatml"])
    assert code == 0 and ran["host"] == "127.0.0.1" and ran["port"] == 8123
    with TestClient(ran["app"]) as client:
        assert client.get("/health").status_code == 401
        health = client.get("/health", headers={"Authorization": "Bearer from-env"}).json()
    assert health["model"] == str(tiny_model_dir) and health["device"] == "cpu"


@pytest.mark.parametrize("flags, words", [
    (["--reward-weights", "relevance"], "CATEGORY=NUMBER"),
    (["--clip", "0"], "clip must be a positive number"),
    (["--max-queue", "0"], "--max-queue must be at least 1"),
    (["--query-template", "/nonexistent/model-folder"], "neither a known template"),
])
def test_bad_settings_are_one_line_errors(flags, words, capsys):
    assert main(["serve", "--model", "/nonexistent/model", *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_weights_must_name_categories_of_the_set(tiny_model_dir, capsys):
    assert main(["serve", "--model", str(tiny_model_dir), "--device", "cpu", "--reward-weights", "typo=1"]) == 2
    assert "reward weights name typo, not in the follow-up set" in capsys.readouterr().err
