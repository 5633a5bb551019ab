"""A what-if evaluated incrementally (from a recent evaluation of the same cohort, recomputing
only the patients whose outcome changed in some unit) equals a full re-evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from factory import eligible_row, make_cohort
from hypothesis import given
from hypothesis import strategies as st
from test_properties import (
    ALL_IDS,
    SETTINGS,
    _safe,
    cohorts,
    present_sets,
    readings_choices,
    scenario_params,
)

from eligibility import attribution as A
from eligibility import evaluate as E
from eligibility.evaluate import Evaluator
from eligibility.scenario import resolve
from eligibility.screen import status_change

scenarios = st.tuples(scenario_params, st.lists(st.sampled_from(ALL_IDS), max_size=3, unique=True),
                      readings_choices)


def _same(inc, full, frame) -> None:
    assert inc.unit_ids == full.unit_ids
    assert (inc.status == full.status).all()
    assert (inc.first_failed_at(np.arange(inc.n)[::-1]) == full.first_failed_index()[::-1]).all()
    assert (inc.first_failed_index() == full.first_failed_index()).all()
    assert (inc.outcomes == full.outcomes).all()
    assert (inc.failed() == full.failed()).all() and (inc.unknown() == full.unknown()).all()
    assert inc.counts() == full.counts()
    k, m = full.assessed_counts()
    assert inc.eligible_on_assessed() == int(((full.status == E.ELIGIBLE) & (k < m)).sum())
    a, b = status_change(full, inc, frame), status_change(full, full, frame)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    for f in (A.criterion_table, A.attrition, A.combinations):
        assert f(inc).equals(f(full))


@SETTINGS
@given(cohorts(), st.lists(scenarios, min_size=2, max_size=5), present_sets(), st.booleans())
def test_incremental_whatif_equals_full_reevaluation(rows, steps, present, first_early):
    """Random scenario sequences on one evaluator: statuses, first reasons (all patients and the
    changed ones), counts, the outcome matrix and the diff equal a fresh evaluator's."""
    steps = [s for s in steps if _safe(present, s[0])]
    cohort = make_cohort(rows, present)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(E, "DERIVE_MAX_SHARE", 1)  # derive even when every row may change (small cohorts)
        warm = Evaluator.for_cohort(cohort)
        for params, disabled, readings in steps:
            sc = resolve({"parameters": params, "disabled": disabled, "readings": readings})
            inc = warm.evaluate(sc)
            if first_early:  # the next what-if derives its first reasons from this one's
                inc.first_failed_index()
            full = Evaluator.for_cohort(cohort).evaluate(sc)
            assert (warm.status(sc) == full.status).all()
            _same(inc, full, cohort.frame)


def test_one_parameter_move_is_derived_and_equal(monkeypatch):
    """The What-if slider case: a move of one threshold takes the incremental path."""
    diseases = ("SSc", "IIM", "AAV", "SjS", "APS")
    rows = [eligible_row(d, hemoglobin_g_l=h) for d in diseases for h in (50, 58, 59, 61, 70, None)]
    rows += [eligible_row(d) for d in diseases] * 60  # most patients are untouched by the move
    cohort = make_cohort(rows)
    warm = Evaluator.for_cohort(cohort)
    warm.evaluate().first_failed_index()
    derived = []
    original = Evaluator._derive

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self is warm:
            derived.append(out is not None)
        return out

    monkeypatch.setattr(Evaluator, "_derive", spy)
    for hb in (59, 61, 55, 60):
        sc = resolve({"parameters": {"hb_min_g_l": hb}})
        inc = warm.evaluate(sc)
        assert "first" in inc._memo  # derived with its first reasons, no full pass
        _same(inc, Evaluator.for_cohort(cohort).evaluate(sc), cohort.frame)
    assert derived == [True] * 4


def test_large_changes_are_recomputed_in_full():
    """Switching off DX-1 (every patient's diagnosis check) changes too many rows to derive."""
    rows = [eligible_row("SSc"), {**eligible_row("IIM"), "disease": "gout"}, eligible_row("AAV", age_years=90)] * 10
    cohort = make_cohort(rows)
    warm = Evaluator.for_cohort(cohort)
    warm.evaluate()
    sc = resolve({"disabled": ["DX-1", "INC-1"]})
    inc = warm.evaluate(sc)
    _same(inc, Evaluator.for_cohort(cohort).evaluate(sc), cohort.frame)


def test_row_keys_equal_packbits():
    """attribution.row_keys (byte by byte) equals the packed bit pattern of np.packbits."""
    rng = np.random.default_rng(3)
    for k in (0, 1, 7, 8, 9, 63, 64, 65, 130):
        m = rng.random((k, 50)) < 0.3
        packed = np.packbits(m, axis=0, bitorder="little") if k else np.zeros((1, 50), np.uint8)
        nbytes = max(1, -(-k // 8))
        width = 8 if nbytes <= 8 else -(-nbytes // 8) * 8
        buf = np.zeros((50, width), np.uint8)
        buf[:, :nbytes] = packed.T
        expect = buf.view(np.uint64).ravel() if width == 8 else buf.view(np.dtype((np.void, width))).ravel()
        assert (A.row_keys(m) == expect).all()
        names = [f"c{i}" for i in range(k)]
        for j in range(50):
            assert A.decode_key(A.row_keys(m)[j], names) == [names[i] for i in np.flatnonzero(m[:, j])]


NUMERIC = [p.name for p in Evaluator.for_cohort(make_cohort([eligible_row("SSc")])).catalog.parameters.values()
           if p.type in ("number", "count") and p.range is not None]


@SETTINGS
@given(cohorts(), scenarios, present_sets(), st.sampled_from(NUMERIC),
       st.sampled_from([None, "SSc", "IIM", "AAV", "SjS", "APS", "other", "missing"]), st.booleans())
def test_sweep_counts_equal_whole_statuses(rows, scenario, present, param, group, warm_first):
    """Evaluator.sweep_counts (units that no point changes combined once) equals a whole status
    per point, for any scenario held, swept parameter and group; the per-unit cache is left as
    it was (the sweep keeps its rows apart)."""
    from eligibility.whatif import sweep, sweep_values

    params, disabled, readings = scenario
    if not _safe(present, params):
        return
    cohort = make_cohort(rows, present)
    ev = Evaluator.for_cohort(cohort)
    sc = resolve({"parameters": params, "disabled": disabled, "readings": readings})
    if warm_first:
        ev.evaluate(sc)
    before = {u: list(c) for u, c in ev._cache.items()}
    df = sweep(ev, sc, param, group=group)
    assert {u: list(c) for u, c in ev._cache.items()} == before or not warm_first
    fresh = Evaluator.for_cohort(cohort)
    sl = fresh.columns.bounds["patients" if group is None else group]
    p = fresh.catalog.parameters[param]
    for v, row in zip(sweep_values(p), df.itertuples(), strict=True):
        point = {**params, param: int(v) if p.type == "count" else float(v)}
        c = np.bincount(fresh.status(resolve({"parameters": point, "disabled": disabled,
                                              "readings": readings}))[sl], minlength=3)
        assert (row.value, row.eligible, row.pending, row.ineligible) == (float(v), c[2], c[1], c[0])
