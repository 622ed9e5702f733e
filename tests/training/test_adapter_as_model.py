"""`--model ADAPTER_DIR` beyond `flr score`: the reward server (a real `flr serve` process on
loopback) and the app's Score tab give the adapter's own scores, equal to `flr score` with the
same folder; in hosted mode an adapter folder is refused like any folder the owner did not list.
Ray workers are in tests/distributed/test_adapter_workers.py. The adapter is the tiny model's,
made with PEFT (`tests.tiny_model.build_tiny_adapter`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import httpx
import pytest

from core.cli.main import main
from core.engine.config import ScoringConfig
from core.engine.followups import default_followups
from ui.tabs import score as tab_score
from ui.settings import AppSettings
from ui.state import AppState
from tests.app_process import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "adapter-t0ken"
CONVERSATIONS = [["What is the capital of France?", "Paris is the capital of France."],
                 ["Write a short poem about the sea.", "The weather today is sunny."]]
ALL = list(default_followups().names)


def flr_score(tmp_path: Path, model: Path, mode: str) -> list[float]:
    """What `flr score` gives each of CONVERSATIONS with `--model model`."""
    convs = tmp_path / "convs.json"
    convs.write_text(json.dumps(CONVERSATIONS))
    out = tmp_path / f"{model.name}-{mode}.jsonl"
    assert main(["score", "--input", str(convs), "--output", str(out), "--model", str(model),
                 "--mode", mode, "--device", "cpu"]) == 0
    return [json.loads(line)["flr"] for line in out.read_text().splitlines()]


@pytest.fixture(scope="module")
def served_adapter(tiny_adapter_dir: Path):
    """`flr serve --model ADAPTER_DIR --mode feedback` in its own process on 127.0.0.1."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "FLR_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--model", str(tiny_adapter_dir), "--mode", "feedback",
         "--device", "cpu", "--port", str(port), "--max-batch-wait-ms", "5"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"flr serve exited with {proc.returncode}: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/health", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("flr serve did not answer /health within 180 s")
            time.sleep(0.3)
        yield url, headers
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_flr_serve_with_an_adapter_folder_equals_flr_score(served_adapter, tiny_adapter_dir: Path,
                                                            tiny_model_dir: Path, tmp_path: Path) -> None:
    url, headers = served_adapter
    expected = flr_score(tmp_path, tiny_adapter_dir, "feedback")
    base = flr_score(tmp_path, tiny_model_dir, "feedback")
    assert all(abs(e - b) > 1e-3 for e, b in zip(expected, base))  # the adapter changes the scores

    health = httpx.get(f"{url}/health", headers=headers, timeout=10).json()
    assert health["model"] == str(tiny_adapter_dir)
    queries = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>" for q, a in CONVERSATIONS]
    rewards = httpx.post(f"{url}/get_reward", json={"query": queries}, headers=headers, timeout=120).json()
    assert rewards["rewards"] == pytest.approx(expected, abs=1e-4)
    native = httpx.post(f"{url}/v1/score", json={"conversations": CONVERSATIONS}, headers=headers,
                        timeout=120).json()
    assert [r["flr"] for r in native["results"]] == pytest.approx(expected, abs=1e-4)


def _pasted(conversation: list[str]) -> str:
    return f"User: {conversation[0]}\nAssistant: {conversation[1]}"


def test_the_app_scores_with_a_local_adapter_folder(tiny_adapter_dir: Path, tiny_model_dir: Path,
                                                    tmp_path: Path) -> None:
    expected = flr_score(tmp_path, tiny_adapter_dir, "feedback")
    state = AppState(AppSettings(config=ScoringConfig(device="cpu"), work_dir=tmp_path / "app"))
    got = [tab_score.score_conversation(state, _pasted(c), "", ALL, str(tiny_adapter_dir), "feedback",
                                        "mean")[4]["flr"] for c in CONVERSATIONS]
    assert got == pytest.approx(expected, abs=1e-4)
    assert state.scorers.loaded_config.model == str(tiny_adapter_dir)


def test_hosted_mode_refuses_an_adapter_folder_it_does_not_list(tiny_adapter_dir: Path, tiny_model_dir: Path,
                                                                 tmp_path: Path) -> None:
    settings = AppSettings.from_env({"FLR_ALLOWED_MODELS": str(tiny_model_dir), "FLR_DEVICE": "cpu",
                                     "FLR_WORK_DIR": str(tmp_path)})
    state = AppState(settings)
    with pytest.raises(gr.Error, match="not offered on this server"):
        tab_score.score_conversation(state, _pasted(CONVERSATIONS[0]), "", ALL, str(tiny_adapter_dir),
                                     "feedback", "mean")
    assert state.scorers.loads == 0

    # an owner who lists the adapter folder serves it, with the same scores as `flr score`
    listed = AppState(AppSettings.from_env({"FLR_ALLOWED_MODELS": str(tiny_adapter_dir), "FLR_DEVICE": "cpu",
                                            "FLR_WORK_DIR": str(tmp_path)}))
    record = tab_score.score_conversation(listed, _pasted(CONVERSATIONS[0]), "", ALL, str(tiny_adapter_dir),
                                          "feedback", "mean")[4]
    assert record["flr"] == pytest.approx(flr_score(tmp_path, tiny_adapter_dir, "feedback")[0], abs=1e-4)


def test_cached_results_of_an_adapter_are_not_reused_once_its_base_changed(tmp_path: Path, capsys) -> None:
    """The score cache and the report memo key a local model by its files without loading it; an
    adapter's scores depend on its base's weights too, so retraining the base in place must not
    bring back the old adapter's numbers."""
    from core.evaluation.report_cache import model_key
    from tests.tiny_model import build_tiny_adapter, build_tiny_model

    base = build_tiny_model(tmp_path / "base")
    adapter = build_tiny_adapter(base, tmp_path / "adapter")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"chosen": f"\n\nHuman: {q}\n\nAssistant: {a}",
                                           "rejected": f"\n\nHuman: {q}\n\nAssistant: No."})
                               for q, a in CONVERSATIONS))
    argv = ["evaluate", str(pairs), "--model", str(adapter), "--device", "cpu", "--cache",
            str(tmp_path / "cache.sqlite"), "--report", str(tmp_path / "report.json")]
    key = model_key(ScoringConfig(model=str(adapter)))
    assert main(argv) == 0 and main(argv) == 0
    assert "its report was reused" in capsys.readouterr().out  # an unchanged rerun is reused

    time.sleep(0.01)
    build_tiny_model(base, seed=7)  # the base retrained in place; the adapter folder untouched
    assert model_key(ScoringConfig(model=str(adapter))) != key
    assert main(argv) == 0
    assert "its report was reused" not in capsys.readouterr().out
