"""Run every hostile input of `tests/hostile/cases.py` as a real `flr` process with a time limit
and print a table: case, exit status, seconds, verdict and the message's first line.

    python benchmarks/hostile_inputs.py [--timeout 120] [--model FOLDER]

Without `--model`, a tiny random chat model is built in a temporary folder (nothing is
downloaded). A case passes when it ends within the limit with the expected exit status (0 or
2), its message matches, no traceback is printed and its aftermath holds (an existing output
kept, a damaged cache moved aside). Exit status: 0 when every case passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile.cases import cli_cases  # noqa: E402  (the checkout on the path first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--model", help="local model folder (default: a tiny random model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flr-hostile-") as tmp:
        folder = Path(tmp)
        model = args.model
        if model is None:
            from tests.tiny_model import build_tiny_model

            model = str(build_tiny_model(folder / "tiny-model"))
        rows = []
        for case in cli_cases(folder / "cases", model):
            started = time.perf_counter()
            try:
                done = subprocess.run([sys.executable, "-m", "core", *case.argv], cwd=ROOT,
                                      capture_output=True, text=True, timeout=args.timeout,
                                      env={**os.environ, **case.env, "FLR_CACHE_DIR": str(folder / "cache")})
                code, err = done.returncode, done.stderr
            except subprocess.TimeoutExpired:
                code, err = None, f"no answer within {args.timeout:g} s"
            seconds = time.perf_counter() - started
            problems = []
            if code != case.exit:
                problems.append(f"exit {code}, expected {case.exit}")
            if "Traceback" in err:
                problems.append("traceback")
            if not re.search(case.message, err):
                problems.append("message")
            if case.after is not None:
                try:
                    case.after()
                except AssertionError as failed:
                    problems.append(str(failed))
            lines = [line for line in err.splitlines() if line.startswith(("error:", "WARNING"))] or [""]
            rows.append((case.name, str(code), f"{seconds:.1f}", "ok" if not problems else "; ".join(problems),
                         lines[0][:100]))
    header = ("case", "exit", "s", "verdict", "message")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
    failed = sum(r[3] != "ok" for r in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} hostile inputs answered as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
