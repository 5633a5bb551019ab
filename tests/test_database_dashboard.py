"""The dashboard's database source: the same numbers as the memory engine on the bundled cohort."""

from __future__ import annotations

import duckdb as ddb
import numpy as np
import pandas as pd
import pytest
from apptest_support import APP, BUNDLED, TIMEOUT, as_int, metrics
from streamlit.testing.v1 import AppTest

from eligibility import attribution as A
from eligibility.database.backend import duckdb
from eligibility.database.dashboard import load_database_cohort
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import resolve


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    c = ddb.connect(str(path))
    c.execute(f"CREATE TABLE cohort AS SELECT * FROM read_parquet('{BUNDLED}')")
    c.close()
    return path


@pytest.mark.parametrize("scenario", [{}, {"parameters": {"age_max": 75, "hb_min_g_l": 50},
                                           "disabled": ["INC-7"]}])
def test_database_evaluator_equals_memory(warehouse, scenario):
    mem = load_cohort(BUNDLED)
    want = Evaluator.for_cohort(mem).evaluate(resolve(scenario))
    cohort, evaluator = load_database_cohort(duckdb(), str(warehouse))
    got = evaluator.evaluate(resolve(scenario))
    assert got.unit_ids == want.unit_ids
    np.testing.assert_array_equal(got.outcomes, want.outcomes)
    np.testing.assert_array_equal(got.status, want.status)
    assert [i.problem for i in cohort.issues] == [i.problem for i in mem.issues]
    pd.testing.assert_frame_equal(A.criterion_table(got), A.criterion_table(want))
    pd.testing.assert_frame_equal(A.status_counts(got), A.status_counts(want))


def test_app_opens_on_a_duckdb_file_with_memory_numbers(warehouse):
    at = AppTest.from_file(APP, default_timeout=max(TIMEOUT, 300))
    at.run()
    assert not at.exception
    at.sidebar.text_input(key="cohort_database").input(str(warehouse)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.sidebar.error
    ev = Evaluator.for_cohort(load_cohort(BUNDLED)).evaluate()
    counts = ev.counts()
    m = metrics(at)
    shown = {k.lower(): as_int(v) for k, v in m.items() if k in ("Screened", "Eligible", "Pending", "Ineligible")}
    assert len(shown) == 4, m
    for label, value in shown.items():
        assert value == counts[label], (label, value, counts)
    lo, hi = (as_int(x) for x in m["Eligible range"].split("–"))
    assert (lo, hi) == (counts["eligible"], counts["eligible"] + counts["pending"])
    for page in ("app_pages/screen_failures.py", "app_pages/what_if.py", "app_pages/patients.py",
                 "app_pages/protocol.py", "app_pages/dose_cohorts.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
