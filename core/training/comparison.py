"""Before/after for `flr align`: the base and the aligned policy answer the same held-out prompts
with the same seeds, and FLR judges who won.

For every held-out prompt and sample index both policies draw with the seed `core.mining.policy`
derives from (seed, prompt index, sample index), so the two replies differ only by the weights.
Each scorer (the one that mined the training pairs, and a second: the other mode or another
model) scores both replies; a row's outcome is 1 when the aligned reply scores higher, 0.5 on a
tie, 0 otherwise. The win rate is the mean outcome with a percentile-bootstrap interval over the
rows (`core.evaluation.metrics.paired_difference` against zero: the outcome is already a paired
quantity).

Length control: FLR could prefer longer replies. The length-controlled win rate is the win
probability at equal length from a logistic fit of the outcome on the standardised length
difference (the idea of AlpacaEval's length-controlled win rate, reduced to its length term),
bootstrapped over the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.evaluation.metrics import paired_difference
from core.names import BOOTSTRAP_SAMPLES

NEWTON_STEPS = 25
RIDGE = 1e-3  # keeps the logistic fit finite when one side wins every row


@dataclass(frozen=True)
class PairedReplies:
    prompt_id: str
    sample: int
    base: str
    aligned: str


def generate_pairs(prompts: Sequence[Any], indices: Sequence[int], base: Any, aligned: Any,
                   config: Any) -> list[PairedReplies]:
    """Both policies' replies to every prompt, sample for sample, with the same seeds."""
    rows = []
    for start in range(0, len(prompts), config.batch_size):
        chunk, idx = prompts[start:start + config.batch_size], indices[start:start + config.batch_size]
        before = base.generate(chunk, idx, config)
        after = aligned.generate(chunk, idx, config)
        for prompt, b, a in zip(chunk, before, after):
            rows += [PairedReplies(prompt.id, s, gb.text, ga.text) for s, (gb, ga) in enumerate(zip(b, a))]
    return rows


def _logistic_intercept(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """sigmoid(intercept) of a weighted logistic fit y ~ a + b*x (Newton, small ridge on b)."""
    a = b = 0.0
    for _ in range(NEWTON_STEPS):
        p = 1 / (1 + np.exp(-(a + b * x)))
        g = np.array([np.sum(w * (p - y)), np.sum(w * (p - y) * x) + RIDGE * b])
        s = w * p * (1 - p)
        h = np.array([[s.sum() + 1e-9, (s * x).sum()], [(s * x).sum(), (s * x * x).sum() + RIDGE]])
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    a = float(np.clip(a, -30, 30))
    return 1 / (1 + math.exp(-a))


def length_controlled(outcomes: np.ndarray, length_diff: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """Win probability at equal length, with a bootstrap interval; a tie counts half a win
    (weight 1/2 on each label)."""
    if outcomes.size == 0:
        return {"value": None, "ci": [None, None], "n": 0}
    scale = length_diff.std() or 1.0
    x0 = length_diff / scale
    x = np.concatenate([x0, x0])
    y = np.concatenate([np.ones_like(outcomes), np.zeros_like(outcomes)])
    w = np.concatenate([outcomes, 1 - outcomes])
    value = _logistic_intercept(x, y, w)
    rng = np.random.default_rng(seed)
    n = outcomes.size
    boots = []
    for _ in range(samples):
        i = rng.integers(0, n, n)
        ii = np.concatenate([i, i + n])
        boots.append(_logistic_intercept(x[ii], y[ii], w[ii]))
    low, high = np.quantile(boots, [0.025, 0.975])
    return {"value": value, "ci": [float(low), float(high)], "n": int(n)}


def judge(pairs: Sequence[PairedReplies], prompts: dict[str, Any], scorer: Any, followups: Any,
          seed: int = 0) -> dict[str, Any]:
    """Win rate of the aligned replies under one scorer, its interval and the length-controlled one."""
    conversations, slots = [], []
    for i, pair in enumerate(pairs):
        if pair.base.strip() and pair.aligned.strip():
            prompt = prompts[pair.prompt_id]
            conversations += [prompt.with_reply(pair.base), prompt.with_reply(pair.aligned)]
            slots.append(i)
    scores = scorer.score_many(conversations, followups) if conversations else []
    base = np.array([s.flr for s in scores[0::2]], dtype=float)
    aligned = np.array([s.flr for s in scores[1::2]], dtype=float)
    outcomes = np.where(aligned > base, 1.0, np.where(aligned == base, 0.5, 0.0))
    diff = np.array([len(pairs[i].aligned) - len(pairs[i].base) for i in slots], dtype=float)
    win = paired_difference(outcomes, np.zeros_like(outcomes), seed=seed)
    return {
        "scorer": scorer.identity, "mode": scorer.config.mode,
        "rows": len(slots), "left_out_empty": len(pairs) - len(slots),
        "win_rate": win.to_dict(),
        "length_controlled_win_rate": length_controlled(outcomes, diff, seed=seed),
        "mean_flr": {"base": float(base.mean()) if base.size else None,
                     "aligned": float(aligned.mean()) if aligned.size else None},
        "aligned_longer_share": float((diff > 0).mean()) if diff.size else None,
    }


def length_summary(pairs: Sequence[PairedReplies]) -> dict[str, Any]:
    if not pairs:
        return {"base_chars": None, "aligned_chars": None}
    return {"base_chars": float(np.mean([len(p.base) for p in pairs])),
            "aligned_chars": float(np.mean([len(p.aligned) for p in pairs]))}


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    def est(e: dict[str, Any]) -> str:
        v, (lo, hi) = e["value"], e["ci"]
        return "-" if v is None else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

    t, c, lengths = report["training"], report["comparison"], report["comparison"]["lengths"]
    lines = [
        f"# flr align report ({t['method'].upper()})", "",
        f"Policy `{report['policy']}` aligned on `{report['mined_dir']}`; adapter in `{report['output']}`.", "",
        "## Training", "",
        f"- {t['examples']} examples from {t['train_prompts']} prompts; {t['steps']} steps in "
        f"{t['seconds']:.0f} s",
    ]
    if t.get("margin_first") is not None:
        lines.append(f"- DPO chosen - rejected reward margin: {t['margin_first']:.4f} at the first log, "
                     f"{t['margin_last']:.4f} at the last")
    lines += [
        "", "## Before / after on held-out prompts", "",
        f"{c['prompts']} held-out prompts x {c['samples']} sample(s), same seeds for both policies "
        f"(seed {c['seed']}); mean length {lengths['base_chars'] or 0:.0f} chars (base) vs "
        f"{lengths['aligned_chars'] or 0:.0f} (aligned).", "",
        "| scorer | mode | rows | win rate of aligned [95% CI] | length-controlled | mean FLR base | "
        "mean FLR aligned | aligned longer |",
        "|---|---|---:|---|---|---:|---:|---:|",
    ]
    for j in c["judges"]:
        mean = j["mean_flr"]
        lines.append(
            f"| {j['role']}: `{j['scorer']}` | {j['mode']} | {j['rows']} | {est(j['win_rate'])} | "
            f"{est(j['length_controlled_win_rate'])} | {_num(mean['base'])} | {_num(mean['aligned'])} | "
            f"{_num(j['aligned_longer_share'])} |")
    lines += ["", "A win rate whose interval covers 0.5 is no evidence of improvement; a win rate "
              "that drops toward 0.5 under length control was carried by length.", ""]
    return "\n".join(lines)


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"
