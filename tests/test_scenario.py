"""What-if scenarios: validation (messages name the bad key and value), defaults from
criteria.md, JSON/YAML files, URL tokens, minimal diffs and switching criteria off."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.catalog import default_catalog
from eligibility.scenario import (
    Scenario,
    ScenarioError,
    decode_from_url,
    encode_for_url,
    load_scenario,
    resolve,
    save_scenario,
    to_scenario,
)

CAT = default_catalog()

# criteria.md "Parameters and what-if" table: name -> protocol default
SPEC_DEFAULTS = {
    "age_min": 18, "age_max": 65, "hb_min_g_l": 60, "wbc_min_10e9_l": 2.5, "anc_min_10e9_l": 1.0,
    "gcsf_washout_days": 14, "alt_max_x_uln": 3, "ast_max_x_uln": 3, "tbil_max_x_uln": 1.5,
    "default_alt_uln_u_l": 40, "default_ast_uln_u_l": 40, "default_tbil_uln_umol_l": 21,
    "inr_max_x_uln": 1.5, "pt_max_x_uln": 1.5, "default_inr_uln": 1.2, "default_pt_uln_s": 13.5,
    "egfr_min": 15, "fvc_min_pct": 50, "dlco_min_pct": 40, "iv_abx_washout_days": 28,
    "hosp_infection_washout_days": 28, "oral_abx_washout_days": 14, "iga_min_mg_dl": 10,
    "igg_min_mg_dl": 400, "investigational_washout_days": 90, "malignancy_free_years": 5,
    "live_vaccine_washout_days": 28, "conventional_therapy_min_months": 6, "gc_min_mg_kg_day": 1.0,
    "require_cyclophosphamide": True, "min_immunomodulators": 1, "ssc_score_min": 9,
    "disease_duration_max_months": 60, "mrss_min": 10, "ild_pft_max_pct": 70, "mrss_progression_pct": 25,
    "fvc_decline_pct": 10, "fvc_decline_with_dlco_pct": 5, "dlco_decline_pct": 15,
    "ssc_excluded_subtypes": frozenset({"limited"}), "ph_excluded_risks": frozenset({"intermediate", "high"}),
    "iim_prob_min_pct": 55, "iim_included_subtypes": frozenset({"DM", "PM", "ASS", "IMNM"}), "mmt8_max": 142,
    "core_set_min_abnormal": 2, "phga_min_cm": 2, "ptga_min_cm": 2, "extramuscular_min_cm": 2,
    "haq_min": 0.25, "enzyme_min_x_uln": 1.5, "aav_included_subtypes": frozenset({"GPA", "MPA"}),
    "bvas_min": 15, "sjs_score_min": 4, "essdai_min": 5, "apl_min_positive_count": 2,
    "apl_min_interval_weeks": 12, "caps_min_organs": 3, "bvas_min_major_items": 1, "bvas_min_minor_items": 3,
    "unreadable_event_unknown": True,  # project decision, not in criteria.md (see README)
    "screening_to_randomisation_days": 14,  # project assumption, used only by a non-default reading
    "implausible_values_unknown": True,  # cohort-fields.md, "Plausible ranges"
}
# Read by every number a rule compares, not by one rule: no criterion names it.
GLOBAL_PARAMS = {"implausible_values_unknown"}
# criteria.md: parameters without a what-if range are not offered as controls
NO_RANGE = {"default_alt_uln_u_l", "default_ast_uln_u_l", "default_tbil_uln_umol_l", "default_inr_uln",
            "default_pt_uln_s", "ssc_score_min", "sjs_score_min", "screening_to_randomisation_days"}


def test_defaults_match_spec():
    assert CAT.defaults() == SPEC_DEFAULTS
    assert resolve({}).params == SPEC_DEFAULTS


def test_ranges_match_spec():
    for name, p in CAT.parameters.items():
        if name in NO_RANGE or p.type in ("set", "bool"):
            assert p.range is None, name
        else:
            assert p.range is not None, name
            lo, hi = p.range
            assert lo <= SPEC_DEFAULTS[name] <= hi, name


@pytest.mark.parametrize("param, units", [
    ("hb_min_g_l", ["INC-2.hb", "EXC-2.hb"]),
    ("egfr_min", ["EXC-2.kidney", "AAV-INC-4"]),
    ("alt_max_x_uln", ["INC-3.alt", "EXC-2.alt"]),
    ("disease_duration_max_months", ["SSC-INC-2", "SSC-EXC-2"]),
    ("gc_min_mg_kg_day", ["IIM-INC-4", "AAV-INC-5", "SJS-INC-4"]),
    ("require_cyclophosphamide", ["SSC-INC-4", "IIM-INC-4", "AAV-INC-5", "SJS-INC-4"]),
    ("ild_pft_max_pct", ["SSC-INC-3"]),
])
def test_one_parameter_moves_all_its_criteria(param, units):
    assert CAT.units_reading_param(param) == units


def test_every_parameter_is_read_by_some_criterion():
    """... or by a criterion under some reading of the protocol text (readings.yaml); the
    global parameters are read by every number a rule compares, not by one rule."""
    variants = [CAT.variant(((r.name, a),)) for r in CAT.readings.values() for a in r.alternatives
                if a != r.default]
    for name in set(CAT.parameters) - GLOBAL_PARAMS:
        assert CAT.units_reading_param(name) or any(v.units_reading_param(name) for v in variants), name


# ---------------------------------------------------------------------------------------
# Validation: the message names the bad key and value
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario, words", [
    ({"parameters": {"age_maximum": 70}}, ["age_maximum"]),
    ({"parameters": {"AGE_MAX": 70}}, ["AGE_MAX"]),
    ({"disabled": ["INC-99"]}, ["INC-99"]),
    ({"disabled": ["INC-2.xyz"]}, ["INC-2.xyz"]),
    ({"disabled": ["INC-1", "inc-7"]}, ["inc-7"]),
    ({"parameters": {"age_min": -1}}, ["age_min", "-1"]),
    ({"parameters": {"hb_min_g_l": -0.5}}, ["hb_min_g_l", "-0.5"]),
    ({"parameters": {"hb_min_g_l": "sixty"}}, ["hb_min_g_l", "sixty"]),
    ({"parameters": {"hb_min_g_l": [60]}}, ["hb_min_g_l", "[60]"]),
    ({"parameters": {"hb_min_g_l": None}}, ["hb_min_g_l", "None"]),
    ({"parameters": {"hb_min_g_l": float("nan")}}, ["hb_min_g_l", "nan"]),
    ({"parameters": {"hb_min_g_l": "inf"}}, ["hb_min_g_l", "inf"]),
    ({"parameters": {"min_immunomodulators": 1.5}}, ["min_immunomodulators", "1.5"]),
    ({"parameters": {"core_set_min_abnormal": -1}}, ["core_set_min_abnormal", "-1"]),
    ({"parameters": {"apl_min_positive_count": "two"}}, ["apl_min_positive_count", "two"]),
    ({"parameters": {"age_max": True}}, ["age_max", "True"]),
    ({"parameters": {"min_immunomodulators": False}}, ["min_immunomodulators", "False"]),
    ({"parameters": {"require_cyclophosphamide": 1}}, ["require_cyclophosphamide", "1"]),
    ({"parameters": {"require_cyclophosphamide": "maybe"}}, ["require_cyclophosphamide", "maybe"]),
    ({"parameters": {"require_cyclophosphamide": "true"}}, ["require_cyclophosphamide", "true"]),
    ({"parameters": {"age_max": "70"}}, ["age_max", "70"]),
    ({"parameters": {"ssc_excluded_subtypes": ["limited", "localized"]}}, ["ssc_excluded_subtypes", "localized"]),
    ({"parameters": {"ph_excluded_risks": ["severe"]}}, ["ph_excluded_risks", "severe"]),
    ({"parameters": {"iim_included_subtypes": ["DM", 3]}}, ["iim_included_subtypes", "3"]),
    ({"parameters": {"aav_included_subtypes": "GPA"}}, ["aav_included_subtypes", "GPA"]),
    ({"parameters": {"ssc_excluded_subtypes": "limited"}}, ["ssc_excluded_subtypes", "limited"]),
    ({"parameters": {"ssc_excluded_subtypes": 1}}, ["ssc_excluded_subtypes", "1"]),
    ({"parameters": {"aav_included_subtypes": {"GPA": True}}}, ["aav_included_subtypes"]),
    ({"unknown_key": 1}, ["unknown_key"]),
    ({"disabled": "INC-1"}, ["disabled"]),
    ({"parameters": [["age_max", 70]]}, ["parameters"]),
])
def test_invalid_scenario_message_names_key_and_value(scenario, words):
    with pytest.raises(ScenarioError) as e:
        resolve(scenario)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_scenario_error_is_value_error():
    assert issubclass(ScenarioError, ValueError)


@pytest.mark.parametrize("param, value, expected", [
    ("age_max", 70, 70.0),
    ("age_max", 70.5, 70.5),
    ("age_min", 0, 0.0),
    ("hb_min_g_l", 1000, 1000.0),  # the what-if range is not a validation bound
    ("min_immunomodulators", 2, 2),
    ("min_immunomodulators", 2.0, 2),
    ("min_immunomodulators", 0, 0),
    ("require_cyclophosphamide", False, False),
    ("ssc_excluded_subtypes", [], frozenset()),
    ("ssc_excluded_subtypes", ["Limited", " SINE "], frozenset({"limited", "sine"})),
    ("iim_included_subtypes", ["dm", "ibm"], frozenset({"DM", "IBM"})),
    ("ph_excluded_risks", ("high",), frozenset({"high"})),
    ("aav_included_subtypes", ["gpa", "GPA"], frozenset({"GPA"})),
])
def test_valid_values_are_typed(param, value, expected):
    got = resolve({"parameters": {param: value}}).params[param]
    assert got == expected
    assert type(got) is type(expected)


# ---------------------------------------------------------------------------------------
# Disabling
# ---------------------------------------------------------------------------------------
def test_disabling_criterion_disables_all_parts():
    r = resolve({"disabled": ["EXC-2"]})
    assert r.disabled == {u.id for u in CAT.units if u.criterion == "EXC-2"}
    assert len(r.disabled) == 10
    assert r.disabled_given == ("EXC-2",)


def test_disabling_part_only_that_part():
    assert resolve({"disabled": ["INC-2.hb"]}).disabled == {"INC-2.hb"}
    assert resolve({"disabled": ["INC-1"]}).disabled == {"INC-1"}


def test_disabling_criterion_and_its_part():
    r = resolve({"disabled": ["EXC-4", "EXC-4.latent", "SSC-EXC-1"]})
    assert r.disabled == {"EXC-4.active", "EXC-4.latent", "SSC-EXC-1"}


@pytest.mark.parametrize("cid", [c.id for c in CAT.criteria] + [u.id for u in CAT.units])
def test_every_id_can_be_disabled(cid):
    r = resolve({"disabled": [cid]})
    assert r.disabled == {u.id for u in CAT.units if u.id == cid or u.criterion == cid}


# ---------------------------------------------------------------------------------------
# Equality, minimal diff
# ---------------------------------------------------------------------------------------
def test_resolved_equality_ignores_order_and_name():
    a = resolve({"name": "a", "parameters": {"age_max": 70, "ssc_excluded_subtypes": ["limited", "sine"]},
                 "disabled": ["INC-7", "EXC-2"]})
    b = resolve({"name": "b", "parameters": {"ssc_excluded_subtypes": ["sine", "limited"], "age_max": 70.0},
                 "disabled": ["EXC-2", "INC-7"]})
    assert a == b and hash(a) == hash(b)
    assert a != resolve({"parameters": {"age_max": 71}})


def test_to_scenario_minimal_diff():
    r = resolve({"name": "relax", "parameters": {"age_max": 70, "age_min": 18, "hb_min_g_l": 60.0,
                                                 "ssc_excluded_subtypes": ["LIMITED"],
                                                 "ph_excluded_risks": ["high"], "require_cyclophosphamide": True,
                                                 "min_immunomodulators": 0},
                 "disabled": ["INC-7"]})
    s = to_scenario(r)
    assert s.name == "relax"
    assert s.parameters == {"age_max": 70.0, "ph_excluded_risks": ["high"], "min_immunomodulators": 0}
    assert s.disabled == ["INC-7"]
    assert resolve(s) == r


def test_to_scenario_of_baseline_is_empty():
    s = to_scenario(resolve({}))
    assert s.parameters == {} and s.disabled == []


def test_to_scenario_set_is_sorted_list():
    s = to_scenario(resolve({"parameters": {"iim_included_subtypes": ["PM", "DM"]}}))
    assert s.parameters == {"iim_included_subtypes": ["DM", "PM"]}
    json.dumps(s.model_dump())  # JSON-serialisable


# ---------------------------------------------------------------------------------------
# Files and URL tokens
# ---------------------------------------------------------------------------------------
EXAMPLE = Scenario(
    name="relax age — 放宽", description="what-if",
    parameters={"age_max": 70, "min_immunomodulators": 0, "require_cyclophosphamide": False,
                "ssc_excluded_subtypes": [], "iim_included_subtypes": ["DM", "PM", "IBM"], "wbc_min_10e9_l": 2.1},
    disabled=["INC-7", "EXC-2.hb", "SSC-EXC-5"],
)


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".JSON"])
def test_file_round_trip(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    save_scenario(EXAMPLE, path)
    text = path.read_text("utf-8")
    if suffix.lower() == ".json":
        assert json.loads(text)["parameters"]["age_max"] == 70
    else:
        assert not text.lstrip().startswith("{")
    loaded = load_scenario(path)
    assert loaded == resolve(EXAMPLE)
    assert loaded.name == EXAMPLE.name
    assert to_scenario(loaded).disabled == EXAMPLE.disabled


def test_load_spec_example(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"name": "relax age", "parameters": {"age_max": 70}, "disabled": ["INC-7"]}', "utf-8")
    r = load_scenario(path)
    assert r.params["age_max"] == 70 and r.disabled == {"INC-7"} and r.name == "relax age"


def test_load_yaml_written_by_hand(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nparameters:\n  age_max: 70\n  ssc_excluded_subtypes: [limited, sine]\n"
                    "disabled:\n  - EXC-2\n", "utf-8")
    r = load_scenario(path)
    assert r.params["ssc_excluded_subtypes"] == {"limited", "sine"}
    assert len(r.disabled) == 10


def test_load_json_with_bom(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"parameters": {"age_max": 70}}).encode())
    assert load_scenario(path).params["age_max"] == 70


@pytest.mark.parametrize("name, text, words", [
    ("bad.json", "{not json", ["JSON"]),
    ("bad.yaml", "parameters: [unclosed", ["YAML"]),
    ("list.json", "[1, 2]", ["object"]),
    ("unknown.json", '{"parameters": {"agemax": 70}}', ["agemax"]),
    ("neg.yaml", "parameters:\n  hb_min_g_l: -5\n", ["hb_min_g_l", "-5"]),
    ("crit.json", '{"disabled": ["XYZ-1"]}', ["XYZ-1"]),
    ("setstr.yaml", "parameters:\n  ssc_excluded_subtypes: limited\n", ["ssc_excluded_subtypes"]),
])
def test_invalid_files(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text, "utf-8")
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    for w in words:
        assert w in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError) as e:
        load_scenario(tmp_path / "nope.json")
    assert "nope.json" in str(e.value)


def test_url_round_trip():
    token = encode_for_url(EXAMPLE)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert decode_from_url(token) == EXAMPLE
    assert resolve(decode_from_url(token)) == resolve(EXAMPLE)
    empty = Scenario()
    assert decode_from_url(encode_for_url(empty)) == empty


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    encode_for_url(EXAMPLE)[:-7],
    encode_for_url(EXAMPLE)[:5],
    encode_for_url(EXAMPLE)[:1],
    "x",
    "!!!!",
    "%%%",
    "ünïcode",
    "",
    _b64(b"\xff\xfe\xfd"),
    _b64(b"[1,2,3]"),
    _b64(b"not json"),
    _b64(b'{"parameters": 5}'),
    _b64(b'{"bogus": 1}'),
])
def test_damaged_url_token(token):
    with pytest.raises(ScenarioError):
        decode_from_url(token)


# ---------------------------------------------------------------------------------------
# Round trips of random valid scenarios
# ---------------------------------------------------------------------------------------
def _value(p):
    if p.type == "bool":
        return st.booleans()
    if p.type == "count":
        return st.integers(0, 6)
    if p.type == "set":
        return st.lists(st.sampled_from(p.choices), unique=True).map(sorted)
    return st.one_of(st.integers(0, 500), st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 3)))


scenarios = st.builds(
    Scenario,
    name=st.text(max_size=10),
    parameters=st.fixed_dictionaries({}, optional={n: _value(p) for n, p in CAT.parameters.items()}),
    disabled=st.lists(st.sampled_from([c.id for c in CAT.criteria] + [u.id for u in CAT.units]),
                      unique=True, max_size=6),
)


@settings(max_examples=60, deadline=None)
@given(scenarios)
def test_random_scenario_round_trips(s):
    r = resolve(s)
    assert decode_from_url(encode_for_url(s)) == s
    back = to_scenario(r)
    assert resolve(back) == r
    assert set(back.parameters) <= set(s.parameters)
    assert decode_from_url(encode_for_url(back)) == back


@settings(max_examples=20, deadline=None)
@given(scenarios)
def test_random_scenario_file_round_trip(tmp_path_factory, s):
    d = tmp_path_factory.mktemp("sc")
    for suffix in (".json", ".yaml"):
        save_scenario(s, d / f"x{suffix}")
        assert load_scenario(d / f"x{suffix}") == resolve(s)
