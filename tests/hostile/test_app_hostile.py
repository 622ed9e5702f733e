"""Hostile inputs through the running app's endpoints (gradio_client): each is answered with a
readable error that never shows the server's folders, and the app keeps serving."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.ui.test_app_client import CONVERSATION, running_app, score


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from gradio_client import Client

    with running_app(tmp_path_factory.mktemp("hostile-app")) as url:
        yield Client(url, verbose=False)


def evaluate(client, path: Path):
    from gradio_client import handle_file

    return client.predict([handle_file(str(path))], "detect from the files", "", None, None, None, "embedded", "base",
                          "mean", api_name="/evaluate")


def test_a_huge_paste_is_refused_before_parsing(client) -> None:
    from gradio_client.exceptions import AppError

    paste = "User: hi\nAssistant: " + "x" * 300_000
    with pytest.raises(AppError, match=r"pasted conversation: 300,\d+ characters is over the limit"):
        score(client, paste)
    assert "Overall FLR" in score(client, CONVERSATION)[0]  # and the app keeps serving


def test_many_turns_are_refused_at_the_app_cap(client) -> None:
    from gradio_client.exceptions import AppError

    paste = json.dumps([f"turn {i}" for i in range(2_002)])
    with pytest.raises(AppError, match=r"2,002 turns is over the limit of 2,000"):
        score(client, paste)


@pytest.mark.parametrize("name, content, message", [
    ("damaged_accept.jsonl.gz", b"\x1f\x8b\x08\x00garbage", r"damaged gzip data|cut short"),
    ("latin_accept.jsonl", '{"conversation": ["caf\xe9", "a"]}\n'.encode("latin-1"), r"not UTF-8"),
    ("bomb_accept.jsonl.gz", gzip.compress(b" " * (70 * 1024 * 1024)), r"more than 64 MB"),
])
def test_bad_uploads_get_a_message_without_server_paths(client, tmp_path: Path, name: str,
                                                        content: bytes, message: str) -> None:
    from gradio_client.exceptions import AppError

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError, match=message) as raised:
        evaluate(client, path)
    text = str(raised.value)
    assert name in text and "/tmp" not in text and str(tmp_path) not in text
