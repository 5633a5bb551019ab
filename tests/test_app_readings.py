"""What-if page: switching a contested reading, checked against the engine; Protocol page lists them."""

from __future__ import annotations

import pytest
from apptest_support import BUNDLED, as_int, metrics, open_page

from eligibility.attribution import status_counts
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.readings_impact import reading_impact
from eligibility.scenario import Scenario, baseline, decode_from_url, encode_for_url, resolve

pytestmark = pytest.mark.skipif(not BUNDLED.exists(), reason="data/cohort.parquet (the bundled cohort) is missing")


@pytest.fixture(scope="module")
def loaded():
    cohort = load_cohort(BUNDLED)
    return cohort, Evaluator.for_cohort(cohort)


def _eligible_all(evaluator, scenario) -> int:
    return int(status_counts(evaluator.evaluate(scenario))["eligible"]["All"])


def _table(at, *columns):
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(columns)


def test_switching_a_reading_applies_it_everywhere(loaded):
    cohort, evaluator = loaded
    at = open_page("app_pages/what_if.py")
    table = _table(at, "reading", "alternative", "gained", "lost")
    expected = reading_impact(evaluator, baseline(), cohort.frame)
    assert table[["reading", "alternative", "gained", "lost"]].values.tolist() == \
        expected[["reading", "alternative", "gained", "lost"]].values.tolist()
    at.selectbox(key="wi_rd_aav_subtypes").select("egpa_allowed").run()
    assert not at.exception and not at.error
    assert at.session_state["scenario"]["readings"] == {"aav_subtypes": "egpa_allowed"}
    r = resolve({"readings": {"aav_subtypes": "egpa_allowed"}})
    assert as_int(metrics(at)["All"]) == _eligible_all(evaluator, r)
    assert decode_from_url(at.query_params["s"][0] if isinstance(at.query_params["s"], list)
                           else at.query_params["s"]).readings == {"aav_subtypes": "egpa_allowed"}
    # the table is now against the scenario: going back to the closed list loses what EGPA gained
    table = _table(at, "reading", "alternative", "gained", "lost").set_index(["reading", "alternative"])
    back = reading_impact(evaluator, r, cohort.frame).set_index(["reading", "alternative"])
    assert table.loc[("aav_subtypes", "closed_list"), "lost"] == back.loc[("aav_subtypes", "closed_list"), "lost"]
    at.selectbox(key="wi_rd_aav_subtypes").select("closed_list").run()
    assert "readings" not in at.session_state["scenario"] or not at.session_state["scenario"]["readings"]


def test_a_link_with_a_reading_reproduces_it(loaded):
    _, evaluator = loaded
    sc = Scenario(name="literal", readings={"gc_dose": "more_than"})
    at = open_page("app_pages/what_if.py", query={"s": encode_for_url(sc)})
    assert not at.error
    assert at.selectbox(key="wi_rd_gc_dose").value == "more_than"
    assert as_int(metrics(at)["All"]) == _eligible_all(evaluator, resolve(sc))


def test_protocol_page_lists_the_readings():
    at = open_page("app_pages/protocol.py")
    assert not at.exception and not at.error
    table = _table(at, "Reading", "Protocol text", "Default", "Alternatives")
    assert {"gc_dose", "apl_interval", "live_vaccine_window"} <= set(table["Reading"])


def test_protocol_page_compares_an_uploaded_version(loaded):
    from importlib import resources

    import yaml

    from eligibility.versions import diff_protocols, load_version_texts

    cohort, _ = loaded
    folder = resources.files("eligibility.protocol")
    params = yaml.safe_load(folder.joinpath("parameters.yaml").read_text("utf-8"))
    for p in params:
        if p["name"] == "age_max":
            p["default"] = 75
    texts = {"criteria.yaml": folder.joinpath("criteria.yaml").read_text("utf-8"),
             "parameters.yaml": yaml.safe_dump(params, allow_unicode=True)}
    at = open_page("app_pages/protocol.py")
    at.file_uploader(key="pr_version_files").set_value(
        [(name, text.encode(), "application/yaml") for name, text in texts.items()]).run()
    assert not at.exception and not at.error
    shown = _table(at, "name", "change", "old", "new")
    assert shown.to_dict("records") == [{"name": "age_max", "change": "default", "old": "65", "new": "75"}]
    patients = _table(at, "group", "eligible_old", "eligible_new", "gained", "lost")
    expected = diff_protocols(S_catalog(), load_version_texts(texts), cohort).patients
    assert patients[["group", "gained", "lost"]].values.tolist() == expected[["group", "gained", "lost"]].values.tolist()
    # a broken upload is reported, not raised
    at.file_uploader(key="pr_version_files").set_value([("criteria.yaml", b"criteria: [", "application/yaml")]).run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)


def S_catalog():  # noqa: N802
    from eligibility.catalog import default_catalog

    return default_catalog()


def test_relaxation_search_on_the_what_if_page(loaded):
    from eligibility.relax import relax

    _, evaluator = loaded
    at = open_page("app_pages/what_if.py", disease="SSc")
    base = int((evaluator.status(baseline())[evaluator.columns.bounds["SSc"]] == 2).sum())
    at.number_input(key="wi_relax_target").set_value(base + 5)
    next(b for b in at.button if b.label == "Search").click().run()
    assert not at.exception and not at.error
    expected = relax(evaluator, base + 5, "SSc")
    table = _table(at, "rank", "changes", "eligible", "gained")
    assert table["eligible"].tolist() == [o.eligible for o in expected]
    assert table["gained"].tolist() == [o.gained for o in expected]
    at.button(key="wi_relax_apply").click().run()
    assert not at.exception
    sc = at.session_state["scenario"]
    assert sc["parameters"] == expected[0].parameters and sc["disabled"] == expected[0].disabled
    assert as_int(metrics(at)["SSc"]) == expected[0].eligible
