"""`flr followups report`: how every follow-up of a set does on labelled data.

Per utterance: its accuracy (or correlation) and AUC as a reward by itself, its largest
correlation with another follow-up; wrong-way and duplicate utterances flagged; a suggested
pruned set with its cross-validated effect (`core.tuning.diagnostics`). Files are scored through
the score cache exactly as `flr evaluate` scores them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.flags import add_labelled_data_arguments, labelled_from_args
from core.errors import InputError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("followups", help="diagnose a follow-up set on labelled data",
                                   description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    report = actions.add_parser("report", help="per-follow-up accuracy, AUC, correlations, flags "
                                "and a pruned set")
    report.add_argument("paths", nargs="+", metavar="FILE", help="labelled benchmark files or folders")
    report.add_argument("--objective", choices=("pairwise", "rating"), default="pairwise")
    report.add_argument("--folds", type=int, default=5, metavar="K",
                        help="grouped folds for the pruned set's cross-validated effect (default 5)")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--output", type=Path, metavar="pruned.json", help="write the suggested pruned set")
    report.add_argument("--table", type=Path, metavar="FILE.csv", help="write the per-follow-up table")
    add_labelled_data_arguments(report)
    report.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.textfiles import write_json
    from core.tuning.diagnostics import diagnose
    from core.tuning.report import format_diagnostics

    _, followups, _, examples = labelled_from_args(args)
    diag = diagnose(examples, followups, folds=args.folds, seed=args.seed)
    try:
        if args.output is not None:
            if diag.pruned is None:
                raise InputError("every follow-up would be pruned; no set written")
            write_json(args.output, diag.pruned.to_dict())
        if args.table is not None:
            args.table.parent.mkdir(parents=True, exist_ok=True)
            from core.spreadsheet import csv_text

            args.table.write_text(csv_text(diag.table), encoding="utf-8")  # follow-ups are user text
    except OSError as err:
        raise InputError(f"{err.filename or ''}: cannot write ({err.strerror or err})") from None
    print(format_diagnostics(diag, args.output))
    return 0
