"""The model card written beside a fine-tuned scorer: data, steps, loss curve, provenance.

Two files: `README.md` for people and `flr-training.json` with the same facts for programs.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from core.textfiles import write_json, write_text
from core.training.finetune import FinetuneOptions, FinetuneResult

CARD_FILE = "README.md"
FACTS_FILE = "flr-training.json"
_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets")
MAX_CURVE_ROWS = 25


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _versions() -> dict[str, str]:
    import sys

    from core.evaluation.provenance import tool_version

    out = {"flr": tool_version()}
    for name in _PACKAGES:  # all imported by the training run that writes the card
        module = sys.modules.get(name)
        out[name] = getattr(module, "__version__", "unknown") if module else "not loaded"
    return out


def training_facts(result: FinetuneResult, options: FinetuneOptions, files: Sequence[str | Path],
                   counts: dict[str, int]) -> dict[str, Any]:
    return {
        "kind": "full model" if options.full else "LoRA adapter",
        "base_model": options.model, "base_identity": result.base_identity,
        "layout": "flr --mode feedback (core.engine.rendering), loss on the feedback turn's scored tokens",
        "data": [{"file": str(f), "sha256_16": file_digest(f)} for f in files],
        "examples": counts,
        "steps": result.steps, "resumed_from": result.resumed_from,
        "options": asdict(options), "learning_rate": options.lr,
        "loss_curve": result.losses,
        "held_out_loss_before": result.eval_loss_before, "held_out_loss_after": result.eval_loss_after,
        "seconds_this_session": round(result.seconds, 1),
        "seconds_per_1000_examples": result.seconds_per_1000,
        "machine": {"cpu": cpu_model(), "platform": platform.platform()},
        "versions": _versions(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_card(output: str | Path, facts: dict[str, Any]) -> Path:
    out = Path(output)
    write_json(out / FACTS_FILE, facts)
    curve = facts["loss_curve"]
    stride = max(1, -(-len(curve) // MAX_CURVE_ROWS))
    rows = curve[::stride] + ([curve[-1]] if curve and (len(curve) - 1) % stride else [])
    before, after = facts["held_out_loss_before"], facts["held_out_loss_after"]
    lines = [
        f"# FLR feedback scorer ({facts['kind']})", "",
        f"Fine-tuned by `flr finetune` from `{facts['base_model']}` ({facts['base_identity']}).",
        f"Layout: {facts['layout']}.", "",
        f"Use it wherever a model is accepted: `flr score --model {out} --mode feedback ...`.", "",
        "## Data", "",
        *[f"- `{d['file']}` (sha256 {d['sha256_16']})" for d in facts["data"]],
        "- examples: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in facts["examples"].items()), "",
        "## Training", "",
        f"- steps: {facts['steps']}" + (f" (resumed from {facts['resumed_from']})" if facts["resumed_from"] else ""),
        f"- learning rate {facts['learning_rate']}, batch {facts['options']['batch_size']} x "
        f"{facts['options']['grad_accum']}, max length {facts['options']['max_length']}",
        f"- time this session: {facts['seconds_this_session']} s"
        + (f" ({facts['seconds_per_1000_examples']:.0f} s per 1,000 examples)"
           if facts["seconds_per_1000_examples"] else "")
        + f" on {facts['machine']['cpu']}",
        "- held-out feedback loss (nats per scored token): "
        + (f"{before:.4f} before, {after:.4f} after" if before is not None and after is not None
           else "not measured (no held-out questions)"), "",
        "## Loss curve", "", "| step | loss |", "|---:|---:|",
        *[f"| {r['step']} | {r['loss']:.4f} |" for r in rows], "",
        "## Provenance", "",
        *[f"- {k} {v}" for k, v in facts["versions"].items()],
        f"- written {facts['written']}", "",
    ]
    path = out / CARD_FILE
    write_text(path, "\n".join(lines))
    return path
