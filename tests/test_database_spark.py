"""The same compiled catalog on PySpark in local mode (one session for the run, from
conftest's `spark_con`, which also passes the Kleene conformance suite). Outputs must
equal the memory engine's (and so DuckDB's).

Each Spark query costs seconds of planning in local mode, so by default (Java on PATH)
one end-to-end test runs; ELIGIBILITY_TEST_SPARK=1 also runs every hand-worked scenario
group and attribution on the bundled cohort (minutes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from factory import eligible_row, make_cohort
from test_criteria import ALL_CASES, _case_id

from eligibility import attribution as A
from eligibility.cli import main
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import resolve
from eligibility.screen import screen_frame

BUNDLED_SAMPLE = Path(__file__).resolve().parent.parent / "data" / "cohort_sample.csv"
full_only = pytest.mark.skipif(os.environ.get("ELIGIBILITY_TEST_SPARK") != "1",
                               reason="the full Spark set is opt-in: ELIGIBILITY_TEST_SPARK=1")


def _groups() -> dict[str, list]:
    groups: dict[str, list] = {}
    for case in ALL_CASES:
        groups.setdefault(case.scenario_key, []).append(case)
    return groups


def _assert_cases_identical(con, keys) -> None:
    """All hand-worked cases in one cohort pushed once; per scenario key, the rows of the
    cases that need that scenario compared with the memory engine's."""
    from eligibility.database.engine import DatabaseCohort, results_frame

    groups = _groups()
    cases = [c for k in keys for c in groups[k]]
    cohort = make_cohort([eligible_row(c.disease, patient_id=f"R{i}", **c.changes) for i, c in enumerate(cases)])
    db = DatabaseCohort.from_cohort(con, cohort).materialize()
    for key in keys:
        scenario = resolve(json.loads(key))
        mem = screen_frame(cohort, scenario)
        got = results_frame(db.evaluate(scenario))
        for i, case in enumerate(cases):
            if case.scenario_key == key:
                assert got.iloc[i].to_dict() == mem.iloc[i].to_dict(), _case_id(case)


def test_spark_end_to_end(spark_con, tmp_path, capsys):
    """Default set: the largest group of hand-worked cases (the default scenario), absent
    columns with parameter switches and a disabled part, and `screen --engine spark` on a
    Parquet file giving the memory engine's bytes and messages."""
    groups = _groups()
    _assert_cases_identical(spark_con, [max(groups, key=lambda k: len(groups[k]))])

    from eligibility.database.engine import DatabaseCohort, results_frame

    rows = [eligible_row(d) for d in ("SSc", "IIM", "AAV", "SjS", "APS")]
    rows += [eligible_row("IIM", phga_cm=None, ptga_cm=None, inr=1.8, inr_uln=1.2), eligible_row(None)]
    present = [f for f in make_cohort(rows).present if f not in ("age_years", "hrct_ggo")]
    scenario = resolve({"parameters": {"core_set_min_abnormal": 3, "require_cyclophosphamide": False},
                        "disabled": ["EXC-2.hb"]})
    cohort = make_cohort(rows, present)
    got = results_frame(DatabaseCohort.from_cohort(spark_con, cohort).materialize().evaluate(scenario))
    pd.testing.assert_frame_equal(got, screen_frame(cohort, scenario))

    from eligibility.synth import generate, write_cohort

    src = write_cohort(generate(300, 3), tmp_path / "cohort.parquet")
    a, b = tmp_path / "mem.csv", tmp_path / "spark.csv"
    assert main(["screen", str(src), "-o", str(a)]) == 0
    err_a = capsys.readouterr().err
    assert main(["screen", str(src), "-o", str(b), "--engine", "spark"]) == 0
    err_b = capsys.readouterr().err
    assert err_b.replace(str(b), str(a)) == err_a
    assert b.read_bytes() == a.read_bytes()


@full_only
def test_every_hand_worked_case_identical_on_spark(spark_con):
    _assert_cases_identical(spark_con, list(_groups()))


@full_only
def test_spark_conformance_reports_no_failure(spark_con):
    from eligibility.database.conformance import run

    assert run(spark_con) == []


@full_only
def test_attribution_on_spark_equals_memory(spark_con):
    from eligibility.database.engine import DatabaseCohort

    mem = load_cohort("data/cohort.parquet")
    ev = Evaluator.for_cohort(mem).evaluate()
    attr = DatabaseCohort.open(spark_con, "data/cohort.parquet").evaluate().attribution()
    pd.testing.assert_frame_equal(attr.status_counts(), A.status_counts(ev))
    pd.testing.assert_frame_equal(attr.criterion_table(), A.criterion_table(ev), check_dtype=False)
    pd.testing.assert_frame_equal(attr.combinations("SSc"), A.combinations(ev, "SSc"), check_dtype=False)


@full_only
def test_dashboard_aggregate_mode_on_spark_equals_memory(spark_con):
    """The dashboard's aggregate-mode views (eligibility.database.dashboard) on Spark."""
    from eligibility.database.dashboard import DatabaseSource
    from eligibility.database.engine import DatabaseCohort
    from eligibility.pageview import MemoryView, status_change
    from eligibility.quality import missingness

    cohort = load_cohort(BUNDLED_SAMPLE)
    evaluator = Evaluator.for_cohort(cohort)
    src = DatabaseSource(DatabaseCohort.from_cohort(spark_con, cohort).materialize())
    b, m0 = src.view(resolve({})), MemoryView(evaluator.evaluate(resolve({})), cohort.frame)
    r = resolve({"parameters": {"age_max": 75, "hb_min_g_l": 50}})
    v, m = src.view(r), MemoryView(evaluator.evaluate(r), cohort.frame)
    pd.testing.assert_frame_equal(v.status_counts(), m.status_counts(), check_dtype=False)
    pd.testing.assert_frame_equal(v.criterion_table("SSc"), m.criterion_table("SSc"), check_dtype=False)
    pd.testing.assert_frame_equal(v.consort_data(), m.consort_data(), check_dtype=False)
    groups = v.scope_groups(None)
    pd.testing.assert_frame_equal(v.pool(groups), m.pool(groups), check_dtype=False)
    pd.testing.assert_frame_equal(src.missingness(None), missingness(cohort, None), check_dtype=False)
    page = v.patients(status="ineligible", contains={"failed": "inc"}, offset=3, limit=20)
    want = m.patients(status="ineligible", contains={"failed": "inc"}, offset=3, limit=20)
    pd.testing.assert_frame_equal(page, want, check_dtype=False)
    got_sum, got_pat = status_change(b, v, offset=0, limit=10)
    want_sum, want_pat = status_change(m0, m)
    pd.testing.assert_frame_equal(got_sum, want_sum, check_dtype=False)
    pd.testing.assert_frame_equal(got_pat.reset_index(drop=True), want_pat.head(10).reset_index(drop=True),
                                  check_dtype=False)
    rec, _ = v.explain(str(cohort.frame["patient_id"].iloc[4]))
    assert int(rec["row"]) == 5
    pd.testing.assert_frame_equal(v.near_misses(0.2), m.near_misses(0.2), check_dtype=False)


@full_only
def test_what_ifs_by_update_on_spark_equal_memory(spark_con, monkeypatch, tmp_path):
    from test_database_update import STEPS

    from eligibility.database import engine as E
    from eligibility.database.engine import DatabaseCohort, results_frame
    from eligibility.synth import generate, write_cohort

    updates = []
    real = E.update_sql
    monkeypatch.setattr(E, "update_sql", lambda *a: updates.append(a) or real(*a))
    path = tmp_path / "cohort.csv"
    write_cohort(generate(400, seed=5), path)
    mem = load_cohort(path)
    db = DatabaseCohort.open(spark_con, str(path))
    for spec, _ in STEPS:
        scenario = resolve(spec)
        pd.testing.assert_frame_equal(results_frame(db.evaluate(scenario)), screen_frame(mem, scenario))
    assert updates
