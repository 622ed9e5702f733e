"""The app as a user starts it (README: `python app.py`), toured in headless Chromium (issue 20).

Nothing of the test harness reaches the app: it runs `app.py` as its own process with a fresh
HOME, no FLR_* or GRADIO_* variables (so the work dir is the default ~/.cache/flr-studio/app),
the repository as working directory (which does not contain the work dir), TMPDIR pointing
elsewhere, and the default port 7860 unless another process holds it. It scores with the embedded
model. The tour: Score (number, charts, both downloads fetched over HTTP and parsed), Batch (the
paper-layout pair `mybench_*_relevance.jsonl`, accuracy 0.5417, every download fetched and
parsed), Dashboards and Mine. It fails on any error toast, any "Error" status in the page, and
any traceback in the app's log. The same tour runs once more as on a ZeroGPU Space: SPACE_ID set,
SPACES_ZERO_GPU=true and the stand-in `spaces` (tests/stubs) first on the path, which runs every
GPU call in a forked child and logs the GPU seconds each asked for.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

import pytest

from tests.app_process import stop, wait_until_answering
from tests.ui.paper_pair import ACCURACY, write_paper_pair
from tests.ui.test_app_client import free_port
from tests.ui.test_browser import TIMEOUT_MS, browser, open_tab, plot_drawn, shoot, wait_text  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.embedded]

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "tests" / "stubs"
START_TIMEOUT = 120  # seconds for `python app.py` to answer on a busy machine (not a measurement)
MODEL_TIMEOUT_MS = 150_000  # the first score loads the embedded model
DEFAULT_PORT = 7860
# Toasts gradio shows for a failed event, and the "Error" badge its status tracker puts on the
# outputs: collected from the moment the page loads, so a toast that fades is still seen.
WATCH_ERRORS = """
window.__flrErrors = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.toast-body.error, .status-tracker .error, .wrap .error')) {
    if (el.dataset.flrSeen) continue;
    el.dataset.flrSeen = '1';
    window.__flrErrors.push((el.innerText || '').trim() || '(an error with no text)');
  }
}).observe(document, {childList: true, subtree: true});
"""


def port_for_the_app() -> int:
    """7860, the app's default, unless something on this machine already listens there."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            return free_port()
    return DEFAULT_PORT


def user_environment(home: Path, tmp: Path, port: int, zero_gpu: bool, gpu_log: Path) -> dict[str, str]:
    """A user's shell: the machine's PATH and locale, nothing of this project's settings."""
    drop = ("FLR_", "GRADIO_", "SPACE", "XDG_", "HF_", "PYTHON", "PYTEST")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in ("TMPDIR", "TEMP", "TMP")}
    env.update(HOME=str(home), TMPDIR=str(tmp), OMP_NUM_THREADS="1")
    if port != DEFAULT_PORT:
        env["GRADIO_SERVER_PORT"] = str(port)
    if zero_gpu:
        env.update(SPACE_ID="someone/flr-studio", SPACES_ZERO_GPU="true", PYTHONPATH=str(STUBS),
                   FLR_STUB_GPU_LOG=str(gpu_log))
    return env


@contextmanager
def app_as_started(tmp_path: Path, zero_gpu: bool) -> Iterator[tuple[str, Path, Path, Path]]:
    """`python app.py` from the repository root; yield (URL, HOME, log file, GPU-call log)."""

    home, tmp = tmp_path / "home", tmp_path / "elsewhere-tmp"
    home.mkdir()
    tmp.mkdir()
    log_path, gpu_log = tmp_path / "app.log", tmp_path / "gpu-calls.jsonl"
    port = port_for_the_app()
    env = user_environment(home, tmp, port, zero_gpu, gpu_log)
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_answering(server, url, START_TIMEOUT, log_path.read_text, name="app.py", poll=0.5)
        yield url, home, log_path, gpu_log
    finally:
        stop(server)


def download_links(page, elem_id: str, expected: int) -> list[str]:
    """The href of every file link in the gr.File with this id, once `expected` are shown."""
    try:
        page.wait_for_function(f"document.querySelectorAll('#{elem_id} a[href]').length >= {expected}")
    except Exception:
        shoot(page, f"no-downloads-{elem_id}")
        raise AssertionError(f"#{elem_id} never showed {expected} download links; the page showed "
                             f"errors: {page.evaluate('window.__flrErrors')}") from None
    return [a.get_attribute("href") for a in page.locator(f"#{elem_id} a[href]").all()]


def fetch(url: str, href: str) -> tuple[str, bytes]:
    """GET one download link as a browser would; returns the file name and its bytes."""
    import httpx

    response = httpx.get(href if href.startswith("http") else url.rstrip("/") + href, timeout=30)
    assert response.status_code == 200, f"{href}: HTTP {response.status_code} {response.text[:200]}"
    return unquote(href.rsplit("/", 1)[-1]), response.content


def parse(name: str, data: bytes) -> object:
    """The file's content, parsed by its kind: any file that does not parse fails the test."""
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    if name.endswith(".json"):
        return json.loads(data)
    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            return archive.namelist()
    raise AssertionError(f"unexpected download {name}")


def no_errors(page, where: str) -> None:
    errors = page.evaluate("window.__flrErrors")
    if errors:
        shoot(page, f"error-{where}")
    assert not errors, f"{where}: the page showed errors: {errors}"


def refused(url: str, path: Path) -> bool:
    import httpx

    return httpx.get(f"{url}gradio_api/file={path}", timeout=10).status_code in (403, 404)


@pytest.mark.parametrize("zero_gpu", [False, True], ids=["local", "zero-gpu-space"])
def test_the_readme_command_score_batch_dashboards_mine(browser, tmp_path, zero_gpu):  # noqa: F811
    where = "zero-gpu" if zero_gpu else "local"
    pair = write_paper_pair(tmp_path / "my-files")
    with app_as_started(tmp_path, zero_gpu) as (url, home, log_path, gpu_log):
        work = home / ".cache" / "flr-studio" / "app"
        assert not work.is_relative_to(ROOT) and not work.is_relative_to(tmp_path / "elsewhere-tmp")
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(WATCH_ERRORS)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("#conversation textarea")

        # -- Score: the example conversation, with the embedded model
        page.click("#score-button")
        page.wait_for_function("document.querySelector('#score-summary').innerText.includes('Overall FLR')",
                               timeout=MODEL_TIMEOUT_MS)
        shown = float(page.locator("#score-summary").inner_text().split("Overall FLR:")[1].split()[0])
        plot_drawn(page, "reward-plot")
        plot_drawn(page, "means-plot")
        files = dict(fetch(url, href) for href in download_links(page, "score-download", 2))
        assert set(files) == {"flr_result.json", "flr_followups.csv"}, files.keys()
        record = parse("flr_result.json", files["flr_result.json"])
        assert round(record["flr"], 4) == shown
        rows = parse("flr_followups.csv", files["flr_followups.csv"])
        assert rows and "relevance" in {r["category"] for r in rows}
        no_errors(page, "score")
        shoot(page, f"as-started-{where}-score")

        # -- Batch: the paper-layout pair, precomputed values
        open_tab(page, "Batch evaluation")
        page.get_by_text("Summary across benchmarks").click()
        page.get_by_text("Skipped rows").click()
        wait_text(page, "#batch-summary", "benchmark")  # real headers before a run, not 1 2 3
        wait_text(page, "#batch-skipped", "reason")
        page.set_input_files("#batch-files input[type=file]", [str(p) for p in pair])
        wait_text(page, "#batch-detected-note", "precomputed follow-up values")
        page.click("#batch-run")
        wait_text(page, "#batch-headline", "accuracy 0.542")
        assert ACCURACY in page.locator("#batch-metrics").inner_text()
        hrefs = download_links(page, "batch-downloads", 3)
        batch = dict(fetch(url, href) for href in hrefs)
        assert len(batch) == len(hrefs) and "REPORT.json" in batch, batch.keys()
        parsed = {name: parse(name, data) for name, data in batch.items()}
        report = parsed["REPORT.json"]
        assert round(report["benchmarks"][0]["metrics"]["accuracy"], 4) == float(ACCURACY)
        assert {"mybench_accept_relevance.jsonl", "mybench_reject_relevance.jsonl"} <= set(batch)
        assert len(parsed["mybench_accept_relevance.jsonl"]) == 24
        no_errors(page, "batch")
        shoot(page, f"as-started-{where}-batch")

        # -- what a visitor must not reach: the score cache, the files they uploaded from, the home
        cache = work / "scores.sqlite"
        if not cache.exists():  # the refusal must not rest on the file being absent
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(b"SQLite format 3\0")
        assert refused(url, cache), "the score cache is served"
        assert refused(url, pair[0]), "a file outside the app's folders is served"
        (home / ".netrc").write_text("machine example.com password secret")
        assert refused(url, home / ".netrc")
        staged = tmp_path / "elsewhere-tmp" / "flr-upload-x" / "mybench_accept_relevance.jsonl"
        staged.parent.mkdir()
        staged.write_bytes(pair[0].read_bytes())  # where the Batch tab puts uploads side by side
        assert refused(url, staged), "a file in the system temp dir is served"

        # -- Dashboards: the run just made
        open_tab(page, "Dashboards")
        wait_text(page, "#dashboards-note", "1 benchmark(s) from 1 run(s)")
        plot_drawn(page, "plot-accuracy-benchmark")
        no_errors(page, "dashboards")
        shoot(page, f"as-started-{where}-dashboards")

        # -- Mine: one prompt, two short samples, with the embedded model as the policy
        open_tab(page, "Mine preferences")
        page.fill("#mine-prompts textarea", "What is 2 + 2?")
        for slider, value in (("#mine-samples", "2"), ("#mine-max-tokens", "16")):
            box = page.locator(f"{slider} input[type=number]")
            box.fill(value)
            box.press("Enter")
        page.click("#mine-button")
        page.wait_for_function("document.querySelector('#mine-summary').innerText.includes('prompts')",
                               timeout=MODEL_TIMEOUT_MS)
        for href in download_links(page, "mine-downloads", 3):
            parse(*fetch(url, href))
        no_errors(page, "mine")
        shoot(page, f"as-started-{where}-mine")
        context.close()
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, "the app logged a traceback:\n" + log[-4000:]
    if zero_gpu:
        calls = [json.loads(line) for line in gpu_log.read_text().splitlines() if line.strip()]
        assert {c["function"] for c in calls} == {"score_conversations", "mine_samples"}, calls
        assert all(c["ok"] for c in calls), calls
        # sized from the work (ui/gpu.py): one conversation, or 2 short replies, on the 135M model
        assert all(c["duration"] < 30 for c in calls), calls
