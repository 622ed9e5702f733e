"""The Mine preferences tab in headless Chromium (fake scorer, scripted policy): what a visitor sees."""

from __future__ import annotations

import pytest

from tests.fakes import FakeScorer
from tests.ui.test_app_client import running_app
from tests.ui.test_browser import TIMEOUT_MS, browser, shoot, wait_text  # noqa: F401  (fixture)
from tests.mining.test_mining import ScriptedPolicy

pytestmark = pytest.mark.browser


def test_mine_tab_shows_rewards_roles_and_downloads(browser, tmp_path, monkeypatch):  # noqa: F811
    import core.mining.policy

    monkeypatch.setattr(core.mining.policy, "load_policy", lambda config: ScriptedPolicy())
    with running_app(tmp_path, scorer_factory=FakeScorer) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("tab", name="Mine preferences").click()
        page.wait_for_selector("#mine-prompts textarea")
        assert "David has three sisters" in page.input_value("#mine-prompts textarea")
        page.fill("#mine-prompts textarea", "What is 2 + 2?\nName a colour.")
        page.click("#mine-button")
        wait_text(page, "#mine-summary", "DPO pairs  2 prompts kept")
        cells = [line.strip() for line in page.locator("#mine-table").inner_text().splitlines()]
        assert cells.count("chosen") == 2 and cells.count("rejected") == 2
        wait_text(page, "#mine-downloads", "flr_mined_datasets\n.zip")
        shoot(page, "mine-tab")

        page.fill("#mine-prompts textarea", "")
        page.click("#mine-button")
        page.wait_for_selector("text=no prompts")
        context.close()
