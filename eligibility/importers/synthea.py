"""Synthea exports (CSV directory or FHIR R4 bundles) -> a contract cohort frame.

Synthea generates synthetic EHR data; it has no trial indication and none of the
disease-specific facts, so the imported cohort only fills the identity columns
and six common labs. Everything else stays absent (criteria "not assessed").

Output columns (../shared/spec/cohort-fields.md):

=====================  =========================================================
``patient_id``         Synthea ``Id`` (CSV) / ``Patient.id`` (FHIR)
``disease``            the ``disease`` argument, or empty (DX-1 then *unknown*)
``screening_date``     ``as_of`` (ISO date)
``age_years``          completed years from the birth date to ``as_of``
``sex``                ``F`` / ``M`` from ``GENDER`` (F/M) or ``gender`` (female/male)
six lab columns        the latest observation per patient and LOINC code at or
                       before ``as_of`` (UTC date), converted as below
=====================  =========================================================

Lab conversions (explicit; the unit is matched exactly on the UCUM string, the
code on ``system == http://loinc.org`` + ``code`` -- never on display text):

==========  ====================  =====================  ==========================
LOINC       contract column       unit found             conversion
==========  ====================  =====================  ==========================
718-7       hemoglobin_g_l        g/dL  (or g/L)         x 10 (1 g/dL = 10 g/L)
6690-2      wbc_10e9_l            10*3/uL (or 10*9/L)    x 1  (10^3/uL = 10^9/L)
1742-6      alt_u_l               U/L                    x 1
1920-8      ast_u_l               U/L                    x 1
1975-2      tbil_umol_l           mg/dL (or umol/L)      x 17.1 (bilirubin 584.66 g/mol)
33914-3     egfr_ml_min_1_73m2    mL/min/{1.73_m2}       x 1
33914-3     egfr_ml_min_1_73m2    mL/min                 x 1, see below
==========  ====================  =====================  ==========================

eGFR: LOINC 33914-3 *is* "Glomerular filtration rate/1.73 sq M.predicted", i.e.
already normalised to 1.73 m2 body surface by definition of the code; Synthea's
metabolic panel writes it with the abbreviated unit ``mL/min``. Such a value is
therefore taken as mL/min/1.73 m2 (not re-normalised). When two 33914-3
observations share the latest time, the ``mL/min/{1.73_m2}`` one is taken.

Choice rules: per patient and code, the observation with the latest time at or
before ``as_of`` wins; at equal times, the more preferred unit (table order),
then the first in file order. If the winner has an unknown unit or no usable
number (text value, ``<``/``>`` comparator), the cell stays EMPTY -- an older
value is not substituted -- and the count is reported in the notes. Converted
values (factor != 1) are rounded to 6 decimals (float noise only); values taken
as is are not touched.

Patients deceased at or before ``as_of`` (``DEATHDATE`` / ``deceasedDateTime``,
or ``deceasedBoolean: true`` without a date) and patients born after ``as_of``
are left out and counted in the notes. Notes never contain patient values.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LOINC_SYSTEM = "http://loinc.org"
CONTRACT_ORDER = ("patient_id", "disease", "screening_date", "age_years", "sex")


class SyntheaError(ValueError):
    """Unreadable Synthea input; str(e) is a one-line message."""


@dataclass(frozen=True)
class Lab:
    column: str
    name: str
    contract_unit: str
    # accepted unit string -> factor to the contract unit, in order of preference
    units: tuple[tuple[str, float], ...]

    def factor(self, unit: str) -> float | None:
        return dict(self.units).get(unit)

    def rank(self, unit: str) -> int:
        for i, (u, _f) in enumerate(self.units):
            if u == unit:
                return i
        return len(self.units)


LABS: dict[str, Lab] = {
    "718-7": Lab("hemoglobin_g_l", "hemoglobin", "g/L", (("g/dL", 10.0), ("g/L", 1.0))),
    "6690-2": Lab("wbc_10e9_l", "WBC", "10^9/L", (("10*3/uL", 1.0), ("10*9/L", 1.0))),
    "1742-6": Lab("alt_u_l", "ALT", "U/L", (("U/L", 1.0),)),
    "1920-8": Lab("ast_u_l", "AST", "U/L", (("U/L", 1.0),)),
    "1975-2": Lab("tbil_umol_l", "total bilirubin", "umol/L", (("mg/dL", 17.1), ("umol/L", 1.0))),
    "33914-3": Lab(
        "egfr_ml_min_1_73m2", "eGFR", "mL/min/1.73 m2",
        (("mL/min/{1.73_m2}", 1.0), ("mL/min", 1.0)),
    ),
}
LAB_COLUMNS = tuple(lab.column for lab in LABS.values())
OUTPUT_COLUMNS = CONTRACT_ORDER + LAB_COLUMNS

_SEX = {"m": "M", "male": "M", "f": "F", "female": "F"}
_OBS_COLUMNS = ("patient_id", "code", "time", "value", "unit", "why")


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def from_synthea_csv(
    directory: str | os.PathLike,
    *,
    as_of: _dt.date | None = None,
    disease: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read ``patients.csv`` + ``observations.csv`` of a Synthea CSV export."""
    d = Path(directory)
    pats = _read_csv(d / "patients.csv", ("Id", "BIRTHDATE", "GENDER"))
    obs = _read_csv(d / "observations.csv", ("DATE", "PATIENT", "CODE", "VALUE", "UNITS"))
    notes = [f"Synthea CSV: {len(pats)} patient row(s), {len(obs)} observation row(s)"]

    obs_time = _utc(obs["DATE"])
    latest = obs_time.max()
    lab = obs["CODE"].str.strip().isin(LABS).to_numpy()
    value = pd.to_numeric(obs["VALUE"].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    why = np.where(np.isnan(value), "not a number", "")
    observations = pd.DataFrame({
        "patient_id": obs["PATIENT"].str.strip().to_numpy()[lab],
        "code": obs["CODE"].str.strip().to_numpy()[lab],
        "time": obs_time[lab].reset_index(drop=True),
        "value": value[lab],
        "unit": obs["UNITS"].str.strip().to_numpy()[lab],
        "why": why[lab],
    })
    death = pats["DEATHDATE"] if "DEATHDATE" in pats.columns else pd.Series([""] * len(pats))
    patients = pd.DataFrame({
        "patient_id": pats["Id"].str.strip(),
        "birth": _dates(pats["BIRTHDATE"]),
        "death": _dates(death),
        "dead_undated": False,
        "gender": pats["GENDER"].str.strip(),
    })
    frame, more = _assemble(patients, observations, latest, as_of, disease)
    return frame, notes + more


def from_fhir_bundles(
    paths_or_directory: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    as_of: _dt.date | None = None,
    disease: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read FHIR R4 Bundles (one JSON file each): Patient + Observation resources.

    A directory means every ``*.json`` file in it (sorted by name). Observations are
    joined to patients through ``Observation.subject.reference`` = ``urn:uuid:<Patient.id>``
    (``Patient/<id>`` is accepted too)."""
    files = _bundle_files(paths_or_directory)
    pat_rows: list[dict] = []
    obs_rows: list[tuple] = []
    all_times: list[str] = []
    n_obs = n_status = n_nosubject = 0
    for path in files:
        for res in _bundle_resources(path):
            rtype = res.get("resourceType")
            if rtype == "Patient":
                pat_rows.append({
                    "patient_id": str(res.get("id") or "").strip(),
                    "birth": res.get("birthDate") or "",
                    "death": res.get("deceasedDateTime") or "",
                    "dead_undated": res.get("deceasedBoolean") is True
                    and not res.get("deceasedDateTime"),
                    "gender": str(res.get("gender") or "").strip(),
                })
            elif rtype == "Observation":
                n_obs += 1
                time = _fhir_time(res)
                if time:
                    all_times.append(time)
                code = _loinc_lab_code(res)
                if code is None:
                    continue
                if res.get("status") in ("entered-in-error", "cancelled"):
                    n_status += 1
                    continue
                ref = str((res.get("subject") or {}).get("reference") or "")
                pid = _subject_id(ref)
                if pid is None:
                    n_nosubject += 1
                    continue
                value, unit, why = _fhir_value(res)
                obs_rows.append((pid, code, time, value, unit, why))
    notes = [f"FHIR: {len(files)} bundle file(s), {len(pat_rows)} Patient, {n_obs} Observation resource(s)"]
    if n_status:
        notes.append(f"{n_status} lab Observation(s) with status entered-in-error/cancelled ignored")
    if n_nosubject:
        notes.append(f"{n_nosubject} lab Observation(s) without a urn:uuid:/Patient/ subject ignored")

    patients = pd.DataFrame(
        pat_rows, columns=["patient_id", "birth", "death", "dead_undated", "gender"]
    )
    patients["birth"] = _dates(patients["birth"].astype(str))
    patients["death"] = _dates(patients["death"].astype(str))
    observations = pd.DataFrame(obs_rows, columns=list(_OBS_COLUMNS))
    observations["time"] = _utc(observations["time"].astype(str))
    observations["value"] = observations["value"].astype(np.float64)
    latest = _utc(pd.Series(all_times, dtype=str)).max() if all_times else pd.NaT
    frame, more = _assemble(patients, observations, latest, as_of, disease)
    return frame, notes + more


# ---------------------------------------------------------------------------
# Shared assembly
# ---------------------------------------------------------------------------


def _assemble(
    patients: pd.DataFrame,
    obs: pd.DataFrame,
    latest: pd.Timestamp,
    as_of: _dt.date | None,
    disease: str | None,
) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    if isinstance(as_of, _dt.datetime):
        as_of = as_of.date()
    if as_of is None:
        if pd.isna(latest):
            raise SyntheaError("no observation has a readable date; give --as-of YYYY-MM-DD")
        as_of = latest.date()
        notes.append(f"as_of {as_of.isoformat()}: the latest observation date in the data (UTC)")
    else:
        notes.append(f"as_of {as_of.isoformat()}: given")

    # --- patients ------------------------------------------------------------
    patients = patients.reset_index(drop=True)
    blank_id = patients["patient_id"].isna() | (patients["patient_id"] == "")
    if blank_id.any():
        notes.append(f"{int(blank_id.sum())} patient(s) without an id left out")
        patients = patients[~blank_id]
    dup = patients["patient_id"].duplicated()
    if dup.any():
        notes.append(f"{int(dup.sum())} repeated patient id(s) left out (the first record is used)")
        patients = patients[~dup]
    n_in = len(patients)
    death = [d if isinstance(d, _dt.date) else None for d in patients["death"]]
    birth = [b if isinstance(b, _dt.date) else None for b in patients["birth"]]
    died = patients["dead_undated"].to_numpy(dtype=bool) | np.array(
        [d is not None and d <= as_of for d in death], dtype=bool
    )
    later_death = np.array([d is not None and d > as_of for d in death], dtype=bool)
    unborn = np.array([b is not None and b > as_of for b in birth], dtype=bool) & ~died
    patients = patients.assign(birth=pd.Series(birth, index=patients.index, dtype=object))
    if died.any():
        notes.append(f"{int(died.sum())} deceased patient(s) (death at or before as_of) left out")
    if later_death.any():
        notes.append(f"{int(later_death.sum())} patient(s) with a death date after as_of kept")
    if unborn.any():
        notes.append(f"{int(unborn.sum())} patient(s) born after as_of left out")
    cand = patients[~died & ~unborn].reset_index(drop=True)
    notes.append(f"{len(cand)} of {n_in} patient(s) imported as candidates")

    n_nobirth = sum(b is None for b in cand["birth"])
    if n_nobirth:
        notes.append(f"{n_nobirth} candidate(s) without a readable birth date: age_years empty")
    sex = cand["gender"].fillna("").str.lower().map(_SEX)
    n_nosex = int(sex.isna().sum())
    if n_nosex:
        notes.append(f"{n_nosex} candidate(s) with gender other than male/female: sex empty")

    # --- observations --------------------------------------------------------
    known = obs["patient_id"].isin(patients["patient_id"])
    if (~known).any():
        notes.append(f"{int((~known).sum())} lab observation(s) for patients not in the patient list ignored")
    obs = obs[obs["patient_id"].isin(cand["patient_id"])].copy()
    obs["seq"] = np.arange(len(obs))
    no_time = obs["time"].isna()
    if no_time.any():
        notes.append(f"{int(no_time.sum())} lab observation(s) without a readable time ignored")
    cutoff = pd.Timestamp(as_of + _dt.timedelta(days=1), tz="UTC")
    after = (obs["time"] >= cutoff).fillna(False)
    if after.any():
        notes.append(f"{int(after.sum())} lab observation(s) after as_of ignored")
    obs = obs[~no_time & ~after]
    obs["rank"] = [LABS[c].rank(u) for c, u in zip(obs["code"], obs["unit"], strict=True)]
    obs["unusable"] = obs["why"] != ""
    obs = obs.sort_values(
        ["patient_id", "code", "time", "rank", "unusable", "seq"],
        ascending=[True, True, False, True, True, True],
        kind="stable",
    )
    at_latest = obs.groupby(["patient_id", "code"])["time"].transform("max") == obs["time"]
    ties = obs[at_latest].groupby(["patient_id", "code"]).size()
    chosen = obs.drop_duplicates(["patient_id", "code"], keep="first")

    labs: dict[str, np.ndarray] = {}
    pos = pd.Index(cand["patient_id"])
    for code, lab in LABS.items():
        col = np.full(len(cand), np.nan)
        rows = chosen[chosen["code"] == code]
        n_tie = int((ties.xs(code, level="code") > 1).sum()) if code in ties.index.get_level_values("code") else 0
        if n_tie:
            order = " over ".join(u for u, _f in lab.units)
            notes.append(
                f"LOINC {code} ({lab.name}): {n_tie} patient(s) with several observations at the latest "
                f"time; preferred unit ({order}), then file order, decided"
            )
        unusable = rows["unusable"].to_numpy()
        if unusable.any():
            reasons = ", ".join(sorted(set(rows["why"][unusable])))
            notes.append(
                f"LOINC {code} ({lab.name}): latest observation without a usable number ({reasons}) "
                f"for {int(unusable.sum())} patient(s); cell left empty"
            )
        rows = rows[~unusable]
        factors = np.array([lab.factor(u) or np.nan for u in rows["unit"]], dtype=np.float64)
        unknown = np.isnan(factors)
        if unknown.any():
            units = ", ".join(repr(u) for u in sorted(set(rows["unit"][unknown])))
            notes.append(
                f"LOINC {code} ({lab.name}): {int(unknown.sum())} latest observation(s) in unknown unit(s) "
                f"{units} not converted; cell left empty"
            )
        ok = ~unknown
        vals = rows["value"].to_numpy(dtype=np.float64)[ok] * factors[ok]
        vals = np.where(factors[ok] == 1.0, vals, np.round(vals, 6))
        col[pos.get_indexer(rows["patient_id"][ok])] = vals
        for unit, factor in lab.units:
            n = int((rows["unit"][ok] == unit).sum())
            if n:
                how = "as is" if factor == 1.0 else f"x {factor:g}"
                notes.append(
                    f"LOINC {code} -> {lab.column}: {n} value(s) in {unit}, {how} ({lab.contract_unit})"
                )
        n_empty = int(np.isnan(col).sum())
        if n_empty:
            notes.append(f"{lab.column}: empty for {n_empty} candidate(s) (no usable observation)")
        labs[lab.column] = col

    ages = pd.array(
        [None if b is None else _completed_years(b, as_of) for b in cand["birth"]], dtype="Int64"
    )
    if disease is None or not str(disease).strip():
        disease_col = pd.array([None] * len(cand), dtype="string")
        notes.append("disease left empty (Synthea has no trial indication): DX-1 unknown for everyone")
    else:
        disease_col = pd.array([str(disease).strip()] * len(cand), dtype="string")
    frame = pd.DataFrame({
        "patient_id": pd.array(cand["patient_id"].to_numpy(), dtype="string"),
        "disease": disease_col,
        "screening_date": pd.array([as_of.isoformat()] * len(cand), dtype="string"),
        "age_years": ages,
        "sex": pd.array(sex.to_numpy(), dtype="string"),
        **labs,
    })
    return frame[list(OUTPUT_COLUMNS)], notes


def _completed_years(birth: _dt.date, on: _dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# ---------------------------------------------------------------------------
# Reading helpers
# ---------------------------------------------------------------------------


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise SyntheaError(f"{path.name} not found in {path.parent}")
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
    """ISO-8601 date/time text -> UTC timestamps (naive times are taken as UTC)."""
    s = text.astype(str).str.strip()
    return pd.to_datetime(s.where(s != ""), utc=True, format="ISO8601", errors="coerce")


def _dates(text: pd.Series) -> list[_dt.date | None]:
    ts = _utc(pd.Series(text, dtype=object).fillna("").astype(str))
    return [None if pd.isna(t) else t.date() for t in ts]


def _bundle_files(src) -> list[Path]:
    items = [src] if isinstance(src, str | os.PathLike) else list(src)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                raise SyntheaError(f"{p}: no .json bundle files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise SyntheaError(f"{p}: no such file or directory")
    if not files:
        raise SyntheaError("no FHIR bundle files given")
    return files


def _bundle_resources(path: Path) -> list[dict]:
    try:
        with path.open("rb") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SyntheaError(f"{path.name}: not readable JSON ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise SyntheaError(f"{path.name}: not a FHIR Bundle")
    return [
        e["resource"] for e in doc.get("entry") or []
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def _fhir_time(res: dict) -> str:
    period = res.get("effectivePeriod") or {}
    return str(
        res.get("effectiveDateTime") or res.get("effectiveInstant")
        or period.get("end") or period.get("start") or res.get("issued") or ""
    )


def _loinc_lab_code(res: dict) -> str | None:
    for coding in (res.get("code") or {}).get("coding") or []:
        if not isinstance(coding, dict) or coding.get("system") != LOINC_SYSTEM:
            continue
        code = str(coding.get("code") or "").strip()
        if code in LABS:
            return code
    return None


def _subject_id(ref: str) -> str | None:
    for prefix in ("urn:uuid:", "Patient/"):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return ref[len(prefix):]
    return None


def _fhir_value(res: dict) -> tuple[float, str, str]:
    q = res.get("valueQuantity")
    if not isinstance(q, dict):
        return np.nan, "", "no valueQuantity"
    unit = str(q.get("code") or q.get("unit") or "").strip()
    if q.get("comparator"):
        return np.nan, unit, "comparator"
    v = q.get("value")
    if isinstance(v, bool) or not isinstance(v, int | float):
        return np.nan, unit, "not a number"
    return float(v), unit, ""


# ---------------------------------------------------------------------------
# Command: python -m eligibility import-synthea SOURCE -o OUT
# ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"error: {message}\n")


def _iso_date(text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def import_source(source, *, as_of=None, disease=None) -> tuple[pd.DataFrame, list[str]]:
    """Dispatch on SOURCE: a CSV export directory (has patients.csv) or FHIR bundles."""
    p = Path(source)
    if p.is_dir():
        if (p / "patients.csv").is_file():
            return from_synthea_csv(p, as_of=as_of, disease=disease)
        if any(p.glob("*.json")):
            return from_fhir_bundles(p, as_of=as_of, disease=disease)
        raise SyntheaError(f"{p}: neither a Synthea CSV export (patients.csv) nor FHIR bundles (*.json)")
    if p.is_file():
        if p.name in ("patients.csv", "observations.csv"):
            return from_synthea_csv(p.parent, as_of=as_of, disease=disease)
        if p.suffix.lower() == ".json":
            return from_fhir_bundles(p, as_of=as_of, disease=disease)
        raise SyntheaError(f"{p.name}: give a Synthea CSV directory, a FHIR bundle .json or a directory of them")
    raise SyntheaError(f"{p}: no such file or directory")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(
        prog="python -m eligibility import-synthea",
        description="Turn a Synthea export (CSV directory or FHIR R4 bundles) into a contract cohort file.",
    )
    p.add_argument("source", help="Synthea CSV directory, FHIR bundle .json, or a directory of bundles")
    p.add_argument("-o", "--output", required=True, help="cohort file to write: .csv or .parquet")
    p.add_argument("--as-of", type=_iso_date, help="screening date YYYY-MM-DD (default: latest observation date)")
    p.add_argument("--disease", help="indication to screen everyone for (default: empty, DX-1 unknown)")
    try:
        args = p.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        return _err(f"output {out.name} must end in .csv or .parquet")
    if args.disease is not None:
        import pyarrow as pa

        from eligibility.normalize import parse_disease

        _vals, unrec = parse_disease(pa.array([args.disease], type=pa.string()))
        if unrec.any() or not args.disease.strip():
            return _err(f"--disease {args.disease!r} is not a trial indication (SSc, IIM, AAV, SjS, APS)")
    try:
        frame, notes = import_source(args.source, as_of=args.as_of, disease=args.disease)
    except SyntheaError as e:
        return _err(str(e))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        if out.suffix.lower() == ".csv":
            frame.to_csv(out, index=False, encoding="utf-8")
        else:
            frame.to_parquet(out, index=False)
    except OSError as e:
        return _err(f"cannot write {out.name}: {e.strerror or type(e).__name__}")
    print(f"imported {len(frame)} candidate(s) -> {out}", file=sys.stderr)
    return 0
