"""`flr tune`: learn follow-up weights from labelled benchmark files, validated honestly.

The files are read and scored exactly as `flr evaluate` reads and scores them (through the same
score cache, so tuning after an evaluation loads no model). The command prints the grouped,
nested cross-validated figure of the tuned weights beside plain FLR and the length baseline on
the same folds, and the follow-ups that carry the tuned score; it writes the weighted set, with a
"provenance" block (data, folds, cross-validated figures), usable wherever a set is
(`--followups tuned.json`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.flags import add_labelled_data_arguments, labelled_from_args
from core.errors import InputError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tune", help="learn follow-up weights from labelled pairs or ratings",
        description="Learn which follow-ups matter from labelled pairs (L2 logistic regression on "
                    "chosen-minus-rejected follow-up scores) or ratings (ridge), with the penalty "
                    "chosen by nested cross-validation and folds grouped by shared prompts and "
                    "replies; writes a weighted follow-up set.")
    parser.add_argument("paths", nargs="+", metavar="FILE", help="labelled benchmark files or folders")
    parser.add_argument("--output", required=True, type=Path, metavar="tuned.json",
                        help="where to write the weighted follow-up set")
    learn = parser.add_argument_group("learning")
    learn.add_argument("--objective", choices=("pairwise", "rating"), default="pairwise",
                       help="pairwise: labelled pairs (default); rating: rated replies")
    learn.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default 5)")
    learn.add_argument("--control-length", action="store_true",
                       help="fit reply length beside the follow-ups and write only the follow-up part")
    learn.add_argument("--seed", type=int, default=0, help="seed of the fold dealing and bootstrap")
    add_labelled_data_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.textfiles import write_json
    from core.tuning.report import format_tune, provenance, weights_frame
    from core.tuning.tune import TuneOptions, tune

    config, followups, report, examples = labelled_from_args(args)
    options = TuneOptions(folds=args.folds, control_length=args.control_length, seed=args.seed)
    result = tune(examples, followups, options)
    table = weights_frame(result, examples)
    block = provenance(result, examples, args.paths, options, args.objective, config.as_dict(),
                       followups.unweighted().fingerprint())
    try:
        write_json(args.output, {**result.tuned_set.to_dict(), "provenance": block})
    except OSError as err:
        raise InputError(f"{args.output}: cannot write the tuned set ({err.strerror or err})") from None
    stats = report.stats
    print(format_tune(result, table, args.output))
    print(f"conversations: {stats.get('scored', 0)} scored now, {stats.get('from_cache', 0)} from the cache")
    return 0
