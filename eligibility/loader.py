"""Read a candidate cohort (CSV / Parquet / xlsx) into typed contract columns.

See ../shared/spec/cohort-fields.md. `load_cohort` reads a file, `validate_frame`
normalises an already-read frame. Problems with single cells never drop a row:
the cell becomes missing and an `Issue` is recorded. Problems with the file as
a whole raise `CohortError` with a one-line message.

Patient values are never logged or printed; they only appear in `Issue`s.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eligibility import csvread, distinct, encodings, export, memory, xlsx
from eligibility import normalize as nz
from eligibility.catalog import parts_reading_field
from eligibility.distinct import Distinct
from eligibility.fields import DERIVED, DISEASES, FIELD_BY_NAME, FIELDS, Field
from eligibility.textsafe import shorten

CSV_EXT = (".csv", ".txt", ".tsv")
PARQUET_EXT = (".parquet", ".pq")
XLSX_EXT = (".xlsx", ".xlsm")
HEADER_SCAN_ROWS = 20
BUDGET_ENV = "ELIGIBILITY_MAX_MEMORY_MB"
DEFAULT_BUDGET_MB = 4096
# peak memory while a file is read and typed, per byte of file (benchmarks/bench_hostile.py:
# a 301 MB, 1M-row CSV peaked at 3.3 GB RSS)
CSV_EXPANSION = 12
PARQUET_EXPANSION = 3
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


def absent_column_issues(present) -> list[Issue]:
    """One issue per contract column the file lacks, saying what that costs."""
    out = []
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
        out.append(Issue(None, None, f.name, None, f"column absent from the file: {what}", severity, "missing_column"))
    return out


def duplicate_ids_message(where: str, rows_of: dict[str, list[int]], n_ids: int) -> str:
    """One line naming the first ten duplicated ids with their first five row numbers."""
    shown = ", ".join(f"{shorten(d, 40)} (rows {', '.join(map(str, rows[:5]))}"
                      + (" …" if len(rows) > 5 else "") + ")"
                      for d, rows in list(rows_of.items())[:10])
    shown += f" and {n_ids - 10} more" if n_ids > 10 else ""
    return f"{where}: duplicate patient_id: {shown}"


def load_cohort(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    filename: str | None = None,
    sheet: str | int | None = None,
    progress: Progress | None = None,
    budget_bytes: int | None = None,
) -> Cohort:
    """Read a cohort file. `budget_bytes` caps the memory the file may expand to
    (default: the ELIGIBILITY_MAX_MEMORY_MB environment variable, else 4096 MB); a file
    over it is refused with a CohortError rather than read."""
    prog = progress or (lambda _f, _m: None)
    budget = memory_budget() if budget_bytes is None else budget_bytes
    name, data = _read_bytes(source, filename, budget)
    prog(0.0, f"reading {name}")
    ext = Path(name).suffix.lower()
    if not data:
        raise CohortError(f"{name}: the file is empty")
    if ext not in CSV_EXT + PARQUET_EXT + XLSX_EXT:
        raise CohortError(
            f"{name}: unsupported file type {shorten(ext) or '(no extension)'!r}; "
            "use .csv, .parquet or .xlsx"
        )
    kind = sniff(data)
    pre: list[Issue] = []
    named = "csv" if ext in CSV_EXT else "parquet" if ext in PARQUET_EXT else "xlsx"
    actual = "csv" if kind == "text" else kind
    if actual != named and not (kind == "ole" and named == "xlsx"):
        if kind == "text":
            label = "Parquet" if named == "parquet" else "xlsx"
            raise CohortError(f"{name}: not a {label} file: it holds text (a CSV file?); rename it to .csv")
        what = {"xlsx": "an xlsx workbook", "parquet": "a Parquet file", "ole": "an old or encrypted Excel file"}
        pre.append(Issue(None, None, None, None,
                         f"the file is named {ext} but holds {what.get(kind, kind)}; read as such",
                         "warning", "file_type"))
    raw: _Raw
    if kind == "text":
        if len(data) * CSV_EXPANSION > budget:
            raise CohortError(_over_budget(name, len(data) * CSV_EXPANSION, budget))
        raw, more = _csv_raw(data, name)
    elif kind == "parquet":
        raw, more = _parquet_raw(data, name, budget)
    else:
        frame, more = _read_xlsx(data, name, sheet, budget)
        raw = _Raw.of_frame(frame)
        del frame
    del data
    prog(0.3, "parsing columns")
    try:
        return _validate(raw, name, pre + more, prog)
    finally:
        del raw
        memory.release_unused_memory()


def memory_budget() -> int:
    """Bytes a file may expand to in memory (ELIGIBILITY_MAX_MEMORY_MB, default 4096 MB)."""
    try:
        mb = float(os.environ.get(BUDGET_ENV, "") or DEFAULT_BUDGET_MB)
    except ValueError:
        mb = DEFAULT_BUDGET_MB
    return int(mb * 2**20)


def _over_budget(name: str, need: float, budget: int) -> str:
    return (f"{name}: the file would take about {need / 2**20:,.0f} MB in memory, over the limit of "
            f"{budget / 2**20:,.0f} MB ({BUDGET_ENV}); split the file or raise the limit")


def sniff(data: bytes) -> str:
    """What the bytes are, whatever the file is called: xlsx, parquet, ole (xls/encrypted) or text."""
    if data.startswith(xlsx.ZIP_MAGIC):
        return "xlsx"
    if data.startswith(b"PAR1"):
        return "parquet"
    if data.startswith(xlsx.OLE_MAGIC):
        return "ole"
    return "text"


def validate_frame(raw: pd.DataFrame, source: str = "") -> Cohort:
    return _validate(_Raw.of_frame(raw), source, [], lambda _f, _m: None)


def write_report(cohort: Cohort, path) -> None:
    """The validation report as .csv (through the Excel-safe writer) or .json."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".csv":
        export.write_csv(cohort.report_frame(), path)
    elif ext == ".json":
        records = [asdict(i) for i in cohort.issues]
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        raise ValueError(f"report must be .csv or .json, not {ext or '(no extension)'!r}")


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def _read_bytes(source, filename: str | None, budget: int) -> tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return filename or "upload", bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > budget:  # refused before it is read
                raise CohortError(_over_budget(filename or path.name, size, budget))
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
    """The file as a frame of Arrow strings (for the merge and database readers)."""
    raw, issues = _csv_raw(data, name, dictionaries=False)
    cols = [raw.take(i) for i in range(len(raw.columns))]
    df = pd.DataFrame({i: c.to_pandas(types_mapper=pd.ArrowDtype) if isinstance(c, pa.ChunkedArray) else c
                       for i, c in enumerate(cols)}, index=pd.RangeIndex(raw.n_rows))
    df.columns = raw.labels
    return df, issues


def _csv_raw(data: bytes, name: str, *, dictionaries: bool = True) -> tuple[_Raw, list[Issue]]:
    """Text columns as Arrow strings (as dictionaries where `dictionaries` and the column is
    read by spelling)."""
    issues: list[Issue] = []
    try:
        dec = encodings.decode(data)
    except encodings.EncodingError as e:
        raise CohortError(f"{name}: {e}") from None
    if dec.note:
        issues.append(Issue(None, None, None, dec.example and shorten(dec.example, 80), dec.note,
                            "warning" if dec.warn else "info", "encoding"))
    try:
        read = csvread.read_text(dec.text if dec.text is not None else dec.full_text, _is_header,
                                 lambda h: _norm_header(_clean_label(h)) == "patient_id",
                                 utf8=dec.utf8, utf8_offset=dec.utf8_offset,
                                 as_dictionary=_spelled if dictionaries else None)
    except csvread.CsvError as e:
        raise CohortError(f"{name}: {e}") from None
    del dec
    if read.header_line > 1:
        skipped = read.header_line - 1
        issues.append(
            Issue(None, None, None, None,
                  f"header found on line {read.header_line}; {skipped} line(s) above it skipped",
                  "info", "sheet")
        )
    for n in read.notes:
        issues.append(Issue(n.row + 1, n.pid, None, n.value, n.problem, n.severity, n.kind))
    labels, table = [_clean_label(c) for c in read.header], read.table
    del read
    return _Raw(labels, list(table.columns), table.num_rows), issues


def _read_parquet(data: bytes, name: str, budget: int | None = None) -> tuple[pd.DataFrame, list[Issue]]:
    """The file as a pandas frame (for the merge reader)."""
    raw, issues = _parquet_raw(data, name, budget, dictionaries=False)
    cols = {i: c.to_pandas() if isinstance(c, pa.ChunkedArray) else c for i, c in enumerate(raw.columns)}
    df = pd.DataFrame(cols, index=pd.RangeIndex(raw.n_rows))
    df.columns = raw.labels
    return df, issues


# kinds read by spelling: their text comes from Parquet as a dictionary (each distinct value once)
_SPELLED_KINDS = frozenset({"yesno", "category", "disease", "date", "druglist"})


def _spelled(label: str) -> bool:
    key = _CONTRACT_KEYS.get(_norm_header(_clean_label(label)))
    return key is not None and FIELD_BY_NAME[key].kind in _SPELLED_KINDS


def _is_text_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _parquet_raw(data: bytes, name: str, budget: int | None = None, *,
                 dictionaries: bool = True) -> tuple[_Raw, list[Issue]]:
    """Text columns stay Arrow (as dictionaries where `dictionaries` and the column is read by
    spelling); every other column becomes a pandas Series as `Table.to_pandas` would make it."""
    budget = memory_budget() if budget is None else budget
    import pyarrow.parquet as pq

    issues: list[Issue] = []
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        meta = pf.metadata
        expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if expanded * PARQUET_EXPANSION > budget:
            raise CohortError(_over_budget(name, expanded * PARQUET_EXPANSION, budget))
        schema = pf.schema_arrow
        file_types = list(schema.types)
        as_dict = [n for n, t in zip(schema.names, file_types, strict=True)
                   if dictionaries and _is_text_type(t) and schema.names.count(n) == 1 and _spelled(n)]
        if as_dict:
            pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=as_dict)
        table = pf.read()
    except CohortError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure means unreadable
        raise CohortError(f"{name}: not a readable Parquet file ({type(e).__name__})") from None
    names = table.column_names
    contract = {_norm_header(_clean_label(n)) for n in names} & set(_CONTRACT_KEYS)
    columns: list[RawColumn | None] = []
    labels: list[str] = []
    n_rows = table.num_rows
    read = table.columns
    del table  # each column's Arrow memory goes as soon as it is converted
    for k, (col_name, file_t) in enumerate(zip(names, file_types, strict=True)):
        col, read[k] = read[k], None
        t = col.type
        nested = pa.types.is_nested(t) or pa.types.is_map(t) or pa.types.is_dictionary(t) and pa.types.is_nested(
            t.value_type)
        if nested:
            if _norm_header(_clean_label(col_name)) in contract:
                raise CohortError(
                    f"{name}: column {shorten(col_name)!r} holds {t.__class__.__name__.replace('Type', '').lower()}"
                    f" values ({shorten(str(t))}), not one value per cell; flatten it to text or numbers"
                )
            issues.append(Issue(None, None, shorten(col_name), None,
                                f"column of nested values ({shorten(str(t))}); ignored", "info", "extra_column"))
            continue
        if pa.types.is_timestamp(t) and t.tz is not None:
            # a zoned instant: the date is the local date where it was recorded
            col = pc.local_timestamp(col)
        columns.append(col if _is_text_type(file_t) or pa.types.is_float64(col.type) else _series(col, name))
        labels.append(col_name)
        del col
    index_cols = _pandas_index_columns(pf)
    if index_cols:
        # pandas stored the index as columns: the first ones (patient_id as index) come first
        order = [labels.index(c) for c in index_cols if c in labels]
        rest = [i for i in range(len(labels)) if i not in order]
        columns = [columns[i] for i in order + rest]
        labels = [labels[i] for i in order + rest]
    return _Raw(labels, columns, n_rows), issues


def _series(col: pa.ChunkedArray, name: str) -> pd.Series:
    """One non-text column as `Table.to_pandas` makes it (booleans as the nullable dtype)."""

    def mapper(t: pa.DataType):
        if pa.types.is_boolean(t):
            return pd.BooleanDtype()
        return None

    try:
        return pa.table({"0": col}).to_pandas(types_mapper=mapper)["0"]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OverflowError) as e:
        raise CohortError(f"{name}: a column cannot be read ({type(e).__name__}: {shorten(str(e), 100)})") from None


def _pandas_index_columns(pf) -> list[str]:
    meta = pf.schema_arrow.metadata or {}
    raw = meta.get(b"pandas")
    if not raw:
        return []
    try:
        cols = json.loads(raw).get("index_columns", [])
    except (ValueError, AttributeError):
        return []
    return [c for c in cols if isinstance(c, str)]


def _read_xlsx(
    data: bytes, name: str, sheet: str | int | None, budget: int | None = None
) -> tuple[pd.DataFrame, list[Issue]]:
    budget = memory_budget() if budget is None else budget
    try:
        read = xlsx.read_sheet(data, sheet, _is_header, HEADER_SCAN_ROWS, budget)
    except xlsx.WorkbookError as e:
        raise CohortError(f"{name}: {e}") from None
    issues: list[Issue] = []
    if read.others or read.chosen_because == "the first visible sheet with data":
        others = "; other sheets: " + ", ".join(read.others) if read.others else ""
        issues.append(Issue(None, None, None, None,
                            f"read sheet {read.name!r} ({read.chosen_because}){others}", "info", "sheet"))
    if read.header_row > 1:
        issues.append(
            Issue(None, None, None, None,
                  f"sheet {read.name!r}: header found on row {read.header_row}; "
                  f"{read.header_row - 1} row(s) above it skipped",
                  "info", "sheet")
        )
    if read.trailing_empty:
        issues.append(Issue(None, None, None, None,
                            f"{read.trailing_empty} empty row(s) after the last data row ignored",
                            "info", "empty_row"))
    header = [_clean_label(c) for c in read.header]
    id_col = next((i for i, h in enumerate(header) if _norm_header(h) == "patient_id"), None)
    for n in read.notes:
        pid = None
        if n.row is not None and id_col is not None:
            pid = _cell_text(read.body[n.row][id_col])
        column = header[n.col] if n.col is not None and n.col < len(header) else None
        where = f"cell {n.ref}: " if n.ref and n.kind != "outside_cell" else ""
        issues.append(Issue(None if n.row is None else n.row + 1, pid, column or None, n.value,
                            where + n.problem, n.severity, n.kind))
    body = pd.DataFrame(read.body, columns=range(len(header)), dtype=object) if read.body else pd.DataFrame(
        {i: pd.Series([], dtype=object) for i in range(len(header))})
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


# A raw column: Arrow text (string, large_string, or a dictionary of them that the reader
# asked for) or a pandas Series of any other dtype.
RawColumn: TypeAlias = pd.Series | pa.ChunkedArray


def _arrow_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """`_to_text` of an Arrow text column, without a pandas round trip."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    return pa.chunked_array([_blank_as_null(pc.utf8_trim_whitespace(c)) for c in col.chunks], type=pa.string())


def _blank_as_null(arr: pa.Array) -> pa.Array:
    """Empty strings as nulls, sharing the text's buffers (only the validity bitmap is new)."""
    filled = pc.fill_null(pc.greater(pc.binary_length(arr), 0), False)
    if filled.offset or arr.offset:  # pragma: no cover - compute results start at 0
        return pc.if_else(filled, arr, pa.scalar(None, pa.string()))
    _validity, offsets, data = arr.buffers()
    return pa.Array.from_buffers(pa.string(), len(arr), [filled.buffers()[1], offsets, data])


def _row_text(col: RawColumn) -> pa.Array | pa.ChunkedArray:
    return _arrow_text(col) if isinstance(col, pa.ChunkedArray) else _to_text(col)


def _distinct(col: RawColumn) -> Distinct:
    """The column's cleaned text as distinct values and row codes; each distinct raw value is
    cleaned once, exactly as `_to_text` cleans a cell."""
    if isinstance(col, pa.ChunkedArray):
        return distinct.from_strings(col)
    if _is_plain_string(col):
        return distinct.from_strings(pa.array(col, from_pandas=True))
    if isinstance(col.dtype, pd.CategoricalDtype):
        cleaned = pa.array([_cell_text(v) for v in col.cat.categories.astype(object)], type=pa.string())
        return distinct.from_dictionary(col.cat.codes.to_numpy(np.int32), cleaned)
    return distinct.from_text(_to_text(col))


def _raw_cells(col: RawColumn, idx: np.ndarray) -> list[str | None]:
    """The raw cells at rows `idx` as text, for the report."""
    if isinstance(col, pa.ChunkedArray):
        values = col.take(pa.array(idx, type=pa.int64())).to_pylist()
    else:
        values = col.take(idx).astype(object).tolist()
    return [_cell_text(v) for v in values]


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _is_bool(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s.dtype)


def _is_datetime(s: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(s.dtype)


def _nonblank(s: pd.Series | None, text: pa.Array | None) -> np.ndarray:
    if text is not None:
        return pc.is_valid(text).to_numpy(zero_copy_only=False)
    assert s is not None
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
ID_ROUNDED = ("a numeric ID at or beyond 2^53: the program that wrote the file may have rounded its "
              "last digits; store patient IDs as text")


def _rounded_ids(s: pd.Series) -> np.ndarray:
    """Floating-point IDs too large to be exact (integers, and text, are exact)."""
    if pd.api.types.is_float_dtype(s.dtype):
        with np.errstate(invalid="ignore"):
            return np.abs(s.to_numpy(dtype=np.float64, na_value=np.nan)) >= 2.0**53
    if s.dtype == object:
        return np.fromiter((isinstance(v, float) and abs(v) >= 2.0**53 for v in s), dtype=bool, count=len(s))
    return np.zeros(len(s), dtype=bool)

# A check: (cells with the problem, the problem's text or a function (row, value) -> text,
# severity, kind)
Check = tuple[np.ndarray, str | Callable[[int, str | None], str], str, str]


@dataclass
class _Parsed:
    nonblank: np.ndarray
    values: object = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    text: pa.Array | pa.ChunkedArray | None = None
    # per check: (rows with the problem, their raw cells as text), so the raw column can go
    flagged: list[tuple[np.ndarray, list[str | None]]] = field(default_factory=list)


def _string_series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.StringDtype().__from_arrow__(arr))


def _parse_field(f: Field, col: RawColumn) -> _Parsed:
    """Parse one contract column over all raw rows (runs in a worker thread)."""
    p = _parse_values(f, col)
    for mask, *_ in p.checks:
        idx = np.flatnonzero(mask)
        p.flagged.append((idx, _raw_cells(col, idx)))
    return p


def _parse_values(f: Field, col: RawColumn) -> _Parsed:
    floats = None  # an Arrow float64 column read as numbers: one fresh array, no pandas Series
    if isinstance(col, pa.ChunkedArray) and pa.types.is_float64(col.type):
        floats = col.to_numpy()
        if not floats.flags.writeable:
            floats = floats.copy()
        if f.kind not in ("number", "yesno"):
            col, floats = pd.Series(floats, copy=False), None
    s = col if isinstance(col, pd.Series) else None
    native = floats is not None or s is not None and _native_ok(f, s)
    n = len(col)
    if f.kind == "id":
        text = _row_text(col)
        p = _Parsed(nonblank=_nonblank(None, text), text=text)
        p.values = _string_series(text)
        p.checks.append((~p.nonblank, "empty patient_id", "error", "cell_error"))
        rounded = _rounded_ids(s) if s is not None else np.zeros(n, dtype=bool)
        p.checks.append((rounded, ID_ROUNDED, "warning", "rounded_id"))
    elif f.kind == "number":
        if floats is not None:
            p = _Parsed(nonblank=~np.isnan(floats))
            vals = floats
            bad = np.isinf(vals)
            vals[bad] = np.nan
        elif native:
            assert s is not None
            p = _Parsed(nonblank=_nonblank(s, None))
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan).copy()
            bad = np.isinf(vals)
            vals[bad] = np.nan
        else:
            text = _row_text(col)
            p = _Parsed(nonblank=_nonblank(None, text))
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
    elif floats is not None:  # yes/no as 1/0
        p = _Parsed(nonblank=~np.isnan(floats))
        yes, no = floats == 1, floats == 0
        p.values = pd.arrays.BooleanArray(yes, ~(yes | no))
        p.checks.append((~np.isnan(floats) & ~yes & ~no, YESNO_PROBLEM, "error", "cell_error"))
    elif native:
        assert s is not None
        p = _Parsed(nonblank=_nonblank(s, None))
        if f.kind == "yesno" and _is_bool(s):
            p.values = s.astype("boolean").array
            p.checks.append((np.zeros(n, dtype=bool), YESNO_PROBLEM, "error", "cell_error"))
        elif f.kind == "yesno":
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            yes, no = v == 1, v == 0
            p.values = pd.arrays.BooleanArray(yes, ~(yes | no))
            p.checks.append((~np.isnan(v) & ~yes & ~no, YESNO_PROBLEM, "error", "cell_error"))
        else:  # a date column of datetimes
            ser = s
            if getattr(ser.dt, "tz", None) is not None:
                ser = ser.dt.tz_localize(None)
            p.values = ser.dt.normalize().to_numpy(dtype="datetime64[ns]")
    else:
        d = _distinct(col)
        p = _Parsed(nonblank=d.nonblank)
        _parse_text(f, d, p)
    return p


def _parse_text(f: Field, d: Distinct, p: _Parsed) -> None:
    """A text column of one of the kinds read by spelling: each distinct value is read once."""
    if f.kind == "yesno":
        p.values, bad = nz.yesno_rows(d)
        p.checks.append((bad, YESNO_PROBLEM, "error", "cell_error"))
    elif f.kind == "category":
        p.values, bad = nz.category_rows(d, f.categories, nz.CATEGORY_SYNONYMS.get(f.name))
        p.checks.append((bad, f"not one of {', '.join(f.categories)}", "error", "cell_error"))
    elif f.kind == "disease":
        p.values, unrec = nz.disease_rows(d)
        p.checks.append((~p.nonblank, "empty disease: DX-1 cannot be decided, the patient is pending",
                         "error", "cell_error"))
        p.checks.append(
            (unrec, f"not a trial indication ({', '.join(DISEASES)}); kept as given, fails DX-1",
             "info", "unrecognised_disease")
        )
    elif f.kind == "date":
        p.values, bad = nz.date_rows(d)
        p.checks.append((bad, "not a date (use YYYY-MM-DD)", "error", "cell_error"))
    elif f.kind == "druglist":
        vals, count, unknown_drugs = nz.druglist_rows(d)
        mask = np.zeros(len(d), dtype=bool)
        mask[list(unknown_drugs)] = True

        def drug_problem(i, _v, unknown_drugs=unknown_drugs):
            return f"unrecognised drug name(s): {', '.join(unknown_drugs[i])}; not counted"

        p.checks.append((mask, drug_problem, "warning", "unrecognised_drug"))
        p.values = vals
        p.extra["n_prior_immunomodulators"] = count
    else:  # pragma: no cover - every contract kind is handled above
        raise AssertionError(f.kind)


def _extra_nonblank(col: RawColumn) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray) and pa.types.is_float64(col.type):
        return ~np.isnan(col.to_numpy())
    if isinstance(col, pa.ChunkedArray) or _is_plain_string(col) or col.dtype == object:
        return _distinct(col).nonblank
    return col.notna().to_numpy(dtype=bool)


def _take(values, keep: np.ndarray | None):
    if keep is None:
        return values
    if isinstance(values, pd.Series):
        return values[keep].reset_index(drop=True)
    return values[keep]


@dataclass
class _Raw:
    """A file's columns as read, by position (duplicate labels stay separate columns).
    `_validate` drops each column once it has been parsed."""

    labels: list
    columns: list[RawColumn | None]
    n_rows: int

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> _Raw:
        cols: list[RawColumn | None] = [frame.iloc[:, i].reset_index(drop=True) for i in range(frame.shape[1])]
        return cls(list(frame.columns), cols, len(frame))

    def take(self, pos: int) -> RawColumn:
        col = self.columns[pos]
        assert col is not None, "column already parsed and released"
        return col


def _validate(raw: _Raw, source: str, pre: list[Issue], prog: Progress) -> Cohort:
    issues: list[Issue] = list(pre)
    n_raw = raw.n_rows
    where = source or "input"

    # --- headers ---------------------------------------------------------
    labels = [_clean_label(c) for c in raw.labels]
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
        if not label and not _extra_nonblank(raw.take(pos)).any():
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
        found = ", ".join(repr(shorten(x, 40)) for x in labels[:8]) + (" …" if len(labels) > 8 else "")
        raise CohortError(
            f"{where}: missing required column(s): {', '.join(missing_req)}"
            f" (columns found: {found or 'none'})"
        )

    # --- parse every column over all raw rows (threads: pyarrow/numpy release the GIL)
    order = sorted(mapping)
    parsed: dict[int, _Parsed] = {}
    nonblank = np.zeros(n_raw, dtype=bool)
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futures = {pos: ex.submit(_parse_field, FIELD_BY_NAME[mapping[pos]], raw.take(pos)) for pos in order}
        for k, pos in enumerate(order):
            parsed[pos] = futures[pos].result()
            del futures[pos]
            raw.columns[pos] = None  # parsed: the raw column is no longer needed
            nonblank |= parsed[pos].nonblank
            if k % 16 == 15:
                prog(0.3 + 0.5 * (k + 1) / len(order), "parsing columns")
        # a row with a value in a contract column is not empty whatever the other columns hold
        if not nonblank.all():
            for blank_in in ex.map(_extra_nonblank, [raw.take(pos) for pos in extra_pos]):
                nonblank |= blank_in
    raw.columns = []
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
    assert id_text is not None  # _parse_field keeps the text of the patient_id column
    ids_all: pd.Series = parsed[id_pos].values
    # one hash pass (cheaper than `duplicated`) tells whether there is anything to name
    if len(pc.unique(id_text)) < len(id_text) - max(id_text.null_count - 1, 0):
        dup = ids_all.duplicated(keep=False) & ids_all.notna()
        rows_of: dict[str, list[int]] = {}
        for i in np.flatnonzero(dup.to_numpy(bool)).tolist():
            rows_of.setdefault(ids_all.iloc[i], []).append(i + 1)
        raise CohortError(duplicate_ids_message(where, rows_of, len(rows_of)))

    # --- cell issues (only for offending cells) -----------------------------
    cell_issues: list[tuple[int, int, Issue]] = []
    for pos in order:
        name = mapping[pos]
        for (_mask, problem, severity, kind), (rows, cells) in zip(
                parsed[pos].checks, parsed[pos].flagged, strict=True):
            # An empty row is reported once as such, not once per column.
            in_row = nonblank[rows]
            idx = rows[in_row]
            if not len(idx):
                continue
            values = [c for c, k in zip(cells, in_row.tolist(), strict=True) if k]
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
    frame = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)  # the arrays are ours: no second copy

    present = frozenset(mapping.values())
    issues.extend(absent_column_issues(present))

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
