"""One process that serves the app in hosted mode with the tiny model and sends it the largest
`/score` request its caps allow, printing what that cost as one JSON line.

Run by `tests/hostile/test_request_cost.py` in a subprocess, so the resident memory measured is
that of a fresh app process alone: `python -m tests.hostile.request_cost_probe MODEL_DIR WORK_DIR`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path

WORDS = ("the capital of France is Paris and the weather today is sunny with a light breeze "
         "could you explain that again in simpler words please").split()


def text(chars: int, seed: int) -> str:
    pick = random.Random(seed)
    out: list[str] = []
    while sum(map(len, out)) + len(out) < chars:
        out.append(pick.choice(WORDS))
    return " ".join(out)[:chars].strip()


def rss_mb() -> float:
    return _status("VmRSS")


def peak_mb() -> float:
    return _status("VmHWM")


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def largest_request(limits, context: int) -> tuple[str, str, list[str]]:
    """(pasted conversation, follow-up set JSON, categories): four utterances and 500
    follow-ups, as large as the app's caps let them be for a model of `context` tokens."""
    # (getattr: the same request can be sent to a checkout from before these caps existed)
    chars = min(limits.conversation_chars, getattr(limits, "context_chars", 32) * context) - 64
    turn = min(limits.turn_chars, chars // 4)
    paste = json.dumps([text(turn, i) for i in range(4)])
    count = limits.followups
    each = min(limits.followup_chars, getattr(limits, "followup_set_chars", 40_000) // count)
    followups = [f"{i} " + text(each - len(f"{i} "), 100 + i) for i in range(count)]
    half = count // 2
    chosen = {"relevance": {"positive": followups[:half], "negative": followups[half:]}}
    return paste, json.dumps(chosen), ["relevance"]


def main(model_dir: str, work_dir: str) -> None:
    os.environ.update(SPACE_ID="flr/hostile-probe", FLR_MODEL=model_dir, FLR_DEVICE="cpu")
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.ui.test_app_client import free_port
    from ui.gradio_app import build_app, launch_options
    from ui.limits import app_limits
    from ui.settings import AppSettings

    settings = dataclasses.replace(AppSettings.from_env(), work_dir=Path(work_dir), server_port=free_port())
    assert settings.hosted and settings.allowed_models == (model_dir,)
    demo = build_app(settings)
    demo.launch(**launch_options(settings, prevent_thread_lock=True, quiet=True))
    client = Client(f"http://127.0.0.1:{settings.server_port}/", verbose=False)

    def score(paste: str, followups: str, categories: list[str]):
        return client.predict(paste, followups, categories, model_dir, "base", "mean", api_name="/score")

    from ui.tabs.score import default_followups_json

    score(json.dumps(["What is the capital of France?", "Paris."]), default_followups_json(),
          ["relevance"])  # loads the model: what stays resident from here on is its price
    from transformers import AutoConfig

    context = AutoConfig.from_pretrained(model_dir).max_position_embeddings
    paste, followups, categories = largest_request(app_limits(), context)
    time.sleep(0.5)
    before = rss_mb()
    peak_reset = reset_peak()
    start = time.perf_counter()
    record = score(paste, followups, categories)[4]
    seconds = time.perf_counter() - start
    peak = peak_mb()
    time.sleep(0.5)
    after = rss_mb()
    # the reproduction of the review: 196,016 characters in 4 utterances, 500 follow-ups of 150
    repro = json.dumps([text(49_004, 10 + i) for i in range(4)])
    repro_followups = json.dumps({"relevance": {"positive": [text(150, i) for i in range(250)],
                                              "negative": [text(150, 250 + i) for i in range(250)]}})
    refusals = []
    start = time.perf_counter()
    for chosen in (repro_followups, default_followups_json()):
        try:
            score(repro, chosen, ["relevance"])
            refusals.append(None)
        except AppError as err:
            refusals.append(str(err))
    print("request cost: " + json.dumps({
        "seconds": seconds, "rss_before_mb": before, "rss_after_mb": after, "peak_mb": peak,
        "peak_reset": peak_reset, "conversation_chars": sum(map(len, json.loads(paste))),
        "followups": len(json.loads(followups)["relevance"]["positive"]) * 2,
        "followup_chars": sum(map(len, json.loads(followups)["relevance"]["positive"]
                                  + json.loads(followups)["relevance"]["negative"])),
        "flr": record.get("flr"), "repro_seconds": time.perf_counter() - start, "repro_refusals": refusals,
    }))
    sys.stdout.flush()
    demo.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
