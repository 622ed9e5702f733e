"""Scoring, evaluation and mining on a local Ray instance with 2 CPU workers.

The same numbers as one process (score, evaluate, mine on the tiny model); a run interrupted
after some shards resumes without rescoring them and ends with the same report; a worker whose
process dies mid-shard is restarted and the shard retried; a shard whose input breaks the
scorer is reported with its rows while the rest goes on.
"""

from __future__ import annotations

import gzip
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from core.cli.main import main
from core.distributed.mining import ClusterMiner
from core.distributed.scoring import ClusterScorer
from core.distributed.session import ClusterSession
from core.distributed.settings import ClusterSettings
from core.engine.config import ScoringConfig
from core.engine.conversation import from_utterances
from core.engine.followups import followups_from_mapping
from core.errors import ClusterError, ConfigError
from core.evaluation.detect import detect_benchmarks
from core.evaluation.runner import EvaluationOptions, run_evaluation
from core.evaluation.score_cache import ScoreCache
from tests.distributed.ray_fakes import DyingFactory, FakeFactory
from tests.fakes import FakeScorer

CONFIG = ScoringConfig(model="fake")
FOLLOWUPS = followups_from_mapping({
    "relevance": {"positive": ["Thanks, on point.", "Exactly."], "negative": ["Off topic.", "Huh?"]},
    "correctness": {"positive": ["Right!"], "negative": ["That is wrong."]},
})
TWO_WORKERS = ClusterSettings(address="local", workers=2, shard_size=4)


@contextmanager
def worker_threads() -> Iterator[None]:
    """Run the single-process reference with one torch thread, as each worker runs: a Ray task of
    `num_cpus=1` gets OMP_NUM_THREADS=1. The CPU's matrix library may split a small multiply
    differently over 2 threads than over 1 (seen on an AVX512 EPYC: 5-row products differed by
    2e-6), so "to the last bit" holds between processes of the same thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_set(tmp_path: Path) -> Path:
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"a": {"positive": ["Thanks!", "Great."], "negative": ["No."]},
                                "b": {"positive": ["Nice."], "negative": ["Wrong.", "Huh?"]}}))
    return path


def hh_slice(shared_data: Path, tmp_path: Path, n: int) -> Path:
    with gzip.open(shared_data / "hh_rlhf" / "helpful-base-test.jsonl.gz", "rt") as fh:
        lines = [next(fh) for _ in range(n)]
    path = tmp_path / "helpful.jsonl"
    path.write_text("".join(lines))
    return path


def evaluate_on(factory: Any, benchmarks: list, cache: Path | None, progress: Any = None) -> Any:
    return run_evaluation(benchmarks, scorer_factory=factory, config=CONFIG, followups=FOLLOWUPS,
                          cache_path=cache, options=EvaluationOptions(bootstrap_samples=200), progress=progress)


# ----------------------------------------------------------------------------- without Ray

def test_ray_flag_without_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    convs = tmp_path / "c.jsonl"
    convs.write_text('["Hi", "Hello!"]\n')
    for argv in (["score", "--input", str(convs), "--output", str(tmp_path / "o.jsonl")],
                 ["evaluate", str(convs), "--report", str(tmp_path / "r.json")],
                 ["mine", "--prompts", str(convs), "--output-dir", str(tmp_path / "m")]):
        assert main([*argv, "--ray", "local"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pip install -r requirements-ray.txt" in err


def test_cluster_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="'local', 'auto' or 'ray://host:port'"):
        ClusterSettings(address="localhost:6379")
    with pytest.raises(ConfigError, match="--workers"):
        ClusterSettings(workers=0)
    assert ClusterSettings(gpus_per_worker=1).actor_options()["num_gpus"] == 1


# ----------------------------------------------------------------------------- the tiny model

def test_score_on_two_workers_matches_one_process_and_reruns_from_the_cache(
        ray_instance: Any, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FLR_CACHE_DIR", str(tmp_path / "cache"))
    convs = tmp_path / "convs.jsonl"
    convs.write_text("".join(json.dumps([f"Question {i}?", f"Answer number {i}" + "!" * i]) + "\n"
                             for i in range(7)))
    common = ["--input", str(convs), "--model", str(tiny_model_dir), "--followups", str(write_set(tmp_path)),
              "--device", "cpu"]
    with worker_threads():
        assert main(["score", *common, "--output", str(tmp_path / "one.jsonl")]) == 0
    ray_args = ["--ray", "local", "--workers", "2", "--shard-size", "3"]
    assert main(["score", *common, "--output", str(tmp_path / "two.jsonl"), *ray_args]) == 0
    assert "7 scored on 2 Ray worker(s), 0 from the score cache" in capsys.readouterr().err
    one = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["conversation"] for r in two] == [r["conversation"] for r in one]  # input order
    assert two == one  # the same numbers, to the last bit
    assert main(["score", *common, "--output", str(tmp_path / "again.jsonl"), *ray_args]) == 0
    assert "0 scored on 2 Ray worker(s), 7 from the score cache" in capsys.readouterr().err
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()


def test_evaluate_on_two_workers_gives_the_single_process_report(
        ray_instance: Any, tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    path = hh_slice(shared_data, tmp_path, n=5)
    common = [str(path), "--model", str(tiny_model_dir), "--followups", str(write_set(tmp_path)),
              "--device", "cpu", "--bootstrap", "200"]
    with worker_threads():
        assert main(["evaluate", *common, "--no-cache", "--report", str(tmp_path / "one.json")]) == 0
    assert main(["evaluate", *common, "--cache", str(tmp_path / "s.sqlite"), "--report", str(tmp_path / "two.json"),
                 "--ray", "local", "--workers", "2", "--shard-size", "2"]) == 0
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["benchmarks"] == one["benchmarks"]
    assert ScoreCache(tmp_path / "s.sqlite").count() == 10  # streamed into the score cache


def test_mine_on_two_workers_gives_the_single_process_samples(
        ray_instance: Any, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLR_CACHE_DIR", str(tmp_path / "cache"))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"question": f"Question {i}?"}) for i in range(5)))
    common = ["--prompts", str(prompts), "--policy", str(tiny_model_dir), "--scorer", str(tiny_model_dir),
              "--followups", str(write_set(tmp_path)), "--device", "cpu", "--samples", "2",
              "--max-new-tokens", "6", "--generation-batch-size", "2", "--no-progress"]
    with worker_threads():
        assert main(["mine", *common, "--output-dir", str(tmp_path / "one")]) == 0
    assert main(["mine", *common, "--output-dir", str(tmp_path / "two"),
                 "--ray", "local", "--workers", "2"]) == 0
    one = (tmp_path / "one" / "flr_samples.jsonl").read_text()
    assert one and (tmp_path / "two" / "flr_samples.jsonl").read_text() == one
    assert len(one.splitlines()) == 10

    def no_workers(*args: object) -> None:
        raise AssertionError("an identical rerun started Ray workers")

    monkeypatch.setattr(ClusterMiner, "__init__", no_workers)
    assert main(["mine", *common, "--output-dir", str(tmp_path / "two"), "--ray", "local"]) == 0
    assert (tmp_path / "two" / "flr_samples.jsonl").read_text() == one


# ----------------------------------------------------------------------------- failures (fake scorer)

def test_a_run_interrupted_after_some_shards_resumes_to_the_same_report(
        ray_instance: Any, shared_data: Path, tmp_path: Path) -> None:
    benchmarks = detect_benchmarks([hh_slice(shared_data, tmp_path, n=6)])
    clean = evaluate_on(lambda: FakeScorer(CONFIG, name="ray-fake"), benchmarks, None)
    cache = tmp_path / "scores.sqlite"

    def interrupt(done: int, total: int, message: str) -> None:
        if done >= 3:  # the first shard is in the cache: the user presses Ctrl-C
            raise KeyboardInterrupt

    with ClusterSession(TWO_WORKERS) as session:
        with pytest.raises(KeyboardInterrupt):
            evaluate_on(lambda: ClusterScorer(session, CONFIG, FakeFactory()), benchmarks, cache, interrupt)
    cached = ScoreCache(cache).count()
    assert 3 <= cached < 12
    with ClusterSession(TWO_WORKERS) as session:
        resumed = evaluate_on(lambda: ClusterScorer(session, CONFIG, FakeFactory()), benchmarks, cache)
    assert resumed.stats["from_cache"] == cached and resumed.stats["scored"] == 12 - cached
    assert resumed.to_dict()["benchmarks"] == clean.to_dict()["benchmarks"]


def test_a_worker_that_dies_mid_shard_is_restarted_and_the_run_completes(
        ray_instance: Any, tmp_path: Path) -> None:
    conversations = [from_utterances([f"q{i}", f"reply {i}"]) for i in range(9)]
    marker = tmp_path / "died-once"
    with ClusterSession(TWO_WORKERS) as session:
        scores = ClusterScorer(session, CONFIG, DyingFactory(str(marker))).score_many(conversations, FOLLOWUPS)
    assert marker.exists()  # a worker process did exit in the middle of a shard
    expected = FakeScorer(CONFIG, name="ray-fake").score_many(conversations, FOLLOWUPS)
    assert [s.flr for s in scores] == [s.flr for s in expected]


def test_a_shard_that_breaks_the_scorer_is_reported_with_its_rows_and_the_rest_goes_on(
        ray_instance: Any, tmp_path: Path) -> None:
    rows = [{"conversation": [f"q{i}", "BROKEN reply" if i == 4 else f"answer {i}"], "score": float(i)}
            for i in range(9)]
    path = tmp_path / "rated.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cache = tmp_path / "scores.sqlite"
    with ClusterSession(TWO_WORKERS) as session:
        report = evaluate_on(lambda: ClusterScorer(session, CONFIG, FakeFactory(broken="BROKEN")),
                             detect_benchmarks([path]), cache)
    (b,) = report.to_dict()["benchmarks"]
    assert b["n"] == 5  # the shard of rows 4-7 (shard size 4) failed; the other five are judged
    assert {s["row"] for s in b["skipped"]} == {4, 5, 6, 7}
    assert all("cannot tokenize" in s["reason"] for s in b["skipped"])
    assert ScoreCache(cache).count() == 5  # the failed shard is not cached: a rerun tries it again


def test_losing_every_worker_stops_with_a_clear_error(ray_instance: Any, tmp_path: Path) -> None:
    settings = ClusterSettings(workers=1, shard_size=3, max_restarts=0, max_task_retries=0)
    conversations = [from_utterances([f"q{i}", f"reply {i}"]) for i in range(3)]
    with ClusterSession(settings) as session:
        scorer = ClusterScorer(session, CONFIG, DyingFactory(str(tmp_path / "marker")))
        with pytest.raises(ClusterError, match="every Ray worker was lost"):
            scorer.score_many(conversations, FOLLOWUPS)
