"""Synthea CSV export through the mapping catalog (the same one FHIR and OMOP use).

The data sit read-only in <repo>/../shared/external (documented in its README.md);
expectations are computed here independently from the raw CSV files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from eligibility.cli import main
from eligibility.importers import SyntheaError, from_synthea_csv
from eligibility.importers.synthea import import_source
from eligibility.loader import validate_frame
from eligibility.screen import screen_frame

# ../shared/external beside the clone (a worktree sits one level deeper: look upwards)
EXTERNAL = next((p / "shared" / "external" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "external").is_dir()), Path("../shared/external"))
CSV_DIR = EXTERNAL / "synthea-csv"
FHIR_DIR = EXTERNAL / "synthea-fhir-r4"

pytestmark = pytest.mark.skipif(not CSV_DIR.is_dir(), reason=f"external Synthea data not found at {EXTERNAL}")


@pytest.fixture(scope="module")
def csv_raw():
    return {name: pd.read_csv(CSV_DIR / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in ("patients", "observations", "conditions", "medications")}


def _lab_as_of(obs: pd.DataFrame, code: str) -> tuple[str, dt.date]:
    row = obs[obs["CODE"] == code].sort_values("DATE").iloc[-1]
    return row["PATIENT"], dt.date.fromisoformat(row["DATE"][:10])


def test_every_patient_is_imported_or_listed(csv_raw):
    res = from_synthea_csv(CSV_DIR, as_of=dt.date(2024, 6, 1))
    pats = csv_raw["patients"]
    dead = set(pats.loc[pats["DEATHDATE"] != "", "Id"])
    assert len(pats) == 27 and len(dead) == 2
    assert set(res.left_out["patient_id"]) == dead
    assert set(res.frame["patient_id"]) | dead == set(pats["Id"])
    assert all(r.startswith("deceased on or before the as-of date") for r in res.left_out["reason"])


def test_labs_convert_through_the_catalog(csv_raw):
    obs = csv_raw["observations"]
    pid, day = _lab_as_of(obs, "718-7")
    res = from_synthea_csv(CSV_DIR, as_of=day)
    rows = obs[(obs["PATIENT"] == pid) & (obs["CODE"] == "718-7")].sort_values("DATE")
    hb = rows.iloc[-1]
    assert hb["UNITS"] == "g/dL"
    got = res.frame.set_index("patient_id").loc[pid]
    assert got["hemoglobin_g_l"] == pytest.approx(float(hb["VALUE"]) * 10)
    prov = res.provenance.set_index(["patient_id", "field"]).loc[(pid, "hemoglobin_g_l")]
    assert prov["original_value"] == hb["VALUE"] and prov["original_unit"] == "g/dL"
    assert prov["source_table"] == "observations" and prov["concept_code"] == "718-7"
    pid2, day2 = _lab_as_of(obs, "1975-2")
    res2 = from_synthea_csv(CSV_DIR, as_of=day2)
    bili = obs[(obs["PATIENT"] == pid2) & (obs["CODE"] == "1975-2")].sort_values("DATE").iloc[-1]
    assert res2.frame.set_index("patient_id").loc[pid2, "tbil_umol_l"] == pytest.approx(float(bili["VALUE"]) * 17.1)


def test_conditions_and_medications_fill_their_fields(csv_raw):
    as_of = dt.date(2024, 6, 1)
    res = from_synthea_csv(CSV_DIR, as_of=as_of)
    got = res.frame.set_index("patient_id")
    cond = csv_raw["conditions"]
    mi = set(cond.loc[cond["CODE"].isin(["22298006", "399211009"]), "PATIENT"])
    assert mi and {p for p in got.index if got.loc[p, "severe_heart_disease"] == "yes"} == mi & set(got.index)
    meds = csv_raw["medications"]
    amox = meds[meds["CODE"] == "562251"].iloc[0]
    end = dt.date.fromisoformat((amox["STOP"] or amox["START"])[:10])
    assert got.loc[amox["PATIENT"], "days_since_oral_antibiotics"] == (as_of - end).days
    assert got.loc[amox["PATIENT"], "prior_immunomodulators"] == "none"
    assert any("without a recorded route counted" in n for n in res.notes)


def test_as_of_is_explicit_and_changes_nothing_when_one_file_is_read_alone(tmp_path):
    """The old importer took the folder's last observation as the date: reading a subset
    changed ages. Now the date is given (or today), never taken from the data."""
    full = from_synthea_csv(CSV_DIR, as_of=dt.date(2024, 6, 1))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "patients.csv").write_bytes((CSV_DIR / "patients.csv").read_bytes())
    part = from_synthea_csv(sub, as_of=dt.date(2024, 6, 1))
    assert set(part.frame["patient_id"]) == set()  # no records: every patient listed, none imported
    assert (part.left_out["reason"] != "").all() and len(part.left_out) == 27
    assert full.frame["age_years"].notna().all()
    today = from_synthea_csv(CSV_DIR)
    assert today.as_of == dt.date.today()
    assert today.warnings == [] or any("days from the data's last record" in w for w in today.warnings)


def test_screen_of_an_import_is_never_plain_eligible_with_criteria_not_assessed():
    res = from_synthea_csv(CSV_DIR, as_of=dt.date(2024, 6, 1), disease="SSc")
    out = screen_frame(validate_frame(res.frame))
    k, n = zip(*(map(int, a.split("/")) for a in out["assessed"]), strict=True)
    assert all(a < b for a, b in zip(k, n, strict=True))  # scores etc. are never in an EHR
    assert "eligible" not in set(out["status"])  # no lab within 90 days: pending at best


def test_import_synthea_command_reads_csv_and_fhir(tmp_path, capsys):
    out = tmp_path / "c.csv"
    assert main(["import-synthea", str(CSV_DIR), "-o", str(out), "--as-of", "2024-06-01"]) == 0
    assert "imported 25 patient(s), 2 left out" in capsys.readouterr().err
    assert (tmp_path / "c.provenance.csv").is_file() and (tmp_path / "c.left-out.csv").is_file()
    if FHIR_DIR.is_dir():
        assert main(["import-synthea", str(FHIR_DIR), "-o", str(out), "--as-of", "2021-03-19"]) == 0
        assert "imported 11 patient(s), 9 left out" in capsys.readouterr().err
    with pytest.raises(SyntheaError, match="no such file"):
        import_source(tmp_path / "nope")
    assert main(["import-synthea", str(tmp_path / "nope"), "-o", str(out)]) == 2
