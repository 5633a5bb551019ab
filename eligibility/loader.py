"""Read a candidate cohort (CSV / Parquet / xlsx) into typed contract columns.

See ../shared/spec/cohort-fields.md. `load_cohort` reads a file, `validate_frame`
normalises an already-read frame. Problems with single cells never drop a row:
the cell becomes missing and an `Issue` is recorded. Problems with the file as
a whole raise `CohortError` with a one-line message.

Patient values are never logged or printed; they only appear in `Issue`s.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import io
import json
import math
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eligibility import normalize as nz
from eligibility.catalog import parts_reading_field
from eligibility.fields import DERIVED, FIELD_BY_NAME, FIELDS, Field

CSV_EXT = (".csv", ".txt", ".tsv")
PARQUET_EXT = (".parquet", ".pq")
XLSX_EXT = (".xlsx", ".xlsm")
HEADER_SCAN_ROWS = 20
REQUIRED = ("patient_id", "disease")
ISSUE_COLUMNS = ("row", "patient_id", "column", "value", "problem", "severity", "kind")

Progress = Callable[[float, str], None]


class CohortError(Exception):
    """Fatal input problem; str(e) is a one-line message naming the problem."""


@dataclass(frozen=True)
class Issue:
    row: int | None
    patient_id: str | None
    column: str | None
    value: str | None
    problem: str
    severity: str  # "error" | "warning" | "info"
    kind: str  # cell_error, implausible, unrecognised_drug, unrecognised_disease,
    # extra_column, missing_column, empty_row, renamed_column, sheet, encoding


@dataclass
class Cohort:
    frame: pd.DataFrame
    present: frozenset[str]
    issues: list[Issue]
    source: str
    extra_columns: tuple[str, ...]
    # 1-based data-row number in the file of each frame row (differs from
    # index + 1 only when empty rows were skipped)
    row_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def report_frame(self) -> pd.DataFrame:
        data = {
            col: pd.Series([getattr(i, col) for i in self.issues], dtype=object)
            for col in ISSUE_COLUMNS
        }
        data["row"] = data["row"].astype("Int64")
        return pd.DataFrame(data, columns=list(ISSUE_COLUMNS))

    def __len__(self) -> int:
        return len(self.frame)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def load_cohort(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    filename: str | None = None,
    sheet: str | int | None = None,
    progress: Progress | None = None,
) -> Cohort:
    prog = progress or (lambda _f, _m: None)
    name, data = _read_bytes(source, filename)
    prog(0.0, f"reading {name}")
    ext = Path(name).suffix.lower()
    if not data:
        raise CohortError(f"{name}: the file is empty")
    if ext in CSV_EXT:
        raw, pre = _read_csv(data, name)
    elif ext in PARQUET_EXT:
        raw, pre = _read_parquet(data, name)
    elif ext in XLSX_EXT:
        raw, pre = _read_xlsx(data, name, sheet)
    else:
        raise CohortError(
            f"{name}: unsupported file type {ext or '(no extension)'!r}; "
            "use .csv, .parquet or .xlsx"
        )
    prog(0.3, "parsing columns")
    return _validate(raw, name, pre, prog)


def validate_frame(raw: pd.DataFrame, source: str = "") -> Cohort:
    return _validate(raw, source, [], lambda _f, _m: None)


def write_report(cohort: Cohort, path) -> None:
    path = Path(path)
    ext = path.suffix.lower()
    df = cohort.report_frame()
    if ext == ".csv":
        df.to_csv(path, index=False, encoding="utf-8")
    elif ext == ".json":
        records = [asdict(i) for i in cohort.issues]
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        raise ValueError(f"report must be .csv or .json, not {ext or '(no extension)'!r}")


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def _read_bytes(source, filename: str | None) -> tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return filename or "upload", bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CohortError(f"{path.name}: cannot read file ({e.strerror or e})") from None
        return filename or path.name, data
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = filename or Path(getattr(source, "name", "") or "upload").name
        return name, bytes(data)
    raise CohortError(f"cannot read a cohort from a {type(source).__name__}")


def _norm_header(label: str) -> str:
    return re.sub(r"[\s\-]+", "_", label.strip().lower())


_CONTRACT_KEYS = {f.name: f.name for f in FIELDS}


def _is_header(cells) -> bool:
    keys = {_norm_header(_clean_label(c)) for c in cells}
    return all(r in keys for r in REQUIRED)


def _clean_label(c) -> str:
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return ""
    return str(c).replace("\ufeff", "").strip()


def _read_csv(data: bytes, name: str) -> tuple[pd.DataFrame, list[Issue]]:
    import pyarrow.csv as pacsv

    issues: list[Issue] = []
    buf = pa.py_buffer(data)
    if data.startswith(codecs.BOM_UTF8):
        buf = buf.slice(3)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CohortError(f"{name}: UTF-16 text is not supported; save the CSV as UTF-8")
    head = buf.slice(0, min(len(buf), 1 << 16)).to_pybytes()
    if len(head) < len(buf):
        cut = head.rfind(b"\n")
        head = head[: cut + 1] if cut > 0 else head
    encoding = "utf-8"
    try:
        head_text = head.decode("utf-8")
    except UnicodeDecodeError:
        encoding = "gb18030"
        try:
            head_text = head.decode("gb18030")
        except UnicodeDecodeError:
            raise CohortError(f"{name}: not readable as UTF-8 or GBK/GB18030 text") from None
    lines = head_text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    candidates = sorted([",", "\t", ";"], key=lambda d: -first.count(d))
    scan = "\n".join(lines[: HEADER_SCAN_ROWS + 1])
    header_idx = None
    for delim in candidates:  # the delimiter that reveals the header wins
        rows = list(csv.reader(io.StringIO(scan), delimiter=delim))
        header_idx = next((i for i, r in enumerate(rows[:HEADER_SCAN_ROWS]) if _is_header(r)), None)
        if header_idx is not None:
            break
    else:
        delim = candidates[0] if first.count(candidates[0]) else ","
        rows = list(csv.reader(io.StringIO(scan), delimiter=delim))
    if header_idx is None:
        header_idx = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
        if header_idx is None:
            raise CohortError(f"{name}: no header row found (the file has no text)")
    header = [_clean_label(c) for c in rows[header_idx]]
    if header_idx > 0:
        issues.append(
            Issue(None, None, None, None,
                  f"header found on line {header_idx + 1}; {header_idx} line(s) above it skipped",
                  "info", "sheet")
        )
    cols = [f"c{i}" for i in range(len(header))]

    def read(enc: str) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(buf),
            read_options=pacsv.ReadOptions(
                column_names=cols, skip_rows=header_idx + 1, encoding=enc, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in cols},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    try:
        try:
            table = read("utf8" if encoding == "utf-8" else encoding)
        except pa.ArrowInvalid as e:
            if encoding == "utf-8" and "utf8" in str(e).lower().replace("-", ""):
                encoding = "gb18030"
                table = read(encoding)
            else:
                raise
    except pa.ArrowInvalid as e:
        msg = str(e)
        m = re.search(r"Expected (\d+) columns, got (\d+)", msg)
        if m:
            raise CohortError(
                f"{name}: a data row has {m.group(2)} fields but the header has {m.group(1)}"
            ) from None
        raise CohortError(f"{name}: not a readable CSV file ({msg.splitlines()[0][:120]})") from None
    except UnicodeDecodeError:
        raise CohortError(f"{name}: not readable as UTF-8 or GBK/GB18030 text") from None
    if encoding != "utf-8":
        issues.append(
            Issue(None, None, None, None,
                  "file is not UTF-8; read as Chinese GBK/GB18030 text", "info", "encoding")
        )
    df = table.to_pandas(types_mapper=pd.ArrowDtype)  # zero-copy
    df.columns = header
    return df, issues


def _read_parquet(data: bytes, name: str) -> tuple[pd.DataFrame, list[Issue]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as e:  # noqa: BLE001 - any failure means unreadable
        raise CohortError(f"{name}: not a readable Parquet file ({type(e).__name__})") from None

    def mapper(t: pa.DataType):
        if pa.types.is_boolean(t):
            return pd.BooleanDtype()
        return None

    df = table.to_pandas(types_mapper=mapper)
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
    df = df.reset_index(drop=True)
    return df, []


def _read_xlsx(data: bytes, name: str, sheet: str | int | None) -> tuple[pd.DataFrame, list[Issue]]:
    issues: list[Issue] = []
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="openpyxl")
        names = list(book.sheet_names)
    except Exception as e:  # noqa: BLE001
        raise CohortError(f"{name}: not a readable xlsx workbook ({type(e).__name__})") from None
    if not names:
        raise CohortError(f"{name}: the workbook has no sheets")

    def parse(sheet_name: str) -> pd.DataFrame:
        try:
            return pd.read_excel(book, sheet_name=sheet_name, header=None, dtype=object)
        except Exception as e:  # noqa: BLE001
            raise CohortError(
                f"{name}: cannot read sheet {sheet_name!r} ({type(e).__name__})"
            ) from None

    def find_header(df: pd.DataFrame) -> int | None:
        for i in range(min(HEADER_SCAN_ROWS, len(df))):
            if _is_header(df.iloc[i].tolist()):
                return i
        return None

    if sheet is not None:
        if isinstance(sheet, int) and not isinstance(sheet, bool):
            if not 0 <= sheet < len(names):
                raise CohortError(f"{name}: no sheet number {sheet}; it has {len(names)} sheet(s)")
            chosen = names[sheet]
        else:
            match = [n for n in names if n == sheet] or [
                n for n in names if n.strip().lower() == str(sheet).strip().lower()
            ]
            if not match:
                raise CohortError(
                    f"{name}: no sheet named {sheet!r}; sheets: {', '.join(map(repr, names))}"
                )
            chosen = match[0]
        df = parse(chosen)
        hdr = find_header(df)
    else:
        chosen = names[0]
        df = parse(chosen)
        hdr = find_header(df)
        if hdr is None:
            for other in names[1:]:
                odf = parse(other)
                ohdr = find_header(odf)
                if ohdr is not None:
                    issues.append(
                        Issue(None, None, None, None,
                              f"first sheet {chosen!r} has no patient_id/disease header; "
                              f"read sheet {other!r} instead",
                              "info", "sheet")
                    )
                    chosen, df, hdr = other, odf, ohdr
                    break
    if hdr is None:
        nonempty = [i for i in range(len(df)) if df.iloc[i].notna().any()]
        if not nonempty:
            raise CohortError(f"{name}: sheet {chosen!r} is empty")
        hdr = nonempty[0]
    if hdr > 0:
        issues.append(
            Issue(None, None, None, None,
                  f"sheet {chosen!r}: header found on row {hdr + 1}; {hdr} row(s) above it skipped",
                  "info", "sheet")
        )
    header = [_clean_label(c) for c in df.iloc[hdr].tolist()]
    body = df.iloc[hdr + 1 :].reset_index(drop=True)
    body.columns = range(body.shape[1])
    body.columns = header
    return body, issues


# ---------------------------------------------------------------------------
# Cell helpers
# ---------------------------------------------------------------------------


def _cell_text(v) -> str | None:
    """A raw cell as text (None when empty). Whole floats print as integers."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return None
        if math.isfinite(f) and f == int(f) and abs(f) < 1e16:
            return str(int(f))
        return repr(f)
    if isinstance(v, (pd.Timestamp, _dt.datetime)):
        ts = pd.Timestamp(v)
        if ts is pd.NaT or pd.isna(ts):
            return None
        if ts == ts.normalize():
            return ts.strftime("%Y-%m-%d")
        return ts.isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, np.datetime64):
        return None if np.isnat(v) else _cell_text(pd.Timestamp(v))
    text = str(v).strip()
    return text or None


def _is_plain_string(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or (
        isinstance(s.dtype, pd.ArrowDtype)
        and (pa.types.is_string(s.dtype.pyarrow_dtype) or pa.types.is_large_string(s.dtype.pyarrow_dtype))
    )


def _to_text(s: pd.Series) -> pa.Array:
    """Stripped text of every cell as a pyarrow string array (null = empty)."""
    if _is_plain_string(s):
        arr = pa.array(s, from_pandas=True)
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        arr = pc.utf8_trim_whitespace(arr)
    else:
        arr = pa.array([_cell_text(v) for v in s.astype(object)], type=pa.string())
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _is_bool(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s.dtype)


def _is_datetime(s: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(s.dtype)


def _nonblank(s: pd.Series, text: pa.Array | None) -> np.ndarray:
    if text is not None:
        return pc.is_valid(text).to_numpy(zero_copy_only=False)
    return s.notna().to_numpy(dtype=bool)


def _native_ok(f: Field, s: pd.Series) -> bool:
    """True when the column can be parsed from its native dtype without text."""
    if f.kind == "number":
        return _is_numeric(s)
    if f.kind == "yesno":
        return _is_bool(s) or _is_numeric(s)
    if f.kind == "date":
        return _is_datetime(s)
    return False


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


YESNO_PROBLEM = "not a yes/no value (use true/false, yes/no, y/n or 1/0)"

# A check: (bad-cell mask over all raw rows, problem text or fn(i, value) -> text, severity, kind)
Check = tuple[np.ndarray, object, str, str]


@dataclass
class _Parsed:
    nonblank: np.ndarray
    values: object = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    text: pa.Array | None = None


def _string_series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.StringDtype().__from_arrow__(arr))


def _parse_field(f: Field, s: pd.Series) -> _Parsed:
    """Parse one contract column over all raw rows (runs in a worker thread)."""
    text = None if _native_ok(f, s) else _to_text(s)
    p = _Parsed(nonblank=_nonblank(s, text), text=text)
    n = len(s)
    if f.kind == "id":
        p.values = _string_series(text)
        p.checks.append((~p.nonblank, "empty patient_id", "error", "cell_error"))
    elif f.kind == "number":
        if text is None:
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan).copy()
            bad = np.isinf(vals)
            vals[bad] = np.nan
        else:
            vals, bad = nz.parse_number(text)
        p.checks.append((bad, "not a number", "error", "cell_error"))
        if f.whole:
            frac = np.isfinite(vals) & (vals != np.floor(vals))
            p.checks.append((frac, "not a whole number", "error", "cell_error"))
            vals[frac] = np.nan
        if f.plausible is not None:
            lo, hi = f.plausible
            with np.errstate(invalid="ignore"):
                outside = ~np.isnan(vals) & ((vals < lo) | (vals > hi))
            unit = f" {f.unit}" if f.unit else ""
            base = f"outside the plausible range {lo:g}–{hi:g}{unit}; kept as given"

            def implausible(i, _v, vals=vals, lo=lo, hi=hi, base=base):
                hint = nz.unit_hint(f.name, float(vals[i]), lo, hi)
                return f"{base} ({hint})" if hint else base

            p.checks.append((outside, implausible, "warning", "implausible"))
        p.values = vals
    elif f.kind == "yesno":
        if text is None and _is_bool(s):
            vals = s.astype("boolean").array
            bad = np.zeros(n, dtype=bool)
        elif text is None:
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            yes, no = v == 1, v == 0
            bad = ~np.isnan(v) & ~yes & ~no
            vals = pd.arrays.BooleanArray(yes, ~(yes | no))
        else:
            vals, bad = nz.parse_yesno(text)
        p.checks.append((bad, YESNO_PROBLEM, "error", "cell_error"))
        p.values = vals
    elif f.kind == "category":
        vals, bad = nz.parse_category(text, f.categories, nz.CATEGORY_SYNONYMS.get(f.name))
        p.checks.append((bad, f"not one of {', '.join(f.categories)}", "error", "cell_error"))
        p.values = vals
    elif f.kind == "disease":
        vals, unrec = nz.parse_disease(text)
        p.checks.append(
            (unrec, "not a trial indication (SSc, IIM, AAV, SjS, APS); kept as given, fails DX-1",
             "info", "unrecognised_disease")
        )
        p.values = vals
    elif f.kind == "date":
        if text is None:
            ser = s
            if getattr(ser.dt, "tz", None) is not None:
                ser = ser.dt.tz_localize(None)
            p.values = ser.dt.normalize().to_numpy(dtype="datetime64[ns]")
        else:
            p.values, bad = nz.parse_date(text)
            p.checks.append((bad, "not a date (use YYYY-MM-DD)", "error", "cell_error"))
    elif f.kind == "druglist":
        vals, count, unrec = nz.parse_druglist(text)
        mask = np.zeros(n, dtype=bool)
        mask[list(unrec)] = True

        def drug_problem(i, _v, unrec=unrec):
            return f"unrecognised drug name(s): {', '.join(unrec[i])}; not counted"

        p.checks.append((mask, drug_problem, "warning", "unrecognised_drug"))
        p.values = vals
        p.extra["n_prior_immunomodulators"] = count
    else:  # pragma: no cover - every contract kind is handled above
        raise AssertionError(f.kind)
    return p


def _extra_nonblank(s: pd.Series) -> np.ndarray:
    if _is_plain_string(s) or s.dtype == object:
        return _nonblank(s, _to_text(s))
    return s.notna().to_numpy(dtype=bool)


def _take(values, keep: np.ndarray | None):
    if keep is None:
        return values
    if isinstance(values, pd.Series):
        return values[keep].reset_index(drop=True)
    return values[keep]


def _validate(raw: pd.DataFrame, source: str, pre: list[Issue], prog: Progress) -> Cohort:
    issues: list[Issue] = list(pre)
    n_raw = len(raw)
    where = source or "input"

    # --- headers ---------------------------------------------------------
    labels = [_clean_label(c) for c in raw.columns]
    mapping: dict[int, str] = {}  # column position -> contract name
    extras: list[str] = []
    extra_pos: list[int] = []
    for pos, label in enumerate(labels):
        key = _norm_header(label)
        name = _CONTRACT_KEYS.get(key)
        if name is not None and name in mapping.values():
            issues.append(
                Issue(None, None, label, None,
                      f"second column named {name!r}; ignored (the first one is used)",
                      "warning", "extra_column")
            )
            extra_pos.append(pos)
            continue
        if name is not None:
            mapping[pos] = name
            if label != name:
                issues.append(
                    Issue(None, None, label, None, f"column {label!r} read as {name!r}",
                          "info", "renamed_column")
                )
            continue
        if not label and not _extra_nonblank(raw.iloc[:, pos]).any():
            continue  # unnamed, empty column (spreadsheet padding)
        shown = label or f"(unnamed column {pos + 1})"
        extras.append(shown)
        extra_pos.append(pos)
        why = (
            "derived column; recomputed from prior_immunomodulators, the file's values are ignored"
            if key in DERIVED
            else "not a contract column; ignored"
        )
        issues.append(Issue(None, None, shown, None, why, "info", "extra_column"))

    missing_req = [r for r in REQUIRED if r not in mapping.values()]
    if missing_req:
        found = ", ".join(repr(x) for x in labels[:8]) + (" …" if len(labels) > 8 else "")
        raise CohortError(
            f"{where}: missing required column(s): {', '.join(missing_req)}"
            f" (columns found: {found or 'none'})"
        )

    # --- parse every column over all raw rows (threads: pyarrow/numpy release the GIL)
    cols = {pos: raw.iloc[:, pos].reset_index(drop=True) for pos in mapping}
    order = sorted(mapping)
    parsed: dict[int, _Parsed] = {}
    nonblank = np.zeros(n_raw, dtype=bool)
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futures = {pos: ex.submit(_parse_field, FIELD_BY_NAME[mapping[pos]], cols[pos]) for pos in order}
        extra_futures = [ex.submit(_extra_nonblank, raw.iloc[:, pos]) for pos in extra_pos]
        for k, pos in enumerate(order):
            parsed[pos] = futures[pos].result()
            nonblank |= parsed[pos].nonblank
            if k % 16 == 15:
                prog(0.3 + 0.5 * (k + 1) / len(order), "parsing columns")
        for fut in extra_futures:
            nonblank |= fut.result()
    prog(0.8, "checking values")

    # --- empty rows between data rows are kept (each output row matches an input row);
    # empty rows after the last data row are spreadsheet leftovers: ignored, and said so.
    if not nonblank.any():
        raise CohortError(f"{where}: no data rows (only a header)")
    last = int(np.flatnonzero(nonblank)[-1])
    keep: np.ndarray | None = None
    if last + 1 < n_raw:
        keep = np.arange(n_raw) <= last
        issues.append(Issue(None, None, None, None,
                            f"{n_raw - last - 1} empty row(s) after the last data row ignored",
                            "info", "empty_row"))
    for r in np.flatnonzero(~nonblank[: last + 1]).tolist():
        issues.append(Issue(r + 1, None, None, None, "empty row: kept, every value is missing",
                            "warning", "empty_row"))
    row_numbers = np.arange(1, last + 2, dtype=np.int64)
    n = len(row_numbers)

    # --- patient ids -------------------------------------------------------
    id_pos = next(p for p, nm in mapping.items() if nm == "patient_id")
    id_text = parsed[id_pos].text
    ids_all: pd.Series = parsed[id_pos].values
    dup = ids_all.duplicated(keep=False) & ids_all.notna()
    if dup.any():
        dups = list(dict.fromkeys(ids_all[dup].tolist()))
        shown = ", ".join(dups[:10]) + (f" and {len(dups) - 10} more" if len(dups) > 10 else "")
        raise CohortError(f"{where}: duplicate patient_id: {shown}")

    # --- cell issues (only for offending cells) -----------------------------
    cell_issues: list[tuple[int, int, Issue]] = []
    for pos in order:
        name = mapping[pos]
        for mask, problem, severity, kind in parsed[pos].checks:
            # An empty row is reported once as such, not once per column.
            idx = np.flatnonzero(mask & nonblank)
            if not len(idx):
                continue
            values = [_cell_text(v) for v in cols[pos].take(idx).astype(object).tolist()]
            pids = id_text.take(pa.array(idx)).to_pylist()
            for i, value, pid in zip(idx.tolist(), values, pids, strict=True):
                text = problem(i, value) if callable(problem) else problem
                cell_issues.append((i, pos, Issue(i + 1, pid, name, value, text, severity, kind)))

    # --- typed frame -----------------------------------------------------
    out: dict[str, object] = {}
    derived: dict[str, object] = {}
    for pos in order:
        out[mapping[pos]] = _take(parsed[pos].values, keep)
        for dname, dvals in parsed[pos].extra.items():
            derived[dname] = _take(dvals, keep)
    out.update(derived)
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))

    present = frozenset(mapping.values())
    for f in FIELDS:
        if f.name in present or f.optional:
            continue
        parts = parts_reading_field(f.name)
        if parts:
            what, severity = f"{', '.join(parts)} not assessed for everyone", "warning"
        elif f.name == "screening_date":
            what, severity = "dose-cohort assignment and enrolment projection cannot use dates", "warning"
        else:
            what, severity = "no criterion reads it", "info"
        issues.append(
            Issue(None, None, f.name, None, f"column absent from the file: {what}",
                  severity, "missing_column")
        )

    cell_issues.sort(key=lambda t: (t[0], t[1]))
    issues.extend(t[2] for t in cell_issues)
    prog(1.0, "done")
    return Cohort(
        frame=frame,
        present=present,
        issues=issues,
        source=source,
        extra_columns=tuple(extras),
        row_numbers=row_numbers,
    )
