"""Trainer-shaped load on `flr serve`: OpenRLHF's, verl's and TRL's default clients, one after the
other, against `flr serve` started as its own process with its default settings and a fresh HOME.

Each client behaves as the trainer's own does (read in their sources; see the examples' docstrings
for the commits):
- OpenRLHF (`openrlhf/utils/agent.py` `_fetch_rewards_via_http`): every sample of a rollout its own
  POST to `/get_reward` with `{"query", "prompts", "labels"}`, all at once, a new session per try,
  a 180 s total timeout, 5 tries 1 s apart whatever the answer (no Retry-After). OpenRLHF uses
  aiohttp; this uses httpx with the same per-try session, total deadline and retry schedule.
- verl (reward loop, `compute_score_batch`): one concurrent call per sample of the shipped
  `examples/verl_flr_reward.py` `compute_score`, with `extra_info` as verl's agent loop fills it.
- TRL (GRPO): `FLRReward(url=...)`, pickled first (async GRPO sends it to another process), called
  once per step with a whole group of completions, from a few processes' worth of threads at once.

Every reward must come back, and equal `flr score` on the same conversation (1e-4); the OpenRLHF
answers' `extra_logs` must carry each category's FLR. Prints, per client, conversations per second
and p50/p95 latency. Bounded (a fixed number of requests; the server is stopped at the end),
loopback only. A small follow-up set (two categories, one follow-up each way) keeps it short;
`--followups` takes another.

    .venv/bin/python benchmarks/serve_trainers.py                  # full size: 1024 OpenRLHF requests
    .venv/bin/python benchmarks/serve_trainers.py --openrlhf 64 --verl 16 --trl-steps 1
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from core.serving.reward import FLRReward  # noqa: E402

SMALL_FOLLOWUPS = {
    "relevance": {"positive": ["Thanks, that answers my question."], "negative": ["That is not what I asked."]},
    "correctness": {"positive": ["Great, that is right."], "negative": ["Hmm, that is wrong."]},
}
TOPICS = ["the water cycle", "binary search", "photosynthesis", "compound interest", "recursion",
          "plate tectonics", "black holes", "sorting algorithms", "how vaccines work", "baking bread",
          "TCP handshakes", "the rules of chess"]
OPENRLHF_TRIES, OPENRLHF_TIMEOUT_S, OPENRLHF_PAUSE_S = 5, 180.0, 1.0


def conversations(n: int) -> list[list[str]]:
    """`n` distinct short question/answer pairs."""
    return [[f"Can you explain {TOPICS[i % len(TOPICS)]} in one sentence? ({i})",
             f"Sure: {TOPICS[i % len(TOPICS)]} comes down to a few simple ideas, number {i}."] for i in range(n)]


@dataclass
class ClientRun:
    """One client's results: rewards by request, per-category values, latencies, wall time."""

    name: str
    rewards: list[float | None] = field(default_factory=list)
    categories: list[dict[str, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FlrServe:
    """`flr serve` in its own process: defaults, a fresh HOME, loopback, a free port."""

    def __init__(self, followups: Path, home: Path, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The `flr` console script runs `core.cli.main.main`; calling it with this interpreter and
        # this checkout first on the path serves this checkout's code.
        self.argv = [sys.executable, "-c", "import sys; from core.cli.main import main; sys.exit(main())",
                     "serve", "--port", str(self.port), "--followups", str(followups), *(extra or [])]
        self.env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
        self.env.pop("FLR_SERVE_TOKEN", None)
        self.log = home / "flr-serve.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "FlrServe":
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log_file,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flr serve exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"flr serve did not answer /health within 180 s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_file.close()


def flr_score(items: list[list[str]], followups: Path, home: Path) -> list[dict[str, Any]]:
    """What `flr score` writes for `items` (its own process, same defaults as the server)."""
    (home / "score-in.json").write_text(json.dumps(items))
    argv = [sys.executable, "-c", "import sys; from core.cli.main import main; sys.exit(main())", "score",
            "--input", str(home / "score-in.json"), "--output", str(home / "score-out.jsonl"),
            "--followups", str(followups)]
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"flr score failed ({done.returncode}): {done.stderr[-2000:]}")
    return [json.loads(line) for line in (home / "score-out.jsonl").read_text().splitlines()]


def policy_tokenizer() -> Any:
    """The embedded model's tokenizer: the policy whose rollouts OpenRLHF decodes."""
    from core.engine.config import ScoringConfig
    from core.engine.scorer import load_scorer

    return load_scorer(ScoringConfig(device="cpu")).loaded.tokenizer


def openrlhf_sample(tokenizer: Any, utterances: list[str]) -> tuple[str, str]:
    """(query, prompt) as OpenRLHF builds them: the prompt rendered by the policy's chat template,
    the query that prompt's tokens and the response's decoded with special tokens kept."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": u} for i, u in enumerate(utterances[:-1])]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = (tokenizer(prompt, add_special_tokens=False)["input_ids"]
           + tokenizer(utterances[-1] + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
    return tokenizer.decode(ids, skip_special_tokens=False), prompt


async def _openrlhf_post(url: str, data: dict[str, Any]) -> dict[str, Any]:
    """OpenRLHF's `_post_request`: a new session per try, 180 s in all, 5 tries 1 s apart."""
    for _ in range(OPENRLHF_TRIES):
        try:
            async with httpx.AsyncClient(timeout=None) as session:
                response = await asyncio.wait_for(session.post(url, json=data), OPENRLHF_TIMEOUT_S)
                response.raise_for_status()
                return response.json()
        except Exception:  # noqa: BLE001 - OpenRLHF logs any error and tries again
            pass
        await asyncio.sleep(OPENRLHF_PAUSE_S)
    raise RuntimeError(f"Request error for {OPENRLHF_TRIES} times")


def run_openrlhf(url: str, items: list[list[str]], n: int) -> ClientRun:
    run = ClientRun("OpenRLHF", [None] * n, [{}] * n)
    tokenizer = policy_tokenizer()
    samples = [openrlhf_sample(tokenizer, u) for u in items]

    async def one(i: int) -> None:
        query, prompt = samples[i % len(items)]
        start = time.perf_counter()
        try:
            answer = await _openrlhf_post(f"{url}/get_reward", {"query": [query], "prompts": [prompt],
                                                                 "labels": [None]})
        except RuntimeError as err:
            run.errors.append(f"request {i}: {err}")
            return
        run.latencies.append(time.perf_counter() - start)
        run.rewards[i] = answer["rewards"][0]
        run.categories[i] = {k.removeprefix("flr_"): v[0] for k, v in answer.get("extra_logs", {}).items()}

    async def burst() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    start = time.perf_counter()
    asyncio.run(burst())
    run.seconds = time.perf_counter() - start
    return run


def load_verl_function() -> Any:
    spec = importlib.util.spec_from_file_location("custom_module", ROOT / "examples" / "verl_flr_reward.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_score


def run_verl(url: str, items: list[list[str]], n: int) -> ClientRun:
    compute_score = load_verl_function()
    run = ClientRun("verl", [None] * n, [{}] * n)

    async def one(i: int) -> None:
        utterances = items[i % len(items)]
        messages = [{"role": "user" if k % 2 == 0 else "assistant", "content": u}
                    for k, u in enumerate(utterances[:-1])]
        # extra_info as verl's naive reward-loop manager passes it: the row's own, the agent loop's
        # extra fields (raw_prompt), num_turns and rollout_reward_scores.
        extra_info = {"split": "train", "index": i, "raw_prompt": messages, "num_turns": 2,
                      "rollout_reward_scores": {}}
        start = time.perf_counter()
        try:
            result = await compute_score(data_source="bench", solution_str=utterances[-1], ground_truth=None,
                                         extra_info=extra_info, flr_url=url)
        except Exception as err:  # noqa: BLE001 - counted, and the run fails on it
            run.errors.append(f"sample {i}: {err}")
            return
        run.latencies.append(time.perf_counter() - start)
        run.rewards[i] = result["score"]
        run.categories[i] = {k.removeprefix("flr_"): v for k, v in result.items() if k.startswith("flr_")}

    async def batch() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    start = time.perf_counter()
    asyncio.run(batch())
    run.seconds = time.perf_counter() - start
    return run


def run_trl(url: str, items: list[list[str]], processes: int, steps: int, group: int) -> ClientRun:
    reward = pickle.loads(pickle.dumps(FLRReward(url=url)))  # async GRPO's hand-over
    n = processes * steps * group
    run = ClientRun("TRL", [None] * n, [{}] * n)
    lock = threading.Lock()

    def process(p: int) -> None:
        for s in range(steps):
            first = (p * steps + s) * group
            picked = [items[(first + k) % len(items)] for k in range(group)]
            logged: dict[str, float] = {}
            start = time.perf_counter()
            try:
                got = reward(prompts=[u[0] for u in picked], completions=[u[1] for u in picked],
                             completion_ids=[[0]] * group, log_metric=logged.__setitem__)
            except Exception as err:  # noqa: BLE001 - counted, and the run fails on it
                with lock:
                    run.errors.append(f"process {p} step {s}: {err}")
                continue
            with lock:
                run.latencies.append(time.perf_counter() - start)
                run.rewards[first:first + group] = got

    start = time.perf_counter()
    with ThreadPoolExecutor(processes) as pool:
        list(pool.map(process, range(processes)))
    run.seconds = time.perf_counter() - start
    return run


def check(run: ClientRun, items: list[list[str]], expected: list[dict[str, Any]], tol: float = 1e-4) -> list[str]:
    """Problems with a run: errors, missing rewards, rewards or categories unlike `flr score`'s."""
    problems = list(run.errors)
    for i, got in enumerate(run.rewards):
        want = expected[i % len(items)]
        if got is None:
            problems.append(f"{run.name} request {i}: no reward")
        elif abs(got - want["flr"]) > tol:
            problems.append(f"{run.name} request {i}: reward {got:.6f}, flr score {want['flr']:.6f}")
        for name, value in run.categories[i].items():
            if abs(value - want["categories"][name]["flr"]) > tol:
                problems.append(f"{run.name} request {i}: {name} {value:.6f}, flr score "
                                f"{want['categories'][name]['flr']:.6f}")
    if run.name == "OpenRLHF" and not all(set(c) == set(expected[0]["categories"]) for c in run.categories):
        problems.append("OpenRLHF: extra_logs lack a category")
    return problems


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run_all(openrlhf: int, verl: int, trl_processes: int, trl_steps: int, trl_group: int, distinct: int,
            followups: Path | None = None, workdir: Path | None = None) -> tuple[list[ClientRun], list[str]]:
    """Start `flr serve`, run the three clients against it, compare with `flr score`."""
    home = Path(workdir or tempfile.mkdtemp(prefix="flr-serve-trainers-"))
    home.mkdir(parents=True, exist_ok=True)
    if followups is None:
        followups = home / "followups.json"
        followups.write_text(json.dumps(SMALL_FOLLOWUPS))
    items = conversations(distinct)
    expected = flr_score(items, followups, home)
    with FlrServe(followups, home) as server:
        runs = [run_openrlhf(server.url, items, openrlhf), run_verl(server.url, items, verl),
                run_trl(server.url, items, trl_processes, trl_steps, trl_group)]
    return runs, [p for run in runs for p in check(run, items, expected)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--openrlhf", type=int, default=1024, help="OpenRLHF requests sent at once (1024)")
    parser.add_argument("--verl", type=int, default=256, help="verl samples scored concurrently (256)")
    parser.add_argument("--trl-processes", type=int, default=4, help="TRL processes calling at once (4)")
    parser.add_argument("--trl-steps", type=int, default=4, help="reward calls per TRL process (4)")
    parser.add_argument("--trl-group", type=int, default=16, help="completions per TRL call (16)")
    parser.add_argument("--distinct", type=int, default=32, help="distinct conversations cycled through (32)")
    parser.add_argument("--followups", type=Path, help="follow-up set (default: two categories, one each way)")
    args = parser.parse_args(argv)
    runs, problems = run_all(args.openrlhf, args.verl, args.trl_processes, args.trl_steps, args.trl_group,
                             args.distinct, args.followups)
    print(f"flr serve (defaults, embedded model), {args.distinct} distinct conversations; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'client':>9} {'convs':>6} {'calls':>6} {'conv/s':>8} {'p50 s':>8} {'p95 s':>8}")
    for run in runs:
        print(f"{run.name:>9} {len(run.rewards):>6} {len(run.latencies):>6} {len(run.rewards) / run.seconds:8.2f} "
              f"{percentile(run.latencies, 50):8.3f} {percentile(run.latencies, 95):8.3f}")
    for problem in problems[:20]:
        print("PROBLEM:", problem)
    print("every reward returned and equal to flr score" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
