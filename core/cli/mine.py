"""`flr mine`: sample replies, score them with FLR, export LLaMA-Factory datasets.

With `--feedback-triples FILE` instead of `--prompts`, it writes SFT data for a feedback-mode
scorer from (question, answer, feedback) triples (`core.mining.feedback_data`) and samples nothing.

Both models default to the embedded SmolLM2-135M-Instruct (the scorer follows `FLR_MODEL` when
that is set). When the policy and the scorer are the same model, it is loaded once. A rerun
with the same settings and output folder resumes from `DIR/cache/`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from typing import Any

from core.cli.errors import user_errors
from core.cli.flags import (add_ray_arguments, add_scoring_arguments, check_row_limit, cluster_from_args,
                            config_from_args, row_limit)
from core.engine.config import EMBEDDED_MODEL
from core.mining.mining import MiningConfig

log = logging.getLogger(__name__)

_DEFAULTS = MiningConfig()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `mine` subcommand; its handler is `run` (also set as `func`)."""
    parser = subparsers.add_parser(
        "mine", help="sample replies from a policy model, score them with FLR, export DPO/KTO/SFT data",
        description="Sample K replies per prompt from a policy model, score each with FLR, and write "
                    "LLaMA-Factory datasets (DPO pairs, KTO, SFT; alpaca and sharegpt) with "
                    "dataset_info.json, a JSONL of every sample and a summary.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", metavar="FILE",
                        help="JSON / JSONL / CSV of prompts (strings, {prompt|question|instruction}, "
                             "MT-Bench {turns}, or conversations ending with the user's turn)")
    source.add_argument("--feedback-triples", metavar="FILE",
                        help="instead of mining: JSON / JSONL / CSV of {question, answer, feedback} "
                             "to turn into SFT data for a feedback-mode scorer")
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="where the datasets, dataset_info.json, summary and resume cache go")
    parser.add_argument("--policy", default=EMBEDDED_MODEL, metavar="M",
                        help="model that writes the replies (default: embedded)")
    parser.add_argument("--samples", type=int, default=_DEFAULTS.samples, metavar="K",
                        help=f"replies per prompt (default {_DEFAULTS.samples})")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed, metavar="S",
                        help=f"sampling seed; same seed, same samples (default {_DEFAULTS.seed})")
    parser.add_argument("--max-new-tokens", type=int, default=_DEFAULTS.max_new_tokens, metavar="N",
                        help=f"reply length cap in tokens (default {_DEFAULTS.max_new_tokens})")
    parser.add_argument("--temperature", type=float, default=_DEFAULTS.temperature, metavar="T",
                        help=f"sampling temperature, 0 = greedy (default {_DEFAULTS.temperature})")
    parser.add_argument("--top-p", type=float, default=_DEFAULTS.top_p, metavar="P",
                        help=f"nucleus sampling mass (default {_DEFAULTS.top_p})")
    parser.add_argument("--generation-batch-size", type=int, default=_DEFAULTS.batch_size, metavar="B",
                        help=f"prompts per generation batch; samples do not depend on it "
                             f"(default {_DEFAULTS.batch_size})")
    parser.add_argument("--min-margin", type=float, default=0.0, metavar="X",
                        help="DPO: keep a prompt only if best minus worst FLR is at least X (default 0)")
    parser.add_argument("--kto-threshold", type=float, default=None, metavar="X",
                        help="KTO: desirable iff FLR >= X (default: above the prompt's median FLR)")
    parser.add_argument("--finished-only", action="store_true",
                        help="leave replies cut at --max-new-tokens out of the DPO / KTO / SFT data")
    parser.add_argument("--categories", default=None, metavar="A,B",
                        help="score only these follow-up categories (comma-separated)")
    parser.add_argument("--limit", type=row_limit, default=None, metavar="N|F",
                        help="use only the first N prompts, or a fraction F of them (0.1 = 10%%)")
    parser.add_argument("--prefix", default="flr", help="file and dataset-name prefix (default flr)")
    add_scoring_arguments(parser, ("--scorer", "--model"),
                          "model that scores them (default: $FLR_MODEL or embedded)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_ray_arguments(parser)
    parser.set_defaults(func=run)
    return parser


@user_errors
def run(args: argparse.Namespace) -> int:
    """Run the subcommand; errors a user can fix become one line on stderr and exit status 2."""
    if args.feedback_triples:
        return _feedback_data(args)
    return _mine(args)


def _feedback_data(args: argparse.Namespace) -> int:
    from core.mining.feedback_data import export_feedback_data, load_triples

    triples = load_triples(args.feedback_triples)
    files = export_feedback_data(triples, args.output_dir, prefix=f"{args.prefix}_feedback")
    print(f"{len(triples)} (question, answer, feedback) triples -> feedback-mode SFT data")
    for path in files.values():
        print(f"  {path}")
    return 0


def _mine(args: argparse.Namespace) -> int:
    from core.engine.followups import load_followups
    from core.mining.mining import mine
    from core.mining.policy import policy_for
    from core.mining.preferences import ExportConfig, export_preferences, format_summary
    from core.mining.prompts import load_prompts
    from core.engine.scorer import load_scorer

    mining = MiningConfig(samples=args.samples, seed=args.seed, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_p=args.top_p,
                          batch_size=args.generation_batch_size)
    export = ExportConfig(min_margin=args.min_margin, kto_threshold=args.kto_threshold, prefix=args.prefix,
                          finished_only=args.finished_only)
    scoring = config_from_args(args)
    cluster = cluster_from_args(args)
    policy_config = scoring.with_changes(model=args.policy)
    prompts = load_prompts(args.prompts)
    if args.limit is not None:
        check_row_limit(args.limit, "prompts")
        prompts = prompts[:math.ceil(len(prompts) * args.limit) if args.limit < 1 else args.limit]
    followups = load_followups(args.followups)
    if args.categories:
        followups = followups.select([c.strip() for c in args.categories.split(",") if c.strip()])

    started = time.perf_counter()
    session: Any = contextlib.nullcontext()
    batches = None
    if cluster is not None:  # each Ray worker loads the scorer and the policy; this process neither
        from core.distributed.mining import ClusterMiner
        from core.distributed.session import ClusterSession
        from core.distributed.workers import scorer_factory

        from core.distributed.mining import finished_without_workers, remember_identities
        from core.evaluation.score_cache import default_cache_path

        batches = finished_without_workers(prompts, scoring, policy_config, followups, mining,
                                           args.output_dir, default_cache_path())
        if batches is None:
            session = ClusterSession(cluster)
            try:
                batches = ClusterMiner(session, scorer_factory(scoring), policy_config)
                remember_identities(default_cache_path(), scoring, policy_config, batches)
            except BaseException:
                session.close()
                raise
        scorer, policy = batches.scorer, batches.policy
    else:
        scorer = load_scorer(scoring)
        policy = policy_for(policy_config, scorer)
    load_seconds = time.perf_counter() - started

    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(prompts) * mining.samples, desc="mining", unit="reply", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh()

    try:
        with session:
            results = mine(prompts, policy, scorer, followups, mining, args.output_dir, progress, batches)
    finally:
        if bar is not None:
            bar.close()
    mine_seconds = time.perf_counter() - started - load_seconds
    run_info = {"prompts_file": str(args.prompts), "policy": policy.identity, "scorer": scorer.identity,
                "scoring": scoring.scoring_key(), "followups": followups.fingerprint(),
                "categories": list(followups.names), **mining.sampling_key(),
                "load_seconds": round(load_seconds, 2), "mine_seconds": round(mine_seconds, 2)}
    result = export_preferences(results, args.output_dir, export, run_info)
    print(format_summary(result.summary))
    print(f"\nmodels loaded in {load_seconds:.1f}s; sampled and scored in {mine_seconds:.1f}s")
    print(f"LLaMA-Factory datasets in {args.output_dir} (see dataset_info.json):")
    for name, path in result.files.items():
        print(f"  {name:<22} {path}")
    return 0
