"""Flags shared by every command that scores, declared once.

Defaults are left as None so that `ScoringConfig.from_env` fills them from `FLR_*` variables;
a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from core.distributed.settings import ClusterSettings
from core.errors import InputError
from core.engine.config import AGGREGATIONS, AUTO_BATCH_SIZE, DTYPES, MODES, SYSTEM_POLICIES, ScoringConfig
from core.evaluation.report_cache import CACHE_FILE
from core.locations import CACHE_DIR_TEXT
from core.names import KINDS


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
    parser.add_argument("--system-policy", choices=SYSTEM_POLICIES,
                        help="a conversation's system message: keep (default), fold it into the first "
                             "user turn (for templates without a system role), or drop it")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", choices=DTYPES, help="auto (default): bf16/fp16 on GPU, fp32 on CPU")
    parser.add_argument("--batch-size", type=batch_size, metavar="N|auto",
                        help="a pass holds N follow-ups of up to 64 tokens (default 32; auto: as many "
                             "as the GPU's free memory holds); scores do not depend on it")
    parser.add_argument("--revision", metavar="REV",
                        help="the model's Hub branch, tag or commit (default: main; the same as "
                             "--model ORG/NAME@REV)")
    parser.add_argument("--max-length", type=int, help="token budget per sequence (default: model context)")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="allow model code from the Hub (off by default)")


def row_limit(text: str) -> int | float:
    """`--limit`'s value: a count of rows (`120`) or a share of each benchmark's rows (`0.1` =
    the first 10%, rounded up, as lm_eval's `--limit` reads it)."""
    if "=" in text:  # `--limit turns=20000`: the input-limit flag's old spelling
        raise argparse.ArgumentTypeError(
            f"{text!r}: --limit takes a number of rows (or a fraction such as 0.1); input limits "
            f"are set with --max NAME=N")
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of rows (e.g. 100) or a fraction of them (e.g. 0.1); got {text!r}") from None
    return int(value) if value.is_integer() else value  # the range is the command's to check


def check_row_limit(limit: int | float | None, what: str = "rows") -> None:
    """Refuse a `--limit` that is neither a positive count nor a fraction between 0 and 1."""
    if limit is not None and not (limit >= 1 and float(limit).is_integer() or 0 < limit < 1):
        raise InputError(f"--limit must be a positive number of {what} or a fraction between 0 and 1 "
                         f"(0.1 = the first 10%); got {limit:g}")


def batch_size(text: str) -> int | str:
    """`--batch-size`'s value: follow-ups per pass, or `auto` (as many as memory allows)."""
    if text.strip().lower() == AUTO_BATCH_SIZE:
        return AUTO_BATCH_SIZE
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of follow-ups per pass or 'auto'; got {text!r}") from None


def config_from_args(args: argparse.Namespace) -> ScoringConfig:
    """The one `ScoringConfig` of a command: flags over `FLR_*` variables over defaults."""
    config = ScoringConfig.from_env(
        model=args.model, mode=args.mode, aggregation=args.aggregation, device=args.device,
        dtype=args.dtype, batch_size=args.batch_size, max_length=args.max_length,
        trust_remote_code=args.trust_remote_code,
        system_policy=getattr(args, "system_policy", None),
    )
    revision = getattr(args, "revision", None)
    if revision is None:
        return config
    if not revision.strip() or "@" in config.model:
        raise InputError(f"--revision {revision!r}: give one revision, either as --revision REV or "
                         f"as --model ORG/NAME@REV")
    return config.with_changes(model=f"{config.model}@{revision.strip()}")  # the one spelling models carry


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """`--ray`, `--workers`, `--gpus-per-worker`, `--shard-size`: spread the work over Ray workers."""
    defaults = ClusterSettings()
    group = parser.add_argument_group("Ray cluster (optional: pip install -r requirements-ray.txt)")
    group.add_argument("--ray", metavar="ADDRESS",
                       help="run on Ray workers: 'local' starts Ray on this machine, 'auto' joins this "
                            "machine's cluster, 'ray://host:port' connects to a remote one")
    group.add_argument("--workers", type=int, default=defaults.workers, metavar="N",
                       help=f"Ray workers, each loading the model once (default {defaults.workers})")
    group.add_argument("--gpus-per-worker", type=float, default=defaults.gpus_per_worker, metavar="G",
                       help="GPUs per worker (default 0: CPU workers; 1 = one worker per GPU)")
    group.add_argument("--shard-size", type=int, default=defaults.shard_size, metavar="C",
                       help=f"conversations (mining: prompt batches of --generation-batch-size) per task "
                            f"(default {defaults.shard_size}); results do not depend on it")


def cluster_from_args(args: argparse.Namespace) -> ClusterSettings | None:
    """The run's `ClusterSettings`, or None without `--ray`; checks that Ray is installed."""
    from core.distributed.session import require_ray

    if getattr(args, "ray", None) is None:
        return None
    settings = ClusterSettings(address=args.ray, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                               shard_size=args.shard_size)
    require_ray()
    return settings


def add_labelled_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Scoring flags and benchmark-file flags of the commands that learn from labelled files
    (`flr tune`, `flr followups report`), as `flr evaluate` has them."""
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


def labelled_from_args(args: argparse.Namespace) -> tuple[ScoringConfig, Any, Any, Any]:
    """(config, follow-up set, evaluation report, examples) of the labelled files the arguments
    of `add_labelled_data_arguments` name (`core.tuning.labelled`)."""
    from core.cli.progress import ScoringProgress
    from core.engine.followups import default_followups, load_followups
    from core.evaluation.report_cache import default_cache_path
    from core.tuning.labelled import labelled_examples

    if args.folds < 2:
        raise InputError(f"--folds must be at least 2; got {args.folds}")
    check_row_limit(args.limit)
    config = config_from_args(args)
    followups = load_followups(args.followups) if args.followups else default_followups()
    cache_path = None if args.no_cache else (args.cache or default_cache_path())
    with ScoringProgress() as progress:
        report, examples = labelled_examples(args.paths, followups, args.objective, config,
                                             cache_path=cache_path, kind=args.kind,
                                             score_field=args.score_field, limit=args.limit,
                                             progress=progress)
    return config, followups, report, examples
