"""Arrow tables of text (the database engine's result batches) are written by the csv module
directly; the bytes must be exactly those of the general path (excel_safe + pandas to_csv)."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility import export
from eligibility.export import excel_safe, text_table_csv_rows, to_csv_bytes

TRICKY = ["", " ", "=1+1", " =cmd", "\t=x", "\r", "\n-2", "-5", "+3.2e1", "-5\n", "-٣", "@SUM(A1)", "a,b",
          'say "hi"', "line\nbreak", "cr\rhere", "抗磷脂综合征", "'=already", "INC-1;EXC-2.hb", "56/56", "+", "-"]
cell = st.one_of(st.sampled_from(TRICKY), st.text(max_size=8), st.none())


def _chunks_of(n: int) -> None:
    export.CSV_CHUNK_ROWS = n  # module constant, restored by the autouse fixture


@pytest.fixture(autouse=True)
def _restore_chunk():
    saved = export.CSV_CHUNK_ROWS
    yield
    export.CSV_CHUNK_ROWS = saved


def _general(frame: pd.DataFrame, header: bool) -> bytes:
    buf = io.StringIO()
    excel_safe(frame).to_csv(buf, index=False, header=header, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8-sig" if header else "utf-8")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(cell, cell), max_size=12), st.booleans())
def test_arrow_text_tables_are_written_as_their_pandas_frame(rows, dictionary):
    _chunks_of(3)
    a = pa.array([r[0] for r in rows], pa.string())
    b = pa.array([r[1] for r in rows], pa.string())
    table = pa.table({"patient_id": a.dictionary_encode() if dictionary else a, "failed": b})
    assert text_table_csv_rows(table) == _general(table.to_pandas(), False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell), max_size=20))
def test_three_kinds_of_text_column_in_one_table(rows):
    _chunks_of(7)
    a = pa.array([r[0] for r in rows], pa.string())
    table = pa.table({"=id": a.dictionary_encode(), "failed": pa.array([r[1] for r in rows], pa.large_string()),
                      "unknown": pa.array([r[2] for r in rows], pa.string()),
                      "not_assessed": pa.nulls(len(rows), pa.string())})
    assert text_table_csv_rows(table) == _general(table.to_pandas(), False)


def test_tables_with_numbers_keep_the_general_path():
    numbers = pa.table({"id": pa.array(["=x", "y"]), "n": pa.array([1, None], pa.int64())})
    assert text_table_csv_rows(numbers) == _general(numbers.to_pandas(), False)
    assert text_table_csv_rows(pa.table({"id": pa.nulls(3)})) == _general(pa.table({"id": pa.nulls(3)}).to_pandas(), False)


def test_a_formula_is_neutralised_and_a_number_written_as_text_is_not():
    table = pa.table({"patient_id": ["=HYPERLINK(\"x\")", "-5", " @x", "P-1", None]})
    # a row of one empty cell is written as "" (the csv module's way of telling it from no row)
    expected = ["\"'=HYPERLINK(\"\"x\"\")\"", "-5", "' @x", "P-1", '""', ""]
    assert text_table_csv_rows(table).decode().split("\r\n") == expected
    assert to_csv_bytes(table.to_pandas()).decode("utf-8-sig").split("\r\n")[1:] == expected
