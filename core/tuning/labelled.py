"""Labelled benchmark files to tuning examples: the one pipeline `flr tune` and `flr followups`
share (detect the files, score them through the score cache exactly as `flr evaluate` does,
then read each row's follow-up scores and label as an example).

Shortcut taken on purpose: the evaluation's own intervals are not used for tuning, so it runs
with the fewest bootstrap resamples an interval is allowed (`EVALUATION_BOOTSTRAP`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from core.engine.config import ScoringConfig
from core.engine.followups import FollowupSet
from core.evaluation.detect import detect_benchmarks
from core.evaluation.report import EvaluationReport
from core.evaluation.runner import EvaluationOptions, Progress, run_evaluation
from core.tuning.features import Examples, examples_from_results

log = logging.getLogger(__name__)

EVALUATION_BOOTSTRAP = 100  # resamples of the evaluation's intervals, which tuning does not read


def labelled_examples(paths: Sequence[str | Path], followups: FollowupSet, objective: str,
                      config: ScoringConfig, *, cache_path: Path | None, kind: str | None = None,
                      score_field: str | None = None, limit: int | float | None = None,
                      progress: Progress | None = None,
                      scorer_factory: Callable[[], Any] | None = None) -> tuple[EvaluationReport, Examples]:
    """The evaluation report of the labelled files `paths` and their examples for `objective`
    ("pairwise" or "rating"), every score through the cache at `cache_path` (None: in memory).
    The model is loaded only when something is not cached (`scorer_factory`, default
    `load_scorer(config)`)."""
    benchmarks = detect_benchmarks(paths, kind=kind, score_field=score_field)

    def load() -> Any:
        from core.engine.scorer import load_scorer  # torch only when something needs scoring

        log.info("loading %s", config.model)
        return load_scorer(config)

    report = run_evaluation(benchmarks, scorer_factory=scorer_factory or load, config=config,
                            followups=followups, cache_path=cache_path,
                            options=EvaluationOptions(limit=limit, bootstrap_samples=EVALUATION_BOOTSTRAP),
                            progress=progress)
    return report, examples_from_results(report.benchmarks, followups, objective)
