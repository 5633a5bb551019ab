"""The mapping catalog (eligibility/protocol/mapping.yaml) and its lookup API."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from eligibility.fields import FIELD_BY_NAME
from eligibility.mapping import (
    PROVENANCE_COLUMNS,
    convert,
    empty_provenance,
    factor,
    field_for_code,
    load_mapping,
    route_of,
    rule_for,
    system_of,
    vocabulary_of,
)
from eligibility.mapping.models import LabRule, MappingCatalog


def _raw() -> dict:
    from importlib import resources

    return yaml.safe_load(resources.files("eligibility.protocol").joinpath("mapping.yaml").read_text("utf-8"))


def test_catalog_loads_and_every_code_has_display_and_known_source():
    m = load_mapping()
    assert len(m.fields) >= 30
    for rule in m.fields:
        assert rule.field in FIELD_BY_NAME
        for codes in rule.code_sets().values():
            for c in codes:
                assert c.display.strip() and "\u200b" not in c.display
                assert c.source in m.sources
                assert c.code == c.code.strip()


def test_lab_units_are_contract_units_and_known():
    m = load_mapping()
    expected = {"hemoglobin_g_l": "g/L", "alt_u_l": "U/L", "tbil_umol_l": "umol/L", "weight_kg": "kg",
                "egfr_ml_min_1_73m2": "mL/min/{1.73_m2}", "igg_mg_dl": "mg/dL"}
    for name, unit in expected.items():
        rule = rule_for(name)
        assert isinstance(rule, LabRule) and rule.unit == unit
        assert m.unit_groups[unit][unit] == 1


@pytest.mark.parametrize(
    ("value", "unit", "field", "out"),
    [
        (6.1, "g/dL", "hemoglobin_g_l", 61.0),
        (61, "g/L", "hemoglobin_g_l", 61.0),
        (142, "IU/L", "alt_u_l", 142.0),  # IU/L == U/L (issue 11: ALT 142 IU/L)
        (142, "[IU]/L", "ast_u_l", 142.0),
        (1.2, "mg/dL", "tbil_umol_l", 20.52),
        (7.5, "10*3/uL", "wbc_10e9_l", 7.5),
        (7500, "/uL", "wbc_10e9_l", 7.5),
        (12.0, "g/L", "igg_mg_dl", 1200.0),
        (1.1, "", "inr", 1.1),
        (150, "[lb_av]", "weight_kg", 68.0388555),
        (88, "mL/min", "egfr_ml_min_1_73m2", 88.0),
    ],
)
def test_convert_known_units(value, unit, field, out):
    assert convert(value, unit, field) == pytest.approx(out, abs=1e-6)


@pytest.mark.parametrize(
    ("unit", "field"),
    [("mmol/L", "hemoglobin_g_l"), ("g/dl", "hemoglobin_g_l"), ("", "hemoglobin_g_l"),
     ("ukat/L", "alt_u_l"), ("mg/dL", "wbc_10e9_l"), (None, "tbil_umol_l"), ("lbs", "weight_kg")],
)
def test_unknown_units_are_not_guessed(unit, field):
    assert factor(field, unit) is None
    assert convert(10.0, unit, field) is None


def test_convert_rejects_non_lab_field_and_passes_nan_as_none():
    with pytest.raises(ValueError):
        convert(1.0, "kg", "severe_heart_disease")
    assert convert(math.nan, "g/L", "hemoglobin_g_l") is None


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.sampled_from(["g/L", "g/dL", "mg/dL"]))
def test_conversion_is_linear_in_the_value(v, unit):
    f = factor("hemoglobin_g_l", unit)
    assert convert(v, unit, "hemoglobin_g_l") == pytest.approx(v * f, rel=1e-9, abs=1e-6)


def test_field_for_code_by_fhir_system_and_by_vocabulary():
    hits = field_for_code("http://loinc.org", "718-7")
    assert [(h.field, h.category) for h in hits] == [("hemoglobin_g_l", "")]
    assert field_for_code("LOINC", " 718-7 ") == hits
    gpa = {(h.field, h.category) for h in field_for_code("http://snomed.info/sct", "195353004")}
    assert gpa == {("disease", "AAV"), ("aav_subtype", "GPA")}
    bcc = field_for_code("SNOMED", "254701007")
    assert [(h.field, h.role) for h in bcc] == [("years_since_malignancy", "excepted")]
    assert field_for_code("http://example.org/other", "718-7") == ()
    assert field_for_code("LOINC", "0000-0") == ()
    oral = {h.field for h in field_for_code("http://www.nlm.nih.gov/research/umls/rxnorm", "562251")}
    assert oral == {"days_since_oral_antibiotics", "days_since_iv_antibiotics"}
    assert [h.field for h in field_for_code("http://hl7.org/fhir/sid/cvx", "121")] == ["days_since_live_vaccine"]
    assert [h.field for h in field_for_code("http://hl7.org/fhir/sid/icd-10-cm", "I50.9")] == ["severe_heart_disease"]


def test_systems_routes_and_vocabularies_round_trip():
    for vocab in ("LOINC", "SNOMED", "ICD10CM", "RxNorm", "CVX"):
        assert vocabulary_of(system_of(vocab)) == vocab
    assert system_of("RxNorm") == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert route_of("http://snomed.info/sct", "26643006") == "oral"
    assert route_of("SNOMED", "47625008") == "iv"
    assert route_of("SNOMED", "0") is None


def test_five_indications_and_exceptions_are_coded():
    disease = rule_for("disease")
    assert set(disease.categories) == {"SSc", "IIM", "AAV", "SjS", "APS"}
    for codes in disease.categories.values():
        assert {c.vocabulary for c in codes} == {"SNOMED", "ICD10CM"}
    malig = rule_for("years_since_malignancy")
    assert {c.code for c in malig.excepted} >= {"254701007", "92564006"}


def test_not_mapped_fields_say_why_and_are_not_rules():
    m = load_mapping()
    names = {r.field for r in m.fields}
    assert m.not_mapped and not set(m.not_mapped) & names
    assert all(len(why) > 20 for why in m.not_mapped.values())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["fields"].append({"field": "no_such_field", "kind": "age"}),
        lambda d: d["fields"][2]["codes"][0].pop("display"),
        lambda d: d["fields"][2]["codes"][0].update(source="nowhere"),
        lambda d: d["fields"][2].update(unit="furlongs"),
        lambda d: d["fields"].append(dict(d["fields"][2])),
        lambda d: d["fields"][2]["codes"][0].update(vocabulary="READ"),
        lambda d: d["not_mapped"].update(weight_kg="duplicated"),
    ],
)
def test_invalid_catalogs_are_rejected(mutate):
    data = _raw()
    assert MappingCatalog.model_validate(data)  # the unmodified file is valid
    mutate(data)
    with pytest.raises(ValidationError):
        MappingCatalog.model_validate(data)


def test_provenance_schema():
    assert list(PROVENANCE_COLUMNS) == ["patient_id", "field", "value", "source_table", "vocabulary_id",
                                        "concept_code", "date", "original_value", "original_unit"]
    assert list(empty_provenance().columns) == list(PROVENANCE_COLUMNS)
