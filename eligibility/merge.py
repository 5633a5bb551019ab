"""Chart review merged over an EHR-derived cohort.

An abstraction sheet (CSV / xlsx / Parquet: ``patient_id`` + any contract columns,
headers may carry a unit in brackets, e.g. ``alt_u_l [U/L]``, as the worklist
template writes them) is laid over a cohort built from the EHR:

- a sheet value fills a field that is empty (or absent) in the EHR cohort;
- where both hold a value and they differ, that is a *conflict*: it is always
  reported (field, EHR value and its source, sheet value and its row), and the
  sheet value wins only for the fields given in ``override`` (``"all"`` = every field);
- values are compared as their field's type (``7`` = ``7.0``, ``Yes`` = ``yes``);
  a sheet cell that cannot be read as its field's type is reported (row, column,
  value) and still written as given, so the screen reports it again, never silently;
- every value keeps its provenance: the EHR provenance row it came from, or
  ``chart review`` with the sheet file and 1-based data row.

Values are merged as text (the cohort files' own spellings), not retyped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .cli_support import OneLineParser, fail, parse
from .fields import FIELD_BY_NAME, FIELDS, Field
from .loader import (
    CohortError,
    _cell_text,
    _norm_header,
    _parse_field,
    _read_csv,
    _read_parquet,
    _read_xlsx,
    memory_budget,
)

CHART_REVIEW = "chart review"
# Provenance columns (the mapping catalog's provenance schema: OMOP issue 10) + where a
# chart-review value was read.
PROVENANCE_COLUMNS = (
    "patient_id", "field", "value", "source_table", "vocabulary_id", "concept_code", "date",
    "original_value", "original_unit",
)
CONFLICT_COLUMNS = (
    "patient_id", "field", "ehr_value", "ehr_source", "sheet_value", "sheet_row", "used",
)
_UNIT_SUFFIX = re.compile(r"\s*[\[(][^\[\]()]*[\])]\s*$")


class MergeError(ValueError):
    """The sheet or the EHR cohort cannot be merged; str(e) is one line."""


@dataclass
class Table:
    """A cohort-shaped file read as text: contract columns only, in file order."""

    name: str
    frame: pd.DataFrame  # object columns of str | None
    ignored: tuple[str, ...] = ()


@dataclass
class MergeResult:
    frame: pd.DataFrame
    provenance: pd.DataFrame
    conflicts: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # cell problems: row, column, value
    filled: int = 0
    overridden: int = 0


def header_field(label: str) -> str | None:
    """Contract field named by a header: the name itself, or the name followed by a
    bracketed unit (``alt_u_l [U/L]``)."""
    key = _norm_header(_UNIT_SUFFIX.sub("", str(label)))
    return key if key in FIELD_BY_NAME else None


def read_table(source, *, filename: str | None = None, sheet: str | int | None = None) -> Table:
    """Read a cohort-shaped CSV / xlsx / Parquet file as text in contract column names."""
    if isinstance(source, (bytes, bytearray)):
        name, data = filename or "upload", bytes(source)
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise MergeError(f"{path.name}: cannot read file ({e.strerror or e})") from None
        name = filename or path.name
    if not data:
        raise MergeError(f"{name}: the file is empty")
    ext = Path(name).suffix.lower()
    try:
        if ext in (".csv", ".txt", ".tsv"):
            raw, _ = _read_csv(data, name)
        elif ext in (".xlsx", ".xlsm"):
            raw, _ = _read_xlsx(data, name, sheet, memory_budget())
        elif ext in (".parquet", ".pq"):
            raw, _ = _read_parquet(data, name, memory_budget())
        else:
            raise MergeError(f"{name}: unsupported file type {ext or '(no extension)'!r}; use .csv, .xlsx or .parquet")
    except CohortError as e:
        raise MergeError(str(e)) from None
    cols: dict[str, list] = {}
    ignored: list[str] = []
    for pos, label in enumerate(raw.columns):
        name_f = header_field(label)
        if name_f is None or name_f in cols:
            if str(label).strip():
                ignored.append(str(label))
            continue
        cols[name_f] = [_cell_text(v) for v in raw.iloc[:, pos].astype(object).tolist()]
    if "patient_id" not in cols:
        raise MergeError(f"{name}: no patient_id column")
    frame = pd.DataFrame(cols, dtype=object)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():  # trailing spreadsheet rows; empty rows inside are dropped too (no values)
        frame = frame[~blank]
    frame.attrs["rows"] = (np.flatnonzero(~blank) + 1).tolist()  # 1-based data rows
    return Table(name, frame.reset_index(drop=True), tuple(ignored))


def table_from_cohort(cohort, name: str = "cohort") -> Table:
    """A loaded (typed) cohort back to text in the contract's spellings, to merge a sheet over."""
    cols: dict[str, list] = {}
    for f in FIELDS:
        if f.name not in cohort.present or f.name not in cohort.frame:
            continue
        out = []
        for v in cohort.frame[f.name].astype(object).tolist():
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                out.append(None)
            elif f.kind == "yesno":
                out.append("yes" if bool(v) else "no")
            elif f.kind == "number":
                out.append(str(int(v)) if float(v).is_integer() else repr(float(v)))
            elif f.kind == "date":
                out.append(pd.Timestamp(v).date().isoformat())
            else:
                out.append(str(v))
        cols[f.name] = out
    frame = pd.DataFrame(cols, dtype=object)
    frame.attrs["rows"] = list(range(1, len(frame) + 1))
    return Table(name, frame)


def _typed(f: Field, values: list) -> tuple[list, np.ndarray]:
    """Values of one field as comparable Python objects, and which cells are unreadable."""
    parsed = _parse_field(f, pd.Series(pd.array(values, dtype="string")))
    bad = np.zeros(len(values), bool)
    for mask, _problem, _severity, kind in parsed.checks:
        if kind == "cell_error":
            bad |= mask
    vals = parsed.values
    if f.kind == "druglist":
        out = [None if v is None or v is pd.NA else tuple(sorted(v)) if not isinstance(v, str) else v
               for v in pd.Series(vals, dtype=object).tolist()]
    else:
        out = pd.Series(vals, dtype=object).tolist()
    out = [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v for v in out]
    return out, bad


def _override_set(override) -> set[str] | None:
    if override in (None, False, "", ()):
        return set()
    if override is True or override == "all":
        return None  # every field
    names = {override} if isinstance(override, str) else set(override)
    unknown = sorted(n for n in names if n not in FIELD_BY_NAME)
    if unknown:
        raise MergeError(f"--override names unknown field(s): {', '.join(unknown)}")
    return names


def _source_text(prov: dict | None) -> str:
    if not prov:
        return "EHR (no provenance)"
    parts = [str(prov.get(k) or "") for k in ("source_table", "vocabulary_id", "concept_code", "date")]
    return " ".join(p for p in parts if p) or "EHR"


def merge(ehr: Table, sheet: Table, *, override=None, ehr_provenance: pd.DataFrame | None = None) -> MergeResult:
    """Lay the sheet over the EHR cohort (see the module docstring)."""
    overrides = _override_set(override)
    res = MergeResult(frame=pd.DataFrame(), provenance=pd.DataFrame(), conflicts=pd.DataFrame())
    out = ehr.frame.copy()
    ids = out["patient_id"].tolist()
    dup = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if dup:
        raise MergeError(f"{ehr.name}: duplicate patient_id: {', '.join(dup[:10])}")
    sheet_rows: list[int] = sheet.frame.attrs.get("rows") or list(range(1, len(sheet.frame) + 1))
    sids = sheet.frame["patient_id"].tolist()
    sdup = sorted({i for i in sids if i is not None and sids.count(i) > 1})
    if sdup:
        raise MergeError(f"{sheet.name}: duplicate patient_id: {', '.join(sdup[:10])}")
    for label in sheet.ignored:
        res.notes.append(f"{sheet.name}: column {label!r} is not a contract field; ignored")

    # provenance of the EHR values: (patient_id, field) -> row
    prov_rows: dict[tuple[str, str], dict] = {}
    if ehr_provenance is not None and len(ehr_provenance):
        for rec in ehr_provenance.to_dict("records"):
            prov_rows[(str(rec.get("patient_id")), str(rec.get("field")))] = rec

    pos_of = {pid: i for i, pid in enumerate(ids) if pid is not None}
    new_rows: list[dict] = []
    match = np.full(len(sheet.frame), -1)
    for j, pid in enumerate(sids):
        if pid is None:
            res.errors.append(f"{sheet.name}: row {sheet_rows[j]}: empty patient_id; row not merged")
        elif pid in pos_of:
            match[j] = pos_of[pid]
        else:
            match[j] = len(ids) + len(new_rows)
            new_rows.append({"patient_id": pid})
            res.notes.append(f"{sheet.name}: row {sheet_rows[j]}: patient_id {pid} is not in {ehr.name}; added from the sheet")
    if new_rows:
        out = pd.concat([out, pd.DataFrame(new_rows, dtype=object)], ignore_index=True)
    n = len(out)
    chart: dict[tuple[int, str], int] = {}  # (cohort row, field) -> sheet row number
    conflicts: list[dict] = []
    fields = [f for f in FIELDS if f.name in sheet.frame.columns and f.name != "patient_id"]
    for f in fields:
        if f.name not in out.columns:
            out[f.name] = pd.Series([None] * n, dtype=object)
        sv = sheet.frame[f.name].tolist()
        s_typed, s_bad = _typed(f, sv)
        for j in np.flatnonzero(s_bad):
            if sids[j] is not None:
                res.errors.append(
                    f"{sheet.name}: row {sheet_rows[j]} (patient_id {sids[j]}), column {f.name}, "
                    f"value {sv[j]!r}: not readable as {f.kind}; written as given"
                )
        ev_all = out[f.name].tolist()
        e_typed, e_bad = _typed(f, ev_all)
        for j in range(len(sv)):
            i = int(match[j])
            if i < 0 or sv[j] is None:
                continue
            if ev_all[i] is None:
                out.iat[i, out.columns.get_loc(f.name)] = sv[j]
                chart[(i, f.name)] = sheet_rows[j]
                res.filled += 1
                continue
            same = (s_typed[j] == e_typed[i]) if not (s_bad[j] or e_bad[i]) else (
                str(sv[j]).strip().casefold() == str(ev_all[i]).strip().casefold())
            if same:
                continue
            use_sheet = overrides is None or f.name in overrides
            conflicts.append({
                "patient_id": ids[i] if i < len(ids) else sids[j], "field": f.name,
                "ehr_value": ev_all[i],
                "ehr_source": _source_text(prov_rows.get((str(ids[i]), f.name)) if i < len(ids) else None),
                "sheet_value": sv[j], "sheet_row": sheet_rows[j],
                "used": "sheet" if use_sheet else "EHR",
            })
            if use_sheet:
                out.iat[i, out.columns.get_loc(f.name)] = sv[j]
                chart[(i, f.name)] = sheet_rows[j]
                res.overridden += 1
    order = [f.name for f in FIELDS if f.name in out.columns]
    res.frame = out[order]
    res.conflicts = pd.DataFrame(conflicts, columns=list(CONFLICT_COLUMNS))
    res.provenance = _provenance(res.frame, chart, prov_rows, sheet.name, ehr.name)
    return res


def _provenance(frame: pd.DataFrame, chart: dict, prov_rows: dict, sheet_name: str, ehr_name: str) -> pd.DataFrame:
    """One row per non-empty value: the EHR provenance row it came from, or the sheet row."""
    rows: list[dict] = []
    for name in frame.columns:
        if name == "patient_id":
            continue
        unit = FIELD_BY_NAME[name].unit
        for i, (pid, v) in enumerate(zip(frame["patient_id"].tolist(), frame[name].tolist(), strict=True)):
            if v is None:
                continue
            if (i, name) in chart:
                rows.append({
                    "patient_id": pid, "field": name, "value": v,
                    "source_table": f"{CHART_REVIEW}: {sheet_name}, row {chart[(i, name)]}",
                    "vocabulary_id": None, "concept_code": None, "date": None,
                    "original_value": v, "original_unit": unit or None,
                })
            elif (str(pid), name) in prov_rows:
                rec = dict(prov_rows[(str(pid), name)])
                rec["value"] = v
                rows.append(rec)
            else:  # a value of the EHR cohort file that came without a provenance table
                rows.append({
                    "patient_id": pid, "field": name, "value": v, "source_table": f"EHR cohort: {ehr_name}",
                    "vocabulary_id": None, "concept_code": None, "date": None,
                    "original_value": v, "original_unit": unit or None,
                })
    extra = sorted({k for r in rows for k in r} - set(PROVENANCE_COLUMNS))
    return pd.DataFrame(rows, columns=[*PROVENANCE_COLUMNS, *extra]).astype(object)


# ---------------------------------------------------------------------------
# Command: python -m eligibility merge EHR SHEET -o MERGED
# ---------------------------------------------------------------------------


def provenance_path(cohort: str | Path) -> Path:
    """Where a cohort file's provenance table lives: beside it, ``NAME.provenance.EXT``
    (the importers' convention, import-omop's too); ``.csv`` for an xlsx cohort."""
    from .mapping import side_paths

    p = Path(cohort)
    return side_paths(p if p.suffix.lower() in (".csv", ".parquet") else p.with_suffix(".csv"))["provenance"]


def read_provenance(cohort: str | Path) -> pd.DataFrame | None:
    path = provenance_path(cohort)
    if not path.is_file():
        return None
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path).astype(object)
            return df.where(df.notna(), None)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig").replace({"": None})
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise MergeError(f"{path.name}: not a readable provenance table ({type(e).__name__})") from None


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    from .export import to_csv_bytes, to_parquet_bytes

    if path.suffix.lower() == ".csv":
        path.write_bytes(to_csv_bytes(frame))
    else:
        path.write_bytes(to_parquet_bytes(frame.astype("string")))


def main(argv: list[str] | None = None) -> int:
    import sys

    p = OneLineParser(prog="python -m eligibility merge",
                description="Merge a chart-review sheet over an EHR-derived cohort.")
    p.add_argument("ehr", help="EHR-derived cohort (.csv, .parquet or .xlsx); its provenance table "
                               "NAME.provenance.csv/.parquet beside it is used when present")
    p.add_argument("sheet", help="chart-review sheet (.csv or .xlsx): patient_id + contract columns")
    p.add_argument("-o", "--output", required=True, help="merged cohort: .csv or .parquet "
                   "(provenance and conflicts go beside it: NAME.provenance.EXT, NAME.conflicts.EXT)")
    p.add_argument("--override", default="",
                   help="sheet values win over differing EHR values for these fields "
                        "(comma-separated names, or 'all'); default: the EHR value is kept")
    p.add_argument("--sheet-name", help="xlsx sheet to read (default: the first)")
    args = parse(p, argv)
    if isinstance(args, int):
        return args

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        return fail(f"output {out.name} must end in .csv or .parquet")
    override = [x.strip() for x in args.override.split(",") if x.strip()]
    override = "all" if override == ["all"] else override
    try:
        ehr = read_table(args.ehr)
        sheet = read_table(args.sheet, sheet=args.sheet_name)
        res = merge(ehr, sheet, override=override, ehr_provenance=read_provenance(args.ehr))
    except MergeError as e:
        return fail(str(e))
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    for e in res.errors:
        print(f"error: {e}", file=sys.stderr)
    for c in res.conflicts.to_dict("records"):
        print(f"conflict: patient_id {c['patient_id']}, field {c['field']}: EHR {c['ehr_value']!r} "
              f"({c['ehr_source']}) vs sheet {c['sheet_value']!r} (row {c['sheet_row']}); {c['used']} value used",
              file=sys.stderr)
    conflicts_path = out.with_name(f"{out.stem}.conflicts{out.suffix.lower()}")
    try:
        write_frame(res.frame, out)
        write_frame(res.provenance, provenance_path(out))
        write_frame(res.conflicts, conflicts_path)
    except OSError as e:
        return fail(f"cannot write {e.filename or out}: {e.strerror or e}")
    print(f"merged {len(sheet.frame)} sheet row(s) into {len(res.frame)} patient(s): {res.filled} value(s) "
          f"filled, {len(res.conflicts)} conflict(s) ({res.overridden} overridden) -> {out}", file=sys.stderr)
    return 0
