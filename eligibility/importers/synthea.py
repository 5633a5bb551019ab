"""Synthea CSV export -> contract cohort, through the same mapping catalog as FHIR and OMOP.

Files read (Synthea v3 CSV; codes carry no system column, so each file's vocabulary is
fixed by Synthea's exporter):

================  ==========================================  ======================
file              columns                                     records
================  ==========================================  ======================
patients.csv      Id, BIRTHDATE, DEATHDATE, GENDER            patients
observations.csv  DATE, PATIENT, CODE, VALUE, UNITS           LOINC measurements
conditions.csv    START, STOP, PATIENT, CODE                  SNOMED CT conditions
medications.csv   START, STOP, PATIENT, CODE                  RxNorm drug exposures
immunizations.csv DATE, PATIENT, CODE                         CVX (drug records)
procedures.csv    START, STOP, PATIENT, CODE                  SNOMED CT procedures
================  ==========================================  ======================

Only patients.csv is required; a missing optional file is reported. A condition or
medication with a STOP date has ended then; without one it is ongoing. Synthea CSV
has no route column: antibiotics count for both route rules (reported).

``import-synthea`` also takes FHIR bundles (kept for the existing command line); they
go through :mod:`eligibility.importers.fhir`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pandas as pd

from .events import EVENT_COLUMNS, ImportResult, apply_mapping
from .fhir import FhirError, from_fhir, run


class SyntheaError(ValueError):
    """Unreadable Synthea input; str(e) is a one-line message."""


# file -> (table, vocabulary, start column, end column or None, value columns?)
_FILES = {
    "observations.csv": ("measurement", "LOINC", "DATE", None),
    "conditions.csv": ("condition", "SNOMED", "START", "STOP"),
    "medications.csv": ("drug", "RxNorm", "START", "STOP"),
    "immunizations.csv": ("drug", "CVX", "DATE", "DATE"),
    "procedures.csv": ("procedure", "SNOMED", "START", "STOP"),
}
_SOURCE_TABLE = {"observations.csv": "observations", "conditions.csv": "conditions",
                 "medications.csv": "medications", "immunizations.csv": "immunizations",
                 "procedures.csv": "procedures"}


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SyntheaError(f"{path.name}: not a readable CSV file ({first})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SyntheaError(f"{path.name}: missing column(s) {', '.join(missing)}")
    return df


def _utc(text: pd.Series) -> pd.Series:
    s = text.astype(str).str.strip()
    return pd.to_datetime(s.where(s != ""), utc=True, format="ISO8601", errors="coerce")


def read_synthea_csv(directory) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    d = Path(directory)
    if not (d / "patients.csv").is_file():
        raise SyntheaError(f"patients.csv not found in {d}")
    pats = _read_csv(d / "patients.csv", ("Id", "BIRTHDATE", "GENDER"))
    death = pats["DEATHDATE"] if "DEATHDATE" in pats.columns else pd.Series([""] * len(pats))
    patients = pd.DataFrame({
        "patient_id": pats["Id"].str.strip(),
        "birth": [None if pd.isna(t) else t.date() for t in _utc(pats["BIRTHDATE"])],
        "death": [None if pd.isna(t) else t.date() for t in _utc(death)],
        "dead_undated": False,
        "gender": pats["GENDER"].str.strip(),
    })
    notes = [f"Synthea CSV: {len(pats)} patient row(s)"]
    frames = []
    for name, (table, vocab, start_col, end_col) in _FILES.items():
        path = d / name
        if not path.is_file():
            notes.append(f"{name} not found: no {table} records")
            continue
        need = ("PATIENT", "CODE", start_col) + ((end_col,) if end_col else ())
        if table == "measurement":
            need += ("VALUE", "UNITS")
        df = _read_csv(path, need)
        n = len(df)
        value = np.full(n, np.nan)
        unit = pd.Series([None] * n, dtype=object)
        why = np.full(n, "", dtype=object)
        original = pd.Series([None] * n, dtype=object)
        if table == "measurement":
            original = df["VALUE"].str.strip()
            value = pd.to_numeric(original, errors="coerce").to_numpy(np.float64)
            why = np.where(np.isnan(value), "no number", "")
            unit = df["UNITS"].str.strip()
        start = _utc(df[start_col])
        end = _utc(df[end_col]) if end_col else pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
        frames.append(pd.DataFrame({
            "patient_id": df["PATIENT"].str.strip(), "table": table, "vocabulary": vocab,
            "code": df["CODE"].str.strip(), "start": start, "end": end,
            "resolved": end.notna().to_numpy(), "value": value, "unit": unit.to_numpy(),
            "original": original.to_numpy(), "why": why, "route": None, "source_table": _SOURCE_TABLE[name],
        }))
        notes.append(f"{name}: {n} row(s)")
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(EVENT_COLUMNS))
    return patients, events[list(EVENT_COLUMNS)], notes


def from_synthea_csv(directory, *, as_of: _dt.date | None = None, disease: str | None = None) -> ImportResult:
    patients, events, notes = read_synthea_csv(directory)
    res = apply_mapping(patients, events, as_of=as_of, disease=disease, source="Synthea CSV")
    res.notes[:0] = notes
    return res


def import_source(source, *, as_of: _dt.date | None = None, disease: str | None = None) -> ImportResult:
    """A Synthea CSV directory (has patients.csv), or FHIR bundles / NDJSON."""
    items = source if isinstance(source, list) else [source]
    if len(items) == 1:
        p = Path(items[0])
        if p.is_dir() and (p / "patients.csv").is_file():
            return from_synthea_csv(p, as_of=as_of, disease=disease)
        if p.is_file() and p.name in ("patients.csv", "observations.csv"):
            return from_synthea_csv(p.parent, as_of=as_of, disease=disease)
        if not p.exists():
            raise SyntheaError(f"{p}: no such file or directory")
    try:
        return from_fhir(items if len(items) > 1 else items[0], as_of=as_of, disease=disease)
    except FhirError as e:
        raise SyntheaError(f"{e} (give a Synthea CSV directory, FHIR bundles or NDJSON)") from None


def main(argv: list[str] | None = None) -> int:
    return run(argv, "python -m eligibility import-synthea", import_source,
               "a Synthea export (CSV directory, or FHIR R4 bundles / NDJSON)")


__all__ = ["SyntheaError", "from_synthea_csv", "import_source", "main"]
