"""AppTest (headless Streamlit) of the Overview, Patients and Protocol pages.

Every number the pages show is checked against the engine, computed here
independently from data/cohort.parquet.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
from apptest_support import APP, BUNDLED, TIMEOUT, as_int, metrics, open_page, unescape
from streamlit.testing.v1 import AppTest

from eligibility.attribution import status_counts
from eligibility.evaluate import Evaluator
from eligibility.explain import near_misses
from eligibility.labels import label as criterion_label
from eligibility.loader import load_cohort
from eligibility.scenario import baseline, resolve
from eligibility.screen import results_frame

pytestmark = pytest.mark.skipif(not BUNDLED.exists(), reason="data/cohort.parquet (the bundled cohort) is missing")


@pytest.fixture(scope="module")
def engine():
    cohort = load_cohort(BUNDLED)
    evaluator = Evaluator.for_cohort(cohort)
    return cohort, evaluator, evaluator.evaluate(baseline())


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table shown that has all these columns (tables without a widget key have no key)."""
    for d in at.dataframe:
        value = d.value
        if set(columns) <= set(value.columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def _assert_headline(at: AppTest, row: pd.Series) -> None:
    m = metrics(at)
    assert as_int(m["Screened"]) == row["screened"]
    assert as_int(m["Eligible"]) == row["eligible"]
    assert as_int(m["Pending"]) == row["pending"]
    assert as_int(m["Ineligible"]) == row["ineligible"]
    lo, hi = (as_int(x) for x in m["Eligible range"].split("–"))
    assert (lo, hi) == (row["eligible_low"], row["eligible_high"]) == (row["eligible"], row["eligible"] + row["pending"])


# -- Overview ---------------------------------------------------------------------------

def test_overview_headline_equals_engine(engine):
    _, _, ev = engine
    at = open_page("app_pages/overview.py")
    _assert_headline(at, status_counts(ev).loc["All"])
    assert all(m.delta in (None, "") for m in at.metric)  # no deltas without a what-if scenario
    assert not at.error


@pytest.mark.parametrize("disease", ["SSc", "APS"])
def test_overview_respects_disease_filter(engine, disease):
    _, _, ev = engine
    at = open_page("app_pages/overview.py", disease=disease)
    _assert_headline(at, status_counts(ev).loc[disease])
    caption = " ".join(c.value for c in at.caption)
    assert f"({disease})" in caption or disease in caption


def test_overview_filter_changed_on_the_page(engine):
    """Change the sidebar filter while on the Overview: the numbers follow."""
    _, _, ev = engine
    at = open_page("app_pages/overview.py")
    at.sidebar.selectbox(key="disease_filter").select("IIM").run()
    assert not at.exception
    _assert_headline(at, status_counts(ev).loc["IIM"])
    at.sidebar.selectbox(key="disease_filter").select("All").run()
    _assert_headline(at, status_counts(ev).loc["All"])


def test_overview_deltas_under_a_scenario(engine):
    _, evaluator, ev = engine
    scenario = {"name": "relax age", "parameters": {"age_max": 75, "hb_min_g_l": 50}}
    at = open_page("app_pages/overview.py", scenario=scenario)
    what_if = status_counts(evaluator.evaluate(resolve(scenario))).loc["All"]
    base = status_counts(ev).loc["All"]
    _assert_headline(at, what_if)
    deltas = {m.label: m.delta for m in at.metric}
    for key, label in (("eligible", "Eligible"), ("pending", "Pending"), ("ineligible", "Ineligible")):
        assert as_int(str(deltas[label]).replace("+", "")) == what_if[key] - base[key]
    assert what_if["eligible"] > base["eligible"]


def test_overview_data_quality_and_downloads(engine):
    cohort, _, ev = engine
    at = open_page("app_pages/overview.py")
    report = cohort.report_frame()
    captions = " ".join(c.value for c in at.caption)
    assert f"{len(report):,} of {len(report):,} reported problems shown" in captions
    shown = _frame(at, "problem", "severity")
    assert list(shown.columns[:6]) == ["row", "patient_id", "column", "value", "problem", "severity"]
    assert len(shown) == min(len(report), 1000)
    # filter by severity: only errors
    at.multiselect(key="ov_issue_severity_bundled").set_value(["error"]).run()
    shown = _frame(at, "problem", "severity")
    assert len(shown) == int((report["severity"] == "error").sum())
    assert set(shown["severity"]) <= {"error"}
    labels = {b.label for b in at.get("download_button")}
    assert {"Results as CSV (Excel-safe)", "Results as Parquet"} <= labels
    missing = _frame(at, "missing_pct")
    assert len(missing) > 0 and {"field", "missing", "missing_pct"} <= set(missing.columns)
    assert results_frame(ev, cohort.frame).shape[0] == len(cohort)


def test_overview_lists_criteria_not_assessed_for_an_upload():
    """An uploaded file without the PFT columns: those criteria are listed as not assessed."""
    frame = pd.read_parquet(BUNDLED).head(50).drop(columns=["fvc_pct_pred", "dlco_pct_pred"])
    buf = io.BytesIO()
    frame.to_csv(buf, index=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.file_uploader(key="cohort_upload").upload("no_pft.csv", buf.getvalue(), "text/csv").run()
    at.switch_page("app_pages/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert as_int(metrics(at)["Screened"]) == 50
    na = _frame(at, "criterion", "absent_columns")
    assert "EXC-2.fvc" in set(na["criterion"])
    assert na.set_index("criterion").loc["EXC-2.fvc", "absent_columns"] == "fvc_pct_pred"
    assert na.set_index("criterion").loc["EXC-2.fvc", "name"] == "FVC < 50%"
    # and prominently, at the top of the page
    assert any("criteria not assessed" in w.value and "EXC-2.fvc · FVC < 50%" in w.value for w in at.warning)


# -- Patients -----------------------------------------------------------------------------

def _match_count(at: AppTest) -> int:
    for md in at.markdown:
        if "patients match" in md.value:
            return as_int(md.value.split("**")[1])
    raise AssertionError("no match count shown")


def test_patients_table_and_filters(engine):
    cohort, _, ev = engine
    res = results_frame(ev, cohort.frame)
    at = open_page("app_pages/patients.py")
    assert _match_count(at) == len(res)
    table = _frame(at, "first_reason", "failed")
    assert len(table) == min(len(res), 1000)  # paged: never the whole cohort
    at.multiselect(key="pt_status").set_value(["ineligible"]).run()
    assert _match_count(at) == int((res["status"] == "ineligible").sum())
    at.text_input(key="pt_failed").input("EXC-8").run()
    expected = int(((res["status"] == "ineligible") & res["failed"].str.contains("EXC-8", regex=False)).sum())
    assert _match_count(at) == expected
    assert not at.exception and not at.error


def test_patients_respects_disease_filter(engine):
    cohort, _, ev = engine
    res = results_frame(ev, cohort.frame)
    at = open_page("app_pages/patients.py", disease="AAV")
    assert _match_count(at) == int((res["disease"] == "AAV").sum())
    table = _frame(at, "first_reason", "failed")
    assert set(table["disease"]) == {"AAV"}


def test_patients_explanation(engine):
    cohort, _, ev = engine
    res = results_frame(ev, cohort.frame)
    target = res[res["status"] == "ineligible"].iloc[0]
    at = open_page("app_pages/patients.py")
    at.text_input(key="pt_explain_id").input(str(target["patient_id"])).run()
    assert not at.exception and not at.error
    expl = _frame(at, "Condition tested")
    assert "✗ fails" in set(expl["Outcome"])
    first = criterion_label(target["first_reason"])
    assert first in set(expl["Criterion"])
    md = " ".join(m.value for m in at.markdown)
    assert f"first reason **{first}**" in md
    assert "True" not in set(expl["Patient value"]) and "False" not in set(expl["Patient value"])
    at.text_input(key="pt_explain_id").input("no-such-patient").run()
    assert any("No patient with ID" in w.value for w in at.warning)


def test_patients_near_misses(engine):
    cohort, _, ev = engine
    near = near_misses(ev, cohort.frame, max_relative=0.1)
    at = open_page("app_pages/patients.py")
    if near.empty:
        assert any("No near misses" in i.value for i in at.info)
    else:
        captions = " ".join(c.value for c in at.caption)
        assert f"{len(near):,} patients within 10% of one limit" in captions
        table = _frame(at, "relative")
        assert len(table) == min(len(near), 1000)


# -- Protocol -----------------------------------------------------------------------------

def _markdown(at: AppTest) -> str:
    return " ".join(unescape(m.value) for m in at.markdown)


def test_protocol_page(engine):
    _, _, ev = engine
    at = open_page("app_pages/protocol.py")
    assert not at.error
    md = _markdown(at)
    # readable without hovering: every part written out, its rule as wrapped text
    assert "Rule: Age ≥ 18 years AND Age ≤ 65 years" in md
    assert sum(1 for u in ev.catalog.units if f"**{criterion_label(u.id)}**" in md) == len(ev.catalog.units)
    for phrase in ("limited cutaneous", "telitacicept", "70 % predicted", "at least 12 weeks",
                   "Unreadable washout dates"):
        assert phrase in md
    params = _frame(at, "what_if_range")
    assert len(params) == len(ev.catalog.parameters)
    assert not params["changed"].any()
    assert any(b.label == "Printable view (HTML)" for b in at.get("download_button"))
    # the table view still lists every part
    at.session_state["pr_view"] = "table"
    at.run()
    catalog = _frame(at, "rule", "this_cohort")
    assert len(catalog) == len(ev.catalog.units)


def test_protocol_shows_scenario_values_and_disease_block(engine):
    at = open_page("app_pages/protocol.py", disease="SSc", scenario={"parameters": {"age_max": 70}})
    md = _markdown(at)
    assert "Rule: Age ≥ 18 years AND Age ≤ 70 years" in md
    assert "age_max = 70 (protocol 65)" in " ".join(unescape(c.value) for c in at.caption)
    assert "**AAV-INC-1 · " not in md and "**SSC-INC-1 · " in md
    params = _frame(at, "what_if_range")
    assert params.set_index("parameter").loc["age_max", "changed"]


def test_disease_filter_travels_in_the_url():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["d"] = "AAV"
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="disease_filter").value == "AAV"
    at.sidebar.selectbox(key="disease_filter").select("SjS").run()
    assert at.query_params["d"] == ["SjS"] or at.query_params["d"] == "SjS"
    at.sidebar.selectbox(key="disease_filter").select("All").run()
    assert "d" not in at.query_params


def test_patient_filters_survive_a_visit_to_another_page():
    at = open_page("app_pages/patients.py")
    at.multiselect(key="pt_status").set_value(["ineligible"]).run()
    at.text_input(key="pt_failed").set_value("EXC-3").run()
    shown = [m.value for m in at.markdown if "patients match" in m.value]
    at.switch_page("app_pages/overview.py").run()
    at.switch_page("app_pages/patients.py").run()
    assert not at.exception
    assert at.multiselect(key="pt_status").value == ["ineligible"]
    assert at.text_input(key="pt_failed").value == "EXC-3"
    assert [m.value for m in at.markdown if "patients match" in m.value] == shown
