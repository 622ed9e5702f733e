"""`flr align`: DPO or KTO on what `flr mine` wrote, then base vs aligned on held-out prompts.

MINED_DIR is what `flr mine --output-dir` wrote. The policy (default: embedded, as for mine)
gets a LoRA adapter trained with TRL; a share of the mined prompts is held out, and on those the
base and the aligned policy answer with the same seeds. Both replies are scored by the scorer
that mined the pairs (`--scorer`, in the mode the mining used) and by a second one (the other
mode, or `--second-scorer`). DIR gets the adapter and `align_report.json` / `align_report.md`:
win rate with a paired bootstrap interval, mean lengths and a length-controlled win rate.

The whole loop is three commands: `flr mine --prompts P --output-dir M`, `flr align M --output A`,
then `--model A` wherever a model is accepted (the adapter is a policy or a scorer like any model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.engine.config import EMBEDDED_MODEL, MODES


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "align", help="DPO/KTO on mined pairs, then base vs aligned on held-out prompts",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mined_dir", metavar="MINED_DIR", type=Path, help="folder `flr mine --output-dir` wrote")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR", help="folder to write")
    parser.add_argument("--method", choices=("dpo", "kto"), default="dpo")
    parser.add_argument("--max-steps", type=int, default=100, metavar="N", help="optimizer steps (default 100)")
    parser.add_argument("--batch-size", type=int, default=4, metavar="B")
    parser.add_argument("--learning-rate", type=float, default=5e-5, metavar="LR")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--held-out", type=float, default=0.2, metavar="F",
                        help="share of the mined prompts kept out of training for the comparison (default 0.2)")
    parser.add_argument("--policy", default=EMBEDDED_MODEL, metavar="M", help="the policy that was mined")
    parser.add_argument("--scorer", default=EMBEDDED_MODEL, metavar="M", help="the scorer that mined the pairs")
    parser.add_argument("--mode", choices=MODES, help="its mode (default: the one the mining used)")
    parser.add_argument("--second-scorer", metavar="M",
                        help="second judge (default: the same scorer in the other mode)")
    parser.add_argument("--eval-samples", type=int, default=1, metavar="K", help="replies per held-out prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.engine.config import ScoringConfig
    from core.engine.followups import default_followups
    from core.engine.models import load_model
    from core.engine.scorer import FLRScorer, load_scorer
    from core.mining.mining import MiningConfig
    from core.mining.policy import TransformersPolicy
    from core.textfiles import write_json, write_text
    from core.training import align as al
    from core.training import comparison as cmp
    from core.training.finetune import ADAPTER_FILE, base_reference

    options = al.AlignOptions(method=args.method, max_steps=args.max_steps, batch_size=args.batch_size,
                              learning_rate=args.learning_rate, beta=args.beta,
                              held_out_fraction=args.held_out, seed=args.seed)
    data = al.read_mined(args.mined_dir)
    prompts = data.prompts
    held = al.held_out_prompts(sorted({p.id for p in prompts.values()}), options.held_out_fraction)
    policy_config = ScoringConfig(model=args.policy, device=args.device)
    loaded = load_model(policy_config)
    policy = TransformersPolicy.from_loaded(loaded)
    mined_policy = data.summary.get("run", {}).get("policy")
    if mined_policy and mined_policy != policy.identity:
        print(f"note: the pairs were mined from {mined_policy}, not {policy.identity}; training off-policy")
    render = None if policy.has_chat_template else policy.render
    rows = (al.dpo_rows if options.method == "dpo" else al.kto_rows)(data, held, render)
    train_prompts = len({p.id for p in prompts.values()} - held)
    print(f"{len(rows)} {options.method.upper()} examples from {train_prompts} prompts; "
          f"{len(held)} prompts held out", flush=True)
    result = al.train_policy(rows, loaded, args.output, options, report=lambda line: print(line, flush=True))
    (args.output / ADAPTER_FILE).write_text(json.dumps({"base_model": base_reference(args.policy)}) + "\n")

    margins = [log["rewards/margins"] for log in result.logs if "rewards/margins" in log]
    training = {"method": options.method, "examples": len(rows), "train_prompts": train_prompts,
                "steps": result.steps, "seconds": result.seconds, "logs": result.logs,
                "margin_first": margins[0] if margins else None, "margin_last": margins[-1] if margins else None}

    mode = args.mode or data.summary.get("run", {}).get("scoring", {}).get("mode", "base")
    scorer = load_scorer(ScoringConfig(model=args.scorer, device=args.device, mode=mode))
    other = "feedback" if mode == "base" else "base"
    second = (load_scorer(ScoringConfig(model=args.second_scorer, device=args.device, mode=mode))
              if args.second_scorer else FLRScorer(scorer.loaded, scorer.config.with_changes(mode=other)))
    base_policy = TransformersPolicy.from_loaded(load_model(policy_config))  # training changed `loaded`
    aligned_policy = TransformersPolicy.from_loaded(load_model(policy_config.with_changes(model=str(args.output))))
    held_prompts = sorted(((i, p) for i, p in prompts.items() if p.id in held), key=lambda t: t[0])
    sampling = MiningConfig(samples=args.eval_samples, seed=args.seed, max_new_tokens=args.max_new_tokens)
    pairs = cmp.generate_pairs([p for _, p in held_prompts], [i for i, _ in held_prompts],
                               base_policy, aligned_policy, sampling)
    by_id = {p.id: p for _, p in held_prompts}
    followups = default_followups()
    judges = []
    for role, judge in (("training scorer", scorer), ("second scorer", second)):
        judges.append({"role": role, **cmp.judge(pairs, by_id, judge, followups, seed=args.seed)})
    report = {
        "mined_dir": str(args.mined_dir), "output": str(args.output), "policy": policy.identity,
        "training": training,
        "comparison": {"prompts": len(held_prompts), "samples": args.eval_samples, "seed": args.seed,
                       "lengths": cmp.length_summary(pairs), "judges": judges,
                       "replies": [vars(p) for p in pairs]},
    }
    write_json(args.output / "align_report.json", report)
    write_text(args.output / "align_report.md", cmp.format_report(report))
    print(cmp.format_report(report))
    print(f"wrote the adapter and align_report.json / align_report.md to {args.output}")
    return 0


def main() -> int:  # pragma: no cover
    from core.cli.main import main as cli_main

    return cli_main(["align", *sys.argv[1:]])
