"""The same compiled catalog on PySpark (local mode): one session for the module,
small cohorts. Outputs must equal the memory engine's (and so DuckDB's)."""

from __future__ import annotations

import json
import os
import shutil

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

# Opt-in until the Spark path is verified end to end (see the session note): set
# ELIGIBILITY_TEST_SPARK=1 to run these against PySpark in local mode.
pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java"),
    pytest.mark.skipif(os.environ.get("ELIGIBILITY_TEST_SPARK") != "1",
                       reason="Spark tests are opt-in: ELIGIBILITY_TEST_SPARK=1"),
]


@pytest.fixture(scope="module")
def spark_con():
    from eligibility.database.backend import connect

    return connect("spark")


def _results(con, cohort, scenario):
    from eligibility.database.engine import DatabaseCohort, results_frame

    db = DatabaseCohort.from_cohort(con, cohort).materialize()
    return results_frame(db.evaluate(resolve(scenario)))


def test_spark_passes_the_kleene_suite(spark_con):
    from eligibility.database.conformance import run

    assert run(spark_con) == []


def test_hand_worked_cases_identical_on_spark(spark_con):
    """The default-scenario cases in one cohort, plus a few cases that need a scenario."""
    groups: dict[str, list] = {}
    for case in ALL_CASES:
        groups.setdefault(case.scenario_key, []).append(case)
    keys = sorted(groups, key=lambda k: -len(groups[k]))[:4]
    for key in keys:
        members = groups[key]
        rows = [eligible_row(c.disease, patient_id=f"R{i}", **c.changes) for i, c in enumerate(members)]
        cohort = make_cohort(rows)
        mem = screen_frame(cohort, resolve(json.loads(key)))
        got = _results(spark_con, cohort, json.loads(key))
        for case, m, g in zip(members, mem.to_dict("records"), got.to_dict("records"), strict=True):
            assert g == m, _case_id(case)


def test_absent_columns_and_switches_on_spark(spark_con):
    rows = [eligible_row(d) for d in ("SSc", "IIM", "AAV", "SjS", "APS")]
    rows += [eligible_row("IIM", phga_cm=None, ptga_cm=None, inr=1.8, inr_uln=1.2), eligible_row(None)]
    present = [f for f in make_cohort(rows).present if f not in ("age_years", "hrct_ggo")]
    scenario = {"parameters": {"core_set_min_abnormal": 3, "require_cyclophosphamide": False},
                "disabled": ["EXC-2.hb"]}
    cohort = make_cohort(rows, present)
    pd.testing.assert_frame_equal(_results(spark_con, cohort, scenario), screen_frame(cohort, resolve(scenario)))


def test_cli_spark_same_file_and_messages(spark_con, tmp_path, capsys):
    from eligibility.synth import generate, write_cohort

    src = write_cohort(generate(400, 3), tmp_path / "cohort.parquet")
    a, b = tmp_path / "mem.csv", tmp_path / "spark.csv"
    assert main(["screen", str(src), "-o", str(a)]) == 0
    err_a = capsys.readouterr().err
    assert main(["screen", str(src), "-o", str(b), "--engine", "spark"]) == 0
    err_b = capsys.readouterr().err
    assert err_b.replace(str(b), str(a)) == err_a
    assert b.read_bytes() == a.read_bytes()


def test_attribution_on_spark_equals_memory(spark_con):
    from eligibility.database.engine import DatabaseCohort

    mem = load_cohort("data/cohort.parquet")
    ev = Evaluator.for_cohort(mem).evaluate()
    attr = DatabaseCohort.open(spark_con, "data/cohort.parquet").evaluate().attribution()
    pd.testing.assert_frame_equal(attr.status_counts(), A.status_counts(ev))
    pd.testing.assert_frame_equal(attr.criterion_table(), A.criterion_table(ev), check_dtype=False)
    pd.testing.assert_frame_equal(attr.combinations("SSc"), A.combinations(ev, "SSc"), check_dtype=False)
