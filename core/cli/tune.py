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
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.cli.flags import add_scoring_arguments, check_row_limit, config_from_args, row_limit
from core.errors import InputError
from core.locations import CACHE_DIR_TEXT
from core.evaluation.report_cache import CACHE_FILE, default_cache_path
from core.names import KINDS


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
    add_data_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Scoring flags and benchmark-file flags, as `flr evaluate` has them."""
    scoring = parser.add_argument_group("scoring (for rows without precomputed values)")
    add_scoring_arguments(scoring)
    data = parser.add_argument_group("benchmark files")
    data.add_argument("--kind", choices=KINDS, help="override the detected benchmark kind")
    data.add_argument("--score-field", metavar="F", help="ground-truth field of rating files")
    data.add_argument("--limit", type=row_limit, metavar="N|F",
                      help="first N pairs / rows per benchmark, or a fraction F of them (0.1 = 10%%)")
    data.add_argument("--cache", type=Path, metavar="PATH",
                      help=f"score cache (default: {CACHE_FILE} in {CACHE_DIR_TEXT})")
    data.add_argument("--no-cache", action="store_true", help="keep scores in memory only")


def labelled_examples(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(config, follow-up set, evaluation report, examples) of the files the arguments name,
    scored through the very path (and cache) of `flr evaluate`."""
    from core.cli.evaluate import _evaluate
    from core.engine.followups import default_followups, load_followups
    from core.tuning.features import examples_from_results

    if args.folds < 2:
        raise InputError(f"--folds must be at least 2; got {args.folds}")
    check_row_limit(args.limit)
    config = config_from_args(args)
    followups = load_followups(args.followups) if args.followups else default_followups()
    cache_path = None if args.no_cache else (args.cache or default_cache_path())
    args.categories, args.elo, args.bootstrap = None, None, 100  # what `_evaluate` also reads
    report = _evaluate(args, config, cache_path)
    return config, followups, report, examples_from_results(report.benchmarks, followups, args.objective)


def run(args: argparse.Namespace) -> int:
    from core.tuning.report import format_tune, provenance, weights_frame
    from core.tuning.tune import TuneOptions, tune

    config, followups, report, examples = labelled_examples(args)
    options = TuneOptions(folds=args.folds, control_length=args.control_length, seed=args.seed)
    result = tune(examples, followups, options)
    table = weights_frame(result, examples)
    block = provenance(result, examples, args.paths, options, args.objective, config.as_dict(),
                       followups.unweighted().fingerprint())
    try:
        write_json_atomic(args.output, {**result.tuned_set.to_dict(), "provenance": block})
    except OSError as err:
        raise InputError(f"{args.output}: cannot write the tuned set ({err.strerror or err})") from None
    stats = report.stats
    print(format_tune(result, table, args.output))
    print(f"conversations: {stats.get('scored', 0)} scored now, {stats.get('from_cache', 0)} from the cache")
    return 0


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to `path` and move it into place, so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> int:  # pragma: no cover - `python -m core tune` goes through core.cli.main
    from core.cli.main import main as cli_main

    return cli_main(["tune", *sys.argv[1:]])
