"""Batch tab: upload benchmark files, preview what was detected, evaluate, download the results.

Loading, scoring, caching and metrics are `core.evaluation`; this module
turns their frames into tables and wires progress and cancellation. Scores go to the app's
SQLite cache as they are computed, so a cancelled run keeps them and a rerun only scores what
is missing. On ZeroGPU the run is split into calls that each fit the GPU time budget.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr
import pandas as pd

from core.locations import ASSETS_DIR
from core.evaluation.benchmark import Benchmark, describe_benchmarks
from core.evaluation.detect import detect_benchmarks
from core.names import COL_CI_HIGH, COL_CI_LOW, COL_P, COL_VALUE, KINDS, METRICS_BY_KIND, METRICS_COLUMNS
from core.evaluation.elo import EloTable, load_elo, parse_elo_map
from core.evaluation.named_datasets import dataset_file
from core.errors import BenchmarkFormatError
from core.evaluation.report import EvaluationReport
from core.evaluation.runner import EvaluationOptions, run_evaluation
from core.engine.followups import default_followups, load_followups
from ui import exports, gpu
from ui.context import AppContext
from ui.errors import user_errors
from ui.limits import app_limits
from ui.markdown import escape
from ui.settings import AppSettings
from ui.state import AppState, bind

log = logging.getLogger(__name__)

SAMPLES_DIR = ASSETS_DIR / "samples"
AUTO = "detect from the files"
UNITS = {"pairwise": "pairs", "rating": "rated replies", "ranking": "model responses"}
BATCH_CONCURRENCY = 4  # batch runs handled at once; their model work still takes turns
EMPTY_REPORT = EvaluationReport([])  # its frames give the tables' headers before a run
CI_COLUMN = "95% CI"
METRIC_COLUMNS = [c for c in METRICS_COLUMNS if c != COL_CI_HIGH]
METRIC_COLUMNS[METRIC_COLUMNS.index(COL_CI_LOW)] = CI_COLUMN  # the interval as one text column


def sample_sets(folder: Path = SAMPLES_DIR) -> dict[str, list[Path]]:
    """Bundled samples: each sub-folder is one sample; loose files are one sample each, except
    accept/reject files of the paper's layout, which go together."""
    if not folder.is_dir():
        return {}
    sets: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.suffix == ".md":
            continue
        if entry.is_dir():
            files = sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith("."))
            if files:
                sets[entry.name.replace("_", " ")] = files
        elif entry.is_file():
            words = [w for w in entry.name.split(".")[0].split("_") if w not in ("accept", "reject")]
            sets.setdefault(" ".join(words), []).append(entry)
    return sets


def upload_paths(files: Any) -> list[str]:
    if not files:
        return []
    items = files if isinstance(files, (list, tuple)) else [files]
    return [str(getattr(f, "name", f)) for f in items]


def _kind(kind: str | None) -> str | None:
    return None if not kind or kind == AUTO else kind


def stage(paths: Sequence[str], folder: Path) -> list[Path]:
    """Put uploaded files side by side in `folder` under their own names: gradio stores each
    upload in its own directory, but the paper's accept/reject partners are found by name
    within one directory."""
    staged: list[Path] = []
    for path in map(Path, paths):
        target = folder / path.name
        if target.exists():
            raise BenchmarkFormatError(f"two uploaded files are both named {path.name}; rename one")
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        staged.append(target)
    return staged


def named_dataset(dataset: str | None, split: str | None, settings: AppSettings | None) -> list[Path]:
    """The Parquet copy of the dataset a visitor named, if any. In hosted mode only the owner's
    list is accepted, checked before the disk or the network is touched (`core.evaluation.named_datasets`)."""
    if not (dataset or "").strip():
        return []
    policy = settings.dataset_policy if settings is not None else None
    if policy is None:
        return [dataset_file(dataset.strip(), (split or "").strip() or None)]
    return [dataset_file(dataset, split, allowed=policy, folder=settings.datasets_dir,
                         max_age=settings.export_max_age)]


def detect_files(files: Any, kind: str | None, score_field: str | None, dataset: str | None = None,
                 split: str | None = None, drop_duplicates: bool | None = False,
                 settings: AppSettings | None = None) -> list[Benchmark]:
    paths = upload_paths(files)
    named = named_dataset(dataset, split, settings)
    if not paths and not named:
        raise BenchmarkFormatError("no files: upload benchmark files, load a bundled sample or "
                                   "name a dataset")
    with tempfile.TemporaryDirectory(prefix="flr-upload-") as folder:
        # detection reads every file completely, so the staged copies can go afterwards
        return detect_benchmarks(stage(paths, Path(folder)) + named, kind=_kind(kind),
                                 score_field=(score_field or "").strip() or None,
                                 drop_duplicates=bool(drop_duplicates))


def parse_elo_map_text(text: str | None) -> dict[str, str]:
    """`MODEL=ELO_NAME` lines (the CLI's --elo-map) as a mapping."""
    return parse_elo_map((text or "").splitlines(), where="ELO name mapping", files=False)


@user_errors
def preview(files: Any, kind: str, score_field: str, dataset: str | None = None,
            split: str | None = None, drop_duplicates: bool | None = False, *,
            settings: AppSettings | None = None) -> tuple[pd.DataFrame, str]:
    """What the files hold, before anything is scored."""
    if not upload_paths(files) and not (dataset or "").strip():
        return describe_benchmarks([]), ""
    benchmarks = detect_files(files, kind, score_field, dataset, split, drop_duplicates, settings)
    to_score = [f"{b.n} {UNITS[b.kind]} of {b.name}" for b in benchmarks if not b.precomputed]
    note = (f"Detected {len(benchmarks)} benchmark(s). "
            + (f"To be scored with the model: {', '.join(to_score)} (cached scores are reused)."
               if to_score else "Every row has precomputed follow-up values: no model is needed."))
    return describe_benchmarks(benchmarks), note


@user_errors
def load_sample(name: str) -> list[str]:
    sets = sample_sets()
    if name not in sets:
        raise gr.Error(f"no bundled sample named {name!r}; choose one of {', '.join(sets) or '(none)'}")
    return [str(p) for p in sets[name]]


def evaluate(state: AppState, benchmarks: Sequence[Benchmark], *, config: Any, followups: Any,
             elo: EloTable | None, limit: int | None, cancel: threading.Event,
             progress: Callable[[int, int, str], None] | None = None,
             elo_map: dict[str, str] | None = None) -> EvaluationReport:
    """`run_evaluation` with the app's scorer and cache. Files with precomputed values need no
    model and run at once; model work waits for a model-job slot, and on ZeroGPU runs in chunks
    of GPU calls, the visitor's cancel checked between chunks."""
    options = EvaluationOptions(limit=limit, elo=elo, elo_map=elo_map or {})
    cache_path = state.settings.cache_path
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(scorer_factory=lambda: state.scorer(config), config=config, followups=followups,
                  cache_path=cache_path, options=options)
    if all(b.precomputed for b in benchmarks):
        return run_evaluation(benchmarks, cancel=cancel, progress=progress, **kwargs)
    with state.model_slots:
        if not state.settings.zero_gpu:
            return run_evaluation(benchmarks, cancel=cancel, progress=progress, **kwargs)
        return _evaluate_in_chunks(state, benchmarks, config, followups, options, cancel, progress)


def _evaluate_in_chunks(state: AppState, benchmarks: Sequence[Benchmark], config: Any, followups: Any,
                        options: EvaluationOptions, cancel: threading.Event,
                        progress: Callable[[int, int, str], None] | None) -> EvaluationReport:
    """GPU calls each asking for the time its share of the work needs (`ui.gpu.chunk_plan`),
    within `FLR_GPU_SECONDS`; the visitor is warned first when a day's quota will not cover it."""
    todo = gpu.conversations_to_score(benchmarks, options.limit, cache_path=state.settings.cache_path,
                                      config=config, followups=followups)
    plan = gpu.chunk_plan(config, todo, followups, state.settings.gpu_seconds)
    log.info("ZeroGPU plan: %d conversation(s), ~%.0f s of scoring in %d call(s) asking %.0f s",
             plan.conversations, plan.work, plan.calls, plan.requested)
    if warning := plan.quota_warning():
        gr.Warning(warning, duration=None)
    remaining, scored = len(todo), 0
    while True:
        report = gpu.evaluate_chunk(state.factory, config, list(benchmarks), followups,
                                    state.settings.cache_path, options, plan.work_for(remaining))
        stats = report.stats
        scored += stats.get("scored", 0)
        done = stats.get("from_cache", 0) + stats.get("scored", 0) + stats.get("failed", 0)
        remaining = max(stats.get("to_score", 0) - done, 0)
        if progress:
            progress(done, stats.get("to_score", 0), "scoring on the GPU")
        if not report.cancelled or stats.get("scored", 0) == 0 or cancel.is_set():
            break
        log.info("ZeroGPU chunk done (%d scored); continuing", stats.get("scored", 0))
    report.stats["scored"] = scored  # the whole run, not only its last chunk
    return report


def metrics_table(report: EvaluationReport, digits: int = 4) -> pd.DataFrame:
    frame = report.metrics_frame()
    if frame.empty:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    ci = [f"[{lo:.{digits}f}, {hi:.{digits}f}]" if pd.notna(lo) and pd.notna(hi) else ""
          for lo, hi in zip(frame[COL_CI_LOW], frame[COL_CI_HIGH])]
    out = frame.assign(**{CI_COLUMN: ci}).drop(columns=[COL_CI_LOW, COL_CI_HIGH])
    return out[METRIC_COLUMNS].round({COL_VALUE: digits, COL_P: 6})


def headline_markdown(report: EvaluationReport) -> str:
    """One line per benchmark: the headline figure with its CI, and the baselines beside it."""
    lines = []
    for b in report.benchmarks:
        figures = METRICS_BY_KIND[b.kind]
        parts = []
        for metric in figures:
            value, ci = b.metrics.get(metric), b.metrics.get(f"{metric}_ci") or [None, None]
            if value is None:
                parts.append(f"{metric} n/a")
                continue
            interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if None not in ci else ""
            parts.append(f"**{metric} {value:.3f}**{interval}")
        base = [f"{escape(name)} {fig.get(figures[0]):.3f}" for name, fig in b.baselines.items()
                if fig.get(figures[0]) is not None]
        line = f"- **{escape(b.name)}** ({b.kind}, n = {b.n}): FLR " + ", ".join(parts)
        if base:
            line += f"; baselines ({figures[0]}): " + ", ".join(base)
        if b.skipped:
            line += f"; {len(b.skipped)} row(s) skipped"
        lines.append(line)
    stats = report.stats
    head = ("### Run cancelled: what was scored is cached; press Run again to resume\n"
            if report.cancelled else "### Results\n")
    foot = (f"\n\n{stats.get('scored', 0)} conversation(s) scored, {stats.get('from_cache', 0)} from the "
            f"cache{', model loaded' if stats.get('model_loaded') else ', no model needed'}"
            f" · {stats.get('seconds', 0.0):.1f} s") if stats else ""
    warnings = [f"> ⚠️ {escape(b.name)}: {escape(w)}" for b in report.benchmarks for w in b.warnings]
    return head + "\n".join(lines) + foot + ("\n\n" + "\n\n".join(warnings) if warnings else "")


@user_errors
def run(state: AppState, files: Any, kind: str, score_field: str, elo_file: Any, followups_file: Any,
        limit: float | None, model: str, mode: str, aggregation: str, reports: list[dict[str, Any]],
        request: gr.Request, progress: gr.Progress = gr.Progress(track_tqdm=True),
        elo_map_text: str | None = None, drop_duplicates: bool | None = None,
        dataset: str | None = None, split: str | None = None
        ) -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str], list[dict[str, Any]]]:
    """Run handler: headline, metrics table, summary, skipped rows, downloads, session reports."""
    elo_map = parse_elo_map_text(elo_map_text)
    n = int(limit) if limit else None  # empty or 0: every row
    if n is not None and n < 0:
        raise BenchmarkFormatError(f"'Only the first N' must be 0 or more (0 or empty: all rows); got {n}")
    benchmarks = detect_files(files, kind, score_field, dataset, split, drop_duplicates, state.settings)
    config = state.config_for(model, mode, aggregation)
    followups = load_followups(upload_paths(followups_file)[0]) if upload_paths(followups_file) else default_followups()
    elo = load_elo(upload_paths(elo_file)[0]) if upload_paths(elo_file) else None
    check_run_size(state, benchmarks, n, config, followups)
    session = getattr(request, "session_hash", None) or "local"
    cancel = state.cancels.start(session)
    progress(0, desc="starting")
    try:
        report = evaluate(state, benchmarks, config=config, followups=followups, elo=elo, limit=n,
                          cancel=cancel, elo_map=elo_map,
                          progress=lambda done, total, message: progress((done, max(total, 1)), desc=message))
    finally:
        state.cancels.finish(session, cancel)
    out_dir = exports.new_folder(state.settings, "batch")
    downloads = [str(p) for p in report.export(out_dir)]
    # a cancelled run's partial figures are shown here but kept out of the dashboards
    kept = list(reports or []) + ([] if report.cancelled else [report.to_dict()])
    return (headline_markdown(report), metrics_table(report), report.summary_frame().round(4),
            report.skipped_frame(), downloads, kept)


def check_run_size(state: AppState, benchmarks: Sequence[Benchmark], limit: int | None, config: Any,
                   followups: Any) -> None:
    """Refuse a hosted run that would score more than `AppSettings.run_cap` conversations not
    already cached (a 50,000-pair file is about 44 hours of a Space), before any model work."""
    cap = state.settings.run_cap
    if cap is None:
        return
    todo = gpu.conversations_to_score(benchmarks, limit, cache_path=state.settings.cache_path,
                                      config=config, followups=followups)
    if len(todo) > cap:
        raise BenchmarkFormatError(
            f"this run would score {len(todo):,} conversations; this server scores at most {cap:,} "
            "per run. Set 'Only the first N' under More options to fewer rows (scores are cached, "
            "so later runs continue where this one stopped), or run `flr evaluate` on your own machine")


def hosted_note(settings: AppSettings) -> str:
    """What a visitor of a hosted server can and cannot run here, stated before they try."""
    if not settings.hosted:
        return ""
    datasets = (f"Datasets by name offered here: {', '.join(f'`{d}`' for d in settings.allowed_datasets)}."
                if settings.allowed_datasets else
                "Datasets by name are off on this server (its owner can list Hub ids in `FLR_ALLOWED_DATASETS`).")
    return (f"On this server one run scores at most {settings.run_conversations:,} conversations "
            f"that are not cached yet; files are capped at {app_limits().records:,} rows. {datasets}")


@user_errors
def cancel_run(state: AppState, request: gr.Request) -> str:
    session = getattr(request, "session_hash", None) or "local"
    if state.cancels.cancel(session):
        return "Cancelling after the conversations being scored now; what was scored stays cached."
    return "Nothing is running."


def dataset_box(settings: AppSettings) -> gr.components.Component:
    """Free text locally; in hosted mode a choice among the owner's list, or a closed box that
    says how the owner opens it (the handler checks the name either way)."""
    if settings.dataset_policy is None:
        return gr.Textbox(label="Dataset by name (Hugging Face Hub id or local dataset folder)",
                          placeholder="e.g. allenai/reward-bench", elem_id="batch-dataset")
    if settings.allowed_datasets:
        return gr.Dropdown(list(settings.allowed_datasets), value=None, label="Dataset by name",
                           info="The Hub datasets this server offers", elem_id="batch-dataset")
    return gr.Textbox(label="Dataset by name", interactive=False, elem_id="batch-dataset",
                      placeholder="off on this server; its owner enables it with FLR_ALLOWED_DATASETS")


def build(ctx: AppContext) -> None:
    state = ctx.state
    samples = sample_sets()
    gr.Markdown(
        "Upload benchmark files: the FLR paper's accept/reject layout (with or without precomputed "
        "`positive`/`negative` values), HH-RLHF pairs, prompt/chosen/rejected, LLMBar, rating files "
        "or model outputs for ranking, as JSON, JSONL (also .gz), CSV or Parquet. Check what was "
        "detected, then run. The model, mode and aggregation above apply. "
        + hosted_note(state.settings), elem_id="batch-intro")
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(file_count="multiple", label="Benchmark files", elem_id="batch-files",
                            file_types=[".json", ".jsonl", ".gz", ".csv", ".parquet"])
        with gr.Column(scale=2):
            if samples:
                sample = gr.Dropdown(list(samples), value=next(iter(samples)), label="Bundled samples",
                                     elem_id="sample-choice")
                load_button = gr.Button("Load sample", elem_id="load-sample")
            kind = gr.Dropdown([AUTO, *KINDS], value=AUTO, label="Benchmark kind")
            score_field = gr.Textbox(label="Score field of rating files (optional)",
                                     placeholder="e.g. human_score or scores.overall")
    with gr.Accordion("More options", open=False):
        with gr.Row():
            # minimum 0, not 1: gradio turns the empty box into 0 once the accordion opens,
            # and a minimum of 1 then refused every run ("Value 0 is less than minimum value 1")
            limit = gr.Number(None, label="Only the first N pairs / rows per benchmark (empty or 0: all)",
                              precision=0, minimum=0, elem_id="batch-limit")
            elo_file = gr.File(label="Reference ELO table (JSON/CSV) for ranking; default: the paper's",
                               file_types=[".json", ".csv"])
            followups_file = gr.File(label="Follow-up set (JSON); default: the bundled set",
                                     file_types=[".json"])
        with gr.Row():
            dataset = dataset_box(state.settings)
            split = gr.Textbox(label="Split", placeholder="e.g. filtered", elem_id="batch-split")
            elo_map_text = gr.Textbox(label="ELO name mapping, one MODEL=ELO_NAME per line (names "
                                            "are never matched across versions or dates)",
                                      lines=2, elem_id="batch-elo-map")
            drop_duplicates = gr.Checkbox(False, label="Drop duplicated rows (keep the first copy)",
                                          elem_id="batch-drop-duplicates")
    detected_note = gr.Markdown(elem_id="batch-detected-note")
    detected = gr.Dataframe(describe_benchmarks([]), label="Detected", interactive=False,
                            elem_id="batch-detected", wrap=True)
    with gr.Row():
        run_button = gr.Button("Run evaluation", variant="primary", elem_id="batch-run")
        cancel_button = gr.Button("Cancel", variant="stop", elem_id="batch-cancel")
    status = gr.Markdown(elem_id="batch-status")
    headline = gr.Markdown(elem_id="batch-headline")
    metrics = gr.Dataframe(pd.DataFrame(columns=METRIC_COLUMNS), label="Metrics (FLR, its categories and baselines incl. Direct, on the same rows; 95% CIs: Wilson for accuracy, bootstrap for correlations)",
                           interactive=False, show_search="filter", elem_id="batch-metrics")
    with gr.Accordion("Summary across benchmarks (pooled by rows; RewardBench score where subsets are RewardBench's)", open=False):
        summary = gr.Dataframe(EMPTY_REPORT.summary_frame(), interactive=False,  # headers, not 1 2 3
                               elem_id="batch-summary")
    with gr.Accordion("Skipped rows", open=False):
        skipped = gr.Dataframe(EMPTY_REPORT.skipped_frame(), interactive=False, wrap=True,
                               elem_id="batch-skipped")
    downloads = gr.File(label="Downloads: scored rows (paper-layout JSONL, CSV) and REPORT.json",
                        file_count="multiple", interactive=False, elem_id="batch-downloads",
                        height=160)

    @user_errors
    def preview_here(files: Any, kind: str, score_field: str, dataset: str | None, split: str | None,
                     drop_duplicates: bool | None) -> tuple[pd.DataFrame, str]:
        return preview(files, kind, score_field, dataset, split, drop_duplicates, settings=state.settings)

    preview_inputs = [files, kind, score_field, dataset, split, drop_duplicates]
    dataset_event = dataset.submit if isinstance(dataset, gr.Textbox) else dataset.input
    for trigger in (files.change, kind.change, score_field.submit, dataset_event, split.submit):
        trigger(preview_here, preview_inputs, [detected, detected_note], api_visibility="private")
    if samples:
        load_button.click(load_sample, [sample], [files], api_visibility="private")
    run_event = run_button.click(
        bind(run, state),
        [files, kind, score_field, elo_file, followups_file, limit, *ctx.scoring_inputs, ctx.reports,
         elo_map_text, drop_duplicates, dataset, split],
        [headline, metrics, summary, skipped, downloads, ctx.reports],
        # its own queue: files with precomputed values need no model and must not wait behind
        # model jobs; model work inside waits for `state.model_slots` instead
        api_name="evaluate", concurrency_id="batch", concurrency_limit=BATCH_CONCURRENCY)
    run_event.then(user_errors(lambda: ""), None, [status], api_visibility="private")
    cancel_button.click(bind(cancel_run, state), None, [status], api_visibility="private", queue=False)
