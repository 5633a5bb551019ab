"""A database cohort in aggregate mode in headless Chromium (run with -m browser): the server
runs with ELIGIBILITY_DASHBOARD_PULL_ROWS=0, so the bundled cohort in a DuckDB file opens
without pulling per-patient data; every page opens and shows the memory engine's counts."""

from __future__ import annotations

import duckdb as ddb
import pytest
from streamlit_server import streamlit_app
from test_browser import (  # noqa: F401 - fixtures used by name
    CHROMIUM,
    PAGES,
    ROOT,
    _unavailable,
    as_int,
    assert_no_exception,
    browser,
    metric_value,
    open_page,
    page,
    screenshot,
    wait_idle,
)

from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort

pytestmark = pytest.mark.browser
BUNDLED = ROOT / "data" / "cohort.parquet"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("dbbrowser") / "warehouse.duckdb"
    c = ddb.connect(str(path))
    c.execute(f"CREATE TABLE cohort AS SELECT * FROM read_parquet('{BUNDLED}')")
    c.close()
    return path


@pytest.fixture(scope="module")
def server():
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with streamlit_app("dbagg", env={"ELIGIBILITY_DASHBOARD_PULL_ROWS": "0"}) as base:
        yield base


def test_database_cohort_in_aggregate_mode(page, server, warehouse):  # noqa: F811
    counts = Evaluator.for_cohort(load_cohort(BUNDLED)).evaluate().counts()
    open_page(page, server, "Overview")
    box = page.locator(".st-key-cohort_database input")
    box.fill(str(warehouse))
    box.press("Enter")
    page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']",
                 has_text="aggregate mode").first.wait_for()
    wait_idle(page)
    assert_no_exception(page)
    assert as_int(metric_value(page, "Eligible")) == counts["eligible"]
    assert as_int(metric_value(page, "Screened")) == counts["screened"]
    page.get_by_text("is not available for this database cohort").first.wait_for()
    screenshot(page, "database_aggregate_overview")
    for name in ("Screen failures", "What-if", "Patients", "Dose cohorts", "Protocol"):
        open_page(page, server, name)
        assert_no_exception(page)
        assert page.locator("[data-testid='stException']").count() == 0
        if name == "What-if":
            assert as_int(page.locator(".st-key-whatif_metric_All [data-testid='stMetricValue']")
                          .inner_text()) == counts["eligible"]
        if name == "Patients":
            page.get_by_text(f"{counts['screened']:,} patients match", exact=False).first.wait_for()
        screenshot(page, f"database_aggregate_{PAGES[name]}")
