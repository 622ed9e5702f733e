"""Mined samples -> LLaMA-Factory datasets (DPO, KTO, SFT; alpaca and sharegpt) and a summary.

Which samples become training data is decided here; the records and `dataset_info.json` are
written by `core.mining.llamafactory`. Rewards and provenance go to the plain JSONL of every
sample (`<prefix>_samples.jsonl`) and to `<prefix>_summary.json`.

Choices made on purpose:
- DPO: chosen = highest FLR, rejected = lowest; a prompt is kept only when the margin is
  positive and at least `min_margin` (equal rewards say nothing about preference).
- KTO with no threshold: a sample is desirable above its prompt's median FLR and undesirable
  below it; samples exactly at the median (the middle one of an odd K) are left out.
- SFT: the highest-FLR sample of each prompt with at least one scored sample.

"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from core.errors import ConfigError
from core.mining.llamafactory import (
    FLAVOURS,
    dataset_info_entry,
    dpo_records,
    kto_records,
    sft_records,
    write_dataset_info,
    write_json,
)
from core.mining.mining import KTOExample, PreferencePair, PromptSamples, Sample
from core.mining.prompts import MiningPrompt
from core.names import (
    CHOSEN,
    REJECTED,
    SAMPLE_FLR,
    SAMPLE_INDEX,
    SAMPLE_PROMPT,
    SAMPLE_PROMPT_ID,
    SAMPLE_RESPONSE,
    SAMPLE_ROLE,
)
from core.textfiles import atomic_output


@dataclass(frozen=True)
class ExportConfig:
    """How samples become training data."""

    min_margin: float = 0.0  # DPO: keep a prompt only if best - worst FLR >= this (and > 0)
    kto_threshold: float | None = None  # KTO: desirable iff FLR >= this; None = per-prompt median
    prefix: str = "flr"  # file stem and dataset-name prefix
    flavours: tuple[str, ...] = FLAVOURS  # which LLaMA-Factory formattings to write
    finished_only: bool = False  # leave replies cut at max new tokens out of DPO / KTO / SFT

    def __post_init__(self) -> None:
        if not math.isfinite(self.min_margin) or self.min_margin < 0:
            raise ConfigError(f"min margin must be a non-negative number; got {self.min_margin!r}")
        if self.kto_threshold is not None and not math.isfinite(self.kto_threshold):
            raise ConfigError(f"KTO threshold must be a finite number; got {self.kto_threshold!r}")
        unknown = [f for f in self.flavours if f not in FLAVOURS]
        if unknown or not self.flavours:
            raise ConfigError(f"flavours must be among {', '.join(FLAVOURS)}; got {', '.join(self.flavours) or 'none'}")
        if not self.prefix or not self.prefix.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"prefix must be letters, digits, '-' or '_'; got {self.prefix!r}")


@dataclass(frozen=True)
class Selection:
    """What each export keeps, and why prompts or samples were left out."""

    pairs: list[PreferencePair]
    kto: list[KTOExample]
    sft: list[tuple[int, MiningPrompt, Sample]]
    dropped: dict[str, int] = field(default_factory=dict)  # DPO: reason -> prompts
    kto_at_median: int = 0


@dataclass(frozen=True)
class ExportResult:
    files: dict[str, Path]  # dataset name (or "samples", "summary", "dataset_info") -> path
    summary: dict[str, Any]
    selection: Selection


def select(results: Sequence[PromptSamples], config: ExportConfig) -> Selection:
    if config.finished_only:
        results = [replace(r, samples=tuple(s for s in r.samples if s.finished)) for r in results]
    pairs, dropped = preference_pairs(results, config.min_margin)
    kto, at_median = kto_examples(results, config.kto_threshold)
    return Selection(pairs, kto, sft_examples(results), dropped, at_median)


def preference_pairs(results: Sequence[PromptSamples],
                     min_margin: float = 0.0) -> tuple[list[PreferencePair], dict[str, int]]:
    """Best vs worst sample per prompt, and how many prompts were dropped for which reason."""
    pairs: list[PreferencePair] = []
    dropped = {"fewer than 2 scored samples": 0, "equal rewards": 0, "margin below minimum": 0}
    for result in results:
        best, worst = result.best(), result.worst()
        if best is None or worst is None or len(result.scored) < 2:
            dropped["fewer than 2 scored samples"] += 1
            continue
        pair = PreferencePair(result.index, result.prompt, best, worst)
        if pair.margin <= 0:
            dropped["equal rewards"] += 1
        elif pair.margin < min_margin:
            dropped["margin below minimum"] += 1
        else:
            pairs.append(pair)
    return pairs, dropped


def kto_examples(results: Sequence[PromptSamples],
                 threshold: float | None = None) -> tuple[list[KTOExample], int]:
    """Every scored sample tagged desirable or not; also how many sat exactly at a median."""
    examples: list[KTOExample] = []
    at_median = 0
    for result in results:
        scored = result.scored
        if not scored:
            continue
        cut = threshold if threshold is not None else statistics.median(s.flr for s in scored)
        for sample in scored:
            assert sample.flr is not None
            if threshold is None and sample.flr == cut:
                at_median += 1
                continue
            examples.append(KTOExample(result.index, result.prompt, sample, sample.flr >= cut))
    return examples, at_median


def sft_examples(results: Sequence[PromptSamples]) -> list[tuple[int, MiningPrompt, Sample]]:
    out = []
    for result in results:
        best = result.best()
        if best is not None:
            out.append((result.index, result.prompt, best))
    return out


def export_preferences(results: Sequence[PromptSamples], output_dir: str | Path,
                       config: ExportConfig = ExportConfig(),
                       run_info: Mapping[str, Any] | None = None) -> ExportResult:
    """Write the DPO / KTO / SFT files, `dataset_info.json`, the samples JSONL and the summary."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    selection = select(results, config)
    with_system = any(r.prompt.system for r in results)
    with_history = any(len(r.prompt.turns) > 1 for r in results)
    builders = {
        "dpo": lambda flavour: dpo_records(selection.pairs, flavour, with_system, with_history),
        "kto": lambda flavour: kto_records(selection.kto, flavour, with_system, with_history),
        "sft": lambda flavour: sft_records(selection.sft, flavour, with_system, with_history),
    }
    files: dict[str, Path] = {}
    entries: dict[str, dict[str, Any]] = {}
    for kind, build in builders.items():
        for flavour in config.flavours:
            name = f"{config.prefix}_{kind}_{flavour}"
            files[name] = write_json(out / f"{name}.json", build(flavour))
            entries[name] = dataset_info_entry(f"{name}.json", kind, flavour, with_system,
                                               with_history and flavour == "alpaca")
    files["dataset_info"] = write_dataset_info(out, entries)
    files["samples"] = write_samples_jsonl(out / f"{config.prefix}_samples.jsonl", results, selection)
    summary = summarize(results, selection, config)
    summary["datasets"] = {name: entries[name]["file_name"] for name in entries}
    if run_info:
        summary["run"] = dict(run_info)
    files["summary"] = write_json(out / f"{config.prefix}_summary.json", summary)
    return ExportResult(files, summary, selection)


def write_samples_jsonl(path: Path, results: Sequence[PromptSamples], selection: Selection) -> Path:
    """One line per sample with its prompt, rewards and what each export did with it."""
    chosen = {(p.prompt_index, p.chosen.index) for p in selection.pairs}
    rejected = {(p.prompt_index, p.rejected.index) for p in selection.pairs}
    kto = {(e.prompt_index, e.sample.index): e.desirable for e in selection.kto}
    best = {(i, s.index) for i, _, s in selection.sft}
    with atomic_output(path) as handle:
        for result in results:
            for sample in result.samples:
                slot = (result.index, sample.index)
                record = {"prompt_index": result.index, "prompt_id": result.prompt.id,
                          "conversation": list(result.prompt.turns), "system": result.prompt.system,
                          **sample.to_record(), "dpo": CHOSEN if slot in chosen else
                          REJECTED if slot in rejected else None,
                          "kto_tag": kto.get(slot), "sft": slot in best}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _stats(values: Iterable[float]) -> dict[str, float] | None:
    values = sorted(values)
    if not values:
        return None
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {"count": len(values), "mean": statistics.fmean(values),
            "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "min": values[0], "p25": quartiles[0], "median": quartiles[1], "p75": quartiles[2],
            "max": values[-1]}


def summarize(results: Sequence[PromptSamples], selection: Selection,
              config: ExportConfig) -> dict[str, Any]:
    """Reward distribution, DPO margins, and how many prompts / samples each export kept."""
    samples = [s for r in results for s in r.samples]
    scored = [s for s in samples if s.flr is not None]
    categories: dict[str, list[float]] = {}
    for s in scored:
        for name, value in s.rewards.items():
            categories.setdefault(name, []).append(value)
    margins = [p.margin for p in selection.pairs]
    return {
        "prompts": len(results),
        "samples": len(samples),
        "scored_samples": len(scored),
        "empty_replies": sum(1 for s in samples if s.flr is None),
        "unfinished_replies": sum(1 for s in samples if not s.finished),
        "unfinished_left_out": config.finished_only,
        "reward": _stats(s.flr for s in scored),
        "category_reward_means": {name: statistics.fmean(v) for name, v in categories.items()},
        "dpo": {
            "min_margin": config.min_margin,
            "prompts_kept": len(selection.pairs),
            "prompts_dropped": sum(selection.dropped.values()),
            "dropped_by_reason": dict(selection.dropped),
            "margin": _stats(margins),
            "chosen_mean_flr": statistics.fmean(p.chosen.flr for p in selection.pairs) if margins else None,
            "rejected_mean_flr": statistics.fmean(p.rejected.flr for p in selection.pairs) if margins else None,
        },
        "kto": {
            "rule": (f"FLR >= {config.kto_threshold}" if config.kto_threshold is not None
                     else "above the prompt's median FLR"),
            "examples": len(selection.kto),
            "desirable": sum(1 for e in selection.kto if e.desirable),
            "undesirable": sum(1 for e in selection.kto if not e.desirable),
            "left_out_at_median": selection.kto_at_median,
        },
        "sft": {"examples": len(selection.sft)},
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the summary, for the terminal."""
    def num(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = [f"prompts {summary['prompts']}   samples {summary['samples']}   scored "
             f"{summary['scored_samples']}   empty {summary['empty_replies']}   cut at max tokens "
             f"{summary['unfinished_replies']}"
             + (" (left out of the datasets)" if summary.get("unfinished_left_out") else ""), ""]
    header = f"{'':<14}{'count':>7}{'mean':>10}{'std':>10}{'min':>10}{'median':>10}{'max':>10}"
    lines.append(header)
    for label, stats in (("FLR", summary["reward"]), ("DPO margin", summary["dpo"]["margin"])):
        if stats is None:
            lines.append(f"{label:<14}{0:>7}")
            continue
        lines.append(f"{label:<14}{stats['count']:>7}" + "".join(
            f"{num(stats[k]):>10}" for k in ("mean", "std", "min", "median", "max")))
    lines.append("")
    for name, mean in summary["category_reward_means"].items():
        lines.append(f"  {name:<18} mean reward {num(mean)}")
    dpo, kto = summary["dpo"], summary["kto"]
    reasons = ", ".join(f"{n} {r}" for r, n in dpo["dropped_by_reason"].items() if n) or "none"
    lines += [
        "",
        f"DPO pairs  {dpo['prompts_kept']} prompts kept, {dpo['prompts_dropped']} dropped ({reasons}); "
        f"min margin {num(dpo['min_margin'])}; chosen mean FLR {num(dpo['chosen_mean_flr'])}, "
        f"rejected {num(dpo['rejected_mean_flr'])}",
        f"KTO        {kto['examples']} examples: {kto['desirable']} desirable, {kto['undesirable']} "
        f"undesirable ({kto['rule']}; {kto['left_out_at_median']} left out at the median)",
        f"SFT        {summary['sft']['examples']} examples (best reply per prompt)",
    ]
    return "\n".join(lines)


def samples_frame(results: Sequence[PromptSamples], selection: Selection | None = None) -> pd.DataFrame:
    """One row per sample: prompt, reply, FLR, per-category rewards, and its DPO role."""
    chosen = {(p.prompt_index, p.chosen.index) for p in selection.pairs} if selection else set()
    rejected = {(p.prompt_index, p.rejected.index) for p in selection.pairs} if selection else set()
    categories: list[str] = []
    for r in results:
        for s in r.samples:
            categories += [c for c in s.rewards if c not in categories]
    rows = []
    for r in results:
        for s in r.samples:
            slot = (r.index, s.index)
            rows.append({SAMPLE_PROMPT_ID: r.prompt.id, SAMPLE_PROMPT: r.prompt.text, SAMPLE_INDEX: s.index,
                         SAMPLE_RESPONSE: s.response, SAMPLE_FLR: s.flr,
                         SAMPLE_ROLE: CHOSEN if slot in chosen else REJECTED if slot in rejected else (s.note or ""),
                         **{c: s.rewards.get(c) for c in categories}})
    return pd.DataFrame(rows, columns=[SAMPLE_PROMPT_ID, SAMPLE_PROMPT, SAMPLE_INDEX, SAMPLE_RESPONSE, SAMPLE_FLR, SAMPLE_ROLE, *categories])
