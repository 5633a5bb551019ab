"""Random cohorts × random scenarios: the SQL engines equal the memory engine.

Cohorts and scenarios come from test_properties.py's strategies (values at, just
above and below every threshold; empty and NaN cells; unrecognised diseases; absent
columns; switched-off criteria). Example counts are modest: every example compiles
the catalog anew for its scenario.
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest
from factory import make_cohort
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_properties import ALL_IDS, _safe, cohorts, present_sets, readings_choices, scenario_params

from eligibility.database.backend import duckdb
from eligibility.database.engine import DatabaseCohort, results_frame
from eligibility.scenario import resolve
from eligibility.screen import screen_frame

_DUCK = None


def _duck():
    global _DUCK
    if _DUCK is None:
        _DUCK = duckdb()
    return _DUCK


def _compare(con, rows, params, disabled, present, readings=None):
    scenario = {"parameters": params, "disabled": disabled, "readings": readings or {}}
    cohort = make_cohort(rows, present)
    want = screen_frame(cohort, resolve(scenario))
    db = DatabaseCohort.from_cohort(con, cohort).materialize()
    ev = db.evaluate(resolve(scenario))
    pd.testing.assert_frame_equal(results_frame(ev), want)
    counts = ev.counts()
    assert counts["eligible"] == int((want.status == "eligible").sum())
    assert counts["pending"] == int((want.status == "pending").sum())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts(max_size=15), scenario_params, st.lists(st.sampled_from(ALL_IDS), max_size=3, unique=True),
       present_sets(), readings_choices)
def test_duckdb_equals_memory_on_random_cohorts(rows, params, disabled, present, readings):
    assume(_safe(present, params))
    _compare(_duck(), rows, params, disabled, present, readings)


@pytest.mark.skipif(shutil.which("java") is None or os.environ.get("ELIGIBILITY_TEST_SPARK") != "1",
                    reason="Spark tests are opt-in (ELIGIBILITY_TEST_SPARK=1) and need Java")
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts(max_size=10), scenario_params, st.lists(st.sampled_from(ALL_IDS), max_size=2, unique=True),
       present_sets())
def test_spark_equals_memory_on_random_cohorts(rows, params, disabled, present):
    from eligibility.database.backend import connect

    assume(_safe(present, params))
    _compare(connect("spark"), rows, params, disabled, present)
