"""The Chart review page (AppTest): worklist of the bundled cohort and its template download."""

from __future__ import annotations

from apptest_support import BUNDLED, as_int, metrics, open_page

from eligibility.loader import load_cohort
from eligibility.worklist import build_worklist


def _frame(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_chart_review_page_lists_what_to_collect():
    at = open_page("app_pages/worklist.py")
    wl = build_worklist(load_cohort(BUNDLED))
    shown = metrics(at)
    assert as_int(shown["Patients to review"]) == len(wl.patients)
    assert as_int(shown["Fields to collect"]) == int((wl.fields["patients"] > 0).sum())
    fields, patients = _frame(at, "settles_alone"), _frame(at, "open_criteria")
    assert list(fields["field"]) == list(wl.fields["field"])
    assert len(patients) == len(wl.patients)
    assert any("template" in b.label for b in at.get("download_button"))


def test_chart_review_page_follows_the_disease_filter():
    at = open_page("app_pages/worklist.py", disease="SSc")
    assert set(_frame(at, "open_criteria")["disease"].astype(str)) == {"SSc"}
