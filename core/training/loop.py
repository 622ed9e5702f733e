"""The alignment loop as plain functions: mine preference pairs with FLR, align the policy on
them, compare base and aligned replies. `flr align` runs the last two on a mined folder
(`align_and_compare`); `flr loop` runs all three from a prompts file (`mine_pairs` first).

`mine_pairs` is `flr mine` in one process (no Ray, no progress bar): the same `core.mining`
functions, the same files and the same summary (`run` records the policy, scorer and scoring
settings, which `align_and_compare` reads back), so a mined folder from either is the same input.
When the policy and the scorer are the same model it is loaded once, as in `flr mine`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.engine.config import EMBEDDED_MODEL, ScoringConfig
from core.errors import InputError
from core.textfiles import write_json

log = logging.getLogger(__name__)

REPORT_JSON = "align_report.json"
REPORT_MD = "align_report.md"

Report = Callable[[str], None]


@dataclass(frozen=True)
class Judging:
    """Who is aligned and who judges the before/after comparison."""

    policy: str = EMBEDDED_MODEL  # the policy that was mined (the base of the adapter)
    scorer: str = EMBEDDED_MODEL  # the scorer that mined the pairs: the first judge
    mode: str | None = None  # its mode; None: the one the mining used
    second_scorer: str | None = None  # second judge; None: the same scorer in the other mode
    eval_samples: int = 1  # replies per held-out prompt and policy
    max_new_tokens: int = 128  # reply length cap of the comparison's samples
    seed: int = 0  # sampling seed of the comparison (the same for both policies)
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("eval_samples", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a positive integer; got {value!r}")


def mine_pairs(prompts_path: str | Path, output_dir: str | Path, scoring: ScoringConfig, policy_model: str,
               mining: Any, export: Any, followups: Any, *, limit: int | None = None) -> Any:
    """Sample, score and export as `flr mine --output-dir` does; returns the `ExportResult`."""
    from core.engine.scorer import load_scorer
    from core.mining.mining import mine
    from core.mining.policy import policy_for
    from core.mining.preferences import export_preferences
    from core.mining.prompts import PromptFileError, load_prompts

    prompts = load_prompts(str(prompts_path))
    if limit is not None:
        if limit < 1:
            raise PromptFileError(f"--limit must be a positive number of prompts; got {limit}")
        prompts = prompts[:limit]
    started = time.perf_counter()
    scorer = load_scorer(scoring)
    policy = policy_for(scoring.with_changes(model=policy_model), scorer)
    load_seconds = time.perf_counter() - started
    results = mine(prompts, policy, scorer, followups, mining, output_dir)
    run_info = {"prompts_file": str(prompts_path), "policy": policy.identity, "scorer": scorer.identity,
                "scoring": scoring.scoring_key(), "followups": followups.fingerprint(),
                "categories": list(followups.names), **mining.sampling_key(),
                "load_seconds": round(load_seconds, 2),
                "mine_seconds": round(time.perf_counter() - started - load_seconds, 2)}
    return export_preferences(results, output_dir, export, run_info)


def align_and_compare(mined_dir: str | Path, output: str | Path, options: Any, judging: Judging,
                      report: Report = log.info, followups: Any | None = None,
                      restart: bool = False) -> dict[str, Any]:
    """Train a DPO/KTO adapter on the mined pairs, then judge base vs aligned on the held-out
    prompts with `followups` (default: the bundled set); writes the adapter, `align_report.json`
    and `align_report.md` in `output` and returns the report. Training resumes from `output`'s
    checkpoints of the same run (`restart` discards them)."""
    from core.engine.followups import default_followups
    from core.engine.models import load_model
    from core.engine.scorer import FLRScorer, load_scorer
    from core.mining.mining import MiningConfig
    from core.mining.policy import TransformersPolicy
    from core.textfiles import write_text
    from core.training import align as al
    from core.training import comparison as cmp
    from core.training.finetune import ADAPTER_FILE, base_reference

    output = Path(output)
    data = al.read_mined(mined_dir)
    prompts = data.prompts
    held = al.held_out_prompts(sorted({p.id for p in prompts.values()}), options.held_out_fraction)
    policy_config = ScoringConfig(model=judging.policy, device=judging.device)
    loaded = load_model(policy_config)
    policy = TransformersPolicy.from_loaded(loaded)
    mined_policy = data.summary.get("run", {}).get("policy")
    if mined_policy and mined_policy != policy.identity:
        report(f"note: the pairs were mined from {mined_policy}, not {policy.identity}; training off-policy")
    render = None if policy.has_chat_template else policy.render
    rows = (al.dpo_rows if options.method == "dpo" else al.kto_rows)(data, held, render)
    train_prompts = len({p.id for p in prompts.values()} - held)
    report(f"{len(rows)} {options.method.upper()} examples from {train_prompts} prompts; "
           f"{len(held)} prompts held out")
    result = al.train_policy(rows, loaded, output, options, report=report, restart=restart)
    write_json(output / ADAPTER_FILE, {"base_model": base_reference(judging.policy)})

    margins = [entry["rewards/margins"] for entry in result.logs if "rewards/margins" in entry]
    training = {"method": options.method, "examples": len(rows), "train_prompts": train_prompts,
                "steps": result.steps, "seconds": result.seconds, "logs": result.logs,
                "margin_first": margins[0] if margins else None, "margin_last": margins[-1] if margins else None}

    mode = judging.mode or data.summary.get("run", {}).get("scoring", {}).get("mode", "base")
    scorer = load_scorer(ScoringConfig(model=judging.scorer, device=judging.device, mode=mode))
    other = "feedback" if mode == "base" else "base"
    second = (load_scorer(ScoringConfig(model=judging.second_scorer, device=judging.device, mode=mode))
              if judging.second_scorer else FLRScorer(scorer.loaded, scorer.config.with_changes(mode=other)))
    base_policy = TransformersPolicy.from_loaded(load_model(policy_config))  # training changed `loaded`
    aligned_policy = TransformersPolicy.from_loaded(load_model(policy_config.with_changes(model=str(output))))
    held_prompts = sorted(((i, p) for i, p in prompts.items() if p.id in held), key=lambda t: t[0])
    sampling = MiningConfig(samples=judging.eval_samples, seed=judging.seed, max_new_tokens=judging.max_new_tokens)
    pairs = cmp.generate_pairs([p for _, p in held_prompts], [i for i, _ in held_prompts],
                               base_policy, aligned_policy, sampling)
    by_id = {p.id: p for _, p in held_prompts}
    followups = default_followups() if followups is None else followups
    judges = [{"role": role, **cmp.judge(pairs, by_id, judge, followups, seed=judging.seed)}
              for role, judge in (("training scorer", scorer), ("second scorer", second))]
    summary = {
        "mined_dir": str(mined_dir), "output": str(output), "policy": policy.identity,
        "training": training,
        "comparison": {"prompts": len(held_prompts), "samples": judging.eval_samples, "seed": judging.seed,
                       "lengths": cmp.length_summary(pairs), "judges": judges,
                       "replies": [vars(p) for p in pairs]},
    }
    write_json(output / REPORT_JSON, summary)
    write_text(output / REPORT_MD, cmp.format_report(summary))
    return summary
