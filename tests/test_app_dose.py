"""AppTest of the Dose cohorts page through the app's router: every number shown equals
the dose engine's, recomputed when the design, a DLT rate or the what-if scenario changes."""

from __future__ import annotations

import math

import apptest_support
import numpy as np
import pandas as pd
import pytest
from apptest_support import APP, BUNDLED, ROOT
from streamlit.testing.v1 import AppTest

from eligibility.dose import (
    DoseSettings,
    eligible_fractions,
    expected_plan,
    operating_characteristics,
    run_simulation,
    sample_size_summary,
)
from eligibility.dose import tables as T
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import Scenario, resolve

PAGE = "app_pages/dose_cohorts.py"
EDITOR = "dose_levels_editor"

pytestmark = pytest.mark.skipif(not BUNDLED.exists(), reason="bundled cohort data/cohort.parquet not built")


def open_page(**kw) -> AppTest:
    return apptest_support.open_page(PAGE, **kw)


def edit(at: AppTest, edited=None, deleted=None) -> AppTest:
    at.session_state[EDITOR] = {"edited_rows": edited or {}, "added_rows": [], "deleted_rows": deleted or []}
    return at.run()


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The shown table that has `column` (AppTest exposes no keys for read-only tables)."""
    for df in at.dataframe:
        v = df.value
        if column in v.columns:
            return v
    raise AssertionError(f"no table with column {column!r}")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def expected_screened(parameters: dict | None = None) -> pd.DataFrame:
    cohort = load_cohort(BUNDLED)
    ev = Evaluator.for_cohort(cohort).evaluate(resolve(Scenario(parameters=parameters or {})))
    return T.screening_frame(cohort.frame, ev.status_labels())


@pytest.fixture
def page() -> AppTest:
    return open_page()


def test_page_renders_all_sections(page):
    at = page
    assert not at.exception
    assert errors(at) == []
    assert at.title[0].value == "Dose cohorts"
    heads = [h.value for h in at.subheader]
    for h in ("Planning assumptions", "One plan", "Assignment to dose levels", "Sample size", "Screening need",
              "Timeline", "Operating characteristics", "Downloads"):
        assert h in heads
    assert at.data_editor[0].value["label"].tolist() == ["DL1", "DL2", "DL3"]
    assert at.selectbox(key="dose_design").value == "3+3"
    assert at.number_input(key="dose_cohort_size_33").value == 3
    assert at.number_input(key="dose_cohort_size_33").disabled
    assert [b.label for b in at.get("download_button")] == ["Assignment (CSV)", "Operating characteristics (CSV)",
                                                             "Decision table (CSV)"]


def test_default_numbers_equal_engine(page):
    at = page
    s = DoseSettings()
    run = run_simulation(s)
    oc = operating_characteristics(run)
    shown = table(at, "mtd_selection_pct")
    assert shown["mtd_selection_pct"].tolist() == pytest.approx(oc["mtd_selection_pct"])
    assert shown["mean_patients"].tolist()[:3] == pytest.approx(oc["mean_n_per_level"])
    ss = table(at, "quantity").set_index("quantity")["patients"]
    summary = sample_size_summary(s, run)
    assert [ss["Minimum"], ss["All levels escalate"], ss["Maximum"]] == [3, 9, 18]
    assert ss["Expected (mean)"] == round(summary["expected"], 1)  # shown to one decimal
    assert metric(at, "Expected patients") == f"{oc['mean_n_total']:.1f}"
    # one story: the assignment fills the expected path, which the plan table and the timeline show
    plan = expected_plan(s, run)
    step = table(at, "pending").set_index("dose_level")
    scr = expected_screened()
    assert step.loc[["DL1", "DL2", "DL3"], "eligible"].tolist() == list(plan.patients_per_level)
    shown_plan = table(at, "plan_patients")
    assert shown_plan["plan_patients"].tolist() == list(plan.patients_per_level)
    assert shown_plan["mean_patients"].tolist() == pytest.approx(oc["mean_n_per_level"])
    tl = table(at, "fill_days")
    assert tl["dose_level"].value_counts().reindex(s.labels, fill_value=0).tolist() == list(plan.cohorts_per_level)
    assert step["eligible"].sum() == (scr["status"] == "eligible").sum()
    assert step["pending"].sum() == (scr["status"] == "pending").sum()


def test_design_change_recomputes():
    at = open_page()
    before = table(at, "mtd_selection_pct")["mtd_selection_pct"].tolist()
    at.selectbox(key="dose_design").set_value("boin").run()
    assert not at.exception and errors(at) == []
    s = DoseSettings(design="boin")
    oc = operating_characteristics(run_simulation(s))
    after = table(at, "mtd_selection_pct")["mtd_selection_pct"].tolist()
    assert after == pytest.approx(oc["mtd_selection_pct"])
    assert after != before
    ss = table(at, "quantity").set_index("quantity")["patients"]
    assert ss["Maximum"] == 30
    assert at.number_input(key="dose_cohort_size").disabled is False
    # BOIN cohort size 2, max N 12: the shown table follows the engine again
    at.number_input(key="dose_cohort_size").set_value(2).run()
    at.number_input(key="dose_max_n").set_value(12).run()
    s = DoseSettings(design="boin", cohort_size=2, max_n=12)
    oc = operating_characteristics(run_simulation(s))
    shown = table(at, "mtd_selection_pct")
    assert shown["mean_patients"].tolist()[:3] == pytest.approx(oc["mean_n_per_level"])
    assert table(at, "quantity").set_index("quantity")["patients"]["Maximum"] == 12


def test_dlt_rate_change_recomputes():
    at = open_page()
    edit(at, edited={2: {"true_dlt": 0.5}})
    assert not at.exception and errors(at) == []
    oc = operating_characteristics(run_simulation(DoseSettings(true_dlt=[0.05, 0.10, 0.5])))
    shown = table(at, "mtd_selection_pct")
    assert shown["true_dlt"].tolist()[:3] == pytest.approx([0.05, 0.10, 0.5])
    assert shown["mtd_selection_pct"].tolist() == pytest.approx(oc["mtd_selection_pct"])
    assert shown["mean_dlts"].tolist()[:3] == pytest.approx(oc["mean_dlt_per_level"])


def test_invalid_settings_show_error_not_traceback():
    at = open_page()
    edit(at, edited={1: {"true_dlt": 1.5}})
    assert not at.exception
    msg = " ".join(errors(at))
    assert "Assumed true DLT rate" in msg and "level 2" in msg and "1.5" in msg
    assert "Operating characteristics" not in [h.value for h in at.subheader]

    edit(at, deleted=[0, 1, 2])
    assert not at.exception
    assert "Dose levels: add at least one dose level" in " ".join(errors(at))

    edit(at)  # back to the defaults
    assert errors(at) == []
    at.selectbox(key="dose_design").set_value("i3+3").run()
    at.number_input(key="dose_cohort_size").set_value(0).run()
    assert not at.exception
    assert "Cohort size: cohort size must be at least 1" in " ".join(errors(at))

    at.number_input(key="dose_cohort_size").set_value(3).run()
    at.number_input(key="dose_rate").set_value(0.0).run()
    assert not at.exception
    assert "Screening rate (patients/month)" in " ".join(errors(at))


def test_scenario_changes_pool_and_screening_need():
    at = open_page()
    pool0 = table(at, "eligible_fraction").set_index("group")
    base = eligible_fractions(expected_screened())
    assert pool0.loc["pooled", "eligible_fraction"] == pytest.approx(base["pooled"])

    at.session_state["scenario"] = {"name": "", "parameters": {"age_max": 75}, "disabled": []}
    at.run()
    assert not at.exception and errors(at) == []
    scr = expected_screened({"age_max": 75})
    fr = eligible_fractions(scr)
    pool = table(at, "eligible_fraction").set_index("group")
    assert pool.loc["pooled", "eligible"] == (scr["status"] == "eligible").sum()
    assert pool.loc["pooled", "eligible"] > pool0.loc["pooled", "eligible"]
    for g in pool.index:
        assert pool.loc[g, "eligible_fraction"] == pytest.approx(fr[g])
    need = table(at, "needed").set_index("dose_level")
    # the expected path (default basis): plan patients per level → ⌈needed / fraction⌉ to screen
    plan = expected_plan(DoseSettings(), run_simulation(DoseSettings()))
    for g in pool.index:
        assert need.loc["DL1", g] == math.ceil(plan.patients_per_level[0] / fr[g] - 1e-9)
        assert need.loc["all levels", g] == math.ceil(sum(plan.patients_per_level) / fr[g] - 1e-9)
    assert metric(at, "Eligible fraction") == f"{100 * fr['pooled']:.1f}%"
    # timeline follows the new fraction: fill time = 3 / (rate × fraction) months
    tl = table(at, "fill_days")
    rate = float(metric(at, "Screened per month"))
    assert tl["fill_days"].iloc[0] == pytest.approx(3 / (rate * fr["pooled"]) * 365.25 / 12, rel=2e-3)


def test_per_disease_and_rate_override():
    at = open_page()
    at.selectbox(key="dose_pooling").set_value("per-disease").run()
    assert not at.exception and errors(at) == []
    group = at.selectbox(key="dose_timeline_group").value
    at.number_input(key="dose_rate").set_value(100.0).run()
    assert metric(at, "Screened per month") == "100.0"
    scr = expected_screened()
    share = (scr["disease"] == group).mean()
    frac = eligible_fractions(scr)[group]
    tl = table(at, "fill_days")
    assert tl["fill_days"].iloc[0] == pytest.approx(3 / (100.0 * share * frac) * 365.25 / 12)
    step = table(at, "pending").set_index("dose_level")
    n_dis = int((pd.Series(eligible_fractions(scr)).drop("pooled") > 0).sum())
    plan = expected_plan(DoseSettings(), run_simulation(DoseSettings()))
    assert step.loc["DL1", "eligible"] == plan.patients_per_level[0] * n_dis  # every disease fills its own DL1
    assert np.isfinite(table(at, "quantity")["patients"]).all()


def test_upload_without_dates_and_empty_disease_filter():
    """A cohort without screening dates needs an entered rate; a disease with no patients
    (sidebar filter) gives messages, not exceptions."""
    sample = pd.read_csv(ROOT / "data" / "cohort_sample.csv", encoding="utf-8-sig", dtype=str)
    typed = load_cohort(ROOT / "data" / "cohort_sample.csv").frame
    aps = set(typed.loc[typed["disease"] == "APS", "patient_id"].astype(str))
    assert aps  # the sample has APS patients; drop them
    sample = sample[~sample["patient_id"].isin(aps)].drop(columns="screening_date")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.sidebar.file_uploader(key="cohort_upload").upload("nodates.csv", sample.to_csv(index=False).encode())
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception and errors(at) == []
    assert metric(at, "Screened per month") == "unknown"
    assert any("screening rate is unknown" in i.value for i in at.info)
    at.number_input(key="dose_rate").set_value(20.0).run()
    assert not at.exception and errors(at) == []
    assert "fill_days" in table(at, "fill_days").columns
    at.sidebar.selectbox(key="disease_filter").select("APS").run()
    assert not at.exception and errors(at) == []
    pool = table(at, "eligible_fraction").set_index("group")
    assert pool.loc["pooled", "screened"] == 0
    assert any("No eligible patients" in i.value for i in at.info)


def test_settings_survive_a_visit_to_another_page():
    at = open_page()
    at.selectbox(key="dose_design").select("boin").run()
    at.number_input(key="dose_window").set_value(35).run()
    at.number_input(key="dose_max_n").set_value(24).run()
    at.switch_page("app_pages/overview.py").run()
    at.switch_page("app_pages/dose_cohorts.py").run()
    assert not at.exception
    assert at.selectbox(key="dose_design").value == "boin"
    assert at.number_input(key="dose_window").value == 35
    assert at.number_input(key="dose_max_n").value == 24
    at.number_input(key="dose_max_n").set_value(21).run()
    assert at.number_input(key="dose_max_n").value == 21


def test_edited_levels_survive_and_feed_the_consort_step():
    at = open_page()
    edit(at, edited={"1": {"label": "DL2b", "dose": 2.5}}, deleted=[2])
    assert at.session_state["dose_plan"].labels == ["DL1", "DL2b"]
    at.switch_page("app_pages/screen_failures.py").run()
    assert not at.exception
    assert any("plan from the Dose cohorts page" in t.label for t in at.toggle)
    at.switch_page("app_pages/dose_cohorts.py").run()
    assert not at.exception
    assert at.session_state["dose_plan"].labels == ["DL1", "DL2b"]
    assert [lv.dose for lv in at.session_state["dose_plan"].levels] == [1.0, 2.5]


def test_design_options_and_max_n_refusal_on_the_page():
    at = open_page()
    at.selectbox(key="dose_design").set_value("boin").run()
    at.number_input(key="dose_max_n").set_value(32).run()
    assert not at.exception
    assert "not a multiple of the cohort size (3); use 30 or 33" in " ".join(errors(at))
    at.number_input(key="dose_max_n").set_value(30).run()
    at.number_input(key="dose_n_earlystop").set_value(9).run()
    at.checkbox(key="dose_extrasafe").check().run()
    at.number_input(key="dose_start_level").set_value(2).run()
    assert not at.exception and errors(at) == []
    s = DoseSettings(design="boin", n_earlystop=9, extrasafe=True, start_level=2)
    oc = operating_characteristics(run_simulation(s))
    shown = table(at, "mtd_selection_pct")
    assert shown["mtd_selection_pct"].tolist() == pytest.approx(oc["mtd_selection_pct"])
    summ = table(at, "measure").set_index("measure")["value"]
    assert summ["Stopped by n-earlystop (MTD selected)"] == pytest.approx(oc["n_earlystop_pct"])
    assert summ["Correct selection (true MTD selected)"] == pytest.approx(oc["pct_correct"])
    dec = table(at, "escalate_if_dlt_le").set_index("n")
    assert dec.loc[3, "stop_trial_if_dlt_ge"] == 2  # extrasafe: 2/3 at DL1 stops


def test_tite_boin_on_the_page_uses_the_calendar_simulation():
    at = open_page()
    at.selectbox(key="dose_design").set_value("tite-boin").run()
    assert not at.exception and errors(at) == []
    heads = [h.value for h in at.subheader]
    assert "Timeline" in heads and "Operating characteristics" in heads
    summ = table(at, "measure").set_index("measure")["value"]
    assert summ["Mean duration"] > 0
    assert summ["Duration, 10th percentile"] <= summ["Mean duration"] <= summ["Duration, 90th percentile"]
    assert any("TITE-BOIN" in c.value for c in at.caption)
