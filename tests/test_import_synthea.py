"""Synthea importer: externally produced EHR data -> contract cohort -> loader -> screen.

The data sit read-only in <repo>/../shared/external (documented in its README.md);
expectations are computed here independently from the raw JSON / CSV files.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eligibility.importers import SyntheaError, from_fhir_bundles, from_synthea_csv
from eligibility.importers.synthea import LAB_COLUMNS, OUTPUT_COLUMNS
from eligibility.importers.synthea import main as import_main
from eligibility.loader import load_cohort, validate_frame
from eligibility.screen import screen_frame

EXTERNAL = Path(__file__).resolve().parents[1].parent / "shared" / "external"
FHIR_DIR = EXTERNAL / "synthea-fhir-r4"
CSV_DIR = EXTERNAL / "synthea-csv"

LOINC = "http://loinc.org"
CODE_COLUMN = {
    "718-7": "hemoglobin_g_l", "6690-2": "wbc_10e9_l", "1742-6": "alt_u_l",
    "1920-8": "ast_u_l", "1975-2": "tbil_umol_l", "33914-3": "egfr_ml_min_1_73m2",
}
ZWSP = "\u200b"

pytestmark = pytest.mark.skipif(
    not (FHIR_DIR.is_dir() and CSV_DIR.is_dir()),
    reason=f"external Synthea data not found at {EXTERNAL} (shared/ must sit beside the clone)",
)


# ---------------------------------------------------------------------------
# Raw data, read independently of the importer
# ---------------------------------------------------------------------------


def _lab_code(obs: dict) -> str | None:
    for c in obs["code"]["coding"]:
        if c.get("system") == LOINC and c.get("code") in CODE_COLUMN:
            return c["code"]
    return None


@pytest.fixture(scope="module")
def fhir_raw() -> dict:
    """file name -> {"patient": Patient, "labs": [(code, time, value, unit, display)]}."""
    out = {}
    for path in sorted(FHIR_DIR.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        labs = []
        for r in resources:
            if r["resourceType"] != "Observation" or _lab_code(r) is None:
                continue
            assert r["subject"]["reference"] == f"urn:uuid:{patient['id']}"
            q = r["valueQuantity"]
            labs.append((_lab_code(r), dt.datetime.fromisoformat(r["effectiveDateTime"]),
                         q["value"], q["unit"], r["code"]["coding"][0].get("display", "")))
        out[path.name] = {"patient": patient, "labs": labs}
    return out


@pytest.fixture(scope="module")
def csv_raw() -> tuple[list[dict], list[dict]]:
    with (CSV_DIR / "patients.csv").open(encoding="utf-8", newline="") as fh:
        patients = list(csv.DictReader(fh))
    with (CSV_DIR / "observations.csv").open(encoding="utf-8", newline="") as fh:
        obs = [r for r in csv.DictReader(fh) if r["CODE"] in CODE_COLUMN]
    return patients, obs


@pytest.fixture(scope="module")
def fhir():
    return from_fhir_bundles(FHIR_DIR)


@pytest.fixture(scope="module")
def synthea_csv():
    return from_synthea_csv(CSV_DIR)


def _row(frame: pd.DataFrame, pid: str) -> pd.Series:
    rows = frame[frame["patient_id"] == pid]
    assert len(rows) == 1
    return rows.iloc[0]


# ---------------------------------------------------------------------------
# Patient counts: everyone once, minus the documented deceased
# ---------------------------------------------------------------------------


def test_fhir_patient_counts_match_readme(fhir, fhir_raw):
    frame, notes = fhir
    patients = [v["patient"] for v in fhir_raw.values()]
    assert len(patients) == 20
    assert sorted(p["gender"] for p in patients) == ["female"] * 10 + ["male"] * 10
    dead = {p["id"] for p in patients if p.get("deceasedDateTime")}
    assert len(dead) == 9
    alive = [p["id"] for p in patients if p["id"] not in dead]
    # every input patient exactly once, minus the deceased (all died before the default as_of)
    assert frame["patient_id"].tolist() == alive
    assert frame["patient_id"].is_unique and len(frame) == 11
    assert "9 deceased patient(s) (death at or before as_of) left out" in notes
    assert "11 of 20 patient(s) imported as candidates" in notes
    assert list(frame.columns) == list(OUTPUT_COLUMNS)


def test_csv_patient_counts_match_readme(synthea_csv, csv_raw):
    frame, notes = synthea_csv
    patients, _obs = csv_raw
    assert len(patients) == 27
    assert sorted(p["GENDER"] for p in patients) == ["F"] * 13 + ["M"] * 14
    dead = {p["Id"] for p in patients if p["DEATHDATE"]}
    assert len(dead) == 2
    assert frame["patient_id"].tolist() == [p["Id"] for p in patients if p["Id"] not in dead]
    assert frame["patient_id"].is_unique and len(frame) == 25
    assert "2 deceased patient(s) (death at or before as_of) left out" in notes


def test_demographics_and_as_of(fhir, fhir_raw, synthea_csv, csv_raw):
    frame, notes = fhir
    latest = max(t for v in fhir_raw.values() for _c, t, *_ in v["labs"]).date()
    # the default as_of is the latest observation date of any code; labs happen to hold it here
    assert (frame["screening_date"] == latest.isoformat()).all()
    assert f"as_of {latest.isoformat()}: the latest observation date in the data (UTC)" in notes
    for v in fhir_raw.values():
        p = v["patient"]
        if p.get("deceasedDateTime"):
            continue
        row = _row(frame, p["id"])
        born = dt.date.fromisoformat(p["birthDate"])
        age = latest.year - born.year - ((latest.month, latest.day) < (born.month, born.day))
        assert row["age_years"] == age
        assert row["sex"] == {"female": "F", "male": "M"}[p["gender"]]
        assert pd.isna(row["disease"])
    cframe, _ = synthea_csv
    for p in csv_raw[0]:
        if not p["DEATHDATE"]:
            assert _row(cframe, p["Id"])["sex"] == p["GENDER"]


def test_earlier_as_of_keeps_patients_alive_then(fhir_raw):
    as_of = dt.date(2000, 1, 1)
    frame, notes = from_fhir_bundles(FHIR_DIR, as_of=as_of)
    patients = [v["patient"] for v in fhir_raw.values()]
    dead = {p["id"] for p in patients
            if p.get("deceasedDateTime") and p["deceasedDateTime"][:10] <= "2000-01-01"}
    assert len(dead) == 2
    assert set(frame["patient_id"]) == {p["id"] for p in patients} - dead
    assert "as_of 2000-01-01: given" in notes
    assert any(n.endswith("lab observation(s) after as_of ignored") for n in notes)
    # a lab value must come from on or before as_of
    for v in fhir_raw.values():
        pid = v["patient"]["id"]
        if pid in dead:
            continue
        hb = [(t, val) for c, t, val, *_ in v["labs"] if c == "718-7" and t.date() <= as_of]
        got = _row(frame, pid)["hemoglobin_g_l"]
        if hb:
            assert got == pytest.approx(max(hb)[1] * 10)
        else:
            assert np.isnan(got)


# ---------------------------------------------------------------------------
# Conversions, display strings, same-time duplicates
# ---------------------------------------------------------------------------


def test_fhir_hemoglobin_g_dl_times_ten(fhir, fhir_raw):
    frame, _ = fhir
    raw = fhir_raw["Tom_Goodwin_e20de9eb-6f2d-4871-a43f-bbede53293ed.json"]
    hb = [(t, val, unit) for code, t, val, unit, _d in raw["labs"] if code == "718-7"]
    t, val, unit = max(hb)
    assert unit == "g/dL"
    assert _row(frame, raw["patient"]["id"])["hemoglobin_g_l"] == pytest.approx(val * 10, abs=1e-6)


def test_csv_conversions(synthea_csv, csv_raw):
    frame, _ = synthea_csv
    _p, obs = csv_raw
    hb = next(r for r in obs if r["CODE"] == "718-7" and r["PATIENT"].startswith("38ddd8f0"))
    assert hb["UNITS"] == "g/dL"
    row = _row(frame, hb["PATIENT"])
    assert row["hemoglobin_g_l"] == pytest.approx(float(hb["VALUE"]) * 10)
    bili = next(r for r in obs if r["CODE"] == "1975-2" and r["PATIENT"].startswith("319af005"))
    assert bili["UNITS"] == "mg/dL"
    assert _row(frame, bili["PATIENT"])["tbil_umol_l"] == pytest.approx(float(bili["VALUE"]) * 17.1)


def _expected_latest(labs, code):
    """Latest observation of a code; at equal times the mL/min/{1.73_m2} unit wins."""
    rows = [(t, unit == "mL/min/{1.73_m2}", val, unit) for c, t, val, unit, _d in labs if c == code]
    if not rows:
        return None
    t, _pref, val, unit = max(rows, key=lambda r: (r[0], r[1]))
    return val * {"g/dL": 10, "mg/dL": 17.1}.get(unit, 1)


def test_fhir_every_lab_cell_matches_an_independent_reading(fhir, fhir_raw):
    frame, _ = fhir
    zw_used = 0
    for v in fhir_raw.values():
        if v["patient"].get("deceasedDateTime"):
            continue
        row = _row(frame, v["patient"]["id"])
        for code, col in CODE_COLUMN.items():
            assert row[col] == pytest.approx(_expected_latest(v["labs"], code), abs=1e-6), (code, col)
            latest_t = max(t for c, t, *_ in v["labs"] if c == code)
            zw_used += any(ZWSP in d for c, t, _v, _u, d in v["labs"] if c == code and t == latest_t)
    # some chosen observations carry a zero-width space in their display text: matched by code
    assert zw_used > 0


def test_zero_width_display_and_foreign_system_do_not_matter(tmp_path):
    def obs(system, code, display, value, when="2020-01-01T10:00:00+00:00"):
        return {"resource": {
            "resourceType": "Observation", "status": "final",
            "subject": {"reference": "urn:uuid:p1"}, "effectiveDateTime": when,
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                              "code": "g/dL"},
        }}

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-01-01"}},
        obs(LOINC, "718-7", f"Hemoglobin [Mass/{ZWSP}volume] in Blood", 12.5),
        # later, same code, but not LOINC: must be ignored
        obs("http://example.org/local", "718-7", "Hemoglobin [Mass/volume] in Blood", 9.0,
            when="2020-02-01T10:00:00+00:00"),
        # display says hemoglobin, code is something else: must be ignored
        obs(LOINC, "4548-4", "Hemoglobin [Mass/volume] in Blood", 8.0, when="2020-03-01T10:00:00+00:00"),
    ]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    frame, _ = from_fhir_bundles(path, as_of=dt.date(2020, 6, 1))
    assert frame["hemoglobin_g_l"].tolist() == [pytest.approx(125.0)]


def test_same_time_duplicate_egfr_takes_the_1_73_m2_value(fhir, fhir_raw):
    frame, notes = fhir
    raw = fhir_raw["Angelic_Mueller_29d755a6-32fa-482e-8fdd-081300209df8.json"]
    egfr = [(t, val, unit) for code, t, val, unit, _d in raw["labs"] if code == "33914-3"]
    latest = max(t for t, *_ in egfr)
    at_latest = {unit: val for t, val, unit in egfr if t == latest}
    assert set(at_latest) == {"mL/min", "mL/min/{1.73_m2}"}
    assert at_latest["mL/min"] != at_latest["mL/min/{1.73_m2}"]
    got = _row(frame, raw["patient"]["id"])["egfr_ml_min_1_73m2"]
    assert got == pytest.approx(at_latest["mL/min/{1.73_m2}"])
    assert any(n.startswith("LOINC 33914-3 (eGFR): 1 patient(s) with several observations") for n in notes)


def test_same_time_preference_is_not_file_order(tmp_path):
    def obs(value, unit):
        return {"resource": {
            "resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:p"},
            "effectiveDateTime": "2020-01-01T00:00:00Z",
            "code": {"coding": [{"system": LOINC, "code": "33914-3"}]},
            "valueQuantity": {"value": value, "unit": unit, "code": unit},
        }}

    patient = {"resource": {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1970-05-05"}}
    for entries in ([obs(70, "mL/min"), obs(60, "mL/min/{1.73_m2}")],
                    [obs(60, "mL/min/{1.73_m2}"), obs(70, "mL/min")]):
        path = tmp_path / "b.json"
        path.write_text(json.dumps({"resourceType": "Bundle", "entry": [patient, *entries]}))
        frame, _ = from_fhir_bundles([path])
        assert frame["egfr_ml_min_1_73m2"].tolist() == [60.0]


def test_unknown_unit_is_left_out_and_reported(tmp_path):
    bundle = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1970-01-01"}},
        {"resource": {
            "resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:p"},
            "effectiveDateTime": "2020-01-01T00:00:00Z",
            "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
            "valueQuantity": {"value": 7.9, "unit": "mmol/L", "code": "mmol/L"},
        }},
    ]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    frame, notes = from_fhir_bundles(path)
    assert np.isnan(frame.loc[0, "hemoglobin_g_l"])
    msg = [n for n in notes if "unknown unit" in n]
    assert msg == ["LOINC 718-7 (hemoglobin): 1 latest observation(s) in unknown unit(s) 'mmol/L' "
                   "not converted; cell left empty"]


def test_notes_hold_no_patient_values(fhir, synthea_csv):
    for frame, notes in (fhir, synthea_csv):
        text = "\n".join(notes)
        for pid in frame["patient_id"]:
            assert pid not in text
        # apart from LOINC codes, dates, unit strings and the factors, only whole counts
        rest = re.sub(r"LOINC \S+|\d{4}-\d\d-\d\d|1\.73|x 17\.1|10\*[39]", " ", text)
        assert re.findall(r"\d+\.\d+", rest) == []


def test_csv_without_complete_patients_gives_empty_cells_not_zeros(synthea_csv, csv_raw, tmp_path):
    frame, notes = synthea_csv
    labs = frame[list(LAB_COLUMNS)]
    assert not labs.notna().all(axis=1).any()  # no patient has all six
    assert (labs.fillna(-1) != 0).all().all()  # empty means NaN, never 0
    with_hb = set(frame.loc[frame["hemoglobin_g_l"].notna(), "patient_id"])
    with_egfr = set(frame.loc[frame["egfr_ml_min_1_73m2"].notna(), "patient_id"])
    raw_obs = csv_raw[1]
    assert with_hb == {r["PATIENT"] for r in raw_obs if r["CODE"] == "718-7"} and len(with_hb) == 5
    assert with_egfr == {r["PATIENT"] for r in raw_obs if r["CODE"] == "33914-3"} and len(with_egfr) == 3
    assert not with_hb & with_egfr
    assert "hemoglobin_g_l: empty for 20 candidate(s) (no usable observation)" in notes
    # through a CSV file and the loader: empty cells stay missing
    out = tmp_path / "c.csv"
    assert import_main([str(CSV_DIR), "-o", str(out)]) == 0
    text = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (text[list(LAB_COLUMNS)] == "").sum().tolist() == [20, 20, 22, 22, 22, 22]
    c = load_cohort(out)
    assert c.frame["hemoglobin_g_l"].isna().sum() == 20


# ---------------------------------------------------------------------------
# Loader and screen
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["fhir", "synthea_csv"])
def test_converted_frame_validates_clean(which, request):
    frame, _ = request.getfixturevalue(which)
    c = validate_frame(frame, which)
    assert len(c) == len(frame)
    assert [i for i in c.issues if i.kind == "cell_error"] == []
    assert [i for i in c.issues if i.kind == "implausible"] == []
    assert {i.severity for i in c.issues if i.kind != "missing_column"} <= {"info"}
    assert set(LAB_COLUMNS) <= c.present


@pytest.mark.parametrize("which", ["fhir", "synthea_csv"])
def test_unconverted_g_dl_would_be_flagged(which, request, fhir_raw, csv_raw):
    frame, _ = request.getfixturevalue(which)
    # raw g/dL values, read straight from the source files, put into the g/L column
    if which == "fhir":
        raw = {v["patient"]["id"]: max((t, val) for c, t, val, *_ in v["labs"] if c == "718-7")[1]
               for v in fhir_raw.values()}
    else:
        raw = {r["PATIENT"]: float(r["VALUE"]) for r in csv_raw[1] if r["CODE"] == "718-7"}
    bad = frame.copy()
    bad["hemoglobin_g_l"] = bad["patient_id"].map(raw).astype(float)
    n = int(bad["hemoglobin_g_l"].notna().sum())
    assert n == (11 if which == "fhir" else 5)
    c = validate_frame(bad, which)
    flagged = [i for i in c.issues if i.kind == "implausible"]
    assert len(flagged) == n
    assert all(i.column == "hemoglobin_g_l" and i.severity == "warning" for i in flagged)
    assert all("g/dL" in i.problem for i in flagged)


@pytest.mark.parametrize("which", ["fhir", "synthea_csv"])
def test_screen_runs_nobody_eligible_many_not_assessed(which, request):
    frame, _ = request.getfixturevalue(which)
    results = screen_frame(validate_frame(frame, which))
    assert len(results) == len(frame)
    assert set(results["status"]) <= {"pending", "ineligible"}
    assert "pending" in set(results["status"])
    assert results["unknown"].str.split(";").map(lambda u: "DX-1" in u).all()
    not_assessed = results["not_assessed"].iloc[0].split(";")
    assert len(not_assessed) > 30
    for cid in ("INC-7", "EXC-3.hbsag", "EXC-5", "SSC-INC-1", "APS-INC-1"):
        assert cid in not_assessed
    # the imported labs are assessed, not "not assessed"
    assert not any(x.startswith(("INC-2.hb", "INC-3.alt", "EXC-2.kidney")) for x in not_assessed)


# ---------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------


def test_command_writes_csv_and_parquet(tmp_path, capsys, fhir):
    frame, _ = fhir
    out = tmp_path / "cohort.parquet"
    assert import_main([str(FHIR_DIR), "-o", str(out), "--disease", "scleroderma"]) == 0
    err = capsys.readouterr().err
    assert "imported 11 candidate(s)" in err and "note: 9 deceased patient(s)" in err
    back = pd.read_parquet(out)
    assert back["patient_id"].tolist() == frame["patient_id"].tolist()
    assert (back["disease"] == "scleroderma").all()
    c = load_cohort(out)
    results = screen_frame(c)
    assert not results["unknown"].str.contains("DX-1").any()  # disease given: DX-1 decided

    one = tmp_path / "one.csv"
    bundle = FHIR_DIR / "Tom_Goodwin_e20de9eb-6f2d-4871-a43f-bbede53293ed.json"
    assert import_main([str(bundle), "-o", str(one), "--as-of", "2020-06-01"]) == 0
    c = load_cohort(one)
    assert len(c) == 1 and str(c.frame.loc[0, "screening_date"])[:10] == "2020-06-01"


@pytest.mark.parametrize("args, needle", [
    (["--as-of", "2020-13-01"], "is not a date"),
    (["--disease", "lupus"], "not a trial indication"),
    ([], "must end in .csv or .parquet"),
])
def test_command_errors_are_one_line_exit_2(tmp_path, capsys, args, needle):
    out = tmp_path / ("x.xlsx" if not args else "x.csv")
    assert import_main([str(CSV_DIR), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err
    assert not out.exists()


def test_bad_sources(tmp_path, capsys):
    (tmp_path / "x.json").write_text('{"resourceType": "Patient"}')
    with pytest.raises(SyntheaError, match="not a FHIR Bundle"):
        from_fhir_bundles(tmp_path)
    with pytest.raises(SyntheaError, match="patients.csv not found"):
        from_synthea_csv(tmp_path)
    assert import_main([str(tmp_path / "nope"), "-o", str(tmp_path / "o.csv")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_left_out_patients_are_counted(tmp_path):
    def patient(pid, **kw):
        return {"resource": {"resourceType": "Patient", "id": pid, "gender": "female",
                             "birthDate": "1960-02-29", **kw}}

    bundle = {"resourceType": "Bundle", "entry": [
        patient("a"), patient("a", gender="male"), patient("b", birthDate="2030-01-01"),
        patient("c", deceasedBoolean=True), patient("d", deceasedDateTime="2025-01-01T00:00:00Z"),
        patient("e", gender="unknown"),
    ]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(SyntheaError, match="no observation has a readable date"):
        from_fhir_bundles(path)
    frame, notes = from_fhir_bundles(path, as_of=dt.date(2021, 2, 28))
    assert frame["patient_id"].tolist() == ["a", "d", "e"]
    assert frame["age_years"].tolist() == [60, 60, 60]  # 29 Feb birthday not yet reached
    assert frame["sex"].tolist()[:2] == ["F", "F"] and pd.isna(frame["sex"].iloc[2])
    for note in ("1 repeated patient id(s) left out (the first record is used)",
                 "1 deceased patient(s) (death at or before as_of) left out",
                 "1 patient(s) with a death date after as_of kept",
                 "1 patient(s) born after as_of left out",
                 "3 of 5 patient(s) imported as candidates",
                 "1 candidate(s) with gender other than male/female: sex empty"):
        assert note in notes
