"""The evaluator's memory-saving paths give the results of the plain ones.

- The common block's units read the frame's columns in input order (no gathered copy; a
  float64 column is the frame's own buffer) and their outcomes are put in evaluation order:
  equal to evaluating on the gathered, evaluation-order columns.
- Attribution works from the units' rows (no units × patients matrix): equal to the
  matrix-based definitions.
- The loader's flagged cells and blank rows are mapped to frame rows in one vectorised step:
  equal to the one-issue-at-a-time mapping.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from factory import eligible_row, make_cohort

from eligibility import attribution as A
from eligibility import evaluate as E
from eligibility.columns import blank_rows, flagged_cells, implausible_cells, unreadable_cells
from eligibility.evaluate import FAIL, INELIGIBLE, UNKNOWN, Evaluator
from eligibility.fields import DISEASES, FIELDS
from eligibility.rules import TRUE, RuleEvaluator
from eligibility.scenario import resolve

WASHOUTS = ["days_since_gcsf", "days_since_iv_antibiotics", "days_since_oral_antibiotics",
            "days_since_live_vaccine", "days_since_investigational_drug", "years_since_malignancy"]


def _rows(n: int, seed: int, grouped: bool = False) -> list[dict]:
    """Patients of every disease (interleaved unless `grouped`), with values near and past
    the limits, empty cells, unknown diseases and blank rows."""
    rng = np.random.default_rng(seed)
    diseases = [*DISEASES, "Other", None]
    rows = []
    for i in range(n):
        d = diseases[i % len(diseases)] if not grouped else diseases[min(i * len(diseases) // n, len(diseases) - 1)]
        row = eligible_row(d if d in DISEASES else "SSc")
        row["disease"] = d
        for f in FIELDS:
            if f.name not in row or f.kind in ("id", "disease"):
                continue
            u = rng.random()
            if u < 0.12:
                row[f.name] = None
            elif u < 0.35 and f.kind == "number" and row[f.name] is not None:
                row[f.name] = float(row[f.name]) * rng.choice([0.2, 0.5, 0.9, 1.1, 2.0, 5.0])
            elif u < 0.45 and f.kind == "yesno":
                row[f.name] = not row[f.name] if row[f.name] is not None else True
        rows.append(row)
    if not grouped:
        for i in range(3, n, 17):  # blank rows between data rows
            rows[i] = {"disease": None}
    return rows


def _evaluator(rows: list[dict], seed: int) -> tuple[Evaluator, object]:
    cohort = make_cohort(rows)
    rng = np.random.default_rng(seed + 1)
    n = len(rows)
    numbers = [f.name for f in FIELDS if f.kind == "number" and f.name in cohort.frame]
    implausible = {name: rng.random(n) < 0.08 for name in numbers}
    unreadable = {name: rng.random(n) < 0.1 for name in WASHOUTS if name in cohort.frame}
    blank = np.array([set(r) == {"disease"} for r in rows])
    return Evaluator(cohort.frame, cohort.present, None, unreadable, implausible, blank), cohort


SCENARIOS = [{}, {"parameters": {"hb_min_g_l": 75, "age_max": 70}},
             {"parameters": {"implausible_values_unknown": False, "unreadable_event_unknown": False}},
             {"readings": {"gc_dose": "more_than"}}, {"disabled": ["INC-2", "SSC-INC-1", "EXC-3"]}]


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_unit_outcomes_equal_evaluation_order_columns(seed, grouped):
    """Every unit's outcome row equals the rule evaluated on the gathered (evaluation-order)
    columns, whether the rows come grouped by disease (evaluation order = input order) or not."""
    evaluator, _ = _evaluator(_rows(240, seed, grouped), seed)
    cols = evaluator.columns
    assert cols.identity == grouped
    for spec in SCENARIOS:
        scenario = resolve(spec)
        ev = evaluator.evaluate(scenario)
        for u, row in zip(ev.units, ev.rows(), strict=True):
            sl = cols.bounds[u.block]
            truth = RuleEvaluator(ev.catalog, cols, sl, scenario.params, {})(u.rule)
            expected = truth if u.kind == "incl" else TRUE - truth
            assert row.dtype == expected.dtype and not row.flags.writeable
            np.testing.assert_array_equal(row, expected, err_msg=f"{u.id} {spec}")


def test_common_block_reads_the_frame_in_place():
    """No gathered copy of a whole column is made for the common block: a float64 column is
    read from the frame's own buffer."""
    evaluator, cohort = _evaluator(_rows(120, 3), 3)
    evaluator.evaluate(resolve({"parameters": {"implausible_values_unknown": False}}))
    n = len(cohort.frame)
    cache = evaluator.columns._cache
    assert not [k for k in cache if k[2:] == (0, n)]
    hb = cache[("num", "hemoglobin_g_l", "input")]
    assert np.shares_memory(hb, cohort.frame["hemoglobin_g_l"].to_numpy())


def test_number_at_equals_the_gathered_column():
    evaluator, _ = _evaluator(_rows(90, 4), 4)
    cols = evaluator.columns
    pos = np.array([5, 0, 77, 31, 31])
    for name in ("hemoglobin_g_l", "mrss", "bvas"):
        expected = cols.number(name)[pos]
        np.testing.assert_array_equal(evaluator.columns.number_at(name, pos), expected)
        cols._cache.pop(("num", name, 0, len(cols)))
        np.testing.assert_array_equal(cols.number_at(name, pos), expected)


def _criterion_matrix(ev) -> tuple[np.ndarray, list[str]]:
    crit = [u.criterion for u in ev.units]
    names = list(dict.fromkeys(crit))
    f = ev.outcomes == FAIL
    m = np.zeros((len(names), ev.n), bool)
    for q, name in enumerate(names):
        m[q] = f[[i for i, c in enumerate(crit) if c == name]].any(axis=0)
    return m, names


def _sole_reference(ev) -> np.ndarray:
    cause_idx, names = A._cause_index(ev)
    f = ev.outcomes == FAIL
    per_cause = np.zeros((len(names), ev.n), bool)
    for k in range(len(names)):
        per_cause[k] = f[cause_idx == k].any(axis=0)
    first = ev.first_failed_index()
    one = per_cause.sum(axis=0) == 1
    if not len(cause_idx):
        return np.full(ev.n, -1, np.int32)
    return np.where(one & (first >= 0), cause_idx[np.maximum(first, 0)], -1).astype(np.int32)


def _first_reference(ev) -> np.ndarray:
    f = ev.outcomes == FAIL
    first = np.where(f.any(axis=0), f.argmax(axis=0), -1)
    return np.where(ev.status == INELIGIBLE, first, -1)


@pytest.mark.parametrize("halves", [False, True], ids=["one-call", "row-halves"])
@pytest.mark.parametrize("spec", [*SCENARIOS, {"disabled": ["DX-1", "INC-1", "INC-2", "INC-3", "INC-4"]}])
def test_attribution_from_rows_equals_the_matrix_definitions(spec, halves, monkeypatch):
    # Row halves (two threads) run from PARALLEL_MIN_ROWS up: lowered, the halves of 300 rows
    # cut through a disease block.
    monkeypatch.setattr(E, "PARALLEL_MIN_ROWS", 0 if halves else 10**9)
    evaluator, _ = _evaluator(_rows(300, 5), 5)
    ev = evaluator.evaluate(resolve(spec))
    m, names = _criterion_matrix(ev)
    np.testing.assert_array_equal(ev.first_failed_index(), _first_reference(ev))
    np.testing.assert_array_equal(A.sole_cause(ev), _sole_reference(ev))
    table = A.criterion_table(ev)  # of the patients: blank rows (sorted last) left out
    f, unknown = ev.outcomes[:, :ev.n_patients] == FAIL, ev.outcomes[:, :ev.n_patients] == UNKNOWN
    np.testing.assert_array_equal(table["all_reasons"].to_numpy(), f.sum(axis=1))
    np.testing.assert_array_equal(table["unknown"].to_numpy(), unknown.sum(axis=1))
    first = _first_reference(ev)[:ev.n_patients]
    np.testing.assert_array_equal(table["first_reason"].to_numpy(),
                                  [np.count_nonzero(first == i) for i in range(len(ev.units))])
    keys = A.criterion_keys(ev)
    assert "crit_fail" not in ev._memo and "failed" not in ev._memo  # no matrix was built
    np.testing.assert_array_equal(keys, A.row_keys(m))
    for group in (None, *A.group_slices(ev)):
        sl = A.group_slice(ev, group)
        totals = A.criterion_totals(ev, group)
        assert list(totals["criterion"]) == names
        np.testing.assert_array_equal(totals["failed"].to_numpy(), m[:, sl].sum(axis=1))
    got, got_names = A.criterion_failures(ev)
    assert got_names == names
    np.testing.assert_array_equal(got, m)
    A.combinations(ev)
    ev2 = evaluator.evaluate(resolve(spec))  # keys from the matrix when it was built first
    A.criterion_failures(ev2)
    np.testing.assert_array_equal(A.criterion_keys(ev2), keys)


@pytest.mark.parametrize("n", [1, 2, 3, 9])
def test_row_halves_of_tiny_cohorts(n, monkeypatch):
    """Halves of one to a few rows (an empty half, a half of one row), and the counts from the
    outcome matrix when it was built first."""
    monkeypatch.setattr(E, "PARALLEL_MIN_ROWS", 0)
    evaluator, _ = _evaluator(_rows(n, 11), 11)
    ev = evaluator.evaluate()
    m, _ = _criterion_matrix(ev)
    np.testing.assert_array_equal(ev.first_failed_index(), _first_reference(ev))
    np.testing.assert_array_equal(A.sole_cause(ev), _sole_reference(ev))
    np.testing.assert_array_equal(A.criterion_keys(ev), A.row_keys(m))
    ev.failed(), ev.unknown()  # the counts then read the (units × patients) matrices
    table = A.criterion_table(ev)
    np.testing.assert_array_equal(table["all_reasons"].to_numpy(),
                                  (ev.outcomes[:, :ev.n_patients] == FAIL).sum(axis=1))
    np.testing.assert_array_equal(table["unknown"].to_numpy(),
                                  (ev.outcomes[:, :ev.n_patients] == UNKNOWN).sum(axis=1))


def test_criterion_keys_wider_than_64_criteria():
    m = np.random.default_rng(0).random((70, 50)) < 0.3
    keys = A.row_keys(m)
    assert keys.dtype.itemsize == 16
    for j in range(50):
        assert A.decode_key(keys[j], [str(i) for i in range(70)]) == [str(i) for i in np.flatnonzero(m[:, j])]


def _flagged_one_by_one(cohort, kind):
    """The mapping as it was: one issue at a time."""
    n = len(cohort.frame)
    rows_of = getattr(cohort, "row_numbers", None)

    def index(row):
        if rows_of is not None and len(rows_of) == n:
            idx = int(np.searchsorted(rows_of, row))
            return idx if idx < n and rows_of[idx] == row else None
        return row - 1 if 0 < row <= n else None

    out: dict[str, np.ndarray] = {}
    for issue in cohort.issues:
        if issue.kind != kind or issue.row is None or issue.column is None:
            continue
        idx = index(issue.row)
        if idx is not None:
            out.setdefault(issue.column, np.zeros(n, bool))[idx] = True
    blank = np.zeros(n, bool)
    for issue in cohort.issues:
        if issue.kind == "empty_row" and issue.row is not None and issue.column is None:
            idx = index(issue.row)
            if idx is not None:
                blank[idx] = True
    return out, blank


@pytest.mark.parametrize("row_numbers", [None, "skips", "short"])
def test_flagged_cells_equal_one_by_one_mapping(row_numbers):
    n = 40
    frame = pd.DataFrame({"x": np.zeros(n)})
    rng = np.random.default_rng(7)

    def issue(row, column, kind):
        return SimpleNamespace(row=row, column=column, kind=kind)

    issues = [issue(int(r), c, k) for r, c, k in zip(rng.integers(-2, n + 8, 300), rng.choice(["a", "b", "c"], 300),
                                                      rng.choice(["cell_error", "implausible", "other"], 300),
                                                      strict=True)]
    issues += [issue(None, "a", "cell_error"), issue(5, None, "cell_error"), issue(n + 50, "d", "implausible"),
               issue(3, None, "empty_row"), issue(n + 3, None, "empty_row"), issue(9, "a", "empty_row")]
    cohort = SimpleNamespace(frame=frame, issues=issues)
    if row_numbers == "skips":  # file rows 1..n+10 with some skipped
        cohort.row_numbers = np.sort(rng.choice(np.arange(1, n + 11), n, replace=False)).astype(np.int64)
    elif row_numbers == "short":  # not one per frame row: positions are row - 1
        cohort.row_numbers = np.arange(1, n // 2, dtype=np.int64)
    for kind, got in (("cell_error", unreadable_cells(cohort)), ("implausible", implausible_cells(cohort))):
        expected, _ = _flagged_one_by_one(cohort, kind)
        assert got.keys() == expected.keys()
        for column in expected:
            np.testing.assert_array_equal(got[column], expected[column])
        assert flagged_cells(cohort, kind).keys() == expected.keys()
    np.testing.assert_array_equal(blank_rows(cohort), _flagged_one_by_one(cohort, "none")[1])


def test_a_dropped_evaluator_is_freed_at_once():
    """No reference cycle holds an evaluator's columns (and their cached arrays) until the
    cycle collector runs: a server drops one per cohort, a benchmark one per cold run."""
    import gc
    import weakref

    evaluator, _ = _evaluator(_rows(60, 6), 6)
    ev = evaluator.evaluate()
    A.criterion_table(ev)
    A.combinations(ev)
    gc.collect()
    gc.disable()
    try:
        ref = weakref.ref(evaluator.columns)
        del evaluator, ev
        assert ref() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("k", [3, 64, 70])
def test_key_counts_equal_np_unique(k):
    rng = np.random.default_rng(k)
    keys = A.row_keys(rng.random((k, 5000)) < rng.random((k, 1)) * 0.2)
    for sample in (keys, keys[:0], keys[:1]):
        uniq, counts = A._key_counts(sample)
        expected_uniq, expected_counts = np.unique(sample, return_counts=True)
        assert uniq.dtype == expected_uniq.dtype and counts.dtype == expected_counts.dtype
        np.testing.assert_array_equal(uniq, expected_uniq)
        np.testing.assert_array_equal(counts, expected_counts)


@pytest.mark.parametrize("distinct", [1, 40, 30_000, 250_000])
def test_key_counts_by_bucket_equal_np_unique(distinct):
    """The bucket path (from 2**17 keys): keys that lose their bucket to another are counted apart."""
    rng = np.random.default_rng(distinct)
    pool = rng.integers(0, 2**64, distinct, dtype=np.uint64, endpoint=False)
    keys = pool[rng.zipf(1.3, 300_000) % distinct]
    uniq, counts = A._key_counts(keys)
    expected_uniq, expected_counts = np.unique(keys, return_counts=True)
    assert uniq.dtype == expected_uniq.dtype and counts.dtype == expected_counts.dtype
    np.testing.assert_array_equal(uniq, expected_uniq)
    np.testing.assert_array_equal(counts, expected_counts)
