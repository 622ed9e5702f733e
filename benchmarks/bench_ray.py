"""Conversations per second on Ray workers: in one process, then 1 and N Ray workers, one run.

The same conversations (the first chosen and rejected replies of HH-RLHF helpful-base test
pairs, from shared/data) and the same 120 bundled follow-ups for every setting. Each Ray worker
gets one CPU and OMP_NUM_THREADS=1 (Ray sets it for a 1-CPU actor); the in-process baseline
runs with this process's torch threads (set OMP_NUM_THREADS=1 for a like-for-like baseline).
Model loading is not timed: the clock starts once every worker has its model, and stops when
the last shard is back at the driver. It prints the largest FLR difference between settings
(0 when sharding changes nothing).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ray.py                  # embedded, 1 vs 2
    .venv/bin/python benchmarks/bench_ray.py --workers 8 --gpus-per-worker 1 --model M --ray auto

Needs Ray: `pip install -r requirements-ray.txt`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.distributed.scoring import ClusterScorer  # noqa: E402
from core.distributed.session import ClusterSession, require_ray  # noqa: E402
from core.distributed.settings import ClusterSettings  # noqa: E402
from core.distributed.workers import scorer_factory  # noqa: E402
from core.engine.config import ScoringConfig  # noqa: E402
from core.engine.followups import default_followups  # noqa: E402
from core.evaluation.detect import detect_benchmarks  # noqa: E402
from core.names import COL_CONVERSATION  # noqa: E402

HH = ROOT.parent / "shared" / "data" / "hh_rlhf" / "helpful-base-test.jsonl.gz"


def conversations(n: int) -> list:
    with gzip.open(HH, "rt") as fh:
        lines = [next(fh) for _ in range((n + 1) // 2)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "helpful.jsonl"
        path.write_text("".join(lines))
        (bench,) = detect_benchmarks([path])
        return [c for c in bench.frame[COL_CONVERSATION] if c is not None][:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="N: the second Ray run's workers")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--ray", default="local", help="local, auto or ray://host:port")
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=4,
                        help="conversations per shard, rounded up to a multiple of --pack (default 4)")
    parser.add_argument("--pack", type=int, default=4,
                        help="conversations per score_many call, in every setting (evaluation's chunk)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-process run")
    args = parser.parse_args()

    config = ScoringConfig(model=args.model, device=args.device, dtype=args.dtype)
    followups = default_followups()
    convs = conversations(args.conversations)
    shard = -(-args.shard_size // args.pack) * args.pack
    ray = require_ray()
    if args.ray == "local":
        ray.init(num_cpus=max(args.workers, 1), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=args.ray, include_dashboard=False, log_to_driver=False)
    print(f"{len(convs)} conversations x {len(followups.utterances())} follow-ups, model {args.model}, "
          f"device {args.device}, shard size {shard}, load {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    rows, reference, differences = [], None, []
    if not args.no_baseline:
        from core.engine.scorer import load_scorer

        scorer = load_scorer(config)
        start = time.perf_counter()
        reference = [s.flr for i in range(0, len(convs), args.pack)
                     for s in scorer.score_many(convs[i:i + args.pack], followups)]
        rows.append(("in process (no Ray)", time.perf_counter() - start))
        del scorer
    for workers in dict.fromkeys((1, args.workers)):
        settings = ClusterSettings(address=args.ray, workers=workers, gpus_per_worker=args.gpus_per_worker,
                                   shard_size=shard)
        with ClusterSession(settings) as session:
            scorer = ClusterScorer(session, config, scorer_factory(config))  # returns once all have loaded
            start = time.perf_counter()
            flrs = [s.flr for s in scorer.score_many(convs, followups, pack=args.pack)]
            rows.append((f"Ray, {workers} worker(s)", time.perf_counter() - start))
        if reference is not None:
            differences.append(max(abs(a - b) for a, b in zip(flrs, reference)))
        reference = reference or flrs
    ray.shutdown()
    print("\n| setting | seconds | conversations / s | vs Ray 1 worker |\n|---|---|---|---|")
    one = dict(rows)["Ray, 1 worker(s)"]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {len(convs) / seconds:.3f} | {one / seconds:.2f}x |")
    print(f"\nlargest FLR difference from the first setting: {max(differences, default=0.0):.3g}; "
          f"load {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
