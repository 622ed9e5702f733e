"""`flr finetune`: tune a feedback-mode scorer on (question, answer, feedback) triples.

Files are JSON, JSONL or CSV (gzipped too) with question / answer / feedback fields (aliases:
instruction or prompt, response or output, critique). Several files are mixed; a held-out split
is carved out by question. The result is a LoRA adapter folder (a model folder with `--full`)
with a card, usable as `--model DIR` everywhere; a killed run resumes when run again.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.engine.config import EMBEDDED_MODEL


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from core.training.finetune import FinetuneOptions

    d = FinetuneOptions()
    parser = subparsers.add_parser(
        "finetune", help="fine-tune a feedback-mode scorer on (question, answer, feedback) triples",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="FILE", help="triples files (JSON, JSONL, CSV; .gz too)")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR", help="folder to write")
    parser.add_argument("--model", default=EMBEDDED_MODEL, metavar="M",
                        help="scorer to tune: Hub id, local folder, .gguf file or 'embedded' (default)")
    parser.add_argument("--full", action="store_true", help="train every weight instead of a LoRA adapter")
    parser.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N",
                        help=f"optimizer steps (default {d.max_steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, metavar="B",
                        help=f"sequences per step (default {d.batch_size}; raise it on a GPU)")
    parser.add_argument("--grad-accum", type=int, default=d.grad_accum, metavar="K")
    parser.add_argument("--learning-rate", type=float, metavar="LR",
                        help="default 2e-4 (LoRA) or 2e-5 (--full)")
    parser.add_argument("--lora-rank", type=int, default=d.lora_rank, metavar="R")
    parser.add_argument("--max-length", type=int, default=d.max_length, metavar="T",
                        help=f"tokens per example, cut from the left as scoring does (default {d.max_length})")
    parser.add_argument("--eval-fraction", type=float, default=d.eval_fraction, metavar="F",
                        help=f"share of questions held out (default {d.eval_fraction})")
    parser.add_argument("--save-steps", type=int, default=d.save_steps, metavar="N",
                        help=f"checkpoint every N steps (default {d.save_steps})")
    parser.add_argument("--limit", type=int, metavar="N", help="use the first N triples of the mix")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--device", default=d.device, help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default=d.dtype, choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--restart", action="store_true",
                        help="discard checkpoints in DIR instead of resuming from them")
    parser.set_defaults(func=run)
    return parser


def options_from_args(args: argparse.Namespace) -> Any:
    from core.training.finetune import FinetuneOptions

    return FinetuneOptions(
        model=args.model, full=args.full, max_steps=args.max_steps, batch_size=args.batch_size,
        grad_accum=args.grad_accum, learning_rate=args.learning_rate, lora_rank=args.lora_rank,
        max_length=args.max_length, eval_fraction=args.eval_fraction, save_steps=args.save_steps,
        seed=args.seed, device=args.device, dtype=args.dtype)


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.training.card import training_facts, write_card
    from core.training.finetune import finetune, load_base
    from core.training.sft_data import feedback_examples, read_triples, split_by_question

    options = options_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be a positive number of triples")
    triples = read_triples(args.paths)[:args.limit]  # every row is checked before the model loads
    train_items, eval_items = split_by_question(triples, args.eval_fraction)
    print(f"{len(triples)} triples from {len(args.paths)} file(s): {len(train_items)} to train, "
          f"{len(eval_items)} held out (by question)", flush=True)
    loaded = load_base(options)
    max_length = min(options.max_length, loaded.max_context)
    train, skipped = feedback_examples(loaded.tokenizer, train_items, max_length)
    evals, skipped_eval = feedback_examples(loaded.tokenizer, eval_items, max_length)
    if skipped or skipped_eval:
        print(f"skipped {skipped + skipped_eval} triple(s) whose feedback alone is over {max_length} "
              "tokens (scoring refuses those too); raise --max-length to keep them", flush=True)
    result = finetune(train, evals, args.output, options, loaded=loaded, restart=args.restart,
                      report=lambda line: print(line, flush=True))
    counts = {"triples": len(triples), "train": len(train), "held_out": len(evals),
              "skipped_too_long": skipped + skipped_eval,
              "trained_tokens": sum(e.trained_tokens for e in train)}
    write_card(args.output, training_facts(result, options, args.paths, counts))
    kind = "model" if options.full else "adapter"
    print(f"wrote the {kind} to {args.output} (card: {args.output / 'README.md'}); "
          f"score with --model {args.output} --mode feedback")
    return 0

