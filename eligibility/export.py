"""The one CSV writer: every CSV this project writes is safe to open in a spreadsheet.

`screen -o/--report`, `synth --injections` and every dashboard download go through
`to_csv_bytes` / `write_csv`. A text cell a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return, also after leading spaces)
is prefixed with a quote; a plain number written as text ("-5", "+3.2e1") is left
as it is, since a spreadsheet reads it as that number and runs nothing.
Column names are treated the same way.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA = r"^[ \t\r\n]*[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_FORMULA_RE = re.compile(_FORMULA)
_PLAIN_NUMBER_RE = re.compile(_PLAIN_NUMBER)


def neutralise(value):
    """Prefix a text cell that a spreadsheet would run as a formula with a quote."""
    if isinstance(value, str) and _FORMULA_RE.match(value) and not _PLAIN_NUMBER_RE.match(value):
        return "'" + value
    return value


def excel_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns with formula-like cells neutralised; numbers untouched."""
    out = frame.copy()
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype | pd.CategoricalDtype) or (
            isinstance(s.dtype, pd.ArrowDtype) and s.dtype.kind in "OSU"
        ):
            text = s.astype("string")
            mask = (text.str.match(_FORMULA) & ~text.str.match(_PLAIN_NUMBER)).fillna(False).to_numpy(bool)
            if mask.any():
                out.isetitem(i, text.where(~mask, "'" + text))
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with BOM so Excel shows non-ASCII text (e.g. Chinese names) correctly; CRLF line
    ends (RFC 4180), so that a cell holding a bare carriage return is quoted, not a row break."""
    buf = io.StringIO()
    excel_safe(frame).to_csv(buf, index=False, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8-sig")


def csv_rows_bytes(frame: pd.DataFrame) -> bytes:
    """The rows of `frame` without header or BOM, written exactly as `to_csv_bytes` writes
    them: for CSV files written a batch at a time after a `to_csv_bytes` header."""
    buf = io.StringIO()
    excel_safe(frame).to_csv(buf, index=False, header=False, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8")


CSV_CHUNK_ROWS = 1 << 16


def _write_text_rows(writer, columns: list) -> None:
    """Rows of Arrow string arrays, CSV_CHUNK_ROWS at a time: only one slice's cells exist
    as Python strings at once (as pandas' to_csv works in chunks)."""
    n, chunk = (len(columns[0]) if columns else 0), CSV_CHUNK_ROWS
    for start in range(0, n, chunk):
        writer.writerows(zip(*(_safe_cells(c.slice(start, chunk)) for c in columns), strict=True))


def text_table_csv_rows(table) -> bytes:
    """`csv_rows_bytes` of an Arrow table's rows. When every column is text (the database
    engine's result batches), the rows go straight to the csv module, which is what pandas'
    to_csv calls with these values (same dialect, so the same bytes; tested), skipping the
    pandas frame and ~3/4 of the writing time."""
    import pyarrow as pa

    cols = []
    for c in table.columns:
        c = c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
        if pa.types.is_dictionary(c.type):
            c = c.dictionary_decode()
        if not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type) or pa.types.is_null(c.type)):
            return csv_rows_bytes(table.to_pandas())
        cols.append(c)
    buf = io.StringIO()
    _write_text_rows(csv.writer(buf, lineterminator="\r\n"), cols)
    return buf.getvalue().encode("utf-8")


def _safe_cells(col) -> list:
    """A text column's cells as Python values, formula-like ones neutralised: the formula
    test runs in Arrow over the column, and `neutralise` only on the cells it picks."""
    import numpy as np
    import pyarrow.compute as pc

    values = col.to_pylist()
    if len(col) and col.null_count < len(col):
        hit = pc.match_substring_regex(col, _FORMULA).fill_null(False).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(hit).tolist():
            values[i] = neutralise(values[i])
    return values


def write_csv(frame: pd.DataFrame, path) -> Path:
    """Write `frame` as an Excel-safe UTF-8 CSV (raises OSError as open() does)."""
    path = Path(path)
    path.write_bytes(to_csv_bytes(frame))
    return path


def write_arrow(table, path, *, batch_rows: int = 1_000_000) -> Path:
    """Write an Arrow table as Parquet or as an Excel-safe CSV, a slice at a time, so that
    tens of millions of rows never exist as one pandas frame or one decoded copy."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".csv":
        # dictionary columns are written as plain text, one slice (row group) at a time: the
        # Parquet writer then dictionary-encodes each row group's own values, instead of
        # writing a huge shared dictionary per row group or falling back when chunks differ
        def plain(t):
            return t.value_type if pa.types.is_dictionary(t) else t

        schema = pa.schema([pa.field(f.name, plain(f.type)) for f in table.schema])
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, max(table.num_rows, 1), batch_rows):
                part = table.slice(start, batch_rows)
                writer.write_table(pa.table([pc.cast(c, plain(c.type)) for c in part.columns], schema=schema))
        return path
    with path.open("wb") as out:
        out.write(to_csv_bytes(table.slice(0, 0).to_pandas()))
        for batch in table.to_batches(max_chunksize=batch_rows):
            out.write(text_table_csv_rows(pa.Table.from_batches([batch])))
    return path


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
