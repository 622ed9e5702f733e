"""`flr finetune`'s engine: a feedback-mode scorer trained with TRL's SFTTrainer and PEFT LoRA.

The data is pre-tokenized by `core.training.sft_data` (the scorer's own rendering) with a
`labels` column, which SFTTrainer uses as is (trl 1.16, `SFTTrainer._prepare_dataset`: "An
optional `labels` column ... is used as is if present"), so the loss falls exactly on the tokens
`--mode feedback` scores; TRL's `max_length` truncation is switched off because the rendering
already fitted every sequence the way scoring does (from the left).

The base model is loaded by `core.engine.models.load_model`, so "embedded", GGUF files, local
folders and Hub ids mean here what they mean to the scorer, and the adapter folder records that
same model string (`flr-adapter.json`) for the loader to resolve.

Checkpoints go to `OUTPUT/checkpoints` every `save_steps`; a rerun of the same command resumes
from the last one (the run's settings and data are fingerprinted, so a checkpoint of another run
is refused instead of silently continued).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core.engine.config import EMBEDDED_MODEL, ScoringConfig
from core.errors import InputError
from core.textfiles import write_json

if TYPE_CHECKING:  # the data module pulls in the rendering; `flr --help` needs only the options
    from core.training.sft_data import TrainingExample

log = logging.getLogger(__name__)

ADAPTER_FILE = "flr-adapter.json"  # beside adapter_config.json: the base model as FLR names it
RUN_FILE = "flr-run.json"  # in the checkpoints folder: what run the checkpoints belong to
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class FinetuneOptions:
    """Settings of one fine-tuning run; the defaults finish on a laptop CPU with the embedded model."""

    model: str = EMBEDDED_MODEL  # the scorer to tune: anything `--model` accepts
    full: bool = False  # True: every weight (small models); False: a LoRA adapter
    max_steps: int = 200  # optimizer steps; ~ a quarter epoch of the shared data at batch 8
    batch_size: int = 8  # sequences per device per step (raise it on a GPU)
    grad_accum: int = 1  # steps of accumulation per optimizer step
    learning_rate: float | None = None  # None: 2e-4 for LoRA, 2e-5 for full fine-tuning
    lora_rank: int = 16  # LoRA r on every linear layer
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 1024  # tokens per example; longer ones are cut from the left as scoring does
    eval_fraction: float = 0.05  # questions held out (by hash of the question)
    eval_limit: int = 200  # held-out examples whose loss is measured before and after
    save_steps: int = 50  # checkpoint every N steps (a killed run resumes from the last)
    logging_steps: int = 5
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"  # auto: bf16 on a GPU that has it, float32 otherwise (fp16 is trained in fp32)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "lora_rank", "save_steps", "logging_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a positive integer; got {value!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise InputError(f"--learning-rate must be positive; got {self.learning_rate}")

    @property
    def lr(self) -> float:
        return self.learning_rate or (2e-5 if self.full else 2e-4)


@dataclass
class FinetuneResult:
    output: Path
    steps: int
    resumed_from: str | None
    losses: list[dict[str, float]] = field(default_factory=list)  # {"step", "loss"} as logged
    eval_loss_before: float | None = None
    eval_loss_after: float | None = None
    seconds: float = 0.0
    examples_seen: int = 0  # in this session (a resumed run counts only what it trained)
    base_identity: str = ""

    @property
    def seconds_per_1000(self) -> float | None:
        return 1000 * self.seconds / self.examples_seen if self.examples_seen else None


def run_fingerprint(options: FinetuneOptions, data_digest: str) -> str:
    settings = {k: v for k, v in asdict(options).items() if k not in ("device", "logging_steps", "eval_limit")}
    return hashlib.sha256(json.dumps([settings, data_digest], sort_keys=True).encode()).hexdigest()[:16]


def data_digest(examples: Sequence[TrainingExample]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps([ex.input_ids, ex.labels]).encode())
    return h.hexdigest()[:16]


def load_base(options: FinetuneOptions) -> Any:
    """The model to tune, loaded exactly as the scorer would load `options.model`."""
    from core.engine.models import load_model

    dtype = options.dtype
    config = ScoringConfig(model=options.model, device=options.device, dtype=dtype)
    loaded = load_model(config)
    import torch

    if loaded.dtype == torch.float16:  # fp16 weights do not train without a loss scaler; use fp32
        loaded.model.to(torch.float32)
        loaded.dtype = torch.float32
    return loaded


def feedback_loss(model: Any, examples: Sequence[TrainingExample], device: Any, batch: int = 8) -> float:
    """Mean negative log-likelihood per scored token (the quantity training lowers)."""
    import torch

    from core.training.sft_data import IGNORE

    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), batch):
            chunk = examples[start:start + batch]
            width = max(len(ex.input_ids) for ex in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, ex in enumerate(chunk):
                n = len(ex.input_ids)
                ids[i, :n] = torch.tensor(ex.input_ids)
                labels[i, :n] = torch.tensor(ex.labels)
                mask[i, :n] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            target = labels[:, 1:].to(device)
            keep = target != IGNORE  # only the scored positions: a vocabulary-wide row each
            logp = torch.log_softmax(logits[:, :-1][keep].float(), dim=-1)
            total += float(-logp.gather(-1, target[keep].unsqueeze(-1)).sum())
            count += int(keep.sum())
    model.train(was_training)
    return total / count if count else float("nan")


def _dataset(examples: Sequence[TrainingExample]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [list(e.input_ids) for e in examples],
                              "labels": [list(e.labels) for e in examples]})


def _progress_callback(result: FinetuneResult, report: Callable[[str], None]) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per log: step, loss and the time left at this session's pace."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.first_step = time.monotonic(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            result.losses.append({"step": state.global_step, "loss": float(logs["loss"])})
            done = state.global_step - self.first_step
            elapsed = time.monotonic() - self.start
            left = elapsed / done * (state.max_steps - state.global_step) if done else math.nan
            report(f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}  "
                   f"elapsed {_clock(elapsed)}  left ~{_clock(left)}")

    return Progress()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def check_checkpoints(folder: Path, fingerprint: str, restart: bool) -> str | None:
    """The checkpoint to resume from (None: start afresh); refuses another run's checkpoints."""
    from transformers.trainer_utils import get_last_checkpoint

    marker = folder / RUN_FILE
    if restart or not folder.is_dir():
        return None
    last = get_last_checkpoint(str(folder))
    if last is None:
        return None
    recorded = json.loads(marker.read_text()).get("fingerprint") if marker.is_file() else None
    if recorded != fingerprint:
        raise InputError(f"{folder} holds checkpoints of a different run (other data or settings); "
                         "pass --restart to discard them, or another --output")
    return last


def finetune(train: Sequence[TrainingExample], evals: Sequence[TrainingExample], output: str | Path,
             options: FinetuneOptions, *, loaded: Any | None = None, restart: bool = False,
             report: Callable[[str], None] = log.info, callbacks: Sequence[Any] = ()) -> FinetuneResult:
    """Train on `train`, measure `evals` before and after, save the adapter (or model) in `output`."""
    import torch
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    if not train:
        raise InputError("no training examples left after the held-out split; add more triples or "
                         "lower --eval-fraction")
    output = Path(output)
    loaded = loaded or load_base(options)
    device = loaded.device
    checkpoints = output / CHECKPOINTS
    fingerprint = run_fingerprint(options, data_digest(train))
    resume = check_checkpoints(checkpoints, fingerprint, restart)
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / RUN_FILE).write_text(json.dumps({"fingerprint": fingerprint}))
    result = FinetuneResult(output, 0, resume, base_identity=loaded.identity)
    held = list(evals)[:options.eval_limit]
    if held:
        result.eval_loss_before = feedback_loss(loaded.model, held, device)
        report(f"held-out feedback loss before: {result.eval_loss_before:.4f} ({len(held)} examples)")
    if resume:
        report(f"resuming from {resume}")

    peft_config = None
    if not options.full:
        from peft import LoraConfig

        peft_config = LoraConfig(r=options.lora_rank, lora_alpha=options.lora_alpha,
                                 lora_dropout=options.lora_dropout, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(checkpoints), max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size, gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.lr, lr_scheduler_type="cosine", warmup_steps=min(10, options.max_steps // 10),
        logging_steps=min(options.logging_steps, options.max_steps), save_steps=options.save_steps, save_total_limit=2,
        seed=options.seed, data_seed=options.seed, report_to="none", disable_tqdm=True,
        use_cpu=device.type == "cpu", bf16=loaded.dtype == torch.bfloat16,
        max_length=None, packing=False, dataset_num_proc=None, eval_strategy="no",
        dataloader_num_workers=0,
        # Activation checkpointing on (TRL's default): without it the embedded 135M model at batch 8
        # x 1,024 tokens kept over 23 GB of activations on a CPU and was killed for memory
        # (measured here); recomputing them costs about a third more time.
        activation_checkpointing=True, activation_checkpointing_kwargs={"use_reentrant": False},
    )
    trainer = SFTTrainer(model=loaded.model, args=args, train_dataset=_dataset(train),
                         processing_class=loaded.tokenizer, peft_config=peft_config,
                         callbacks=[_progress_callback(result, report), *callbacks])
    trainer.remove_callback(PrinterCallback)  # our progress line replaces its raw dicts
    started = time.monotonic()
    first = 0
    if resume:
        first = int(Path(resume).name.rsplit("-", 1)[-1])
    trainer.train(resume_from_checkpoint=resume)
    result.seconds = time.monotonic() - started
    result.steps = trainer.state.global_step
    result.examples_seen = (result.steps - first) * options.batch_size * options.grad_accum
    model = trainer.model
    if held:
        result.eval_loss_after = feedback_loss(model, held, device)
        report(f"held-out feedback loss after: {result.eval_loss_after:.4f}")
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output))
    loaded.tokenizer.save_pretrained(str(output))
    if not options.full:
        write_json(output / ADAPTER_FILE,
                   {"base_model": base_reference(options.model), "base_identity": loaded.identity})
    return result


def base_reference(model: str) -> str:
    """How the adapter names its base: 'embedded' and Hub ids as given, local paths absolute."""
    path = Path(model).expanduser()
    return str(path.resolve()) if model != EMBEDDED_MODEL and path.exists() else model
