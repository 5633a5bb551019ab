"""AppTest (headless Streamlit) of the Screen failures and What-if pages.

Every count the What-if page shows after a change is checked against the engine,
computed here independently from data/cohort.parquet for the same scenario.
"""

from __future__ import annotations

import json

import pytest
from apptest_support import APP, BUNDLED, TIMEOUT, as_int, errors, metrics, open_page
from streamlit.testing.v1 import AppTest

from eligibility.attribution import status_counts
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import Scenario, baseline, decode_from_url, encode_for_url, resolve

ALL = "All"  # label of the all-diseases eligible metric

pytestmark = pytest.mark.skipif(not BUNDLED.exists(), reason="data/cohort.parquet (the bundled cohort) is missing")


@pytest.fixture(scope="module")
def engine():
    cohort = load_cohort(BUNDLED)
    return Evaluator.for_cohort(cohort)


def eligible(evaluator: Evaluator, scenario: dict | None = None) -> dict[str, int]:
    """Eligible count per group (All and each disease) under a scenario, straight from the engine."""
    counts = status_counts(evaluator.evaluate(resolve(scenario) if scenario else baseline()))
    return {g: int(n) for g, n in counts["eligible"].items()}


def assert_counts(at: AppTest, expected: dict[str, int]) -> None:
    shown = metrics(at)
    assert as_int(shown[ALL]) == expected["All"]
    for g, n in expected.items():
        label = {"All": ALL, "other": "Other dx", "missing": "No dx"}.get(g, g)
        if label in shown:
            assert as_int(shown[label]) == n, g


def table_with(at: AppTest, *columns: str):
    """The first table shown that has all these columns (AppTest exposes no table keys)."""
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}")


def scenario_of(at: AppTest) -> dict:
    return at.session_state["scenario"]


# -- Screen failures --------------------------------------------------------------------------


@pytest.mark.parametrize("disease", [None, "SSc", "APS"])
def test_screen_failures_renders(engine, disease):
    at = open_page("app_pages/screen_failures.py", disease=disease)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Screen failures"
    counts = status_counts(engine.evaluate(baseline())).loc[disease or "All"]
    captions = " ".join(c.value for c in at.caption)
    e, p, n = int(counts["eligible"]), int(counts["pending"]), int(counts["screened"])
    assert f"{n:,} screened − {n - e - p:,} excluded = {e + p:,} remaining" in captions
    table = table_with(at, "all_reasons", "first_reason")
    assert {"all_reasons", "first_reason", "sole_reason", "unknown"} <= set(table.columns)
    assert int(table["first_reason"].sum()) == int(counts["ineligible"])
    labels = {b.label for b in at.get("download_button")}
    assert {"Download flow (HTML, works offline)", "Download flow (SVG)"} <= labels


def test_screen_failures_under_a_scenario_and_controls(engine):
    scenario = {"parameters": {"age_max": 75}, "disabled": ["EXC-3"]}
    at = open_page("app_pages/screen_failures.py", scenario=scenario)
    assert not at.error
    assert any("EXC-3" in i.value for i in at.info)
    counts = status_counts(engine.evaluate(resolve(scenario))).loc["All"]
    table = table_with(at, "all_reasons", "first_reason")
    assert "EXC-3.hbsag" not in set(table["id"])
    assert int(table["first_reason"].sum()) == int(counts["ineligible"])
    at.toggle(key="sf_hide_zero").set_value(False).run()
    at.slider(key="sf_top").set_value(8).run()
    assert not at.exception and not at.error


# -- What-if: controls change the counts to the engine's ---------------------------------------


def test_what_if_renders_with_protocol_counts(engine):
    at = open_page("app_pages/what_if.py")
    assert not at.error, [e.value for e in at.error]
    assert_counts(at, eligible(engine))
    assert all(m.delta in (None, "") for m in at.metric)
    # a control for every parameter with a what-if range, showing the protocol default and source
    age = at.slider(key="wi_p_age_max")
    assert age.value == 65 and "65 years" in age.help and "Age 18-65" in age.help
    assert "wi_p_default_alt_uln_u_l" not in [s.key for s in at.slider]  # no range: no control
    assert at.toggle(key="wi_p_require_cyclophosphamide").value is True
    assert set(at.multiselect(key="wi_p_ssc_excluded_subtypes").value) == {"limited"}
    assert at.toggle(key="wi_on_INC-7").value is True
    assert "s" not in at.query_params


@pytest.mark.parametrize("param,value", [("age_max", 70), ("hb_min_g_l", 80), ("gc_min_mg_kg_day", 0.5)])
def test_moving_a_slider_changes_eligible_to_the_engine_count(engine, param, value):
    at = open_page("app_pages/what_if.py")
    at.slider(key=f"wi_p_{param}").set_value(float(value)).run()
    assert not at.exception and not at.error
    assert scenario_of(at)["parameters"] == {param: value}
    expected = eligible(engine, {"parameters": {param: value}})
    assert_counts(at, expected)
    base = eligible(engine)
    delta = next(m.delta for m in at.metric if m.label == ALL)
    assert as_int(delta) == expected["All"] - base["All"]
    # the URL carries the scenario
    assert decode_from_url(at.query_params["s"]).parameters == {param: value}


def test_two_sliders_then_back_to_default_keeps_the_url_minimal(engine):
    at = open_page("app_pages/what_if.py")
    at.slider(key="wi_p_age_max").set_value(70.0).run()
    at.slider(key="wi_p_hb_min_g_l").set_value(80.0).run()
    assert_counts(at, eligible(engine, {"parameters": {"age_max": 70, "hb_min_g_l": 80}}))
    at.slider(key="wi_p_age_max").set_value(65.0).run()  # back to the protocol default
    assert scenario_of(at)["parameters"] == {"hb_min_g_l": 80}
    assert_counts(at, eligible(engine, {"parameters": {"hb_min_g_l": 80}}))
    at.slider(key="wi_p_hb_min_g_l").set_value(60.0).run()
    assert scenario_of(at)["parameters"] == {}
    assert "s" not in at.query_params
    assert_counts(at, eligible(engine))


def test_switching_criteria_off(engine):
    at = open_page("app_pages/what_if.py")
    at.toggle(key="wi_on_INC-7").set_value(False).run()
    assert scenario_of(at)["disabled"] == ["INC-7"]
    assert_counts(at, eligible(engine, {"disabled": ["INC-7"]}))
    # a single part, then its whole criterion (the part switch greys out)
    at.toggle(key="wi_on_EXC-3.hbcab").set_value(False).run()
    assert_counts(at, eligible(engine, {"disabled": ["INC-7", "EXC-3.hbcab"]}))
    at.toggle(key="wi_on_EXC-3").set_value(False).run()
    assert scenario_of(at)["disabled"] == ["INC-7", "EXC-3", "EXC-3.hbcab"]
    assert at.toggle(key="wi_on_EXC-3.hbsag").disabled
    assert_counts(at, eligible(engine, {"disabled": ["INC-7", "EXC-3"]}))
    at.toggle(key="wi_on_INC-7").set_value(True).run()
    assert_counts(at, eligible(engine, {"disabled": ["EXC-3"]}))


def test_set_and_bool_controls(engine):
    at = open_page("app_pages/what_if.py")
    at.multiselect(key="wi_p_ssc_excluded_subtypes").set_value([]).run()
    at.toggle(key="wi_p_require_cyclophosphamide").set_value(False).run()
    sc = {"parameters": {"ssc_excluded_subtypes": [], "require_cyclophosphamide": False}}
    assert scenario_of(at)["parameters"] == sc["parameters"]
    assert_counts(at, eligible(engine, sc))


def test_changed_patients_listed(engine):
    at = open_page("app_pages/what_if.py")
    at.slider(key="wi_p_age_max").set_value(75.0).run()
    table = table_with(at, "status_before", "status_after")
    before = engine.evaluate(baseline())
    after = engine.evaluate(resolve({"parameters": {"age_max": 75}}))
    n_changed = int((before.status != after.status).sum())
    assert len(table) == min(n_changed, 1000)
    assert set(table["status_before"]) <= {"ineligible", "pending", "eligible"}
    assert (table["status_before"] != table["status_after"]).all()
    assert any(f"{n_changed:,} patient(s) change status" in c.value for c in at.caption)


def test_sweep_selector_reruns_without_error():
    at = open_page("app_pages/what_if.py")
    at.selectbox(key="wi_sweep_param").set_value("egfr_min").run()
    assert not at.exception and not at.error
    table = table_with(at, "value", "eligible", "pending")
    assert table["value"].min() == 0 and table["value"].max() == 60


def test_sweep_counts_equal_the_engine_and_follow_other_parameters(engine):
    """Each sweep point is the engine's count with everything else held at the scenario; moving
    the swept parameter itself only moves the marker, moving another one changes the curve."""
    at = open_page("app_pages/what_if.py")
    at.slider(key="wi_p_age_max").set_value(70.0).run()
    at.selectbox(key="wi_sweep_param").set_value("egfr_min").run()

    def point(value):
        table = table_with(at, "value", "eligible", "pending")
        row = table[table["value"] == value].iloc[0]
        return int(row["eligible"]), int(row["pending"])

    def truth(params):
        counts = engine.evaluate(resolve({"parameters": params})).counts()
        return counts["eligible"], counts["pending"]

    assert point(30) == truth({"age_max": 70, "egfr_min": 30})
    at.slider(key="wi_p_egfr_min").set_value(40.0).run()  # the swept parameter: same curve
    assert point(30) == truth({"age_max": 70, "egfr_min": 30})
    assert point(40) == truth({"age_max": 70, "egfr_min": 40})  # off the grid: the scenario's own counts
    assert any("this scenario (40 mL/min/1.73 m²)" in c.value for c in at.caption)
    at.slider(key="wi_p_age_max").set_value(80.0).run()  # another parameter: a new curve
    assert point(30) == truth({"age_max": 80, "egfr_min": 30})
    assert point(0) == truth({"age_max": 80, "egfr_min": 0})


# -- What-if: scenario files and links --------------------------------------------------------


def test_loading_a_bad_scenario_file_names_the_key_and_keeps_the_scenario(engine):
    at = open_page("app_pages/what_if.py")
    at.slider(key="wi_p_age_max").set_value(70.0).run()
    kept = json.loads(json.dumps(scenario_of(at)))
    bad = json.dumps({"name": "typo", "parameters": {"age_maxx": 70}}).encode()
    at.file_uploader(key="wi_upload").set_value(("bad.json", bad, "application/json")).run()
    assert not at.exception
    shown = errors(at)
    assert "age_maxx" in shown and "not loaded" in shown
    assert scenario_of(at) == kept
    assert_counts(at, eligible(engine, kept))
    assert at.slider(key="wi_p_age_max").value == 70


def test_loading_a_bad_value_and_bad_yaml(engine):
    at = open_page("app_pages/what_if.py")
    bad = json.dumps({"parameters": {"hb_min_g_l": "lots"}}).encode()
    at.file_uploader(key="wi_upload").set_value(("v.json", bad, "application/json")).run()
    assert "hb_min_g_l" in errors(at)
    at.file_uploader(key="wi_upload").set_value(("d.yaml", b"disabled: [INC-99]\n", "application/yaml")).run()
    assert "INC-99" in errors(at)
    assert scenario_of(at) == {"name": "", "parameters": {}, "disabled": []}
    assert_counts(at, eligible(engine))


def test_loading_a_good_scenario_file_sets_the_controls(engine):
    at = open_page("app_pages/what_if.py")
    sc = {"name": "amendment 1", "parameters": {"age_max": 72, "hb_min_g_l": 70}, "disabled": ["INC-7"]}
    text = "name: amendment 1\nparameters:\n  age_max: 72\n  hb_min_g_l: 70\ndisabled: [INC-7]\n"
    at.file_uploader(key="wi_upload").set_value(("a.yaml", text.encode(), "application/yaml")).run()
    assert not at.exception and not at.error
    assert scenario_of(at) == sc
    assert at.slider(key="wi_p_age_max").value == 72
    assert at.slider(key="wi_p_hb_min_g_l").value == 70
    assert at.toggle(key="wi_on_INC-7").value is False
    assert at.text_input(key="wi_name").value == "amendment 1"
    assert_counts(at, eligible(engine, sc))
    # the save button offers the same scenario back
    saved = next(b for b in at.get("download_button") if b.label == "Save scenario (JSON)")
    assert saved.proto is not None


def test_query_param_reproduces_a_scenario(engine):
    sc = Scenario(name="link", parameters={"age_max": 72, "egfr_min": 30}, disabled=["EXC-4"])
    at = open_page("app_pages/what_if.py", query={"s": encode_for_url(sc)})
    assert not at.error
    assert scenario_of(at)["parameters"] == {"age_max": 72, "egfr_min": 30}
    assert at.slider(key="wi_p_age_max").value == 72
    assert at.slider(key="wi_p_egfr_min").value == 30
    assert at.toggle(key="wi_on_EXC-4").value is False
    assert_counts(at, eligible(engine, sc.model_dump()))


def test_out_of_range_value_from_a_link_extends_the_slider(engine):
    sc = Scenario(parameters={"age_max": 90})
    at = open_page("app_pages/what_if.py", query={"s": encode_for_url(sc)})
    assert not at.exception and not at.error
    s = at.slider(key="wi_p_age_max")
    assert s.value == 90 and s.max == 90
    assert_counts(at, eligible(engine, {"parameters": {"age_max": 90}}))


def test_controls_follow_a_scenario_reset_elsewhere(engine):
    """The session scenario is the source of truth: when it is emptied outside the page (as
    app.py's "Reset to protocol" does), the controls show the protocol again. (That button
    may not be clickable in AppTest, which ran the entry point through
    Streamlit's legacy multipage path when the pages lived in pages/; the browser
    tests cover it.)"""
    at = open_page("app_pages/what_if.py", scenario={"parameters": {"age_max": 80}, "disabled": ["INC-7"]})
    assert at.slider(key="wi_p_age_max").value == 80
    assert at.toggle(key="wi_on_INC-7").value is False
    at.session_state["scenario"] = {"name": "", "parameters": {}, "disabled": []}
    at.run()
    assert not at.exception
    assert scenario_of(at) == {"name": "", "parameters": {}, "disabled": []}
    assert at.slider(key="wi_p_age_max").value == 65
    assert at.toggle(key="wi_on_INC-7").value is True
    assert_counts(at, eligible(engine))
    at.slider(key="wi_p_age_max").set_value(70.0).run()  # and the controls work again
    assert_counts(at, eligible(engine, {"parameters": {"age_max": 70}}))


def test_disease_filter_on_what_if(engine):
    at = open_page("app_pages/what_if.py", disease="IIM")
    at.slider(key="wi_p_age_max").set_value(75.0).run()
    assert not at.exception and not at.error
    assert_counts(at, eligible(engine, {"parameters": {"age_max": 75}}))
    table = table_with(at, "status_before", "status_after")
    assert set(table["disease"]) <= {"IIM"}


# -- What-if: controls drawn only in open expanders ----------------------------------------------


def _keys(at) -> set[str]:
    return {w.key for kind in (at.slider, at.toggle, at.multiselect, at.number_input) for w in kind}


def test_closed_expanders_draw_no_controls():
    """A fresh page opens the common thresholds only: the other groups' and the criteria's
    controls are not drawn (Streamlit scans the session state for each number box)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("app_pages/what_if.py").run()
    keys = _keys(at)
    assert {"wi_p_age_max", "wi_n_age_max", "wi_p_hb_min_g_l"} <= keys
    assert not {"wi_p_mrss_min", "wi_p_require_cyclophosphamide", "wi_on_INC-7"} & keys
    assert not any(k.startswith("wi_on_") for k in keys)
    # Opened (as a click would), the group draws its controls, showing the scenario's values.
    at.session_state["wi__open"] = {"wi_x_SSc": True, "wi_xc_common": True}
    at.run()
    assert at.slider(key="wi_p_mrss_min").value == 10
    assert at.toggle(key="wi_on_INC-7").value is True
    assert "wi_p_require_cyclophosphamide" not in _keys(at)


def test_a_group_with_changes_opens_and_stays_as_left():
    """A scenario's changed group and switched-off criterion open by themselves; a group the
    planner closed stays closed although its title changes with the count of changes."""
    at = open_page_plain(scenario={"parameters": {"mrss_min": 12}, "disabled": ["INC-7"]})
    assert at.slider(key="wi_p_mrss_min").value == 12
    assert at.toggle(key="wi_on_INC-7").value is False
    assert "wi_p_bvas_min" not in _keys(at)
    at.session_state["wi__open"] = {"wi_x_SSc": False}  # closed by the planner
    at.run()
    assert "wi_p_mrss_min" not in _keys(at)
    at.session_state["scenario"] = {"name": "", "parameters": {}, "disabled": ["INC-7"]}
    at.run()  # the title loses "(1 changed)": still closed
    assert "wi_p_mrss_min" not in _keys(at)
    assert at.toggle(key="wi_on_INC-7").value is False


def open_page_plain(scenario: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["scenario"] = {"name": "", "parameters": {}, "disabled": [], **scenario}
    at.run()
    at.switch_page("app_pages/what_if.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at
