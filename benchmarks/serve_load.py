"""Load on `flr serve`: conversations per second and latency with 1, 4 and 16 concurrent clients.

One process loads the model once and serves it twice on 127.0.0.1 (a free port each time), with
the same app and worker: first one request at a time (`max_batch=1`, no waiting: what a server
without dynamic batching does), then batched (`max_batch=64`, `--wait-ms` of gathering). For each
number of clients, every client sends its share of `--requests` OpenRLHF `/get_reward` requests
(one conversation each: a ChatML query rendered with the model's own template) one after the
other. Prints conversations per second, the speed-up of batching over one-at-a-time serving in
this same run, p50/p95 latency, and checks that both servers returned the same rewards (1e-4).
Everything is bounded (a fixed number of requests) and stops by itself.

    .venv/bin/python benchmarks/serve_load.py                    # embedded model, CPU
    .venv/bin/python benchmarks/serve_load.py --requests 64 --model M --device cuda
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn  # noqa: E402

from core.engine.config import ScoringConfig  # noqa: E402
from core.engine.followups import default_followups  # noqa: E402
from core.engine.scorer import load_scorer  # noqa: E402
from core.serving.server import ServeConfig, create_app  # noqa: E402
from core.serving.reward import post_json  # noqa: E402

CLIENTS = (1, 4, 16)
TOPICS = ["the water cycle", "binary search", "photosynthesis", "the French revolution", "compound interest",
          "how vaccines work", "the rules of chess", "recursion", "plate tectonics", "a haiku about rain",
          "TCP handshakes", "baking bread", "black holes", "the Pythagorean theorem", "jazz history",
          "sorting algorithms"]


def queries(tokenizer, n: int) -> list[str]:
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        messages = [{"role": "user", "content": f"Can you explain {topic} briefly? ({i})"}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out.append(prompt + f"Sure. In short, {topic} is a topic with a few key ideas; here they are."
                   + "<|im_end|>")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_level(url: str, items: list[str], clients: int) -> tuple[float, list[float], dict[int, float]]:
    """(seconds, latencies, rewards by item) with `clients` threads sharing the items."""
    latencies: list[float] = []
    rewards: dict[int, float] = {}

    def client(k: int) -> None:
        for i in range(k, len(items), clients):
            start = time.perf_counter()
            answer = post_json(f"{url}/get_reward", {"query": [items[i]]}, timeout=600)
            latencies.append(time.perf_counter() - start)
            rewards[i] = answer["rewards"][0]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return time.perf_counter() - start, latencies, rewards


def serve(scorer, followups, config: ServeConfig, items: list[str]) -> dict[int, tuple[float, list[float], dict]]:
    app = create_app(scorer, followups, config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{config.port}"
    try:
        post_json(f"{url}/get_reward", {"query": items[:1]})  # warm-up
        return {clients: run_level(url, items, clients) for clients in CLIENTS}
    finally:
        server.should_exit = True
        thread.join(30)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--requests", type=int, default=32, help="requests per client level (default 32)")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="batching wait of the batched server")
    args = parser.parse_args()
    scorer = load_scorer(ScoringConfig(model=args.model, device=args.device))
    followups = default_followups()
    items = queries(scorer.loaded.tokenizer, args.requests)
    print(f"model {args.model} on {args.device}, {len(followups.utterances())} follow-ups, "
          f"{args.requests} requests of one conversation per level; load average {os.getloadavg()[0]:.2f}")
    single = serve(scorer, followups, ServeConfig(port=free_port(), max_batch=1, max_batch_wait_ms=0), items)
    batched = serve(scorer, followups, ServeConfig(port=free_port(), max_batch=64,
                                                   max_batch_wait_ms=args.wait_ms), items)
    print(f"{'clients':>7} {'server':>14} {'conv/s':>8} {'p50 s':>8} {'p95 s':>8} {'speed-up':>9}")
    worst = 0.0
    for clients in CLIENTS:
        for name, results in (("one at a time", single), ("batched", batched)):
            seconds, latencies, _ = results[clients]
            speed = ""
            if name == "batched":
                speed = f"{single[clients][0] / seconds:8.2f}x"
            print(f"{clients:>7} {name:>14} {len(latencies) / seconds:8.2f} {percentile(latencies, 50):8.3f} "
                  f"{percentile(latencies, 95):8.3f} {speed:>9}")
        a, b = single[clients][2], batched[clients][2]
        worst = max(worst, max(abs(a[i] - b[i]) for i in a))
    print(f"largest reward difference between the two servers: {worst:.2e}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
