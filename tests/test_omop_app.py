"""AppTest: import from an OMOP CDM in the sidebar; provenance in the patient explanation."""

from __future__ import annotations

import pandas as pd
import pytest
from apptest_support import APP, TIMEOUT
from streamlit.testing.v1 import AppTest

from eligibility.importers.omop import connect, import_omop
from eligibility.synth_omop import DEFAULT_AS_OF, build_cdm, source_cohort, write_cdm


@pytest.fixture(scope="module")
def cdm(tmp_path_factory):
    path = tmp_path_factory.mktemp("cdm") / "app.duckdb"
    write_cdm(build_cdm(source_cohort(150, 4), seed=4, as_of=DEFAULT_AS_OF), path)
    return path, import_omop(connect(str(path)), as_of=DEFAULT_AS_OF)


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}")


def test_sidebar_import_then_provenance_in_the_explanation(cdm):
    path, engine = cdm
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.text_input(key="omop_path").input(str(path)).run()
    at.date_input(key="omop_as_of").set_value(DEFAULT_AS_OF).run()
    at.button(key="omop_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.sidebar.caption]
    assert f"{len(engine.cohort):,} imported · {len(engine.left_out):,} left out" in captions
    summary = _frame(at, "Field", "Patients with a value", "From").set_index("Field")
    assert summary.loc["hemoglobin_g_l", "Patients with a value"] == engine.filled["hemoglobin_g_l"]
    assert summary.loc["hemoglobin_g_l", "From"] == "measurement"
    left = _frame(at, "patient_id", "reason")
    assert set(left["patient_id"]) == set(engine.left_out["patient_id"])

    at.switch_page("app_pages/patients.py").run()
    assert not at.exception, [e.value for e in at.exception]
    pid = engine.provenance.loc[engine.provenance["field"] == "hemoglobin_g_l", "patient_id"].iloc[0]
    at.text_input(key="pt_explain_id").input(pid).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = _frame(at, "Field", "Source table", "Code", "Original unit")
    expected = engine.provenance[engine.provenance["patient_id"] == pid]
    assert len(shown) == len(expected)
    hb = shown[shown["Field"] == "hemoglobin_g_l"].iloc[0]
    row = expected[expected["field"] == "hemoglobin_g_l"].iloc[0]
    assert (hb["Code"], hb["Date"], hb["Original unit"]) == ("718-7", row["date"], row["original_unit"])


def test_sidebar_bad_path_is_a_message_not_a_traceback(tmp_path):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.text_input(key="omop_path").input(str(tmp_path / "missing.duckdb")).run()
    at.button(key="omop_import").click().run()
    assert not at.exception
    assert any("no such file" in e.value for e in at.error)
