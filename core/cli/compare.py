"""The `compare` subcommand: two evaluation reports side by side.

Prints, per benchmark both reports hold, A's and B's figure on the rows both judged, B - A and
a 95% paired-bootstrap interval of the difference (`core.evaluation.compare`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from core.cli.errors import user_errors
from core.errors import InputError
from core.names import BOOTSTRAP_SAMPLES, FLR


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare", help="compare two evaluation reports on the same rows",
        description="Two REPORT.json files of flr evaluate side by side: per benchmark, each "
                    "run's figure on the rows both judged, the difference B - A and its 95% "
                    "paired-bootstrap interval.")
    parser.add_argument("a", type=Path, metavar="A.json")
    parser.add_argument("b", type=Path, metavar="B.json")
    parser.add_argument("--signals", default=FLR, metavar="S,...",
                        help="signals to compare, e.g. flr,direct,length (default: %(default)s)")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP_SAMPLES, metavar="N",
                        help="bootstrap resamples (default: %(default)s)")
    parser.set_defaults(func=run)
    return parser


@user_errors
def run(args: argparse.Namespace) -> int:
    print(_run(args))
    return 0


def _run(args: argparse.Namespace) -> str:
    from core.evaluation.compare import compare_reports
    from core.evaluation.report import load_report

    if args.bootstrap < 100:
        raise InputError("--bootstrap needs at least 100 resamples for a 95% interval")
    signals = tuple(s.strip() for s in args.signals.split(",") if s.strip())
    frame = compare_reports(load_report(args.a), load_report(args.b), samples=args.bootstrap,
                            signals=signals)
    lines = [f"A: {args.a}", f"B: {args.b}", "",
             f"{'benchmark':<28} {'signal':<13} {'metric':<9} {'n':>6} {'A':>7} {'B':>7} "
             f"{'B - A [95% CI]':<26} note"]
    for r in frame.to_dict(orient="records"):
        diff = f"{_fmt(r['B - A'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        lines.append(f"{str(r['benchmark'])[:28]:<28} {r['signal']:<13} {r['metric']:<9} {r['n']:>6} "
                     f"{_fmt(r['A']):>7} {_fmt(r['B']):>7} {diff:<26} {r['note']}")
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
