"""Every hostile input we try, and how many held: the command-line cases of
`tests/hostile/cases.py` as real `flr` processes, then the whole `tests/hostile` pytest suite.

    python benchmarks/hostile_inputs.py [--timeout 120] [--model FOLDER] [--suite-timeout 1200]

First a table of the command-line cases: case, exit status, seconds, verdict and the message's
first line. Without `--model`, a tiny random chat model is built in a temporary folder (nothing
is downloaded). A case passes when it ends within the limit with the expected exit status (0 or
2), its message matches, no traceback is printed and its aftermath holds (an existing output
kept, a damaged cache moved aside).

Then `pytest tests/hostile` in a process of its own, under `--suite-timeout` seconds, read from
its JUnit XML: per test file, how many hostile inputs were tried (test cases, each parametrized
case counted on its own; skipped ones are listed apart) and how many held (passed). The last
line is the total of both parts. Exit status: 0 when everything held, 1 otherwise (a suite that
ran past its limit or wrote no report counts as failed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile.cases import cli_cases  # noqa: E402  (the checkout on the path first)


@dataclass
class FileCounts:
    """The cases of one test file: tried (run, not skipped) = passed + failed."""
    tried: int = 0
    passed: int = 0
    failed: int = 0  # a failure or an error
    skipped: int = 0
    failures: list[str] = field(default_factory=list)  # test ids, parameters included


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--model", help="local model folder (default: a tiny random model)")
    parser.add_argument("--suite-timeout", type=float, default=1200.0,
                        help="seconds for the whole tests/hostile pytest run")
    args = parser.parse_args()
    cli_held, cli_tried = run_cli_cases(args)
    print()
    suite = run_suite(args.suite_timeout)
    suite_held = sum(row.passed for row in suite.values()) if suite is not None else 0
    suite_tried = sum(row.tried for row in suite.values()) if suite is not None else 0
    held, tried = cli_held + suite_held, cli_tried + suite_tried
    print(f"\n{held} of {tried} hostile inputs held ({cli_held} of {cli_tried} command-line cases, "
          f"{suite_held} of {suite_tried} tests/hostile cases)")
    return 0 if suite is not None and held == tried else 1


def run_cli_cases(args: argparse.Namespace) -> tuple[int, int]:
    """The table of command-line cases; returns (held, tried)."""
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
    print(f"\n{len(rows) - failed} of {len(rows)} command-line hostile inputs answered as expected")
    return len(rows) - failed, len(rows)


def run_suite(timeout: float) -> dict[str, FileCounts] | None:
    """`pytest tests/hostile` in a subprocess; its cases counted per test file and printed as a
    table. None when it ran past `timeout` or wrote no report."""
    with tempfile.TemporaryDirectory(prefix="flr-hostile-suite-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "tests/hostile", "-q", "-p", "no:cacheprovider",
                   f"--junitxml={report}", "-o", "junit_family=xunit2"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"tests/hostile: no answer within {timeout:g} s (raise --suite-timeout)")
            return None
        seconds = time.perf_counter() - started
        if not report.is_file():
            print(f"tests/hostile: pytest exited {done.returncode} without a report:\n{done.stdout[-2000:]}")
            return None
        files = suite_counts(report)
    header = ("file", "tried", "held", "failed", "skipped")
    rows = [(name, str(c.tried), str(c.passed), str(c.failed), str(c.skipped)) for name, c in sorted(files.items())]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    for name, counts in sorted(files.items()):
        for failure in counts.failures:
            print(f"  failed: {name}::{failure}")
    print(f"tests/hostile: pytest exit {done.returncode} in {seconds:.0f} s")
    return files


def suite_counts(report: Path) -> dict[str, FileCounts]:
    """Per test file (from each testcase's classname, `tests.hostile.test_x[.Class]`): tried
    (run, not skipped), passed, failed (failure or error) and skipped, from a JUnit XML report."""
    files: dict[str, FileCounts] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        module = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        name = "/".join(parts[:module + 1]) + ".py"
        counts = files.setdefault(name, FileCounts())
        outcome = {child.tag for child in case}
        if "skipped" in outcome:
            counts.skipped += 1
            continue
        counts.tried += 1
        if outcome & {"failure", "error"}:
            counts.failed += 1
            counts.failures.append(case.get("name", "?"))
        else:
            counts.passed += 1
    return files


if __name__ == "__main__":
    sys.exit(main())
