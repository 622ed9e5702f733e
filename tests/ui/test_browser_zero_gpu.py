"""A new visitor on a ZeroGPU Space, in headless Chromium: the stand-in `spaces` pickles every GPU
call (tests/ui/zero_gpu_app.py), and the page must work as it does locally."""

from __future__ import annotations

import json

import pytest

from tests.ui.test_browser import TIMEOUT_MS, browser, open_tab, plot_drawn, shoot, wait_text  # noqa: F401
from tests.ui.test_zero_gpu import gpu_calls, zero_gpu_app

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_score_evaluate_and_dashboards_on_zero_gpu(browser, tmp_path, theme):  # noqa: F811
    pairs = tmp_path / "hh_pairs.jsonl"
    pairs.write_text("".join(json.dumps({
        "chosen": f"\n\nHuman: question {i}?\n\nAssistant: a long and helpful answer {i}",
        "rejected": f"\n\nHuman: question {i}?\n\nAssistant: no {i}"}) + "\n" for i in range(8)))
    with zero_gpu_app(tmp_path) as (url, log):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + f"?__theme={theme}")
        page.wait_for_selector("#conversation textarea")
        assert "category" in page.locator("#followup-table").inner_text()  # headers before a score

        page.fill("#conversation textarea", "User: What is the capital of France?\nAssistant: Paris.")
        page.click("#score-button")
        wait_text(page, "#score-summary", "Overall FLR")
        plot_drawn(page, "reward-plot")
        wait_text(page, "#score-download", "flr_result\n.json")
        shoot(page, f"zero-gpu-score-{theme}")
        assert gpu_calls(log) == ["score_conversations"]

        open_tab(page, "Batch evaluation")
        page.set_input_files("#batch-files input[type=file]", [str(pairs)])
        wait_text(page, "#batch-detected-note", "8 pairs of hh_pairs")
        page.click("#batch-run")
        wait_text(page, "#batch-headline", "16 conversation(s) scored")
        wait_text(page, "#batch-downloads", "REPORT.json")
        shoot(page, f"zero-gpu-batch-{theme}")

        open_tab(page, "Dashboards")
        wait_text(page, "#dashboards-note", "1 benchmark(s) from 1 run(s)")
        plot_drawn(page, "plot-accuracy-benchmark")
        shoot(page, f"zero-gpu-dashboards-{theme}")
        context.close()
    calls = gpu_calls(log)
    assert calls[0] == "score_conversations" and calls.count("evaluate_chunk") >= 1
    assert set(calls) == {"score_conversations", "evaluate_chunk"}
