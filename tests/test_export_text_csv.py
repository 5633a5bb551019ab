"""Text-only frames and Arrow tables are written by the csv module directly; the bytes must be
exactly those of the general path (excel_safe + pandas to_csv) on any text."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.export import _text_columns, csv_rows_bytes, excel_safe, text_table_csv_rows, to_csv_bytes

TRICKY = ["", " ", "=1+1", " =cmd", "\t=x", "\r", "\n-2", "-5", "+3.2e1", "-5\n", "-٣", "@SUM(A1)", "a,b",
          'say "hi"', "line\nbreak", "cr\rhere", "抗磷脂综合征", "'=already", "INC-1;EXC-2.hb", "56/56", "+", "-"]
cell = st.one_of(st.sampled_from(TRICKY), st.text(max_size=8), st.none())
missing = st.sampled_from([None, np.nan, pd.NA])


def _general(frame: pd.DataFrame, header: bool) -> bytes:
    buf = io.StringIO()
    excel_safe(frame).to_csv(buf, index=False, header=header, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8-sig" if header else "utf-8")


@st.composite
def text_frames(draw):
    k = draw(st.integers(1, 4))
    n = draw(st.integers(0, 12))
    names = draw(st.lists(st.sampled_from(["patient_id", "=name", "failed", "a,b", "x"]), min_size=k, max_size=k))
    cols = {}
    for j in range(k):
        values = draw(st.lists(st.one_of(cell, missing), min_size=n, max_size=n))
        dtype = draw(st.sampled_from([object, "string"]))
        cols[j] = pd.Series(values, dtype=dtype) if dtype == "string" else pd.Series(values, dtype=object)
    frame = pd.DataFrame(cols)
    frame.columns = names
    return frame


@settings(max_examples=150, deadline=None)
@given(text_frames())
def test_text_frames_are_written_byte_for_byte_as_the_general_path(frame):
    assert _text_columns(frame) is not None  # the csv-module path, not the fallback
    assert to_csv_bytes(frame) == _general(frame, True)
    assert csv_rows_bytes(frame) == _general(frame, False)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(cell, cell), max_size=12), st.booleans())
def test_arrow_text_tables_are_written_as_their_pandas_frame(rows, dictionary):
    a = pa.array([r[0] for r in rows], pa.string())
    b = pa.array([r[1] for r in rows], pa.string())
    table = pa.table({"patient_id": a.dictionary_encode() if dictionary else a, "failed": b})
    assert text_table_csv_rows(table) == _general(table.to_pandas(), False)


def test_frames_with_numbers_dates_or_bytes_keep_the_general_path():
    mixed = pd.DataFrame({"a": ["=1", None], "n": [1.5, np.nan], "d": pd.to_datetime(["2024-01-02", None]),
                          "o": [b"=raw", 3]})
    assert _text_columns(mixed) is None and _text_columns(mixed[["o"]]) is None
    assert to_csv_bytes(mixed) == _general(mixed, True)
    numbers = pa.table({"id": pa.array(["=x", "y"]), "n": pa.array([1, None], pa.int64())})
    assert text_table_csv_rows(numbers) == _general(numbers.to_pandas(), False)


def test_a_formula_is_neutralised_and_a_number_written_as_text_is_not():
    frame = pd.DataFrame({"patient_id": ["=HYPERLINK(\"x\")", "-5", " @x", "P-1"]})
    assert to_csv_bytes(frame).decode("utf-8-sig").split("\r\n") == [
        "patient_id", "\"'=HYPERLINK(\"\"x\"\")\"", "-5", "' @x", "P-1", ""]
