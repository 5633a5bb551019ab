"""Browser: the chart-review loop in the dashboard. Upload an EHR import, download nothing
(the template bytes are checked in unit tests), merge a filled sheet in the sidebar, and
see the pending patients settle on the Overview; the Chart review page renders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from factory import eligible_row
from test_browser import (  # noqa: F401 - fixtures
    IDLE_TIMEOUT_MS,
    as_int,
    assert_no_exception,
    browser,
    metric_value,
    page,
    screenshot,
    server,
    upload_cohort,
    wait_idle,
)

from eligibility.fields import FIELD_BY_NAME
from eligibility.importers.fhir import from_fhir
from eligibility.loader import load_cohort
from eligibility.worklist import build_worklist

pytestmark = pytest.mark.browser
EXTERNAL = next((p / "shared" / "external" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "external").is_dir()), Path("../shared/external"))


def _files(tmp_path: Path) -> tuple[Path, Path, int]:
    res = from_fhir(EXTERNAL / "synthea-fhir-r4", as_of=dt.date(2021, 3, 19), disease="SSc")
    ehr = tmp_path / "ehr_import.csv"
    res.frame.to_csv(ehr, index=False)
    wl = build_worklist(load_cohort(ehr))
    passing = {**eligible_row("SSc"), "mrss_change_6m_pct": 40}
    rows = []
    for pid, collect in zip(wl.patients["patient_id"], wl.patients["collect"], strict=True):
        row = {"patient_id": pid}
        for name in filter(None, collect.split(";")):
            v = passing.get(name)
            row[name] = ("yes" if v else "no") if FIELD_BY_NAME[name].kind == "yesno" and v is not None else v
        rows.append(row)
    sheet = tmp_path / "filled_sheet.csv"
    pd.DataFrame(rows, columns=["patient_id", *wl.field_order()]).to_csv(sheet, index=False)
    return ehr, sheet, len(wl.patients)


@pytest.mark.skipif(not (EXTERNAL / "synthea-fhir-r4").is_dir(), reason="shared bundles not present")
def test_merge_a_sheet_in_the_sidebar_settles_pending_patients(page, server, tmp_path):  # noqa: F811
    ehr, sheet, n_targets = _files(tmp_path)
    page.goto(server)
    wait_idle(page)
    upload_cohort(page, ehr)
    assert as_int(metric_value(page, "Pending")) + as_int(metric_value(page, "Eligible")) == n_targets
    assert as_int(metric_value(page, "Pending")) > 0
    page.locator("[data-testid='stSidebarNav'] a", has_text="Chart review").first.click()
    wait_idle(page)
    assert_no_exception(page)
    assert as_int(metric_value(page, "Patients to review")) == n_targets
    assert page.locator("[data-testid='stDownloadButton']", has_text="chart-review template").count() == 1
    screenshot(page, "chart_review_page")
    page.locator("[data-testid='stSidebar'] [data-testid='stExpander']", has_text="Chart review").first.click()
    page.locator(".st-key-cr_upload input[type='file']").set_input_files(str(sheet))
    page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']",
                 has_text="value(s) filled from the sheet").first.wait_for(timeout=IDLE_TIMEOUT_MS)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, "chart_review_merged")
    assert page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']",
                        has_text="ehr_import.csv + filled_sheet.csv · 11 patients").count() == 1
    assert page.get_by_text("nothing to collect").count() == 1
    page.locator("[data-testid='stSidebarNav'] a", has_text="Overview").first.click()
    wait_idle(page)
    assert as_int(metric_value(page, "Pending")) == 0
    assert as_int(metric_value(page, "Eligible")) == n_targets
    screenshot(page, "chart_review_merged_overview")
