"""The flags `flr align` and `flr loop` share (training and judging), declared once, and the
`AlignOptions` / `Judging` they become."""

from __future__ import annotations

import argparse
from typing import Any

from core.engine.config import EMBEDDED_MODEL, MODES


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
