"""The `evaluate` subcommand: benchmark files in, a metrics table and REPORT.json out.

The flags are those of `flr evaluate --help` (the README's command reference is generated from
it). `add_parser(subparsers)` registers it on the main parser (`core.cli.main`); `run(args)` does the
work and returns the exit status. Scores are cached in SQLite outside the checkout
(`$FLR_CACHE_DIR/scores.sqlite`, else `~/.cache/flr-studio/scores.sqlite`), so a second run
on the same files loads no model. Bad input prints one line naming the file, line and field,
and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from core.cli.errors import user_errors
from core.cli.progress import ScoringProgress
from core.cli.flags import (add_ray_arguments, add_scoring_arguments, check_row_limit, cluster_from_args,
                            config_from_args, row_limit)
from core.errors import FLRError, InputError
from core.engine.followups import DEFAULT_PATH as DEFAULT_FOLLOWUPS_PATH
from core.locations import CACHE_DIR_TEXT
from core.evaluation.report_cache import CACHE_FILE, ReportMemo, default_cache_path, memo_key
# core.names imports nothing: pandas, scipy and torch are imported only when a run is not
# already in the report memo, so an identical rerun answers at once.
from core.names import BASELINES, BOOTSTRAP_SAMPLES, HEADLINE, KINDS, METRICS_BY_KIND
from core.textfiles import write_text

if TYPE_CHECKING:
    from core.evaluation.report import EvaluationReport


log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `evaluate` on an `argparse` subparsers object."""
    parser = subparsers.add_parser(
        "evaluate", help="evaluate FLR on benchmark files (pairwise, rating, ranking)",
        description="Evaluate FLR on benchmark files: pairwise accuracy, rating correlations "
                    "and model-ranking correlations with 95% bootstrap intervals and baselines. "
                    "Scores are cached, so a rerun loads no model.")
    configure_parser(parser)
    parser.set_defaults(func=run)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="benchmark files or folders (JSON, JSONL, .gz, CSV, Parquet)")
    model = parser.add_argument_group("scoring (for rows without precomputed values)")
    add_scoring_arguments(model)  # the flags every scoring command shares
    model.add_argument("--categories", help="comma-separated categories of the set to use")
    data = parser.add_argument_group("benchmark files")
    data.add_argument("--dataset", action="append", default=[], metavar="NAME[:CONFIG]",
                      help="a dataset by name through the datasets library: a Hub id (e.g. "
                           "allenai/reward-bench, Anthropic/hh-rlhf:helpful-base), a local dataset "
                           "folder or an hf:// file; repeatable")
    data.add_argument("--dataset-config", metavar="CONFIG",
                      help="the configuration of --dataset when NAME:CONFIG does not give one")
    data.add_argument("--dataset-revision", metavar="REV",
                      help="the Hub branch, tag or commit of --dataset (default: main); the report "
                           "records the revision read")
    data.add_argument("--split", metavar="S", help="the split of --dataset (e.g. filtered, test)")
    data.add_argument("--kind", choices=KINDS, help="override the detected benchmark kind")
    data.add_argument("--score-field", metavar="F",
                      help="ground-truth field of rating files (dots reach into objects)")
    data.add_argument("--limit", type=row_limit, metavar="N|F",
                      help="first N pairs / rows per benchmark (ranking: first N prompts), or a "
                           "fraction F of them (0.1 = the first 10%%, rounded up)")
    data.add_argument("--elo", type=Path, metavar="FILE",
                      help="reference ELO table, JSON or CSV (default: the paper's LMSYS ELO)")
    data.add_argument("--elo-map", action="append", default=[], metavar="MODEL=ELO_NAME",
                      help="match a benchmark's model name to an ELO table entry by hand "
                           "(repeatable; or a JSON file {\"model\": \"elo name\"}); names are "
                           "never matched across versions or dates automatically")
    data.add_argument("--drop-duplicates", action="store_true",
                      help="keep only the first copy of repeated rows (by default they are "
                           "counted and named in the warnings)")
    data.add_argument("--sections", type=Path, metavar="FILE",
                      help="RewardBench section map, JSON {\"section\": [\"subset\", ...]} "
                           "(default: RewardBench 1's)")
    out = parser.add_argument_group("output")
    out.add_argument("--report", type=Path, metavar="REPORT.json",
                     help="where to write the report (default: REPORT.json, or REPORT-2.json, ... "
                          "when it exists; inside --output-dir with that option)")
    out.add_argument("--output-dir", type=Path, metavar="DIR",
                     help="also write the scored rows: paper-layout JSONL per category and CSV")
    out.add_argument("--cache", type=Path, metavar="PATH",
                     help=f"score cache (default: {CACHE_FILE} in {CACHE_DIR_TEXT})")
    out.add_argument("--no-cache", action="store_true", help="keep scores in memory only")
    out.add_argument("--bootstrap", type=int, default=BOOTSTRAP_SAMPLES, metavar="N",
                     help="bootstrap resamples per confidence interval (default: %(default)s)")
    out.add_argument("--seed", type=int, metavar="S",
                     help="seed of the bootstrap resampling (default: a fixed seed, so reruns agree)")
    add_ray_arguments(parser)


@user_errors
def run(args: argparse.Namespace) -> int:
    """Run the evaluation the parsed arguments describe; 0 on success, 2 on bad input."""
    try:
        table, report_path, exported, reused = _run(args)
    except OSError as err:  # an output path that cannot be written, a full disk
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; every score computed so far is cached and will be reused",
              file=sys.stderr)
        return 130
    print(table)
    if reused:
        print("\n(same inputs, settings and code as a finished run: its report was reused)")
    print(f"\nreport: {report_path}")
    if exported:
        print(f"scored rows: {len(exported) - 1} files in {exported[0].parent}")
    return 0


def _run(args: argparse.Namespace) -> tuple[str, Path, list[Path], bool]:
    check_row_limit(args.limit)
    if args.bootstrap < 100:
        raise _usage("--bootstrap needs at least 100 resamples for a 95% interval")
    config = config_from_args(args)
    cluster = cluster_from_args(args)  # None without --ray; says how to install Ray when missing
    elo_map = parse_elo_map(args.elo_map)
    sources: list[dict[str, Any]] = []
    if args.dataset:
        from core.evaluation.named_datasets import load_dataset_file

        for item in args.dataset:
            name, dataset_config = dataset_name(item, args.dataset_config)
            found = load_dataset_file(name, args.split, config=dataset_config,
                                      revision=args.dataset_revision)
            args.paths = [*args.paths, str(found.path)]
            sources.append(found.source)
    elif args.split or args.dataset_config or args.dataset_revision:
        flag = "--split" if args.split else "--dataset-config" if args.dataset_config else "--dataset-revision"
        raise _usage(f"{flag} belongs to --dataset; give --dataset NAME too")
    args.dataset_sources = sources
    if not args.paths:
        raise _usage("give benchmark files or folders, or --dataset NAME")
    report_path = args.report or ((args.output_dir / "REPORT.json") if args.output_dir
                                  else free_report_path(Path.cwd()))
    cache_path = None if args.no_cache else (args.cache or default_cache_path())
    key = None
    if cache_path is not None:
        settings = {"kind": args.kind, "score_field": args.score_field, "limit": args.limit,
                    "bootstrap": args.bootstrap, "categories": args.categories, "seed": args.seed,
                    "datasets": sources,
                    "elo_map": elo_map, "drop_duplicates": args.drop_duplicates}
        extra = [Path(args.followups) if args.followups else DEFAULT_FOLLOWUPS_PATH]
        extra += [Path(p) for p in (args.elo, args.sections) if p]
        key = memo_key(args.paths, config, settings, extra)
        if key is not None:
            with ReportMemo(cache_path) as memo:
                hit = memo.get(key)
            if hit is not None and (args.output_dir is None or hit[2] is not None):
                table, report_json, exports = hit
                exported = _write_files(args.output_dir, exports) if args.output_dir else []
                write_text(report_path, report_json)
                return table, report_path, exported, True

    report = _evaluate(args, config, cache_path, elo_map, cluster)
    exported: list[Path] = []
    if args.output_dir is not None:
        exported = report.export(args.output_dir)
    if not (exported and report_path == exported[-1]):
        report.write_report(report_path)
    table = format_report(report)
    if key is not None and cache_path is not None and not report.cancelled:
        files = ({p.name: p.read_text(encoding="utf-8") for p in exported}
                 if args.output_dir is not None else None)
        with ReportMemo(cache_path) as memo:
            memo.put(key, table, report.to_json(), files)
    return table + "\n" + _stats_line(report), report_path, exported, False


def _write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / Path(name).name
        write_text(path, text)
        written.append(path)
    return written


def free_report_path(folder: Path) -> Path:
    """REPORT.json in `folder`, or REPORT-2.json, REPORT-3.json, ... when it exists: a run
    never overwrites an earlier report unless told to with --report."""
    path, k = folder / "REPORT.json", 1
    while path.exists():
        k += 1
        path = folder / f"REPORT-{k}.json"
    return path


def dataset_name(item: str, config: str | None) -> tuple[str, str | None]:
    """`--dataset NAME[:CONFIG]` as (name, config); `--dataset-config` fills in a missing config.
    A colon belongs to the name when the whole is an existing path or the tail has a slash
    (`hf://...`)."""
    name, sep, tail = item.rpartition(":")
    if not sep or not name or "/" in tail or "\\" in tail or Path(item).exists():
        return item, config
    return name, tail or config


def parse_elo_map(items: Sequence[str]) -> dict[str, str]:
    """`--elo-map` values: MODEL=ELO_NAME pairs, or JSON files mapping model -> ELO name."""
    from core.evaluation.elo import parse_elo_map as parse

    return parse(items, InputError)


def _evaluate(args: argparse.Namespace, config: Any, cache_path: Path | None,
              elo_map: dict[str, str] | None = None, cluster: Any = None) -> "EvaluationReport":
    from core.evaluation.detect import detect_benchmarks
    from core.evaluation.elo import default_elo, load_elo
    from core.evaluation.runner import EvaluationOptions, run_evaluation
    from core.engine.followups import default_followups, load_followups

    followups = load_followups(args.followups) if args.followups else default_followups()
    if args.categories:
        followups = followups.select([c.strip() for c in args.categories.split(",") if c.strip()])
    elo = load_elo(args.elo) if args.elo else default_elo()
    from core.evaluation.rewardbench import load_sections

    sections = load_sections(args.sections) if args.sections else None
    benchmarks = detect_benchmarks(args.paths, kind=args.kind, score_field=args.score_field,
                                   drop_duplicates=args.drop_duplicates)

    def factory() -> Any:
        from core.engine.scorer import load_scorer  # torch is imported only when something needs scoring

        log.info("loading %s", config.model)
        return load_scorer(config)

    if cluster is not None:  # Ray starts only if something is not cached
        from core.distributed.scoring import ClusterScorer
        from core.distributed.session import ClusterSession
        from core.distributed.workers import scorer_factory

        session = ClusterSession(cluster)

        def factory() -> Any:  # the workers load the model; this process loads none
            log.info("starting %d Ray worker(s) for %s", cluster.workers, config.model)
            return ClusterScorer(session, config, scorer_factory(config))
    else:
        session = contextlib.nullcontext()

    options = EvaluationOptions(limit=args.limit, elo=elo, bootstrap_samples=args.bootstrap,
                                elo_map=elo_map or {}, sections=sections, datasets=tuple(args.dataset_sources),
                                **({} if args.seed is None else {"seed": args.seed}))
    with session, ScoringProgress() as progress:
        return run_evaluation(benchmarks, scorer_factory=factory, config=config,
                              followups=followups, cache_path=cache_path, options=options,
                              progress=progress, cancel=threading.Event())


def _usage(message: str) -> FLRError:
    return InputError(message)


# --------------------------------------------------------------------------- the table

def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _with_ci(figures: dict[str, Any], metric: str) -> str:
    value = figures.get(metric)
    low, high = (figures.get(f"{metric}_ci") or [None, None])[:2]
    if value is None:
        return "-"
    return f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"


def format_report(report: "EvaluationReport") -> str:
    """A plain-text table: per benchmark the FLR figures with 95% intervals, the baselines
    on the same rows, per-category headline figures, skipped rows and warnings."""
    lines: list[str] = []
    if report.cancelled:
        lines.append("(cancelled: rows not scored yet are left out)")
    header = (f"{'benchmark':<28} {'kind':<9} {'n':>6}  {'metric':<9} {'FLR [95% CI]':<24}"
              + "".join(f" {b:>13}" for b in BASELINES))
    lines.append(header)
    lines.append("-" * len(header))
    for b in report.benchmarks:
        for i, metric in enumerate(METRICS_BY_KIND[b.kind]):
            lead = f"{b.name[:28]:<28} {b.kind:<9} {b.n:>6}" if i == 0 else " " * 45
            base = "".join(f" {_fmt(b.baselines.get(s, {}).get(metric)):>13}" for s in BASELINES)
            lines.append(f"{lead}  {metric:<9} {_with_ci(b.metrics, metric):<24}{base}")
    lines.append("(every column of a row uses the same n rows; accuracy intervals: Wilson score; "
                 "correlation intervals: percentile bootstrap; direct = the reply's own likelihood)")
    lines.append("")
    for b in report.benchmarks:
        headline = HEADLINE[b.kind]
        cats = ", ".join(f"{c} {_fmt(f.get(headline))}" for c, f in b.per_category.items())
        lines.append(f"{b.name}: {headline} by category: {cats or '-'}")
        for signal, why in b.baselines_missing.items():
            lines.append(f"  {signal} baseline left out: {why}")
        if b.subsets:
            lines.append("  by subset (FLR accuracy [95% CI], n): " + "; ".join(
                f"{name} {_with_ci(f, 'accuracy')} n={f['n']}" for name, f in b.subsets.items()))
        if b.rewardbench:
            lines.append(f"  {b.rewardbench['method']}: {_fmt(b.rewardbench['score'])}")
        if b.kind == "ranking":
            matched = b.metrics.get("n_matched", 0)
            lines.append(f"  models: {b.metrics.get('n_models', 0)}, with an ELO: {matched}"
                         + (f"; unmatched: {', '.join(b.unmatched)}" if b.unmatched else ""))
            renamed = [f"{m['model']} -> {m['elo model']}" for m in b.models
                       if m["elo model"] and m["elo model"] != m["model"]]
            if renamed:
                lines.append("  name mapping: " + "; ".join(renamed))
        if b.skipped:
            shown = "; ".join(f"row {s['row']} ({s['source']}): {s['reason']}" for s in b.skipped[:3])
            more = f"; and {len(b.skipped) - 3} more" if len(b.skipped) > 3 else ""
            lines.append(f"  skipped {len(b.skipped)} row(s): {shown}{more}")
        for warning in b.warnings:
            lines.append(f"  warning: {warning}")
    summary = report.summary()
    if summary:
        lines.append("")
        lines.append("summary (per set; pooled = mean over sets weighted by their rows):")
        for kind, entry in summary.items():
            metric = HEADLINE[kind]
            sets = ", ".join(f"{name} {_fmt(fig.get(metric))}" for name, fig in entry["sets"].items())
            lines.append(f"  {kind} {metric}: {sets}; pooled {_fmt(entry[f'pooled_{metric}'])}")
            for name, why in entry["undefined"].items():
                lines.append(f"  {name}: left out of the summary: {why}")
            for name, rb in entry.get("rewardbench", {}).items():
                lines.append(f"  {name}: {rb['method']}: {_fmt(rb['score'])}")
    return "\n".join(lines)


def _stats_line(report: "EvaluationReport") -> str:
    stats = report.stats
    return (f"\nconversations: {stats.get('scored', 0)} scored now, "
            f"{stats.get('from_cache', 0)} from the cache; {_fmt(stats.get('seconds'), 1)} s")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m core.cli.evaluate ...` (the same as `python -m core evaluate ...`)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m core evaluate")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
