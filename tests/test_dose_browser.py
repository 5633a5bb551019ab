"""Dose cohorts in headless Chromium at 1280×800: the one-plan table, the design options,
TITE-BOIN's calendar timeline and the decision-table download (run with -m browser)."""

from __future__ import annotations

import pytest
from test_browser import (  # noqa: F401 - fixtures used by name
    CHROMIUM,
    assert_no_exception,
    browser,
    choose_option,
    open_page,
    screenshot,
    server,
    wait_idle,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def small(browser):  # noqa: F811 - the fixture above
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def _choose_design(page, label: str) -> None:
    choose_option(page, "dose_design", label)


def test_dose_page_one_plan_options_and_tite(small, server):  # noqa: F811
    page = small
    page.goto(f"{server}/dose_cohorts")  # the first run loads and evaluates the cohort: allow for a busy machine
    wait_idle(page, 240_000)
    open_page(page, server, "Dose cohorts")
    assert_no_exception(page)
    page.get_by_text("One plan", exact=True).wait_for()
    page.get_by_text("Every section below shows the same plan").wait_for()
    screenshot(page, "dose_1280_default")
    _choose_design(page, "BOIN")
    page.get_by_text("BOIN options").click()
    box = page.locator(".st-key-dose_n_earlystop input")
    box.fill("9")
    box.press("Enter")
    wait_idle(page)
    assert_no_exception(page)
    page.get_by_text("BOIN decision table (protocol appendix)").click()
    screenshot(page, "dose_1280_boin_options")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Decision table (CSV)").click()
    text = dl.value.path().read_text(encoding="utf-8-sig")
    assert text.startswith("section,item,value") and "decision," in text
    _choose_design(page, "TITE-BOIN")
    assert_no_exception(page)
    page.get_by_text("cohorts open back to back", exact=False).first.wait_for()
    screenshot(page, "dose_1280_tite")
    assert CHROMIUM.exists()
