"""Flags shared by every command that scores, declared once.

Defaults are left as None so that `ScoringConfig.from_env` fills them from `FLR_*` variables;
a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from core.engine.config import AGGREGATIONS, DTYPES, MODES, ScoringConfig


def add_scoring_arguments(parser: argparse.ArgumentParser, model_flags: Sequence[str] = ("--model",),
                          model_help: str = "Hub id, local folder, .gguf file or 'embedded' (default)",
                          followups: bool = True) -> None:
    """The scoring flags; `model_flags` names the model flag(s) (`mine` calls it `--scorer`)."""
    parser.add_argument(*model_flags, dest="model", metavar="M", help=model_help)
    if followups:
        parser.add_argument("--followups", metavar="SET.json",
                            help="follow-up set JSON (default: the bundled six-category set)")
    parser.add_argument("--mode", choices=MODES, help="base (default) or feedback (role-swapped scorer)")
    parser.add_argument("--aggregation", choices=AGGREGATIONS,
                        help="mean (default) or sum of follow-up token log-probs; paper = released scripts")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", choices=DTYPES, help="auto (default): bf16/fp16 on GPU, fp32 on CPU")
    parser.add_argument("--batch-size", type=int,
                        help="a pass holds N follow-ups of up to 64 tokens (default 32); scores do not depend on it")
    parser.add_argument("--max-length", type=int, help="token budget per sequence (default: model context)")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="allow model code from the Hub (off by default)")


def config_from_args(args: argparse.Namespace) -> ScoringConfig:
    """The one `ScoringConfig` of a command: flags over `FLR_*` variables over defaults."""
    return ScoringConfig.from_env(
        model=args.model, mode=args.mode, aggregation=args.aggregation, device=args.device,
        dtype=args.dtype, batch_size=args.batch_size, max_length=args.max_length,
        trust_remote_code=args.trust_remote_code,
    )
