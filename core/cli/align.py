"""`flr align`: DPO or KTO on what `flr mine` wrote, then base vs aligned on held-out prompts.

    flr align MINED_DIR --output DIR [--method dpo|kto] [--max-steps N] [--policy M] [--scorer M]

MINED_DIR is what `flr mine --output-dir` wrote. The policy (default: embedded, as for mine)
gets a LoRA adapter trained with TRL; a share of the mined prompts is held out, and on those the
base and the aligned policy answer with the same seeds. Both replies are scored by the scorer
that mined the pairs (`--scorer`, in the mode the mining used) and by a second one (the other
mode, or `--second-scorer`). DIR gets the adapter and `align_report.json` / `align_report.md`:
win rate with a paired bootstrap interval, mean lengths and a length-controlled win rate.

The whole loop is three commands: `flr mine --prompts P --output-dir M`, `flr align M --output A`,
then `--model A` wherever a model is accepted (the adapter is a policy or a scorer like any model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.engine.config import EMBEDDED_MODEL, MODES


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


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The DPO/KTO flags (`flr align` and `flr loop`)."""
    parser.add_argument("--method", choices=("dpo", "kto"), default="dpo")
    parser.add_argument("--max-steps", type=int, default=100, metavar="N", help="optimizer steps (default 100)")
    parser.add_argument("--batch-size", type=int, default=4, metavar="B")
    parser.add_argument("--learning-rate", type=float, default=5e-5, metavar="LR")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--held-out", type=float, default=0.2, metavar="F",
                        help="share of the mined prompts kept out of training for the comparison (default 0.2)")
    parser.add_argument("--restart", action="store_true",
                        help="discard the checkpoints of an earlier run in DIR instead of resuming from them")


def add_judging_arguments(parser: argparse.ArgumentParser) -> None:
    """The models and the before/after comparison's flags (`flr align` and `flr loop`)."""
    parser.add_argument("--policy", default=EMBEDDED_MODEL, metavar="M", help="the policy that was mined")
    parser.add_argument("--scorer", default=EMBEDDED_MODEL, metavar="M", help="the scorer that mined the pairs")
    parser.add_argument("--mode", choices=MODES, help="its mode (default: the one the mining used)")
    parser.add_argument("--second-scorer", metavar="M",
                        help="second judge (default: the same scorer in the other mode)")
    parser.add_argument("--eval-samples", type=int, default=1, metavar="K", help="replies per held-out prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")


def options_from_args(args: argparse.Namespace) -> Any:
    from core.training.align import AlignOptions

    return AlignOptions(method=args.method, max_steps=args.max_steps, batch_size=args.batch_size,
                        learning_rate=args.learning_rate, beta=args.beta,
                        held_out_fraction=args.held_out, seed=args.seed)


def judging_from_args(args: argparse.Namespace) -> Any:
    from core.training.loop import Judging

    return Judging(policy=args.policy, scorer=args.scorer, mode=args.mode, second_scorer=args.second_scorer,
                   eval_samples=args.eval_samples, max_new_tokens=args.max_new_tokens, seed=args.seed,
                   device=args.device)


def run(args: argparse.Namespace) -> int:
    from core.training.comparison import format_report
    from core.training.loop import align_and_compare

    report = align_and_compare(args.mined_dir, args.output, options_from_args(args), judging_from_args(args),
                               report=lambda line: print(line, flush=True), restart=args.restart)
    print(format_report(report))
    print(f"wrote the adapter and align_report.json / align_report.md to {args.output}")
    return 0


def main() -> int:  # pragma: no cover
    from core.cli.main import main as cli_main

    return cli_main(["align", *sys.argv[1:]])
