"""benchmarks/hostile_inputs.py counts the tests/hostile cases per file from pytest's JUnit XML:
each parametrized case on its own, failures and errors as not held, skipped ones apart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
<testcase classname="tests.hostile.test_app_limits" name="test_queue" time="1.0"/>
<testcase classname="tests.hostile.test_app_limits" name="test_upload[announced]" time="0.1"/>
<testcase classname="tests.hostile.test_app_limits" name="test_upload[chunked]" time="0.1">
  <failure message="assert 200 == 429">...</failure></testcase>
<testcase classname="tests.hostile.test_server_hostile.TestBodies" name="test_bomb" time="0.1">
  <error message="fixture failed">...</error></testcase>
<testcase classname="tests.hostile.test_server_hostile" name="test_ok" time="0.1"/>
<testcase classname="tests.hostile.test_datasets_hostile" name="test_needs_datasets" time="0.0">
  <skipped message="no datasets"/></testcase>
</testsuite></testsuites>
"""


def test_cases_are_counted_per_file_from_the_junit_report(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("hostile_inputs", ROOT / "benchmarks" / "hostile_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hostile_inputs", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    report = tmp_path / "junit.xml"
    report.write_text(REPORT, encoding="utf-8")
    counts = module.suite_counts(report)
    assert sorted(counts) == ["tests/hostile/test_app_limits.py", "tests/hostile/test_datasets_hostile.py",
                              "tests/hostile/test_server_hostile.py"]
    limits = counts["tests/hostile/test_app_limits.py"]
    assert (limits.tried, limits.passed, limits.failed, limits.skipped) == (3, 2, 1, 0)
    assert limits.failures == ["test_upload[chunked]"]
    server = counts["tests/hostile/test_server_hostile.py"]  # a class's cases belong to its file
    assert (server.tried, server.passed, server.failed) == (2, 1, 1)
    skipped = counts["tests/hostile/test_datasets_hostile.py"]
    assert (skipped.tried, skipped.skipped) == (0, 1)
