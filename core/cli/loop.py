"""`flr loop`: the alignment loop in one command, from prompts to an aligned adapter and its report.

    flr loop PROMPTS --output DIR [--policy M] [--scorer M] [--samples K] [--method dpo|kto]
        [--max-steps N] [--held-out F] [--max-new-tokens N]

Three steps, each what its own command does (`core.training.loop`): sample K replies per prompt
from the policy and score them with FLR into DIR/mined (`flr mine`), train a DPO or KTO LoRA
adapter on the mined pairs into DIR/aligned, then let the base and the aligned policy answer the
held-out prompts with the same seeds and judge both (`flr align`): DIR/aligned/align_report.md
and .json. Running the same command again resumes: mined replies come from DIR/mined's cache,
training from its last checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.align_flags import add_judging_arguments, add_training_arguments, judging_from_args, options_from_args

MINED = "mined"
ALIGNED = "aligned"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "loop", help="mine pairs with FLR, align the policy with DPO/KTO, compare: one command",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompts", metavar="PROMPTS", help="JSON / JSONL / CSV of prompts, as for `flr mine`")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR",
                        help=f"folder to write: DIR/{MINED} (the mined data) and DIR/{ALIGNED} (adapter, report)")
    parser.add_argument("--samples", type=int, default=4, metavar="K", help="replies per prompt to mine (default 4)")
    parser.add_argument("--temperature", type=float, default=0.8, metavar="T", help="mining temperature (default 0.8)")
    parser.add_argument("--top-p", type=float, default=0.95, metavar="P")
    parser.add_argument("--min-margin", type=float, default=0.0, metavar="X",
                        help="keep a DPO pair only if best minus worst FLR is at least X (default 0)")
    parser.add_argument("--finished-only", action="store_true",
                        help="leave replies cut at --max-new-tokens out of the training data")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N prompts")
    parser.add_argument("--followups", metavar="SET.json", help="follow-up set (default: the bundled one)")
    add_training_arguments(parser)
    add_judging_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.engine.config import ScoringConfig
    from core.engine.followups import load_followups
    from core.mining.mining import MiningConfig
    from core.mining.preferences import ExportConfig, format_summary
    from core.training.comparison import format_report
    from core.training.loop import REPORT_JSON, REPORT_MD, align_and_compare, mine_pairs

    def say(line: str) -> None:
        print(line, flush=True)

    options, judging = options_from_args(args), judging_from_args(args)  # bad flags fail before any model loads
    mining = MiningConfig(samples=args.samples, seed=args.seed, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_p=args.top_p)
    export = ExportConfig(min_margin=args.min_margin, finished_only=args.finished_only)
    followups = load_followups(args.followups)
    scoring = ScoringConfig(model=args.scorer, mode=args.mode or "base", device=args.device)
    mined, aligned = args.output / MINED, args.output / ALIGNED

    say(f"1/2 mining {args.prompts}: {args.samples} replies per prompt from {args.policy}, scored by "
        f"{args.scorer} ({scoring.mode} mode) -> {mined}")
    exported = mine_pairs(args.prompts, mined, scoring, args.policy, mining, export, followups, limit=args.limit)
    say(format_summary(exported.summary))
    say(f"2/2 aligning with {options.method.upper()} -> {aligned}")
    report = align_and_compare(mined, aligned, options, judging, report=say, followups=followups,
                               restart=args.restart)
    say(format_report(report))
    say(f"adapter: {aligned} (use it as --policy {aligned} or --model {aligned})")
    say(f"report: {aligned / REPORT_MD} and {aligned / REPORT_JSON}")
    say(f"mined data: {mined} (LLaMA-Factory datasets, dataset_info.json)")
    return 0

