"""Does `flr finetune` help? The embedded model tuned on the shared feedback data, scored in
feedback mode, against the untuned model's base and feedback modes, on the same rows.

    .venv/bin/python benchmarks/finetune_feedback.py --work bench-ft/ [--max-steps 200] [--limit N]

Steps (each a plain `flr` command, printed before it runs, so every number can be reproduced):
1. the shared feedback sets (../shared/data/feedback/*.jsonl.gz) with every triple whose question
   also appears in an evaluation set dropped (normalised text), written to WORK/train.jsonl;
2. `flr finetune WORK/train.jsonl --output WORK/adapter --max-steps N`;
3. `flr evaluate` on HH-RLHF helpful-base and LLMBar (../shared/data/) with the same `--limit`
   for three signals: base model `--mode base`, base model `--mode feedback`, tuned adapter
   `--mode feedback`, each to its own REPORT.json;
4. `flr compare` of tuned-feedback against each untuned run (paired bootstrap over the rows both
   judged; the length baseline is in every report).

On this project's shared 2-core CPU the fine-tune alone runs about 8.7 s per training example
(see the README), so the defaults take hours; `--limit` and `--max-steps` make a labelled subset.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FLR = [sys.executable, "-m", "core"]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def eval_questions(paths: list[Path]) -> set[str]:
    """Every prompt text of the evaluation files (HH-RLHF transcripts: each Human turn)."""
    found: set[str] = set()
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()] if path.name.endswith(
            (".jsonl", ".jsonl.gz")) else json.loads(text)
        for row in rows:
            for key in ("input", "instruction", "question", "prompt"):
                if isinstance(row.get(key), str):
                    found.add(_norm(row[key]))
            for key in ("chosen", "rejected"):
                value = row.get(key)
                if isinstance(value, str):
                    for part in value.split("\n\nHuman: ")[1:]:
                        found.add(_norm(part.split("\n\nAssistant:")[0]))
    return found


def training_file(work: Path, evals: list[Path]) -> tuple[Path, int, int]:
    held = eval_questions(evals)
    kept = dropped = 0
    out = work / "train.jsonl"
    with out.open("w", encoding="utf-8") as dst:
        for path in sorted((DATA / "feedback").glob("*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    if _norm(row.get("question", "")) in held:
                        dropped += 1
                        continue
                    dst.write(line if line.endswith("\n") else line + "\n")
                    kept += 1
    return out, kept, dropped


def sh(args: list[str]) -> None:
    print("$ " + shlex.join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, help="first N pairs per benchmark (a labelled subset)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    evals = [DATA / "hh_rlhf" / "helpful-base-test.jsonl.gz", *sorted((DATA / "llmbar").glob("*.json"))]
    train, kept, dropped = training_file(work, evals)
    print(f"training triples: {kept} kept, {dropped} dropped as overlapping the evaluation sets")
    adapter = work / "adapter"
    sh([*FLR, "finetune", str(train), "--output", str(adapter), "--max-steps", str(args.max_steps),
        "--batch-size", str(args.batch_size), "--device", args.device])
    limit = ["--limit", str(args.limit)] if args.limit else []
    runs = {"base-base": ("embedded", "base"), "base-feedback": ("embedded", "feedback"),
            "tuned-feedback": (str(adapter), "feedback")}
    for name, (model, mode) in runs.items():
        sh([*FLR, "evaluate", *map(str, evals), "--model", model, "--mode", mode, "--device", args.device,
            "--report", str(work / f"{name}.json"), *limit])
    for other in ("base-base", "base-feedback"):
        sh([*FLR, "compare", "--signals", "flr,length", str(work / f"{other}.json"),
            str(work / "tuned-feedback.json")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
