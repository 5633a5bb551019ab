"""FHIR R4 -> contract cohort, through the mapping catalog.

Input: Bundles (``transaction``, ``collection``, ``batch``, ``searchset``; one JSON file
each, or a directory of them) or Bulk Data NDJSON (one resource per line, one resource
type per file, a directory of ``*.ndjson``). Resources read:

=========================  ==============================================================
Patient                    id, birthDate, gender, deceasedDateTime / deceasedBoolean
Observation                code (LOINC -> labs, weight); valueQuantity value + UCUM code;
                           effective[x] / issued; status entered-in-error/cancelled skipped.
                           A non-LOINC coded Observation is an ``observation`` record
Condition                  code (SNOMED CT / ICD-10-CM); onset[x] (else recordedDate),
                           abatement[x]; clinicalStatus inactive/resolved/remission ends it
                           (at abatement, else at onset); verificationStatus refuted /
                           entered-in-error skips it
MedicationRequest /        medicationCodeableConcept or medicationReference (contained,
Statement / Administration bundle entry or Medication/id) -> RxNorm / ATC code; period from
                           effective[x] / dosageInstruction timing bounds / dispense
                           validity / authoredOn; status entered-in-error / cancelled /
                           not-taken skipped; an active request with no end is ongoing;
                           route from dosage(Instruction).route
Immunization               vaccineCode (CVX), occurrenceDateTime; status not-done skipped
Procedure                  code (SNOMED CT), performed[x]; status not-done / entered-in-error
                           skipped
=========================  ==============================================================

Subjects: ``urn:uuid:<id>`` (bundle fullUrl), ``Patient/<id>`` or an absolute URL ending in
``Patient/<id>``. Codes are matched on (system, code) only, never on display text.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..cli_support import OneLineParser, fail, parse
from ..mapping import route_of, vocabulary_of
from .events import EVENT_COLUMNS, ImportResult, apply_mapping

CLINICAL = ("Observation", "Condition", "MedicationRequest", "MedicationStatement",
            "MedicationAdministration", "Immunization", "Procedure")
_SKIP_STATUS = {"entered-in-error", "cancelled", "not-done", "not-taken", "stopped-in-error"}
_ENDED = {"inactive", "resolved", "remission"}
_REFUTED = {"refuted", "entered-in-error"}


class FhirError(ValueError):
    """Unreadable FHIR input; str(e) is one line."""


# ---------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------


def _files(src) -> list[Path]:
    items = [src] if isinstance(src, str | os.PathLike) else list(src)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted([*p.glob("*.json"), *p.glob("*.ndjson")])
            if not found:
                raise FhirError(f"{p}: no .json bundles or .ndjson files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FhirError(f"{p}: no such file or directory")
    if not files:
        raise FhirError("no FHIR files given")
    return files


def _resources(path: Path, notes: list[str]) -> Iterator[tuple[dict, dict[str, dict]]]:
    """(resource, bundle fullUrl -> resource) for every resource of one file."""
    if path.suffix.lower() == ".ndjson":
        types: set[str] = set()
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    res = json.loads(line)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise FhirError(f"{path.name}: line {lineno} is not a JSON resource") from None
                if not isinstance(res, dict) or "resourceType" not in res:
                    raise FhirError(f"{path.name}: line {lineno} is not a FHIR resource")
                types.add(res["resourceType"])
                yield res, {}
        if len(types) > 1:
            notes.append(f"{path.name}: holds several resource types ({', '.join(sorted(types))}); "
                         "Bulk Data files hold one each, all were read")
        return
    try:
        with path.open("rb") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FhirError(f"{path.name}: not readable JSON ({type(e).__name__})") from None
    if not isinstance(doc, dict) or "resourceType" not in doc:
        raise FhirError(f"{path.name}: not a FHIR resource")
    if doc["resourceType"] != "Bundle":
        yield doc, {}
        return
    btype = doc.get("type")
    if btype not in ("transaction", "collection", "batch", "searchset", "transaction-response",
                     "batch-response", "document", "message"):
        notes.append(f"{path.name}: Bundle type {btype!r} read as a collection")
    entries = [e for e in doc.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    by_url = {str(e.get("fullUrl")): e["resource"] for e in entries if e.get("fullUrl")}
    for e in entries:
        res = e["resource"]
        if res.get("resourceType") == "Bundle":  # a nested bundle (e.g. a document in a collection)
            for inner in res.get("entry") or []:
                if isinstance(inner, dict) and isinstance(inner.get("resource"), dict):
                    yield inner["resource"], by_url
        else:
            yield res, by_url


# ---------------------------------------------------------------------------------------
# Resource -> records
# ---------------------------------------------------------------------------------------


def _subject(res: dict) -> str | None:
    ref = str(((res.get("subject") or res.get("patient")) or {}).get("reference") or "")
    if ref.startswith("urn:uuid:"):
        return ref[len("urn:uuid:"):] or None
    if "Patient/" in ref:
        tail = ref.rsplit("Patient/", 1)[1].split("/_history")[0]
        return tail or None
    return None


def _codings(concept) -> list[tuple[str, str]]:
    out = []
    for c in (concept or {}).get("coding") or []:
        if isinstance(c, dict) and c.get("system") and c.get("code"):
            out.append((str(c["system"]), str(c["code"]).strip()))
    return out


def _status_code(concept) -> str:
    """clinicalStatus / verificationStatus code (their code systems are fixed by FHIR)."""
    for c in (concept or {}).get("coding") or []:
        if isinstance(c, dict) and c.get("code"):
            return str(c["code"]).strip().lower()
    return ""


def _period(res: dict, prefix: str) -> tuple[str | None, str | None]:
    """start, end of a [x] element: <prefix>DateTime / Period / Instant / Age-less."""
    for suffix in ("DateTime", "Instant", "Date"):
        v = res.get(prefix + suffix)
        if v:
            return str(v), None
    p = res.get(prefix + "Period")
    if isinstance(p, dict):
        return p.get("start") or p.get("end"), p.get("end")
    return None, None


def _route(dosages) -> str | None:
    for d in dosages or []:
        for system, code in _codings((d or {}).get("route")):
            r = route_of(system, code)
            if r:
                return r
    return None


def _med_concept(res: dict, by_url: dict[str, dict], meds: dict[str, dict]) -> dict | None:
    if res.get("medicationCodeableConcept"):
        return res["medicationCodeableConcept"]
    ref = str((res.get("medicationReference") or {}).get("reference") or "")
    if not ref:
        return None
    if ref.startswith("#"):
        for c in res.get("contained") or []:
            if isinstance(c, dict) and c.get("id") == ref[1:]:
                return c.get("code")
        return None
    med = by_url.get(ref)
    if med is None and "Medication/" in ref:
        med = meds.get(ref.rsplit("Medication/", 1)[1])
    return (med or {}).get("code")


def _records(res: dict, by_url: dict[str, dict], meds: dict[str, dict], counts: dict[str, int]) -> list[dict]:
    rtype = res.get("resourceType")
    pid = _subject(res)
    status = str(res.get("status") or "").lower()
    if pid is None:
        counts["no subject"] = counts.get("no subject", 0) + 1
        return []
    if status in _SKIP_STATUS:
        counts[f"{rtype} status {status}"] = counts.get(f"{rtype} status {status}", 0) + 1
        return []
    base = {"patient_id": pid, "source_table": rtype, "resolved": False, "value": np.nan, "unit": None,
            "original": None, "why": "", "route": None, "end": None}
    out: list[dict] = []

    def add(table, concept, start, end=None, **kw):
        for system, code in _codings(concept):
            vocab = vocabulary_of(system)
            if vocab is None:
                continue
            out.append({**base, "table": table, "vocabulary": vocab, "code": code, "start": start,
                        "end": end, **kw})

    if rtype == "Observation":
        start, end = _period(res, "effective")
        start = start or res.get("issued")
        q = res.get("valueQuantity")
        value, unit, why, original = np.nan, None, "", None
        if isinstance(q, dict):
            unit = str(q.get("code") or q.get("unit") or "").strip()
            v = q.get("value")
            original = None if v is None else str(v)
            if q.get("comparator"):
                why = f"comparator {q.get('comparator')}"
            elif isinstance(v, bool) or not isinstance(v, int | float):
                why = "no number"
            else:
                value = float(v)
        else:
            why = "no valueQuantity"
        loinc = any(vocabulary_of(s) == "LOINC" for s, _c in _codings(res.get("code")))
        add("measurement" if loinc else "observation", res.get("code"), start, end,
            value=value, unit=unit, why=why, original=original)
    elif rtype == "Condition":
        if _status_code(res.get("verificationStatus")) in _REFUTED:
            counts["Condition refuted / entered-in-error"] = counts.get("Condition refuted / entered-in-error", 0) + 1
            return []
        start, _ = _period(res, "onset")
        start = start or res.get("recordedDate")
        end, _ = _period(res, "abatement")
        if end is None:
            p = res.get("abatementPeriod")
            end = (p or {}).get("end") if isinstance(p, dict) else None
        ended = _status_code(res.get("clinicalStatus")) in _ENDED or end is not None
        add("condition", res.get("code"), start, end, resolved=ended)
    elif rtype in ("MedicationRequest", "MedicationStatement", "MedicationAdministration"):
        concept = _med_concept(res, by_url, meds)
        if rtype == "MedicationRequest":
            start = end = None
            for d in res.get("dosageInstruction") or []:
                b = ((d or {}).get("timing") or {}).get("repeat", {}).get("boundsPeriod") or {}
                start, end = start or b.get("start"), end or b.get("end")
            vp = (res.get("dispenseRequest") or {}).get("validityPeriod") or {}
            start = start or vp.get("start") or res.get("authoredOn")
            end = end or vp.get("end")
            dosages = res.get("dosageInstruction")
        else:
            start, end = _period(res, "effective")
            dosages = res.get("dosage") if rtype == "MedicationStatement" else [res.get("dosage") or {}]
        ended = end is not None or status in ("completed", "stopped", "on-hold", "not-taken")
        add("drug", concept, start, end, resolved=ended, route=_route(dosages))
    elif rtype == "Immunization":
        start, _ = _period(res, "occurrence")
        add("drug", res.get("vaccineCode"), start, start, resolved=True)
    elif rtype == "Procedure":
        start, end = _period(res, "performed")
        add("procedure", res.get("code"), start, end or start, resolved=True)
    return out


def read_fhir(src) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(patients, events, notes) from Bundles and/or NDJSON files."""
    files = _files(src)
    notes: list[str] = []
    patients: list[dict] = []
    records: list[dict] = []
    counts: dict[str, int] = {}
    n_res = 0
    pending: list[tuple[dict, dict]] = []
    meds: dict[str, dict] = {}  # Medication resources by id (NDJSON exports reference them)
    for path in files:
        for res, by_url in _resources(path, notes):
            n_res += 1
            rtype = res.get("resourceType")
            if rtype == "Patient":
                death = res.get("deceasedDateTime")
                patients.append({
                    "patient_id": str(res.get("id") or "").strip(), "birth": res.get("birthDate"),
                    "death": death, "dead_undated": res.get("deceasedBoolean") is True and not death,
                    "gender": res.get("gender"),
                })
            elif rtype == "Medication" and res.get("id"):
                meds[str(res["id"])] = res
            elif rtype in CLINICAL:
                pending.append((res, by_url))
    for res, by_url in pending:  # after every Medication is known
        records.extend(_records(res, by_url, meds, counts))
    notes.insert(0, f"FHIR: {len(files)} file(s), {n_res} resource(s), {len(patients)} Patient(s), "
                    f"{len(records)} coded record(s)")
    for what, k in sorted(counts.items()):
        notes.append(f"{k} resource(s) skipped: {what}")
    pats = pd.DataFrame(patients, columns=["patient_id", "birth", "death", "dead_undated", "gender"])
    for col in ("birth", "death"):
        ts = pd.to_datetime(pats[col], utc=True, format="ISO8601", errors="coerce")
        bad = pats[col].notna() & ts.isna()
        if bad.any():
            notes.append(f"{int(bad.sum())} Patient {col} date(s) unreadable; taken as missing")
        pats[col] = [None if pd.isna(t) else t.date() for t in ts]
    events = pd.DataFrame(records, columns=list(EVENT_COLUMNS))
    for col in ("start", "end"):
        events[col] = pd.to_datetime(events[col], utc=True, format="ISO8601", errors="coerce")
    return pats, events, notes


def from_fhir(src, *, as_of: _dt.date | None = None, disease: str | None = None) -> ImportResult:
    pats, events, notes = read_fhir(src)
    res = apply_mapping(pats, events, as_of=as_of, disease=disease, source="FHIR")
    res.notes[:0] = notes
    return res


# ---------------------------------------------------------------------------------------
# Command: python -m eligibility import-fhir SOURCE... -o COHORT
# ---------------------------------------------------------------------------------------


def iso_date(text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def check_disease(value: str | None) -> str | None:
    """The canonical indication for --disease, or raise ValueError."""
    if value is None:
        return None
    import pyarrow as pa

    from ..normalize import parse_disease

    vals, unrec = parse_disease(pa.array([value], type=pa.string()))
    if unrec.any() or not value.strip():
        raise ValueError(f"--disease {value!r} is not a trial indication (SSc, IIM, AAV, SjS, APS)")
    return str(vals.iloc[0])


def write_result(res: ImportResult, out: Path) -> list[Path]:
    """The cohort and, beside it (eligibility.mapping.side_paths), its provenance, left-out
    list and report of unusable values, with the cohort's extension."""
    from ..export import to_csv_bytes, to_parquet_bytes
    from ..mapping import side_paths

    csv = out.suffix.lower() == ".csv"
    side = side_paths(out)
    written = []
    for frame, path in ((res.frame, out), (res.provenance, side["provenance"]), (res.left_out, side["left-out"]),
                        (res.report, side["report"])):
        path.write_bytes(to_csv_bytes(frame) if csv else to_parquet_bytes(frame.astype("string")))
        written.append(path)
    return written


def report(res: ImportResult) -> None:
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for rec in res.left_out.itertuples(index=False):
        print(f"left out: {rec.patient_id or '(no id)'}: {rec.reason}", file=sys.stderr)


def run(argv: list[str] | None, prog: str, reader, what: str) -> int:
    p = OneLineParser(prog=prog, description=f"Turn {what} into a contract cohort file, with provenance.")
    p.add_argument("source", nargs="+", help="files or directories")
    p.add_argument("-o", "--output", required=True, help="cohort file to write: .csv or .parquet "
                   "(NAME.provenance.EXT, NAME.left-out.EXT and NAME.report.EXT are written beside it)")
    p.add_argument("--as-of", type=iso_date, help="screening date YYYY-MM-DD (default: today)")
    p.add_argument("--disease", help="indication for patients without a coded one (default: from conditions only)")
    args = parse(p, argv)
    if isinstance(args, int):
        return args

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        return fail(f"output {out.name} must end in .csv or .parquet")
    try:
        disease = check_disease(args.disease)
        res = reader(args.source if len(args.source) > 1 else args.source[0], as_of=args.as_of, disease=disease)
    except (ValueError, OSError) as e:
        return fail(str(e).splitlines()[0])
    report(res)
    try:
        write_result(res, out)
    except OSError as e:
        return fail(f"cannot write {e.filename or out}: {e.strerror or e}")
    print(f"imported {len(res.frame)} patient(s), {len(res.left_out)} left out -> {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(argv, "python -m eligibility import-fhir", from_fhir, "FHIR R4 Bundles or Bulk Data NDJSON")

