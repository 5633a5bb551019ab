"""Failed/unknown lists are spelled per distinct pattern by `screen.join_set_ids`, which the
memory engine's results and the database results writer share."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eligibility.screen import join_labels, join_set_ids


def _by_row(patterns: np.ndarray, ids, sep=";") -> list[str]:
    return [sep.join(ids[j] for j in range(patterns.shape[1]) if patterns[r, j]) for r in range(patterns.shape[0])]


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 12).flatmap(lambda k: st.integers(0, 9).flatmap(
    lambda n: arrays(bool, (k, n)))))
def test_each_row_joins_its_true_columns_in_order(patterns):
    ids = [f"U{j}" for j in range(patterns.shape[1])]
    assert join_set_ids(patterns, ids) == _by_row(patterns, ids)


def test_empty_rows_rows_of_one_and_a_custom_separator():
    patterns = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 1], [1, 1, 1]], bool)
    assert join_set_ids(patterns, ("a", "b", "c"), " | ") == ["", "b", "a | c", "a | b | c"]
    assert join_set_ids(np.zeros((0, 3), bool), ("a", "b", "c")) == []
    assert join_set_ids(np.zeros((2, 0), bool), ()) == ["", ""]


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(0, 30))))
def test_join_labels_spells_every_patient_as_its_own_column(matrix):
    ids = [f"C{j}" for j in range(matrix.shape[0])]
    assert list(join_labels(matrix, ids)) == _by_row(matrix.T, ids)
