"""Where the cohort lives: raw tables for DuckDB (Parquet/CSV scanned in place, a .duckdb
table) and Spark, each with a 1-based input row number (`__row`) so that results keep
input order even when the engine scans in parallel. Also: an already-typed pandas
frame (the loader's, or a test's) pushed into an engine as a typed table."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from ..columns import disease_groups
from ..fields import FIELD_BY_NAME
from ..loader import CohortError
from .compile import GROUP, ROW, UNREADABLE

_names = itertools.count()


def _temp_name(prefix: str) -> str:
    return f"__elig_{prefix}_{next(_names)}"


@dataclass(frozen=True)
class Input:
    """A parsed INPUT argument: a file, a folder of Parquet files, or `duckdb:PATH?table=NAME`."""

    kind: str  # parquet, parquet_dir, csv, xlsx, duckdb
    path: Path
    table: str | None = None
    sheet: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.table}" if self.table else self.path.name


def register(con, expr: ir.Table | str, materialize: bool = False) -> ir.Table:
    """Name a query in the engine and return the named table: a view (re-read on each
    use), or with `materialize` a temp table (Spark: a cached view). Later queries refer
    to it by name, so ibis does not inline and recompile its expressions."""
    name = _temp_name("q")
    sql = expr if isinstance(expr, str) else con.compile(expr)
    if con.name == "pyspark":
        df = con._session.sql(sql)
        (df.cache() if materialize else df).createOrReplaceTempView(name)
    elif materialize:
        con.raw_sql(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    else:
        con.raw_sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
    return con.table(name)


def parse_input(text: str) -> Input:
    if text.startswith("duckdb:"):
        rest = text[len("duckdb:"):]
        path, _, query = rest.partition("?")
        table = parse_qs(query).get("table", [None])[0]
        p = Path(path)
        if not p.is_file():
            raise CohortError(f"{p.name}: cannot read file (no such DuckDB database)")
        return Input("duckdb", p, table or "cohort")
    p = Path(text)
    if p.is_dir():
        if not any(p.glob("*.parquet")):
            raise CohortError(f"{p.name}: the folder holds no .parquet files")
        return Input("parquet_dir", p)
    ext = p.suffix.lower()
    kind = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".txt": "csv", ".tsv": "csv",
            ".xlsx": "xlsx", ".xlsm": "xlsx", ".duckdb": "duckdb"}.get(ext)
    if kind is None:
        raise CohortError(f"{p.name}: unsupported file type {ext or '(no extension)'!r}; "
                          "use .csv, .parquet, .xlsx or duckdb:PATH?table=NAME")
    if not p.exists():
        raise CohortError(f"{p.name}: cannot read file (No such file or directory)")
    return Input(kind, p, "cohort" if kind == "duckdb" else None)


def _sql_str(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


SMALL_CSV_BYTES = 256 << 20  # below this the loader's own CSV reader (header search, GBK) is used


def raw_table(con, src: Input, pre: list | None = None) -> ir.Table:
    """The file's columns as the engine reads them, plus ROW (1-based input order).
    Notes the reader's own remarks (header line skipped, encoding) in `pre`."""
    pre = [] if pre is None else pre
    if con.name == "pyspark":
        return _spark_raw(con, src, pre)
    name = _temp_name("raw")
    try:
        if src.kind == "parquet":
            sql = (f"SELECT file_row_number + 1 AS {ROW}, * EXCLUDE (file_row_number) "
                   f"FROM read_parquet({_sql_str(src.path)}, file_row_number = true)")
            con.raw_sql(f"CREATE TEMP VIEW {name} AS {sql}")
        elif src.kind == "parquet_dir":
            files = sorted(str(f) for f in src.path.glob("*.parquet"))
            listing = "[" + ", ".join(_sql_str(f) for f in files) + "]"
            sql = (f"SELECT row_number() OVER (ORDER BY filename, file_row_number) AS {ROW}, "
                   f"* EXCLUDE (filename, file_row_number) FROM read_parquet({listing}, "
                   f"filename = true, file_row_number = true)")
            con.raw_sql(f"CREATE TEMP VIEW {name} AS {sql}")
        elif src.kind == "csv" and src.path.stat().st_size < SMALL_CSV_BYTES:
            return frame_raw(con, _csv_frame(src.path, pre))
        elif src.kind == "csv":
            con.raw_sql(f"CREATE TEMP TABLE {name}_t AS SELECT * FROM read_csv({_sql_str(src.path)}, "
                        f"all_varchar = true, header = true, auto_detect = true)")
            con.raw_sql(f"CREATE TEMP VIEW {name} AS SELECT rowid + 1 AS {ROW}, * FROM {name}_t")
        elif src.kind == "duckdb":
            con.raw_sql(f"ATTACH IF NOT EXISTS {_sql_str(src.path)} AS __elig_src (READ_ONLY)")
            con.raw_sql(f"CREATE TEMP VIEW {name} AS SELECT rowid + 1 AS {ROW}, * "
                        f"FROM __elig_src.{_quote(src.table or '')}")
        elif src.kind == "xlsx":
            return frame_raw(con, _xlsx_frame(src.path, pre, src.sheet))
        else:  # pragma: no cover
            raise AssertionError(src.kind)
    except CohortError:
        raise
    except Exception as e:  # noqa: BLE001 - any engine error reading the input is a bad file
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise CohortError(f"{src.name}: not readable ({first})") from None
    return con.table(name)


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _xlsx_frame(path: Path, pre: list | None = None, sheet=None) -> pd.DataFrame:
    from ..loader import _read_xlsx

    body, issues = _read_xlsx(path.read_bytes(), path.name, sheet)
    if pre is not None:
        pre.extend(issues)
    return body


def _csv_frame(path: Path, pre: list) -> pd.DataFrame:
    from ..loader import _read_csv

    data = path.read_bytes()
    if not data:
        raise CohortError(f"{path.name}: the file is empty")
    body, issues = _read_csv(data, path.name)
    pre.extend(issues)
    return body


def frame_raw(con, frame: pd.DataFrame) -> ir.Table:
    """A raw pandas frame (e.g. an xlsx sheet) as text columns plus ROW."""
    from ..loader import _cell_text, _is_plain_string

    data = {ROW: pa.array(np.arange(1, len(frame) + 1, dtype=np.int64))}
    for i, c in enumerate(frame.columns):
        label = str(c) if str(c) not in data else f"{c}__{i}"
        s = frame.iloc[:, i]
        if _is_plain_string(s):
            arr = pa.array(s, from_pandas=True)
            data[label] = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
        else:
            data[label] = pa.array([_cell_text(v) for v in s.astype(object)], type=pa.string())
    return _register(con, pa.table(data))


def _register(con, table: pa.Table) -> ir.Table:
    name = _temp_name("mem")
    if con.name == "pyspark":
        con._session.createDataFrame(table).createOrReplaceTempView(name)
        return con.table(name)
    con.con.register(name, table)
    return con.table(name)


def _spark_raw(con, src: Input, pre: list) -> ir.Table:
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    session = con._session
    if src.kind in ("parquet", "parquet_dir"):
        df = session.read.parquet(str(src.path))
    elif src.kind == "csv" and src.path.stat().st_size < SMALL_CSV_BYTES:
        return frame_raw(con, _csv_frame(src.path, pre))
    elif src.kind == "csv":
        df = session.read.option("header", True).option("inferSchema", False).csv(str(src.path))
    elif src.kind == "xlsx":
        return frame_raw(con, _xlsx_frame(src.path, pre, src.sheet))
    else:
        raise CohortError(f"{src.name}: the spark engine reads Parquet or CSV, not {src.kind}")
    # Spark reads a single file's splits in order: the increasing id follows the file.
    if src.kind == "parquet_dir":
        df = df.withColumn("__file", F.input_file_name())
    df = df.withColumn("__mid", F.monotonically_increasing_id())
    w = Window.orderBy(*([F.col("__file")] if src.kind == "parquet_dir" else []), F.col("__mid"))
    df = df.withColumn(ROW, F.row_number().over(w).cast("long")).drop("__mid")
    if "__file" in df.columns:
        df = df.drop("__file")
    name = _temp_name("raw")
    df.createOrReplaceTempView(name)
    return con.table(name)


def typed_from_frame(con, frame: pd.DataFrame, unreadable: dict[str, np.ndarray] | None = None,
                     blank: np.ndarray | None = None) -> ir.Table:
    """A typed cohort frame (loader output or tests' factory) as a typed engine table;
    `blank` rows (kept empty spreadsheet rows) are the 'empty' group, as in memory."""
    n = len(frame)
    data: dict[str, pa.Array] = {ROW: pa.array(np.arange(1, n + 1, dtype=np.int64))}
    for name in frame.columns:
        s = frame[name]
        kind = FIELD_BY_NAME[name].kind if name in FIELD_BY_NAME else "number"
        if kind == "number":
            data[name] = pa.array(pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan),
                                  from_pandas=True)
        elif kind == "yesno":
            data[name] = pa.array(s.astype("boolean"), type=pa.bool_(), from_pandas=True)
        elif kind == "date":
            data[name] = pa.array(pd.to_datetime(s), from_pandas=True)
        else:
            data[name] = pa.array(s.astype("string").astype(object).where(s.notna(), None).tolist(),
                                  type=pa.string())
    for name, mask in (unreadable or {}).items():
        if name in frame.columns and FIELD_BY_NAME.get(name) and FIELD_BY_NAME[name].kind == "number":
            data[UNREADABLE + name] = pa.array(np.asarray(mask, bool))
    disease = frame["disease"] if "disease" in frame else pd.Series([None] * n, dtype="string")
    data[GROUP] = pa.array(disease_groups(disease, blank), pa.int8())
    return _register(con, pa.table(data))
