"""The engine's faster primitives equal their plain definitions, on random data including
missing values, masked cells holding either value, and ties at the rounded limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.columns import Columns
from eligibility.rules import compare, compare_row_uln, uln_limit

OPS = ["ge", "gt", "le", "lt"]
# Values that make ties with a rounded ×ULN limit likely (1.5 × 1.2 = 1.8 only after rounding).
NICE = [np.nan, 0.0, 1.0, 1.2, 1.3, 1.5, 1.8, 1.95, 4.1, 12.3, 12.31, 18.45, 30.0, 40.0, 50.0, 120.0, 150.0]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.sampled_from(NICE) | st.floats(-1e3, 1e3), min_size=1, max_size=60),
    ulns=st.lists(st.sampled_from(NICE) | st.floats(0.01, 1e3), min_size=60, max_size=60),
    op=st.sampled_from(OPS),
    multiple=st.sampled_from([1.0, 1.5, 2.0, 3.0, 5.0, 1.1, 2.5]) | st.floats(0.1, 20),
    default=st.sampled_from([1.0, 1.2, 1.3, 40.0, 50.0, 12.3]) | st.floats(0.01, 500),
)
def test_row_uln_comparison_equals_the_rounded_limit(values, ulns, op, multiple, default):
    x = np.array(values, np.float64)
    u = np.array(ulns[: len(values)], np.float64)
    expected = compare(x, op, uln_limit(multiple, u, default))
    got = compare_row_uln(x, op, multiple, u.copy(), default)
    np.testing.assert_array_equal(got, expected)


def test_row_uln_without_any_missing_uln_and_all_missing():
    x = np.array([1.8, 1.81, np.nan, 3.6])
    for u in (np.array([1.2, 1.2, 1.2, 2.4]), np.full(4, np.nan)):
        for op in OPS:
            np.testing.assert_array_equal(compare_row_uln(x, op, 1.5, u, 1.2), compare(x, op, uln_limit(1.5, u, 1.2)))
    # The rounding decides the tie: 1.5 × 1.2 is 1.7999999999999998 before it.
    assert compare_row_uln(np.array([1.8]), "le", 1.5, np.array([1.2]), 1.0)[0] == 2
    assert compare_row_uln(np.array([1.8]), "le", 1.5, np.array([np.nan]), 1.2)[0] == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=80))
def test_yes_no_truth_codes_whatever_a_masked_cell_holds(cells):
    data = np.array([v for v, _ in cells], bool)
    mask = np.array([m for _, m in cells], bool)
    frame = pd.DataFrame({"hbsag_pos": pd.arrays.BooleanArray(data, mask)})
    codes = Columns(frame, ["hbsag_pos"])._kleene_raw("hbsag_pos")
    expected = [1 if m else (2 if v else 0) for v, m in cells]
    np.testing.assert_array_equal(codes, np.array(expected, np.uint8))
    assert codes.dtype == np.uint8


def _groups_one_by_one(values: list, blank: np.ndarray) -> np.ndarray:
    from eligibility.columns import EMPTY_ROW, MISSING_DISEASE, OTHER_DISEASE
    from eligibility.fields import DISEASES

    out = []
    for v, b in zip(values, blank, strict=True):
        if v is None:
            out.append(EMPTY_ROW if b else MISSING_DISEASE)
        else:
            out.append(DISEASES.index(v) if v in DISEASES else OTHER_DISEASE)
    return np.array(out, np.int8)


@settings(max_examples=150, deadline=None)
@given(
    cells=st.lists(st.tuples(st.sampled_from(["SSc", "IIM", "AAV", "SjS", "APS", "ssc", "SSc ", "", "other", None]),
                             st.booleans()), max_size=40),
    dtype=st.sampled_from(["str", "string", "object", "large_string", "category"]),
)
def test_disease_groups_equal_one_by_one(cells, dtype):
    import pyarrow as pa

    from eligibility.columns import disease_groups

    values = [v for v, _ in cells]
    blank = np.array([b for _, b in cells], bool)
    if dtype == "large_string":
        series = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(values, pa.large_string())])))
    else:
        series = pd.Series(values, dtype=dtype)
    np.testing.assert_array_equal(disease_groups(series, blank), _groups_one_by_one(values, blank))
