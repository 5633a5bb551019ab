"""The loader reads a text column's distinct values once and spreads them over the rows:
the result must be what reading every cell on its own gives, for any column."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility import distinct
from eligibility import normalize as nz
from eligibility.fields import FIELD_BY_NAME
from eligibility.loader import _cell_text, _distinct, _parse_field

# Spellings that read, spellings that do not, blanks, odd whitespace and encodings.
POOL = [
    None, "", " ", "\t", "\xa0", "\u3000", "\x1c", "\u200b",
    "yes", " Yes ", "Y", "n", "NO", "1", "0", "1.0", "0.0", "true", "\xa0false\xa0", "yess", "2", "maybe",
    "F", " m ", "female", "Male", "女", "X", "unknown",
    "SSc", "ssc", "systemic  sclerosis", "GPA", "Sjögren", "lupus", "apl",
    "2024-01-05", "2024/1/5", "2024.01.05 10:00", "2024-02-30", "1899-12-31", "2024-1-5T10:00:00.5", "yesterday",
    "MTX", "mtx; HCQ", "利妥昔单抗、MMF", "none", "无", "foo;MMF", "x;;y", ",", "tai’ai", "TAI`AI", "cyclosporin  a",
    "limited", "diffuse", "relapsed", "refractory", "low", "INTERMEDIATE", "PM", "dm",
    "é", "\ufeffyes", "'quoted'", '"q"', "=1+1",
    "12", " 7 ", "1e2", "12,5", "-3", "inf", "nan", ".5", "5.", "+4.5", "1 000", "85 g/L",
]
cells = st.one_of(st.sampled_from(POOL), st.text(max_size=6))
FIELDS_TESTED = ["hiv_pos", "sex", "ph_risk", "disease_course", "disease", "screening_date",
                 "prior_immunomodulators"]


def _arrow_column(values: list, cuts: list[int], as_dict: bool, large: bool) -> pa.ChunkedArray:
    t = pa.large_string() if large else pa.string()
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    chunks = [pa.array(values[a:b], type=t) for a, b in zip(bounds, bounds[1:], strict=False)]
    if as_dict:  # a dictionary per chunk, as a Parquet file with several row groups gives
        chunks = [c.dictionary_encode() for c in chunks]
    return pa.chunked_array(chunks, type=pa.dictionary(pa.int32(), t) if as_dict else t)


@st.composite
def columns(draw):
    """(raw column in one of the forms the readers hand over, the raw cells, how a cell is cleaned)."""
    values = draw(st.lists(cells, min_size=1, max_size=30))
    form = draw(st.sampled_from(["arrow", "arrow_dict", "arrow_large", "str", "object", "category"]))
    if form.startswith("arrow"):
        cuts = draw(st.lists(st.integers(0, 30), max_size=3))
        col = _arrow_column(values, cuts, form == "arrow_dict", form == "arrow_large")
        return col, values, "trim"
    if form == "str":
        return pd.Series(values, dtype="str"), values, "trim"
    if form == "object":  # a spreadsheet column: text mixed with numbers
        values = [draw(st.sampled_from([1, 0, 2.0, 1.5, True])) if v == "2" else v for v in values]
        return pd.Series(values, dtype=object), values, "cell"
    return pd.Series(values, dtype="category"), values, "cell"


def clean(v, how: str) -> str | None:
    """One cell as the loader cleans it, on its own."""
    if how == "cell":
        return _cell_text(v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    text = pc.utf8_trim_whitespace(pa.array([v], type=pa.string()))[0].as_py()
    return text or None


def one(text: str | None) -> pa.Array:
    return pa.array([text], type=pa.string())


def same(a, b) -> bool:
    if a is pd.NA or b is pd.NA or a is None or b is None:
        return (a is pd.NA or a is None) and (b is pd.NA or b is None)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, np.datetime64) or isinstance(b, np.datetime64):
        return bool((np.isnat(a) and np.isnat(b)) or a == b)
    return a == b


def reference(name: str, text: str | None) -> tuple[list, list[bool]]:
    """(values, the cell's check flags) from the per-row parsers on this one cell."""
    f = FIELD_BY_NAME[name]
    t = one(text)
    if f.kind == "yesno":
        vals, bad = nz.parse_yesno(t)
        return [vals[0]], [bool(bad[0])]
    if f.kind == "category":
        cat, bad = nz.parse_category(t, f.categories, nz.CATEGORY_SYNONYMS.get(name))
        return [cat[0]], [bool(bad[0])]
    if f.kind == "disease":
        vals, unrec = nz.parse_disease(t)
        return [vals[0]], [text is None, bool(unrec[0])]
    if f.kind == "date":
        vals, bad = nz.parse_date(t)
        return [vals[0]], [bool(bad[0])]
    vals, count, unknown = nz.parse_druglist(t)
    return [vals[0], count[0], unknown.get(0)], [0 in unknown]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns(), st.sampled_from(["hemoglobin_g_l", "patient_id"]))
def test_per_row_text_path_equals_reading_each_cell(case, name):
    """Numbers and IDs are read per row (almost every value differs): the same check, cell by cell."""
    col, values, how = case
    p = _parse_field(FIELD_BY_NAME[name], col)
    for i, v in enumerate(values):
        text = clean(v, how)
        assert bool(p.nonblank[i]) == (text is not None)
        if name == "patient_id":
            assert same(p.values[i], text)
            assert bool(p.checks[0][0][i]) == (text is None)
            continue
        vals, bad = nz.parse_number(one(text))
        assert same(float(p.values[i]), float(vals[0])) and bool(p.checks[0][0][i]) == bool(bad[0]), (v, p.values[i])
    for (mask, *_), (rows, raw) in zip(p.checks, p.flagged, strict=True):
        assert rows.tolist() == np.flatnonzero(mask).tolist()
        assert raw == [_cell_text(values[r]) for r in rows.tolist()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns())
def test_distinct_codes_give_back_every_cleaned_cell(case):
    col, values, how = case
    d = _distinct(col)
    expected = [clean(v, how) for v in values]
    assert d.text().to_pylist() == expected
    assert d.nonblank.tolist() == [e is not None for e in expected]
    assert pc.all(pc.not_equal(d.values, "")).as_py() in (True, None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns(), st.sampled_from(FIELDS_TESTED))
def test_distinct_path_equals_reading_each_cell(case, name):
    col, values, how = case
    p = _parse_field(FIELD_BY_NAME[name], col)
    assert len(p.checks) == len(p.flagged)
    for i, v in enumerate(values):
        text = clean(v, how)
        ref_values, ref_flags = reference(name, text)
        got = [p.values[i]] if name != "prior_immunomodulators" else [p.values[i], p.extra[
            "n_prior_immunomodulators"][i]]
        assert all(same(a, b) for a, b in zip(got, ref_values, strict=False)), (v, got, ref_values)
        assert bool(p.nonblank[i]) == (text is not None)
        flags = [bool(mask[i]) for mask, *_ in p.checks]
        assert flags == ref_flags, (v, flags, ref_flags)
        if name == "prior_immunomodulators" and ref_flags[0]:
            problem = p.checks[0][1]
            assert callable(problem)
            assert problem(i, text) == f"unrecognised drug name(s): {', '.join(ref_values[2])}; not counted"
    # the report names each flagged cell with its raw value, as the file has it
    for (mask, *_), (rows, raw) in zip(p.checks, p.flagged, strict=True):
        assert rows.tolist() == np.flatnonzero(mask).tolist()
        assert raw == [_cell_text(values[r]) for r in rows.tolist()]


def test_dtypes_of_the_distinct_path():
    col = pa.chunked_array([pa.array(["yes", None, " F ", "2024-01-02", "MTX"])])
    kinds = {"hiv_pos": "boolean", "sex": "category", "disease": "string", "screening_date": "datetime64[ns]",
             "prior_immunomodulators": "string"}
    for name, dtype in kinds.items():
        values = _parse_field(FIELD_BY_NAME[name], col).values
        assert str(getattr(values, "dtype", None)) == dtype, (name, values)


@pytest.mark.parametrize("cuts", [[], [2], [1, 3]])
def test_chunks_with_their_own_dictionaries_share_one(cuts):
    col = _arrow_column(["b", "a", " a", None, "b"], cuts, as_dict=True, large=False)
    d = distinct.from_strings(col)
    assert d.text().to_pylist() == ["b", "a", "a", None, "b"]
    assert d.codes.dtype == np.int32 and d.codes[3] == distinct.BLANK
