"""What `flr tune` tells the user: the weights table, the cross-validated comparison as text,
and the provenance block written into the tuned set.

The text says, beside the accuracy, how much of the tuned score is reply length (its
correlation with the length difference), and points to `--control-length` when that share is
large: a learned reward that is mostly length is no better than counting characters.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from core.names import CATEGORY, DIRECTION, FOLLOWUP, IMPORTANCE, POLARITY, WEIGHT
from core.tuning.features import Examples
from core.tuning.tune import LENGTH_SIGNAL, PLAIN, TUNED, TUNED_CONTROLLED, TuneOptions, TuneResult

if TYPE_CHECKING:
    from core.tuning.diagnostics import Diagnostics

LENGTH_WARNING = 0.5  # |correlation with length| above which the report warns


def weights_frame(result: TuneResult, examples: Examples) -> pd.DataFrame:
    """One row per follow-up, most important first: its written weight, its share of the
    unit-scaled coefficients, and whether it points the way its side says."""
    model = result.control or result.final
    scaled = np.abs(model.scaled)
    share = scaled / scaled.sum() if scaled.sum() > 0 else scaled
    rows = [{CATEGORY: u.category, POLARITY: u.polarity, FOLLOWUP: u.text, WEIGHT: float(w),
             IMPORTANCE: float(s), DIRECTION: "as labelled" if w > 0 else ("wrong way" if w < 0 else "none")}
            for u, w, s in zip(examples.utterances, result.weights, share)]
    frame = pd.DataFrame(rows, columns=[CATEGORY, POLARITY, FOLLOWUP, WEIGHT, IMPORTANCE, DIRECTION])
    return frame.sort_values(IMPORTANCE, ascending=False, kind="stable").reset_index(drop=True)


def provenance(result: TuneResult, examples: Examples, files: Sequence[str | Path],
               options: TuneOptions, objective: str, settings: dict[str, Any],
               base_fingerprint: str) -> dict[str, Any]:
    """The block stored under "provenance" in the tuned set's JSON."""
    return {
        "tool": "flr tune",
        "objective": objective,
        "data": [str(f) for f in files],
        "benchmarks": list(examples.benchmarks),
        "n": result.n,
        "folds": {"k": result.folds, "grouped_by": "shared prompt or reply (union-find)",
                  "groups": result.n_groups, "sizes": result.fold_sizes, "seed": options.seed,
                  "penalty_per_fold": result.strengths},
        "cv": {name: fig.to_dict(result.metric) for name, fig in result.figures.items()},
        "control_length": result.control is not None,
        "length_coefficient": result.control.length_coef if result.control is not None else None,
        "penalty": (result.control or result.final).strength,
        "base_followups": base_fingerprint,
        "scoring": settings,
        "weights": "coefficient x side sign, scaled so that the absolute weights sum to 2",
    }


def format_tune(result: TuneResult, table: pd.DataFrame, output: Path | None = None,
                top: int = 10) -> str:
    metric = result.metric
    lines = [f"{result.n} {'pairs' if result.kind == 'pairwise' else 'rated replies'} in "
             f"{result.n_groups} independent groups (rows sharing a prompt or a reply kept "
             f"together), {result.folds} grouped folds of {', '.join(map(str, result.fold_sizes))} rows",
             "",
             f"{'signal':<26} {metric + ' [95% CI]':<26} {'per fold':<34} {'r with length':>13}"]
    lines.append("-" * len(lines[-1]))
    for name in (TUNED, TUNED_CONTROLLED, PLAIN, LENGTH_SIGNAL):
        fig = result.figures.get(name)
        if fig is None:
            continue
        folds = " ".join(_f(v, 2) for v in fig.per_fold)
        lines.append(f"{name:<26} {_f(fig.value) + ' [' + _f(fig.ci[0]) + ', ' + _f(fig.ci[1]) + ']':<26} "
                     f"{folds:<34} {_f(fig.length_correlation, 2):>13}")
    lines.append("(held-out figures: each fold scored by a model fitted on the other folds, the "
                 "penalty chosen by cross-validation inside them; intervals resample whole groups)")
    tuned = result.figures[TUNED]
    if np.isfinite(tuned.length_correlation) and abs(tuned.length_correlation) >= LENGTH_WARNING:
        hint = ("" if TUNED_CONTROLLED in result.figures else
                "; rerun with --control-length to learn weights beside length")
        lines.append(f"warning: the tuned score correlates {tuned.length_correlation:+.2f} with the "
                     f"length difference: much of it is length{hint}")
    if result.control is not None:
        lines.append(f"length controlled: the written weights are the follow-up part of a model "
                     f"fitted with length as a covariate (its coefficient {result.control.length_coef:+.3g} "
                     "per character is not written)")
    lines += ["", f"follow-ups carrying most of the tuned score (of {len(table)}):"]
    for _, row in table.head(top).iterrows():
        lines.append(f"  {row[IMPORTANCE]:6.1%}  w={row[WEIGHT]:+.3f}  {row[CATEGORY]}/{row[POLARITY]}"
                     f"  {row[FOLLOWUP]!r}" + ("  (wrong way)" if row[DIRECTION] == "wrong way" else ""))
    for note in result.notes:
        lines.append(f"note: {note}")
    if output is not None:
        lines += ["", f"tuned set: {output}"]
    return "\n".join(lines)


def _f(x: float | None, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.{digits}f}"


def format_diagnostics(diag: "Diagnostics", output: Path | None = None, top: int = 12) -> str:
    """The diagnostics table as text: best follow-ups first, then flagged ones, then the
    pruned set's cross-validated effect."""
    from core.names import ALONE, AUC, FLAGS, MAX_CORRELATION, MOST_LIKE

    t = diag.table.sort_values(ALONE, ascending=False, kind="stable")
    lines = [f"{'#':>3} {diag.metric + ' alone [95% CI]':<24} {'AUC':>5} {'max |r|':>7}  "
             f"{'category/polarity':<26} follow-up"]
    lines.append("-" * 100)

    def line(row: Any) -> str:
        ci = f"{_f(row[ALONE])} [{_f(row['ci low'], 2)}, {_f(row['ci high'], 2)}]"
        text = f"{row[CATEGORY]}/{row[POLARITY]}"
        return (f"{row['#']:>3} {ci:<24} {_f(row[AUC], 2):>5} {_f(row[MAX_CORRELATION], 2):>7}  "
                f"{text:<26} {row[FOLLOWUP]!r}" + (f"  [{row[FLAGS]}]" if row[FLAGS] else ""))

    for _, row in t.head(top).iterrows():
        lines.append(line(row))
    rest = t.iloc[top:]
    flagged = rest[rest[FLAGS] != ""]
    if len(rest):
        lines.append(f"... {len(rest)} more" + (", of which flagged:" if len(flagged) else ""))
        for _, row in flagged.iterrows():
            lines.append(line(row))
    wrong = int(diag.table[FLAGS].str.contains("wrong way").sum())
    dup = int(diag.table[FLAGS].str.contains("duplicate").sum())
    lines += ["", f"{wrong} follow-up(s) point or lean the wrong way, {dup} duplicate a better one "
                  f"(|r| >= 0.95; the most similar is under '{MOST_LIKE}' in the CSV)"]
    plain, pruned = diag.cv["plain"], diag.cv["pruned"]
    kept = int(diag.keep.sum())
    lines.append(f"suggested pruned set: keeps {kept} of {len(diag.keep)} follow-ups; "
                 f"cross-validated {diag.metric} over {diag.folds} grouped folds (pruning decided "
                 f"on the training folds): pruned {_f(pruned['value'])} vs plain {_f(plain['value'])} "
                 f"(per fold: {' '.join(_f(v, 2) for v in pruned['per_fold'])} vs "
                 f"{' '.join(_f(v, 2) for v in plain['per_fold'])})")
    if output is not None:
        lines.append(f"pruned set: {output}")
    return "\n".join(lines)
