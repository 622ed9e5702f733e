"""End to end in headless Chromium: what a new visitor sees in each tab.

Uses Debian's /usr/bin/chromium (skipped with the reason when it is missing) and a fake scorer,
so it runs in seconds. Screenshots go to test-artifacts/ (gitignored) and are listed at the end.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import pytest

from tests.ui.test_app_client import running_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--headless"]
ARTIFACTS = Path(os.environ.get("FLR_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
TIMEOUT_MS = 30_000


SHOTS: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def list_screenshots(request) -> Iterator[None]:
    """At the end, name the screenshots in the terminal (they are not shown without -s)."""
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if SHOTS and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nbrowser screenshots ({len(SHOTS)}) in {ARTIFACTS}: "
                                + ", ".join(p.name for p in SHOTS))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (scripts/setup.sh --dev as root)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    with running_app(tmp_path_factory.mktemp("browser-app")) as url:
        yield url


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    page.wait_for_selector("#conversation textarea")
    yield page
    context.close()


def shoot(page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    SHOTS.append(path)
    return path


def wait_text(page, selector: str, text: str) -> None:
    """Wait until the element's visible text contains `text`."""
    page.wait_for_selector(selector)
    try:
        page.wait_for_function("([sel, text]) => document.querySelector(sel).innerText.includes(text)",
                               arg=[selector, text])
    except Exception:
        shoot(page, "failure")
        raise AssertionError(f"{selector} never showed {text!r}; it shows "
                             f"{page.locator(selector).inner_text()[:500]!r}") from None


def plot_drawn(page, elem_id: str) -> None:
    """Plotly has drawn at least one trace inside the gr.Plot with this id."""
    page.wait_for_selector(f"#{elem_id} .js-plotly-plot .main-svg", state="attached")
    page.wait_for_function(  # bars and scatters are `.trace` groups, heatmaps `.hm` images
        f"document.querySelectorAll('#{elem_id} .js-plotly-plot .trace, #{elem_id} .js-plotly-plot .hm')"
        ".length > 0")


def test_paste_a_conversation_and_see_scores_and_a_chart(page):
    page.fill("#conversation textarea", "User: What is the capital of France?\nAssistant: Paris.")
    page.click("#score-button")
    wait_text(page, "#score-summary", "Overall FLR: +1.0060")
    plot_drawn(page, "reward-plot")
    plot_drawn(page, "means-plot")
    assert page.locator("#followup-table").inner_text().count("relevance") >= 1
    shoot(page, "score-tab")


def test_bad_paste_shows_a_message_in_the_page(page):
    page.fill("#conversation textarea", "User: anyone there?")
    page.click("#score-button")
    page.wait_for_selector(".toast-body :text(\"ending with the user's\")")
    page.wait_for_function("getComputedStyle(document.querySelector('.toast-body')).opacity === '1'")
    shoot(page, "score-error", full_page=False)
    # still serving: a good paste scores
    page.fill("#conversation textarea", "User: hi\nAssistant: Hello!")
    page.click("#score-button")
    wait_text(page, "#score-summary", "Overall FLR")


def write_paper_pair(folder: Path) -> list[str]:
    """A hand-made pair of the paper's files: precomputed rewards give accuracy 3/4."""
    import json

    conv = ["Hi", "Hello"]
    accept = [{"conversation": conv, "positive": [1.0], "negative": [0.0]}] * 3 + [
        {"conversation": conv, "positive": [0.0], "negative": [0.0]}]
    reject = [{"conversation": conv, "positive": [0.0], "negative": [0.0]}] * 3 + [
        {"conversation": conv, "positive": [1.0], "negative": [0.0]}]
    paths = []
    for name, rows in (("toy_accept_relevance.jsonl", accept), ("toy_reject_relevance.jsonl", reject)):
        path = folder / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(str(path))
    return paths


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_upload_a_pair_see_the_accuracy_then_the_dashboards(page, tmp_path):
    open_tab(page, "Batch evaluation")
    page.set_input_files("#batch-files input[type=file]", write_paper_pair(tmp_path))
    wait_text(page, "#batch-detected", "toy")
    wait_text(page, "#batch-detected-note", "precomputed follow-up values")
    # opening the accordion turns the empty "Only the first N" box into 0 (issue 27): still "all"
    page.get_by_text("More options").click()
    page.wait_for_selector("#batch-limit input")
    page.click("#batch-run")
    wait_text(page, "#batch-headline", "accuracy 0.750")
    wait_text(page, "#batch-downloads", "REPORT.json")
    assert "0.75" in page.locator("#batch-metrics").inner_text()
    shoot(page, "batch-tab")

    open_tab(page, "Dashboards")
    wait_text(page, "#dashboards-note", "1 benchmark(s) from 1 run(s)")
    plot_drawn(page, "plot-accuracy-benchmark")
    plot_drawn(page, "plot-accuracy-category")
    plot_drawn(page, "plot-heatmap")
    assert page.locator("#plot-accuracy-benchmark .js-plotly-plot .point").count() >= 1
    shoot(page, "dashboards-tab")


def test_about_tab_has_the_citation(page):
    open_tab(page, "About")
    wait_text(page, "#about", "2409.13948")
    shoot(page, "about-tab")


def test_a_bundled_sample_in_one_click(page):
    from ui.tabs.batch import sample_sets

    if not sample_sets():
        pytest.skip("no bundled samples in assets/samples")
    open_tab(page, "Batch evaluation")
    page.click("#load-sample")
    wait_text(page, "#batch-detected-note", "Detected 1 benchmark(s)")
    page.click("#batch-run")
    wait_text(page, "#batch-headline", "FLR")
    wait_text(page, "#batch-downloads", "REPORT.json")
    shoot(page, "batch-sample")
    open_tab(page, "Dashboards")
    wait_text(page, "#dashboards-note", "1 benchmark(s) from 1 run(s)")
    plot_drawn(page, "plot-heatmap")
    if "ranking" in page.locator("#batch-detected").inner_text():
        plot_drawn(page, "plot-ranking")
    shoot(page, "dashboards-sample")


def test_cancel_a_running_evaluation_and_resume(browser, tmp_path):
    """Cancel during a run: the page says so, and the rerun only scores what was left."""
    import json
    import threading

    from tests.fakes import FakeScorer

    started, gate = threading.Event(), threading.Event()

    class GatedScorer(FakeScorer):
        def score_many(self, conversations, followups, progress=None):
            started.set()
            gate.wait(timeout=20)  # hold the first chunk until the visitor has pressed Cancel
            return super().score_many(conversations, followups, progress)

    pairs = tmp_path / "hh_pairs.jsonl"
    pairs.write_text("".join(json.dumps({
        "chosen": f"\n\nHuman: question {i}?\n\nAssistant: a long and helpful answer {i}",
        "rejected": f"\n\nHuman: question {i}?\n\nAssistant: no {i}"}) + "\n" for i in range(10)))
    with running_app(tmp_path / "work", scorer_factory=lambda c: GatedScorer(c, lambda r: len(r) / 100)) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        open_tab(page, "Batch evaluation")
        page.set_input_files("#batch-files input[type=file]", [str(pairs)])
        wait_text(page, "#batch-detected-note", "10 pairs of hh_pairs")
        page.click("#batch-run")
        assert started.wait(timeout=20)
        page.click("#batch-cancel")
        wait_text(page, "#batch-status", "Cancelling")
        gate.set()
        wait_text(page, "#batch-headline", "Run cancelled")
        shoot(page, "batch-cancelled")
        page.click("#batch-run")
        page.wait_for_function(
            "!document.querySelector('#batch-headline').innerText.includes('Run cancelled')")
        text = page.locator("#batch-headline").inner_text()
        assert "hh_pairs (pairwise, n = 10): FLR accuracy 1.000" in text
        scored, cached = re.search(r"(\d+) conversation\(s\) scored, (\d+) from the cache", text).groups()
        assert int(cached) > 0 and int(scored) + int(cached) == 20  # resumed, nothing twice
        shoot(page, "batch-resumed")
        context.close()
