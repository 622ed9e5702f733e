"""`flr align`: DPO or KTO on what `flr mine` wrote, then base vs aligned on held-out prompts.

    flr align MINED_DIR --output DIR [--method dpo|kto] [--max-steps N] [--policy M] [--scorer M]

MINED_DIR is what `flr mine --output-dir` wrote. The policy (default: embedded, as for mine)
gets a LoRA adapter trained with TRL; a share of the mined prompts is held out, and on those the
base and the aligned policy answer with the same seeds. Both replies are scored by the scorer
that mined the pairs (`--scorer`, in the mode the mining used) and by a second one (the other
mode, or `--second-scorer`). DIR gets the adapter and `align_report.json` / `align_report.md`:
win rate with a paired bootstrap interval, mean lengths and a length-controlled win rate.

The whole loop is three commands (or one, `flr loop`): `flr mine --prompts P --output-dir M`, `flr align M --output A`,
then `--model A` wherever a model is accepted (the adapter is a policy or a scorer like any model).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.align_flags import add_judging_arguments, add_training_arguments, judging_from_args, options_from_args


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "align", help="DPO/KTO on mined pairs, then base vs aligned on held-out prompts",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mined_dir", metavar="MINED_DIR", type=Path, help="folder `flr mine --output-dir` wrote")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR", help="folder to write")
    add_training_arguments(parser)
    add_judging_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.training.comparison import format_report
    from core.training.loop import align_and_compare

    report = align_and_compare(args.mined_dir, args.output, options_from_args(args), judging_from_args(args),
                               report=lambda line: print(line, flush=True), restart=args.restart)
    print(format_report(report))
    print(f"wrote the adapter and align_report.json / align_report.md to {args.output}")
    return 0

