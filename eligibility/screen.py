"""Per-patient screening results (the batch contract) and scenario diffs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .attribution import group_slices, row_keys
from .evaluate import ELIGIBLE, STATUS_NAMES, Evaluation, Evaluator
from .scenario import Resolved

RESULT_COLUMNS = ("patient_id", "disease", "status", "first_reason", "failed", "unknown", "not_assessed", "assessed")


def join_labels(matrix: np.ndarray, ids: list[str] | tuple[str, ...], sep: str = ";") -> np.ndarray:
    """Per column of a bool (k × n) matrix, the ';'-joined IDs of its true rows.
    Strings are built once per distinct pattern, not once per patient."""
    n = matrix.shape[1]
    if not len(ids):
        return np.full(n, "", dtype=object)
    keys = row_keys(matrix)
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    labels = np.array(join_set_ids(matrix[:, first].T, ids, sep), dtype=object)
    return labels[inverse.ravel()]


def join_set_ids(patterns: np.ndarray, ids, sep: str = ";") -> list[str]:
    """Per row of a (k × len(ids)) bool matrix, the `sep`-joined IDs of its true columns, in
    column order. The IDs of every true cell are gathered in one pass and each row joins its
    run of them (a Python loop over the columns of each row took ~5x longer)."""
    patterns = np.asarray(patterns, bool)
    rows, cols = np.nonzero(patterns)  # row-major: each row's columns ascending
    names = np.asarray(ids, dtype=object)[cols].tolist() if len(cols) else []
    bounds = np.searchsorted(rows, np.arange(len(patterns) + 1)).tolist()
    return [sep.join(names[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def assessed_labels(ev: Evaluation) -> np.ndarray:
    """'k/n' per patient (evaluation order); built once per distinct (k, n) pair."""
    k, m = ev.assessed_counts()
    pairs, inverse = np.unique(np.stack([k, m]), axis=1, return_inverse=True)
    labels = np.array([f"{a}/{b}" for a, b in pairs.T], dtype=object)
    return labels[inverse.ravel()] if ev.n else np.array([], dtype=object)


def screen_frame(cohort, scenario: Resolved | None = None, evaluator: Evaluator | None = None) -> pd.DataFrame:
    """One row per input row, in input order, with the contract's result columns."""
    evaluator = evaluator or Evaluator.for_cohort(cohort)
    return results_frame(evaluator.evaluate(scenario), cohort.frame)


def results_frame(ev: Evaluation, frame: pd.DataFrame) -> pd.DataFrame:
    ids = ev.unit_ids
    first = ev.first_failed_index()
    first_label = np.array([*ids, ""], dtype=object)[np.where(first >= 0, first, len(ids))]
    out = pd.DataFrame({
        "patient_id": frame["patient_id"].astype("string").to_numpy(),
        "disease": frame["disease"].astype("string").to_numpy(),
        "status": ev.status_labels(),
        "first_reason": ev.to_input_order(first_label),
        "failed": ev.to_input_order(join_labels(ev.failed(), ids)),
        "unknown": ev.to_input_order(join_labels(ev.unknown(), ids)),
        "not_assessed": ";".join(ev.not_assessed),
        "assessed": ev.to_input_order(assessed_labels(ev)),
    })
    return out


def status_change(before: Evaluation, after: Evaluation, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Diff of two evaluations of the same cohort.

    Returns (per-group table of gained/lost eligible and status moves, changed patients
    with old and new status, in input order)."""
    a, b = before.status, after.status
    changed = a != b
    # Whole-array masks once, counted per group (count_nonzero: no widening to integers).
    ea, eb = a == ELIGIBLE, b == ELIGIBLE
    both = ea & eb
    rows = []
    for g, sl in group_slices(after).items():
        n_a, n_b, n_both = (int(np.count_nonzero(m[sl])) for m in (ea, eb, both))
        rows.append({
            "group": g, "eligible_before": n_a, "eligible_after": n_b,
            "gained": n_b - n_both, "lost": n_a - n_both, "changed": int(np.count_nonzero(changed[sl])),
        })
    summary = pd.DataFrame(rows).set_index("group")
    summary["net"] = summary["eligible_after"] - summary["eligible_before"]
    pos = np.flatnonzero(changed)
    rows_in = before.columns.order[pos]
    sort = np.argsort(rows_in, kind="stable")
    pos, rows_in = pos[sort], rows_in[sort]
    ids_a, ids_b = before.unit_ids, after.unit_ids
    fa, fb = before.first_failed_at(pos), after.first_failed_at(pos)  # the changed patients only
    def picked(col: str) -> np.ndarray:  # one column at a time (no two-column frame to build)
        return frame[col].iloc[rows_in].astype("string").to_numpy()

    patients = pd.DataFrame({
        "row": rows_in + 1,
        "patient_id": picked("patient_id"),
        "disease": picked("disease"),
        "status_before": STATUS_NAMES[a[pos]],
        "status_after": STATUS_NAMES[b[pos]],
        "first_reason_before": np.array([*ids_a, ""], dtype=object)[np.where(fa >= 0, fa, len(ids_a))],
        "first_reason_after": np.array([*ids_b, ""], dtype=object)[np.where(fb >= 0, fb, len(ids_b))],
    })
    return summary, patients
