"""Contested readings of the protocol text: data, scenario key, CLI, engine and impact."""

from __future__ import annotations

import json

import pytest
from factory import eligible_row, make_cohort

from eligibility.catalog import default_catalog, load_catalog
from eligibility.cli import main
from eligibility.evaluate import Evaluator
from eligibility.readings import ReadingError, parse_readings
from eligibility.readings_impact import reading_impact
from eligibility.scenario import (
    Scenario,
    ScenarioError,
    baseline,
    decode_from_url,
    dump_scenario,
    encode_for_url,
    parse_scenario_text,
    resolve,
    to_scenario,
)
from eligibility.screen import screen_frame

CAT = default_catalog()
ISSUE_READINGS = {"gc_dose", "apl_interval", "aps_refractory", "relapsed_branch", "exc11_contraception",
                  "aav_subtypes", "ssc_localized", "live_vaccine_window"}


def status(row: dict, readings: dict | None = None, **params) -> str:
    out = screen_frame(make_cohort([row]), resolve({"readings": readings or {}, "parameters": params}))
    return out["status"].iloc[0]


def failed(row: dict, readings: dict | None = None) -> str:
    return screen_frame(make_cohort([row]), resolve({"readings": readings or {}}))["failed"].iloc[0]


def test_the_issue_readings_are_data_with_a_quote_default_and_alternatives():
    assert ISSUE_READINGS <= set(CAT.readings)
    for r in CAT.readings.values():
        assert r.quote and r.title and r.default in r.alternatives and len(r.alternatives) >= 2
        assert r.alternatives[r.default].changes_nothing
        for alt, spec in r.alternatives.items():
            assert spec.wording
            if alt != r.default:  # every other alternative changes a rule or binds a parameter
                v = CAT.variant(((r.name, alt),))
                changed_rules = [u for u in v.units if u.rule != CAT.unit_by_id[u.id].rule or v.rule_key[u.id]]
                assert changed_rules or v.defaults() != CAT.defaults(), (r.name, alt)


@pytest.mark.parametrize("row, reading, default_status, alt_status", [
    # gc "more than 1 mg/kg/d": exactly 1.0 passes ≥, fails >
    (eligible_row("IIM", gc_max_mg_kg_day=1.0), ("gc_dose", "more_than"), "eligible", "ineligible"),
    (eligible_row("IIM", gc_max_mg_kg_day=1.01), ("gc_dose", "more_than"), "eligible", "eligible"),
    (eligible_row("AAV", gc_max_mg_kg_day=1.0), ("gc_dose", "more_than"), "eligible", "ineligible"),
    (eligible_row("SSc", gc_max_mg_kg_day=1.0), ("gc_dose", "more_than"), "eligible", "eligible"),  # no dose for SSc
    # aPL "interval of more than 12 weeks"
    (eligible_row("APS", apl_interval_weeks=12), ("apl_interval", "more_than"), "eligible", "ineligible"),
    (eligible_row("APS", apl_interval_weeks=12.5), ("apl_interval", "more_than"), "eligible", "eligible"),
    # APS refractory with the glucocorticoid + cyclophosphamide clause
    (eligible_row("APS", prior_cyclophosphamide=False), ("aps_refractory", "heparin_with_gc_cyc"),
     "eligible", "ineligible"),
    (eligible_row("APS", prior_glucocorticoid=None), ("aps_refractory", "heparin_with_gc_cyc"),
     "eligible", "pending"),
    (eligible_row("APS"), ("aps_refractory", "heparin_with_gc_cyc"), "eligible", "eligible"),
    # relapsed branch: without the > 6 months, without the regimen
    (eligible_row("IIM", disease_course="relapsed", conventional_therapy_months=3),
     ("relapsed_branch", "regimen_no_duration"), "ineligible", "eligible"),
    (eligible_row("IIM", disease_course="refractory", conventional_therapy_months=3),
     ("relapsed_branch", "regimen_no_duration"), "ineligible", "ineligible"),
    (eligible_row("SjS", disease_course="relapsed", conventional_therapy_months=3, prior_cyclophosphamide=False),
     ("relapsed_branch", "regimen_no_duration"), "ineligible", "ineligible"),
    (eligible_row("SjS", disease_course="relapsed", conventional_therapy_months=3, prior_cyclophosphamide=False),
     ("relapsed_branch", "recurrence_only"), "ineligible", "eligible"),
    (eligible_row("AAV", disease_course="relapsed", gc_max_mg_kg_day=0.5), ("relapsed_branch", "recurrence_only"),
     "ineligible", "eligible"),
    (eligible_row("AAV", disease_course="refractory", gc_max_mg_kg_day=0.5), ("relapsed_branch", "recurrence_only"),
     "ineligible", "ineligible"),
    # EXC-11 with the contraception clause, and for men
    (eligible_row("SSc", sex="M", contraception_agreed=False), ("exc11_contraception", "contraception_women"),
     "eligible", "eligible"),
    (eligible_row("SSc", sex="M", contraception_agreed=False), ("exc11_contraception", "contraception_everyone"),
     "eligible", "ineligible"),
    (eligible_row("SSc", sex="M", contraception_agreed=None), ("exc11_contraception", "contraception_everyone"),
     "eligible", "pending"),
    (eligible_row("SSc", sex="M", contraception_agreed=True), ("exc11_contraception", "contraception_everyone"),
     "eligible", "eligible"),
    (eligible_row("SSc", sex="F", childbearing_potential=False, contraception_agreed=False),
     ("exc11_contraception", "contraception_women"), "eligible", "eligible"),
    # AAV subtypes: a closed list or EGPA allowed
    (eligible_row("AAV", aav_subtype="EGPA"), ("aav_subtypes", "egpa_allowed"), "ineligible", "eligible"),
    (eligible_row("AAV", aav_subtype="GPA"), ("aav_subtypes", "egpa_allowed"), "eligible", "eligible"),
    # SSc "localized cutaneous": limited cSSc or morphea
    (eligible_row("SSc", ssc_subtype="limited"), ("ssc_localized", "morphea"), "ineligible", "eligible"),
    (eligible_row("SSc", ssc_subtype=None), ("ssc_localized", "morphea"), "pending", "eligible"),
    # live vaccine window from randomisation (14 days after screening by default)
    (eligible_row("SSc", days_since_live_vaccine=20), ("live_vaccine_window", "from_randomisation"),
     "ineligible", "eligible"),
    (eligible_row("SSc", days_since_live_vaccine=14), ("live_vaccine_window", "from_randomisation"),
     "ineligible", "eligible"),  # 14 + 14 = 28: the window is complete
    (eligible_row("SSc", days_since_live_vaccine=13.5), ("live_vaccine_window", "from_randomisation"),
     "ineligible", "ineligible"),
])
def test_each_reading_on_both_sides(row, reading, default_status, alt_status):
    name, alt = reading
    assert status(row) == default_status
    assert status(row, {name: CAT.readings[name].default}) == default_status
    assert status(row, {name: alt}) == alt_status


def test_exc11_contraception_clause_fails_exc11_itself():
    row = eligible_row("SSc", sex="F", childbearing_potential=True, pregnancy_test_negative=True,
                       contraception_agreed=False)
    assert failed(row) == "INC-6"
    assert failed(row, {"exc11_contraception": "contraception_women"}) == "INC-6;EXC-11"


def test_live_vaccine_offset_is_a_parameter():
    row = eligible_row("SSc", days_since_live_vaccine=20)
    reading = {"live_vaccine_window": "from_randomisation"}
    assert status(row, reading, screening_to_randomisation_days=7) == "ineligible"  # 27 < 28
    assert status(row, reading, screening_to_randomisation_days=8) == "eligible"  # 28


def test_reading_binds_a_parameter_and_the_scenario_still_wins():
    r = resolve({"readings": {"aav_subtypes": "egpa_allowed"}})
    assert r.params["aav_included_subtypes"] == frozenset({"GPA", "MPA", "EGPA"})
    r2 = resolve({"readings": {"aav_subtypes": "egpa_allowed"}, "parameters": {"aav_included_subtypes": ["GPA"]}})
    assert r2.params["aav_included_subtypes"] == frozenset({"GPA"})
    # the minimal scenario keeps the reading and drops the value it binds
    sc = to_scenario(r)
    assert sc.readings == {"aav_subtypes": "egpa_allowed"} and sc.parameters == {}
    assert resolve(sc) == r


def test_default_alternative_is_the_protocol():
    r = resolve({"readings": {n: x.default for n, x in CAT.readings.items()}})
    assert r == baseline() and r.readings == ()


@pytest.mark.parametrize("readings, message", [
    ({"nonsense": "x"}, "unknown reading 'nonsense'"),
    ({"gc_dose": "greater"}, "'greater' is not one of"),
    ({"gc_dose": 3}, "gc_dose"),
])
def test_bad_readings_are_refused_with_the_name(readings, message):
    with pytest.raises(ScenarioError, match=message):
        resolve({"readings": readings})


def test_readings_round_trip_through_files_and_urls():
    sc = Scenario(name="literal", readings={"gc_dose": "more_than", "apl_interval": "more_than"})
    for fmt in ("json", "yaml"):
        assert parse_scenario_text(dump_scenario(sc, fmt), fmt) == sc
    assert decode_from_url(encode_for_url(sc)) == sc
    plain = Scenario(name="x", parameters={"age_max": 70})
    assert "readings" not in dump_scenario(plain) and "eligible" not in dump_scenario(plain)
    assert "readings" not in json.loads(dump_scenario(plain))


def test_evaluator_cache_keeps_readings_apart():
    rows = [eligible_row("IIM", gc_max_mg_kg_day=1.0), eligible_row("APS", apl_interval_weeks=12)]
    ev = Evaluator.for_cohort(make_cohort(rows))
    base = ev.evaluate(baseline()).status_labels().tolist()
    literal = resolve({"readings": {"gc_dose": "more_than", "apl_interval": "more_than"}})
    assert ev.evaluate(literal).status_labels().tolist() == ["ineligible", "ineligible"]
    assert ev.evaluate(baseline()).status_labels().tolist() == base == ["eligible", "eligible"]
    assert ev.status(literal).tolist() == [0, 0]
    assert ev.evaluate(literal).catalog.choices == literal.readings


def test_reading_impact_lists_gained_and_lost_ids():
    rows = [
        dict(eligible_row("AAV", aav_subtype="EGPA"), patient_id="egpa"),
        dict(eligible_row("IIM", gc_max_mg_kg_day=1.0), patient_id="gc1"),
        dict(eligible_row("SSc", ssc_subtype="limited"), patient_id="lim"),
        dict(eligible_row("SSc"), patient_id="ok"),
    ]
    cohort = make_cohort(rows)
    ev = Evaluator.for_cohort(cohort)
    table = reading_impact(ev, baseline(), cohort.frame).set_index(["reading", "alternative"])
    assert table.loc[("aav_subtypes", "egpa_allowed"), "gained_ids"] == ["egpa"]
    assert table.loc[("gc_dose", "more_than"), "lost_ids"] == ["gc1"]
    assert table.loc[("ssc_localized", "morphea"), "gained_ids"] == ["lim"]
    assert table.loc[("gc_dose", "at_least"), "current"]
    assert (table.loc[("gc_dose", "at_least"), ["gained", "lost"]] == 0).all()
    # against a scenario that already applies a reading, switching back loses those it gained
    literal = resolve({"readings": {"aav_subtypes": "egpa_allowed"}})
    t2 = reading_impact(ev, literal, cohort.frame).set_index(["reading", "alternative"])
    assert t2.loc[("aav_subtypes", "closed_list"), "lost_ids"] == ["egpa"]
    # one disease only
    t3 = reading_impact(ev, baseline(), cohort.frame, "SSc").set_index(["reading", "alternative"])
    assert t3.loc[("aav_subtypes", "egpa_allowed"), "gained"] == 0
    assert t3.loc[("ssc_localized", "morphea"), "gained_ids"] == ["lim"]


def test_readings_file_is_checked():
    with pytest.raises(ValueError, match="default alternative must be the catalog"):
        parse_readings([{"name": "x", "title": "t", "quote": "q", "criteria": ["INC-1"], "default": "a",
                         "alternatives": {"a": {"wording": "w", "parameters": {"age_max": 70}},
                                          "b": {"wording": "v"}}}])
    from importlib import resources

    import yaml
    text = lambda n: yaml.safe_load(resources.files("eligibility.protocol").joinpath(n).read_text("utf-8"))  # noqa: E731
    bad = [{"name": "x", "title": "t", "quote": "q", "criteria": ["INC-1"], "default": "a",
            "alternatives": {"a": {"wording": "w"}, "b": {"wording": "v", "definitions": {"nope": {
                "kind": "flag", "field": "hiv_pos"}}}}}]
    with pytest.raises(ReadingError, match="unknown definition 'nope'"):
        load_catalog(text("criteria.yaml"), text("parameters.yaml"), bad)
    bad[0]["alternatives"]["b"] = {"wording": "v", "parameters": {"age_max": -1}}
    with pytest.raises(ReadingError, match="age_max"):
        load_catalog(text("criteria.yaml"), text("parameters.yaml"), bad)


def test_readings_cli(capsys):
    assert main(["readings"]) == 0
    out = capsys.readouterr().out
    for name in ISSUE_READINGS:
        assert f"{name}  (default: {CAT.readings[name].default})" in out
    assert main(["readings", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in data} >= ISSUE_READINGS
    gc = next(r for r in data if r["name"] == "gc_dose")
    assert gc["default"] == "at_least" and set(gc["alternatives"]) == {"at_least", "more_than"}


def test_screen_cli_applies_readings(tmp_path, capsys):
    import pandas as pd

    src = tmp_path / "c.csv"
    rows = [dict(eligible_row("AAV", aav_subtype="EGPA"), patient_id="P1")]
    pd.DataFrame(rows).to_csv(src, index=False)
    sc = tmp_path / "s.json"
    sc.write_text(json.dumps({"readings": {"aav_subtypes": "egpa_allowed"}}))
    assert main(["screen", str(src), "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["screen", str(src), "--scenario", str(sc), "-o", str(tmp_path / "b.csv")]) == 0
    assert pd.read_csv(tmp_path / "a.csv")["status"].tolist() == ["ineligible"]
    assert pd.read_csv(tmp_path / "b.csv")["status"].tolist() == ["eligible"]
    sc.write_text(json.dumps({"readings": {"aav_subtypes": "open"}}))
    assert main(["screen", str(src), "--scenario", str(sc), "-o", str(tmp_path / "bad.csv")]) == 2
    assert "aav_subtypes" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_scenario_file_problems_check_readings():
    """A scenario file may choose readings; unknown readings or alternatives are listed as problems."""
    from eligibility.whatif import scenario_problems

    cat = default_catalog()
    assert scenario_problems({"readings": {"gc_dose": "more_than"}}, cat) == []
    problems = scenario_problems({"readings": {"gc_dose": "x", "zz": "y"}}, cat)
    assert len(problems) == 2 and "'x'" in problems[0] + problems[1] and "'zz'" in problems[0] + problems[1]
    assert scenario_problems({"readings": ["gc_dose"]}, cat)


def test_documented_interpretations_are_separate_from_switchable_readings():
    """The Protocol page's documented readings (interpretations.yaml) and the switchable ones
    (readings.yaml) are two files; both load."""
    from eligibility.rule_text import readings

    assert len(readings()) >= 9 and all(text and reading for text, reading in readings())
    assert default_catalog().readings
