"""What-ifs computed by updating a kept scenario's masks (outcomes.update_sql) equal a full
evaluation and the memory engine, and the update is what actually ran."""

from __future__ import annotations

import pandas as pd
import pytest

from eligibility.database import engine as E
from eligibility.database.backend import duckdb
from eligibility.database.engine import DatabaseCohort, results_frame
from eligibility.loader import load_cohort
from eligibility.scenario import resolve
from eligibility.screen import screen_frame
from eligibility.synth import generate, write_cohort

# Each differs from the protocol (or the one before) in a unit or two; the last ones in many
# units or in which units are active, which an update must not be used for.
STEPS = [
    ({"parameters": {"hb_min_g_l": 50}}, True),
    ({"parameters": {"hb_min_g_l": 70}}, True),
    ({"parameters": {"hb_min_g_l": 70, "age_max": 75}}, True),
    ({"parameters": {"age_max": 75}}, True),
    ({"readings": {"gc_dose": "more_than"}}, True),
    ({"parameters": {"hb_min_g_l": 70}, "disabled": ["INC-7"]}, False),
    ({"parameters": {"implausible_values_unknown": False}}, False),
    ({}, None),  # the protocol again: kept, nothing computed
]


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("upd") / "cohort.csv"
    write_cohort(generate(1500, seed=11), path)
    return path


def test_what_ifs_by_update_equal_full_evaluation_and_memory(cohort_file, monkeypatch):
    updates = []
    real = E.update_sql

    def spy(base, codes, pl, changed):
        updates.append(len(changed))
        return real(base, codes, pl, changed)

    monkeypatch.setattr(E, "update_sql", spy)
    mem = load_cohort(cohort_file)
    db = DatabaseCohort.open(duckdb(), str(cohort_file))
    full = DatabaseCohort.open(duckdb(), str(cohort_file))
    for spec, updated in STEPS:
        scenario = resolve(spec)
        before = len(updates)
        got = db.evaluate(scenario)
        if updated is not None:
            assert (len(updates) > before) == updated, spec
        full._cache.clear()  # every scenario evaluated from all its units
        whole = full.evaluate(scenario)
        want = screen_frame(mem, scenario)
        pd.testing.assert_frame_equal(results_frame(got), want)
        pd.testing.assert_frame_equal(results_frame(whole), want)
        a, b = got.attribution(), whole.attribution()
        pd.testing.assert_frame_equal(a.criterion_table(), b.criterion_table())
        pd.testing.assert_frame_equal(a.status_counts(), b.status_counts())
        pd.testing.assert_frame_equal(a.combinations(), b.combinations())
    assert min(updates) >= 1  # each update replaced at least one unit's bits


def test_a_scenario_changing_no_active_unit_keeps_the_masks(cohort_file):
    db = DatabaseCohort.open(duckdb(), str(cohort_file))
    mem = load_cohort(cohort_file)
    scenario = resolve({"parameters": {"hb_min_g_l": 60}})  # the protocol's own value
    pd.testing.assert_frame_equal(results_frame(db.evaluate(scenario)), screen_frame(mem, scenario))
