"""`flr align`'s training half: DPO or KTO (TRL) with a LoRA adapter on what `flr mine` wrote.

The pairs are read from `<prefix>_samples.jsonl` in the mined folder, whose `dpo` and `kto_tag`
fields record the selection `flr mine` exported (best vs worst FLR per prompt, KTO above/below
the prompt's median, `--min-margin` and `--finished-only` applied), so align trains on exactly
the pairs the LLaMA-Factory files hold. A share of the prompts (by hash of the prompt id) is held
out of training for the before/after comparison (`core.training.comparison`).

Prompts are given to TRL as chat messages when the policy has a chat template (TRL renders them
with `add_generation_prompt=True`, which is how `core.mining.policy` prompts the model when it
samples) and as the policy's own plain rendering otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from core.errors import InputError
from core.textfiles import read_text
from core.mining.prompts import MiningPrompt

log = logging.getLogger(__name__)

METHODS = ("dpo", "kto")


class MinedFolderError(InputError):
    """A folder that is not (or no longer) what `flr mine --output-dir` writes."""


@dataclass(frozen=True)
class MinedSample:
    prompt_index: int
    prompt: MiningPrompt
    response: str
    flr: float | None
    dpo: str | None  # "chosen", "rejected" or None
    kto_tag: bool | None


@dataclass
class MinedData:
    folder: Path
    samples: list[MinedSample]
    summary: dict[str, Any]

    @property
    def prompts(self) -> dict[int, MiningPrompt]:
        return {s.prompt_index: s.prompt for s in self.samples}


@dataclass(frozen=True)
class AlignOptions:
    """Settings of one alignment run; defaults finish on a laptop CPU with the embedded model."""

    method: str = "dpo"
    max_steps: int = 100
    batch_size: int = 4
    learning_rate: float = 5e-5
    beta: float = 0.1  # DPO / KTO temperature of the implicit reward
    lora_rank: int = 16
    lora_alpha: int = 32
    held_out_fraction: float = 0.2  # prompts kept out of training for the before/after report
    max_length: int = 1024
    logging_steps: int = 5
    save_steps: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"--method must be dpo or kto; got {self.method!r}")
        for name in ("max_steps", "batch_size", "lora_rank", "logging_steps", "save_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a positive integer")
        if not 0 <= self.held_out_fraction < 1:
            raise InputError(f"--held-out must be in [0, 1); got {self.held_out_fraction}")


@dataclass
class AlignResult:
    output: Path
    steps: int
    logs: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    train_prompts: int = 0
    examples: int = 0


def read_mined(folder: str | Path) -> MinedData:
    """The samples and summary `flr mine --output-dir` wrote in `folder`."""
    folder = Path(folder)
    summaries = sorted(folder.glob("*_summary.json"))
    if not folder.is_dir() or not summaries:
        raise MinedFolderError(f"{folder}: no *_summary.json; pass the folder `flr mine --output-dir` wrote")
    if len(summaries) > 1:
        raise MinedFolderError(f"{folder}: several mining runs ({', '.join(p.name for p in summaries)}); "
                               "keep one per folder")
    prefix = summaries[0].name[: -len("_summary.json")]
    samples_path = folder / f"{prefix}_samples.jsonl"
    if not samples_path.is_file():
        raise MinedFolderError(f"{samples_path}: missing; rerun `flr mine` with this --output-dir")
    try:
        summary = json.loads(read_text(summaries[0], MinedFolderError, what="mining summary"))
    except json.JSONDecodeError as err:
        raise MinedFolderError(f"{summaries[0]}: not valid JSON (line {err.lineno}: {err.msg}); "
                               "rerun `flr mine` with this --output-dir") from None
    samples = []
    with samples_path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{samples_path}, line {lineno}"
            try:
                r = json.loads(line)
                prompt = MiningPrompt(str(r["prompt_id"]), tuple(r["conversation"]), r.get("system"))
                samples.append(MinedSample(int(r["prompt_index"]), prompt, r["response"], r.get("flr"),
                                           r.get("dpo"), r.get("kto_tag")))
            except (ValueError, KeyError, TypeError) as err:
                raise MinedFolderError(f"{where}: not a sample record ({err}); rerun `flr mine`") from None
    if not samples:
        raise MinedFolderError(f"{samples_path}: no samples")
    return MinedData(folder, samples, summary)


def held_out_prompts(prompt_ids: Sequence[str], fraction: float) -> set[str]:
    """Prompt ids held out of training (hash of the id; at least one when fraction > 0)."""
    keys = {pid: hashlib.sha256(pid.encode()).hexdigest() for pid in prompt_ids}
    held = {pid for pid, k in keys.items() if int(k[:8], 16) / 0xFFFFFFFF < fraction}
    if fraction > 0 and not held and len(keys) >= 2:
        held = {min(keys, key=keys.get)}
    return held


def _prompt_value(prompt: MiningPrompt, render: Callable[[MiningPrompt], str] | None) -> Any:
    return render(prompt) if render else prompt.messages()


def _completion(text: str, render: Callable[[MiningPrompt], str] | None) -> Any:
    return text if render else [{"role": "assistant", "content": text}]


def dpo_rows(data: MinedData, held: set[str], render: Callable[[MiningPrompt], str] | None = None
             ) -> list[dict[str, Any]]:
    """One preference row per training prompt with a mined chosen/rejected pair."""
    by_prompt: dict[int, dict[str, MinedSample]] = {}
    for s in data.samples:
        if s.dpo in ("chosen", "rejected") and s.prompt.id not in held:
            by_prompt.setdefault(s.prompt_index, {})[s.dpo] = s
    rows = []
    for index in sorted(by_prompt):
        pair = by_prompt[index]
        if set(pair) == {"chosen", "rejected"}:
            rows.append({"prompt": _prompt_value(pair["chosen"].prompt, render),
                         "chosen": _completion(pair["chosen"].response, render),
                         "rejected": _completion(pair["rejected"].response, render)})
    return rows


def kto_rows(data: MinedData, held: set[str], render: Callable[[MiningPrompt], str] | None = None
             ) -> list[dict[str, Any]]:
    return [{"prompt": _prompt_value(s.prompt, render), "completion": _completion(s.response, render),
             "label": bool(s.kto_tag)}
            for s in data.samples if s.kto_tag is not None and s.prompt.id not in held]


def run_fingerprint(rows: Sequence[dict[str, Any]], loaded: Any, options: AlignOptions) -> str:
    """What a run's checkpoints belong to: its settings, its training rows and the policy."""
    settings = {k: v for k, v in asdict(options).items() if k != "logging_steps"}
    return hashlib.sha256(json.dumps([settings, list(rows), loaded.identity], sort_keys=True,
                                     default=str).encode()).hexdigest()[:16]


def train_policy(rows: Sequence[dict[str, Any]], loaded: Any, output: str | Path, options: AlignOptions,
                 report: Callable[[str], None] = log.info, restart: bool = False) -> AlignResult:
    """Train a LoRA adapter on `rows` with TRL's DPO or KTO trainer and save it in `output`.

    A rerun into the same `output` resumes from its last checkpoint; checkpoints of another run
    (other pairs, settings or policy) are refused unless `restart` discards them."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback

    if not rows:
        raise MinedFolderError(
            f"no {options.method.upper()} training examples in the mined folder outside the held-out "
            "prompts; mine more prompts (or --samples of at least 2), or lower --held-out")
    output = Path(output)
    result = AlignResult(output, 0, examples=len(rows))
    common = dict(
        output_dir=str(output / "checkpoints"), max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size, learning_rate=options.learning_rate,
        beta=options.beta, logging_steps=min(options.logging_steps, options.max_steps),
        save_steps=options.save_steps, save_total_limit=2, seed=options.seed, report_to="none",
        disable_tqdm=True, use_cpu=loaded.device.type == "cpu", bf16=loaded.dtype == torch.bfloat16,
        max_length=options.max_length, dataloader_num_workers=0, activation_checkpointing=False,
    )
    if options.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        args, trainer_class = DPOConfig(**common), DPOTrainer
    else:
        from trl import KTOConfig, KTOTrainer

        args, trainer_class = KTOConfig(**common), KTOTrainer
    peft_config = LoraConfig(r=options.lora_rank, lora_alpha=options.lora_alpha, lora_dropout=0.0,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    started = time.monotonic()

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            result.logs.append({"step": state.global_step, **{k: float(v) for k, v in logs.items()
                                                               if isinstance(v, (int, float))}})
            done = max(state.global_step, 1)
            left = (time.monotonic() - started) / done * (state.max_steps - state.global_step)
            margin = logs.get("rewards/margins")
            report(f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}"
                   + (f"  margin {margin:.4f}" if margin is not None else "") + f"  left ~{left:.0f}s")

    from core.training.finetune import RUN_FILE, check_checkpoints

    checkpoints = output / "checkpoints"
    fingerprint = run_fingerprint(rows, loaded, options)
    resume = check_checkpoints(checkpoints, fingerprint, restart)
    if restart and checkpoints.is_dir():
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / RUN_FILE).write_text(json.dumps({"fingerprint": fingerprint}))
    trainer = trainer_class(model=loaded.model, args=args, train_dataset=Dataset.from_list(list(rows)),
                            processing_class=loaded.tokenizer, peft_config=peft_config,
                            callbacks=[Progress()])
    trainer.remove_callback(PrinterCallback)
    model = trainer.model
    if resume:
        done, earlier = _checkpoint_history(Path(resume))
        result.logs[:0] = earlier  # the report's first margin is the run's, not this session's
        if done >= options.max_steps:
            # Trainer would run one step past max_steps when resumed at it; the run is complete.
            from peft import PeftModel

            report(f"{resume} already holds all {options.max_steps} steps; using it")
            model = PeftModel.from_pretrained(loaded.model, resume)
            result.steps = done
        else:
            report(f"resuming from {resume}")
    if not result.steps:
        trainer.train(resume_from_checkpoint=resume)
        result.steps = trainer.state.global_step
    result.seconds = time.monotonic() - started
    model.save_pretrained(str(output))
    loaded.tokenizer.save_pretrained(str(output))
    return result


def _checkpoint_history(checkpoint: Path) -> tuple[int, list[dict[str, float]]]:
    """The step a checkpoint was saved at and the training logs up to it (`trainer_state.json`)."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    logs = [{"step": entry["step"], **{k: float(v) for k, v in entry.items()
                                        if isinstance(v, (int, float)) and k != "step"}}
            for entry in state.get("log_history", []) if "loss" in entry]
    return int(state["global_step"]), logs
