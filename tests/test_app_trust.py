"""AppTest (headless Streamlit) for issue 12: a link or reload keeps or refuses an uploaded
cohort, blank rows and values to verify on the pages, demographics and the report on the
Overview, exact what-if values with undo, two scenarios compared."""

from __future__ import annotations

import pandas as pd
import pytest
from apptest_support import APP, BUNDLED, TIMEOUT, as_int, errors, metrics, open_page, unescape
from factory import eligible_row
from streamlit.testing.v1 import AppTest

from eligibility.cohort_store import token_for
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import resolve


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh upload store in a temporary folder (the process-wide one is rebuilt)."""
    from app_pages import _shared as S

    monkeypatch.setenv("ELIGIBILITY_COHORT_DIR", str(tmp_path / "store"))
    S.disk_store.clear()
    yield tmp_path / "store"
    S.disk_store.clear()


def _csv(rows: list[dict], blank_after: int | None = None) -> bytes:
    frame = pd.DataFrame([{"patient_id": f"T{i}", **r} for i, r in enumerate(rows, 1)])
    text = frame.to_csv(index=False)
    if blank_after is not None:
        lines = text.splitlines(keepends=True)
        lines.insert(blank_after + 1, "," * (frame.shape[1] - 1) + "\n")
        text = "".join(lines)
    return text.encode()


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.sidebar.file_uploader(key="cohort_upload").upload(name, data, "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _fresh(query: dict | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_link_keeps_the_uploaded_cohort_and_refuses_a_released_one(store):
    from app_pages import _shared as S

    data = _csv([eligible_row("SSc")] * 3 + [eligible_row("IIM")] * 4)
    at = _upload(_fresh(), "site_a.csv", data)
    at.switch_page("app_pages/overview.py").run()
    assert as_int(metrics(at)["Screened"]) == 7
    token = token_for(data)
    assert at.query_params["c"] in (token, [token])
    # a reload or an opened link is a new session with the URL only
    again = _fresh({"c": token}, "app_pages/overview.py")
    assert as_int(metrics(again)["Screened"]) == 7
    # held on disk only (memory released): read back from disk
    S._store()["cohorts"].pop(S.UPLOAD_PREFIX + token, None)
    again = _fresh({"c": token}, "app_pages/overview.py")
    assert as_int(metrics(again)["Screened"]) == 7
    # released everywhere: said plainly, no numbers of another cohort
    S._store()["cohorts"].pop(S.UPLOAD_PREFIX + token, None)
    for f in store.iterdir():
        f.unlink()
    gone = _fresh({"c": token})
    assert "This cohort is no longer available" in [t.value for t in gone.title]
    assert "no longer holds" in " ".join(e.value for e in gone.error)
    assert not gone.metric
    assert gone.query_params["c"] in (token, [token])  # the link is not rewritten to another cohort
    # a damaged token is refused the same way
    assert "This cohort is no longer available" in [t.value for t in _fresh({"c": "../../etc"}).title]


def test_an_upload_over_the_budget_is_refused_with_a_message(store, monkeypatch):
    monkeypatch.setenv("ELIGIBILITY_UPLOAD_BUDGET_MB", "0.001")  # 1 kB
    from app_pages import _shared as S

    S.disk_store.clear()
    at = _upload(_fresh(), "big.csv", _csv([eligible_row("SSc")] * 20))
    shown = errors(at)
    assert "big.csv" in shown and "limit" in shown and "previous cohort is still loaded" in shown
    assert "bundled synthetic cohort" in " ".join(c.value for c in at.sidebar.caption)


def test_only_the_active_and_previous_uploads_stay_in_memory(store):
    from app_pages import _shared as S

    at = _fresh()
    keys = []
    for k in range(3):
        data = _csv([eligible_row("SSc")] * (k + 2))
        at.sidebar.file_uploader(key="cohort_upload").upload(f"u{k}.csv", data, "text/csv").run()
        keys.append(S.UPLOAD_PREFIX + token_for(data))
    held = [k for k in S._store()["cohorts"] if k != S.BUNDLED_KEY]
    assert held == keys[-S.UPLOADS_IN_MEMORY:]
    assert len(list(store.glob("*.bin"))) == 3  # all three can still be read back from disk


def test_blank_row_and_value_to_verify_on_the_pages(store):
    rows = [eligible_row("SSc"), eligible_row("SSc", hemoglobin_g_l=12.1), eligible_row("IIM")]
    at = _upload(_fresh(), "blank.csv", _csv(rows, blank_after=1))
    at.switch_page("app_pages/overview.py").run()
    m = metrics(at)
    assert as_int(m["Screened"]) == 3 and as_int(m["Pending"]) == 1 and as_int(m["Eligible"]) == 2
    notes = " ".join(i.value for i in at.info)
    assert "1 empty row, not a patient (row 2)" in notes
    assert "1 empty row, not a patient" in " ".join(c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/patients.py").run()
    assert any("**3** of 3 patients match" in md.value for md in at.markdown)
    at.text_input(key="pt_explain_id").input("T2").run()
    md = " ".join(unescape(x.value) for x in at.markdown)
    assert "◐ pending" in md and "verify Haemoglobin (12.1 g/L is outside the plausible range)" in md
    at.switch_page("app_pages/screen_failures.py").run()
    assert not at.exception


def test_overview_demographics_and_report(store):
    at = open_page("app_pages/overview.py")
    labels = {b.label for b in at.get("download_button")}
    assert "Download the screening report (HTML)" in labels
    frames = [df.value for df in at.dataframe]
    demo = next(f for f in frames if "Median age (IQR)" in f.columns and "Population" in f.columns)
    bands = next(f for f in frames if "18–29" in f.columns and "Population" in f.columns)
    assert bands["Patients"].tolist() == demo["Patients"].tolist()
    cohort = load_cohort(BUNDLED)
    assert int(demo[(demo["Group"] == "All") & (demo["Population"] == "screened")]["Patients"].iloc[0]) == \
        len(cohort.frame)


def test_exact_value_box_and_undo():
    engine = Evaluator.for_cohort(load_cohort(BUNDLED))
    at = open_page("app_pages/what_if.py")
    at.number_input(key="wi_n_age_max").set_value(71.0).run()
    assert at.slider(key="wi_p_age_max").value == 71
    want = engine.evaluate(resolve({"parameters": {"age_max": 71}})).counts()["eligible"]
    assert as_int(metrics(at)["All"]) == want
    at.slider(key="wi_p_hb_min_g_l").set_value(80.0).run()
    at.button(key="wi_undo").click().run()
    assert at.session_state["scenario"]["parameters"] == {"age_max": 71}
    assert at.slider(key="wi_p_hb_min_g_l").value == 60
    at.button(key="wi_undo").click().run()
    assert at.session_state["scenario"]["parameters"] == {}
    assert at.number_input(key="wi_n_age_max").value == 65
    assert at.button(key="wi_undo").disabled


def test_sweep_includes_the_scenario_value():
    at = open_page("app_pages/what_if.py")
    at.number_input(key="wi_n_age_max").set_value(66.5).run()
    table = next(df.value for df in at.dataframe if {"value", "eligible", "pending"} <= set(df.value.columns))
    assert 66.5 in set(table["value"])


def test_two_scenarios_compared_on_the_what_if_page():
    engine = Evaluator.for_cohort(load_cohort(BUNDLED))
    at = open_page("app_pages/what_if.py")
    at.slider(key="wi_p_age_max").set_value(75.0).run()
    at.button(key="wi_keep_b").click().run()
    at.slider(key="wi_p_age_max").set_value(65.0).run()
    at.slider(key="wi_p_hb_min_g_l").set_value(50.0).run()
    table = next(df.value for df in at.dataframe if "eligible_b" in df.value.columns).set_index("group")
    a = engine.evaluate(resolve({"parameters": {"hb_min_g_l": 50}})).counts()["eligible"]
    b = engine.evaluate(resolve({"parameters": {"age_max": 75}})).counts()["eligible"]
    assert table.loc["All diseases", "eligible_a"] == a and table.loc["All diseases", "eligible_b"] == b
    patients = next(df.value for df in at.dataframe if "status_b" in df.value.columns)
    assert (patients["status_a"] != patients["status_b"]).all()


def test_a_bad_scenario_file_lists_all_its_problems():
    at = open_page("app_pages/what_if.py")
    bad = b'{"parameters": {"age_maxx": 1, "hb_min_g_l": "lots"}, "disabled": ["INC-99"]}'
    at.file_uploader(key="wi_upload").set_value(("bad.json", bad, "application/json")).run()
    shown = errors(at)
    assert "3 problem(s)" in shown
    for part in ("age_maxx", "hb_min_g_l", "INC-99"):
        assert part in shown
