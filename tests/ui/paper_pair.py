"""The paper-layout pair `mybench_{accept,reject}_relevance.jsonl` a user uploads (issue 20).

24 pairs with precomputed follow-up values (no model needed): in 13 of them the accepted reply has
the higher FLR, so the pairwise accuracy is 13/24 = 0.5417.
"""

from __future__ import annotations

import json
from pathlib import Path

PAIRS, WON = 24, 13
ACCURACY = "0.5417"  # 13 / 24, as the metrics table prints it

HIGH = {"positive": [-1.0, -1.25, -0.75], "negative": [-2.0, -2.5, -3.0]}  # FLR +1.5
LOW = {"positive": [-2.0, -2.5, -3.0], "negative": [-1.0, -1.25, -0.75]}  # FLR -1.5


def write_paper_pair(folder: Path) -> list[Path]:
    """Write the pair into `folder`; return the accept file, then the reject file."""
    folder.mkdir(parents=True, exist_ok=True)
    accept, reject = [], []
    for i in range(PAIRS):
        question = f"Question {i}: how do I keep basil alive on a windowsill?"
        won = i < WON
        accept.append({"conversation": [question, f"Water it when the top soil is dry ({i})."],
                       **(HIGH if won else LOW)})
        reject.append({"conversation": [question, f"Basil is a plant ({i})."], **(LOW if won else HIGH)})
    paths = []
    for name, rows in (("mybench_accept_relevance.jsonl", accept), ("mybench_reject_relevance.jsonl", reject)):
        path = folder / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    return paths
