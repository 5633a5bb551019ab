"""FHIR R4 import through the mapping catalog: shared Synthea bundles (values checked
against an independent reading of the JSON), NDJSON = bundles, resource semantics on
small hand-made bundles, left-out patients, as-of date, CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from eligibility.cli import main
from eligibility.importers.fhir import FhirError, from_fhir
from eligibility.loader import validate_frame
from eligibility.screen import screen_frame

FHIR_DIR = next((p / "shared" / "external" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "external").is_dir()), Path("../shared/external")) / "synthea-fhir-r4"
AS_OF = dt.date(2021, 3, 19)  # the bundles' last record date
pytestmark = pytest.mark.skipif(not FHIR_DIR.is_dir(), reason="shared Synthea bundles not present")


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def raw():
    """Per patient, the resources of their bundle (an independent reading of the JSON)."""
    out = {}
    for path in sorted(FHIR_DIR.glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        res = [e["resource"] for e in doc["entry"]]
        patient = next(r for r in res if r["resourceType"] == "Patient")
        out[patient["id"]] = {"patient": patient, "resources": res, "file": path.name}
    return out


@pytest.fixture(scope="module")
def imported():
    return from_fhir(FHIR_DIR, as_of=AS_OF)


def _row(res, pid):
    return res.frame.set_index("patient_id").loc[pid]


def test_every_patient_is_imported_or_listed_with_a_reason(imported, raw):
    dead = {pid for pid, v in raw.items() if v["patient"].get("deceasedDateTime")}
    assert len(raw) == 20 and len(dead) == 9
    assert set(imported.frame["patient_id"]) == set(raw) - dead
    left = imported.left_out.set_index("patient_id")["reason"]
    assert set(left.index) == dead
    for pid in dead:
        death = raw[pid]["patient"]["deceasedDateTime"][:10]
        assert left[pid] == f"deceased on or before the as-of date ({death})"
    assert len(imported.frame) + len(imported.left_out) == len(raw)


def test_coded_heart_failure_sets_severe_heart_disease(imported, raw):
    expected = {}
    for pid, v in raw.items():
        hf = [r for r in v["resources"] if r["resourceType"] == "Condition"
              and any(c["code"] == "88805009" for c in r["code"]["coding"])
              and _ts(r["onsetDateTime"]).date() <= AS_OF]
        expected[pid] = "yes" if hf else "no"
    alive = imported.frame["patient_id"].tolist()
    got = dict(zip(alive, imported.frame["severe_heart_disease"], strict=True))
    assert got == {pid: expected[pid] for pid in alive}
    assert sum(v == "yes" for v in got.values()) >= 1
    prov = imported.provenance
    yes = prov[(prov["field"] == "severe_heart_disease") & (prov["value"] == "yes")]
    assert set(yes["concept_code"]) == {"88805009"} and set(yes["source_table"]) == {"Condition"}
    assert set(yes["vocabulary_id"]) == {"SNOMED"}


def test_body_weight_is_the_latest_29463_7_within_a_year(imported, raw):
    checked = 0
    for pid in imported.frame["patient_id"]:
        obs = [(_ts(r["effectiveDateTime"]), r["valueQuantity"]) for r in raw[pid]["resources"]
               if r["resourceType"] == "Observation" and any(c["code"] == "29463-7" for c in r["code"]["coding"])
               and AS_OF - dt.timedelta(days=365) <= _ts(r["effectiveDateTime"]).date() <= AS_OF]
        got = _row(imported, pid)["weight_kg"]
        if not obs:
            assert got is None or pd.isna(got)
            continue
        t, q = max(obs, key=lambda x: x[0])
        assert q["code"] == "kg"
        assert got == pytest.approx(q["value"])
        checked += 1
    assert checked >= 8


def test_zoster_vaccine_gives_days_since_live_vaccine(imported, raw):
    seen = 0
    for pid in imported.frame["patient_id"]:
        dates = [_ts(r["occurrenceDateTime"]).date() for r in raw[pid]["resources"]
                 if r["resourceType"] == "Immunization" and r["vaccineCode"]["coding"][0]["code"] == "121"
                 and _ts(r["occurrenceDateTime"]).date() <= AS_OF]
        got = _row(imported, pid)["days_since_live_vaccine"]
        if dates:
            assert got == (AS_OF - max(dates)).days
            seen += 1
        else:
            assert got is None
    assert seen >= 1


def test_labs_follow_the_catalog_and_provenance_keeps_the_original(imported, raw):
    prov = imported.provenance
    alt = prov[prov["field"] == "tbil_umol_l"]
    assert len(alt) >= 1
    for rec in alt.itertuples():
        assert rec.original_unit == "mg/dL" and rec.concept_code == "1975-2"
        assert float(rec.value) == pytest.approx(float(rec.original_value) * 17.1, abs=1e-5)
        obs = [r for r in raw[rec.patient_id]["resources"] if r["resourceType"] == "Observation"
               and r["code"]["coding"][0]["code"] == "1975-2" and r["effectiveDateTime"][:10] == rec.date]
        assert any(r["valueQuantity"]["value"] == pytest.approx(float(rec.original_value)) for r in obs)


def _to_ndjson(tmp_path: Path) -> Path:
    """The same resources as Bulk Data NDJSON: one file per type, Patient/<id> references."""
    out = tmp_path / "bulk"
    out.mkdir()
    by_type: dict[str, list[str]] = {}
    for path in sorted(FHIR_DIR.glob("*.json")):
        for e in json.loads(path.read_text("utf-8"))["entry"]:
            r = e["resource"]
            for key in ("subject", "patient"):
                ref = (r.get(key) or {}).get("reference", "")
                if ref.startswith("urn:uuid:"):
                    r[key]["reference"] = "Patient/" + ref[len("urn:uuid:"):]
            by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (out / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_ndjson_of_the_same_resources_gives_the_same_cohort(tmp_path, imported):
    bulk = from_fhir(_to_ndjson(tmp_path), as_of=AS_OF)
    a = imported.frame.sort_values("patient_id").reset_index(drop=True)
    b = bulk.frame.sort_values("patient_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    key = ["patient_id", "field", "source_table", "concept_code", "date"]
    pa_ = imported.provenance.sort_values(key).reset_index(drop=True)
    pb = bulk.provenance.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(pa_, pb)
    assert sorted(bulk.left_out["patient_id"]) == sorted(imported.left_out["patient_id"])


# ---------------------------------------------------------------------------------------
# Hand-made bundles: one behaviour each
# ---------------------------------------------------------------------------------------


def _patient(pid="p1", birth="1980-05-01", **kw):
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": "female", **kw}


def _obs(code, value, unit, when, pid="p1", system="http://loinc.org"):
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"urn:uuid:{pid}"},
            "code": {"coding": [{"system": system, "code": code, "display": "x\u200b"}]},
            "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit, "code": unit}}


def _cond(code, onset, pid="p1", clinical="active", verification="confirmed", abatement=None,
          system="http://snomed.info/sct"):
    r = {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
         "clinicalStatus": {"coding": [{"code": clinical}]},
         "verificationStatus": {"coding": [{"code": verification}]},
         "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": onset}
    if abatement:
        r["abatementDateTime"] = abatement
    return r


def _bundle(tmp_path, resources, name="b.json", btype="collection"):
    path = tmp_path / name
    entries = [{"fullUrl": f"urn:uuid:{r.get('id', i)}", "resource": r} for i, r in enumerate(resources)]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": btype, "entry": entries}), encoding="utf-8")
    return path


def test_alt_in_iu_per_l_is_read_and_fails_inc_3(tmp_path):
    path = _bundle(tmp_path, [_patient(), _obs("1742-6", 142, "IU/L", "2024-05-01T10:00:00Z"),
                              _obs("1920-8", 30, "[IU]/L", "2024-05-01T10:00:00Z"),
                              _obs("718-7", 12.5, "g/dL", "2024-05-01T10:00:00Z"),
                              _obs("6690-2", 5, "10*3/uL", "2024-05-01T10:00:00Z"),
                              _obs("1975-2", 1.0, "mmol/L", "2024-05-01T10:00:00Z")])
    res = from_fhir(path, as_of=dt.date(2024, 6, 1), disease="SSc")
    row = res.frame.iloc[0]
    assert row["alt_u_l"] == 142.0 and row["ast_u_l"] == 30.0
    assert row["hemoglobin_g_l"] == 125.0 and row["wbc_10e9_l"] == 5.0
    assert row["tbil_umol_l"] is None  # unknown unit: empty and reported, never guessed
    assert any("tbil_umol_l: latest value unusable for 1 patient(s) (unit 'mmol/L'" in n for n in res.notes)
    rep = res.report.set_index(["patient_id", "field"])
    assert rep.loc[("p1", "tbil_umol_l"), "kind"] == "unknown_unit"
    assert "1975-2" in rep.loc[("p1", "tbil_umol_l"), "detail"]
    out = screen_frame(validate_frame(res.frame))
    assert out["status"].iloc[0] == "ineligible" and "INC-3.alt" in out["failed"].iloc[0].split(";")


def test_condition_status_onset_and_abatement(tmp_path):
    res_list = [
        _patient("a"), _cond("56717001", "2023-01-01", pid="a"),  # active TB: yes
        _patient("b"), _cond("56717001", "2015-01-01", pid="b", clinical="resolved", abatement="2016-01-01"),
        _patient("c"), _cond("56717001", "2024-01-01", pid="c", verification="refuted"),
        _obs("29463-7", 70, "kg", "2024-01-01T00:00:00Z", pid="c"),
        _patient("d"), _cond("56717001", "2023-01-01", pid="d", clinical="resolved"),  # ended at onset: > 1 y
        _patient("e"), _cond("88805009", "2010-01-01", pid="e", clinical="resolved", abatement="2011-01-01"),
        _patient("f"), _cond("56717001", "2025-01-01", pid="f"),  # after the as-of date
    ]
    res = from_fhir(_bundle(tmp_path, res_list), as_of=dt.date(2024, 6, 1))
    got = res.frame.set_index("patient_id")
    assert got["tb_active"].to_dict() == {"a": "yes", "b": "no", "c": "no", "d": "no", "e": "no", "f": "no"}
    assert got.loc["e", "severe_heart_disease"] == "yes"  # no look-back: a recorded diagnosis counts
    assert any("Condition refuted / entered-in-error" in n for n in res.notes)


def test_disease_from_conditions_several_candidates_reported(tmp_path):
    res_list = [
        _patient("s"), _cond("89155008", "2019-01-01", pid="s"),
        _patient("m"), _cond("89155008", "2018-01-01", pid="m"), _cond("M33.10", "2020-01-01", pid="m",
                                                                          system="http://hl7.org/fhir/sid/icd-10-cm"),
        _patient("n"), _obs("29463-7", 70, "kg", "2024-01-01T00:00:00Z", pid="n"),
    ]
    res = from_fhir(_bundle(tmp_path, res_list), as_of=dt.date(2024, 6, 1), disease="AAV")
    got = res.frame.set_index("patient_id")["disease"].to_dict()
    assert got == {"s": "SSc", "m": "IIM", "n": "AAV"}
    assert any("several candidate indications" in x and "m (IIM, SSc; IIM most recent)" in x for x in res.notes)
    assert any("other than AAV" in w and "s" in w for w in res.warnings)
    rep = res.report.set_index(["patient_id", "kind"])
    assert rep.loc[("m", "several_indications"), "detail"] == "IIM, SSc; IIM (most recent) used"
    assert rep.loc[("s", "disease_differs"), "field"] == "disease"


def test_medications_by_reference_route_and_period(tmp_path):
    med = {"resourceType": "Medication", "id": "med1",
           "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2193"}]}}
    iv = {"resourceType": "MedicationAdministration", "status": "completed", "subject": {"reference": "Patient/p1"},
          "medicationReference": {"reference": "urn:uuid:med1"},
          "effectivePeriod": {"start": "2024-05-20T08:00:00Z", "end": "2024-05-22T08:00:00Z"},
          "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}}}
    pred = {"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "8640"}]},
            "effectivePeriod": {"start": "2023-06-01"}}
    mtx = {"resourceType": "MedicationRequest", "status": "completed", "subject": {"reference": "Patient/p1"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                     "code": "6851"}]},
           "authoredOn": "2022-01-01", "dispenseRequest": {"validityPeriod": {"start": "2022-01-01",
                                                                              "end": "2022-12-31"}}}
    bad = {**mtx, "status": "entered-in-error", "medicationCodeableConcept": {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "3002"}]}}
    res = from_fhir(_bundle(tmp_path, [_patient(), med, iv, pred, mtx, bad]), as_of=dt.date(2024, 6, 1))
    row = res.frame.iloc[0]
    assert row["days_since_iv_antibiotics"] == 10 and row["days_since_oral_antibiotics"] is None
    assert row["prior_glucocorticoid"] == "yes" and row["prior_cyclophosphamide"] == "no"
    assert row["prior_immunomodulators"] == "methotrexate"
    # 2022 (365 days) + 2023-06-01..2024-06-01 (367 days), ongoing prednisone clipped at the as-of date
    assert row["conventional_therapy_months"] == round((365 + 367) / 30.4375, 1)


def test_as_of_defaults_to_today_and_warns_when_far_from_the_data(tmp_path):
    path = _bundle(tmp_path, [_patient(), _obs("29463-7", 70, "kg", "2010-01-01T00:00:00Z")])
    res = from_fhir(path)
    assert res.as_of == dt.date.today() and res.last_date == dt.date(2010, 1, 1)
    assert res.frame["screening_date"].iloc[0] == dt.date.today().isoformat()
    assert any("days from the data's last record (2010-01-01)" in w for w in res.warnings)
    near = from_fhir(path, as_of=dt.date(2010, 3, 1))
    assert near.warnings == [] and near.frame["weight_kg"].iloc[0] == 70.0
    assert near.frame["age_years"].iloc[0] == 29


def test_no_data_unborn_and_orphan_records_are_listed(tmp_path):
    res = from_fhir(_bundle(tmp_path, [
        _patient("ok"), _obs("29463-7", 70, "kg", "2024-01-01T00:00:00Z", pid="ok"),
        _patient("empty"), _patient("later", birth="2030-01-01"),
        _patient("gone", deceasedBoolean=True), _obs("29463-7", 70, "kg", "2024-01-01T00:00:00Z", pid="ghost"),
    ]), as_of=dt.date(2024, 6, 1))
    assert res.frame["patient_id"].tolist() == ["ok"]
    assert res.left_out.set_index("patient_id")["reason"].to_dict() == {
        "empty": "no data (no coded record)", "later": "born after the as-of date",
        "gone": "deceased on or before the as-of date"}
    assert any("refer to 1 patient id(s) with no Patient record; ignored: ghost" in n for n in res.notes)


def test_unreadable_input_is_one_line(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(FhirError, match="not readable JSON"):
        from_fhir(bad)
    nd = tmp_path / "Observation.ndjson"
    nd.write_text('{"resourceType": "Observation"}\nnot json\n', encoding="utf-8")
    with pytest.raises(FhirError, match="line 2 is not a JSON resource"):
        from_fhir(nd)


def test_cli_writes_cohort_provenance_and_left_out(tmp_path, capsys):
    out = tmp_path / "ehr.csv"
    assert main(["import-fhir", str(FHIR_DIR), "-o", str(out), "--as-of", AS_OF.isoformat()]) == 0
    err = capsys.readouterr().err
    assert err.count("left out: ") == 9 and "imported 11 patient(s), 9 left out" in err
    cohort = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert len(cohort) == 11 and "severe_heart_disease" in cohort.columns
    prov = pd.read_csv(tmp_path / "ehr.provenance.csv", dtype=str, encoding="utf-8-sig")
    assert {"patient_id", "field", "value", "source_table", "concept_code", "original_unit"} <= set(prov.columns)
    left = pd.read_csv(tmp_path / "ehr.left-out.csv", dtype=str, encoding="utf-8-sig")
    assert len(left) == 9
    assert (tmp_path / "ehr.report.csv").is_file()
    assert main(["import-fhir", str(FHIR_DIR), "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["import-fhir", str(FHIR_DIR), "-o", str(out), "--disease", "lupus"]) == 2
    assert main(["import-fhir", str(tmp_path / "missing"), "-o", str(out)]) == 2


def test_procedures_dialysis_window_and_transplant(tmp_path):
    def proc(pid, code, when, status="completed"):
        return {"resourceType": "Procedure", "status": status, "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
                "performedPeriod": {"start": when, "end": when}}

    res = from_fhir(_bundle(tmp_path, [
        _patient("recent"), proc("recent", "302497006", "2024-04-15T08:00:00Z"),
        _patient("old"), proc("old", "302497006", "2023-10-01T08:00:00Z"),
        _patient("tx"), proc("tx", "70536003", "2001-01-01T08:00:00Z"),
        _patient("nd"), proc("nd", "302497006", "2024-05-01T08:00:00Z", status="not-done"),
        _obs("29463-7", 70, "kg", "2024-01-01T00:00:00Z", pid="nd"),
    ]), as_of=dt.date(2024, 6, 1))
    got = res.frame.set_index("patient_id")
    # within 0.25 years of the as-of date (catalog look-back) only
    assert got["dialysis_or_plasmapheresis"].to_dict() == {"recent": "yes", "old": "no", "tx": "no", "nd": "no"}
    assert got["kidney_transplant"].to_dict() == {"recent": "no", "old": "no", "tx": "yes", "nd": "no"}
    p = res.provenance.set_index(["patient_id", "field"])
    assert p.loc[("tx", "kidney_transplant"), "source_table"] == "Procedure"
    assert p.loc[("tx", "kidney_transplant"), "date"] == "2001-01-01"
