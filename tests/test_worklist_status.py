"""The `assessed` column (k/n) and "eligible on assessed criteria (k of n)"."""

from __future__ import annotations

import pandas as pd
from factory import eligible_row, make_cohort
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.catalog import default_catalog
from eligibility.evaluate import Evaluator
from eligibility.fields import DISEASES, FIELDS
from eligibility.scenario import resolve
from eligibility.screen import RESULT_COLUMNS, screen_frame


def _n_applicable(disease: str | None, disabled=()) -> int:
    blocks = {"common", disease}
    return sum(u.block in blocks and u.id not in disabled for u in default_catalog().units)


def test_every_column_present_means_all_applicable_criteria_assessed():
    rows = [eligible_row(d, patient_id=f"P{i}") for i, d in enumerate(DISEASES)]
    res = screen_frame(make_cohort(rows))
    assert RESULT_COLUMNS[-1] == "assessed"
    for d, got, status in zip(DISEASES, res["assessed"], res["status"], strict=True):
        n = _n_applicable(d)
        assert got == f"{n}/{n}" and status == "eligible"


def test_an_absent_column_counts_its_criteria_as_not_assessed_and_names_the_status():
    present = [f.name for f in FIELDS if f.name not in ("patient_id", "disease", "consent_signed", "mrss")]
    rows = [eligible_row("SSc", patient_id="S"), eligible_row("IIM", patient_id="I"),
            eligible_row("SSc", patient_id="X", age_years=80)]
    cohort = make_cohort(rows, present=present)
    ev = Evaluator.for_cohort(cohort).evaluate()
    res = screen_frame(cohort)
    n_ssc, n_iim = _n_applicable("SSc"), _n_applicable("IIM")
    # consent_signed: INC-7 (everyone); mrss: SSC-INC-3 (SSc only)
    assert list(res["assessed"]) == [f"{n_ssc - 2}/{n_ssc}", f"{n_iim - 1}/{n_iim}", f"{n_ssc - 2}/{n_ssc}"]
    assert list(res["status"]) == ["eligible", "eligible", "ineligible"]  # contract values unchanged
    shown = list(ev.status_display())
    assert shown[0] == f"eligible on assessed criteria ({n_ssc - 2} of {n_ssc})"
    assert shown[1] == f"eligible on assessed criteria ({n_iim - 1} of {n_iim})"
    assert shown[2] == "ineligible"
    assert ev.counts()["eligible_on_assessed"] == 2


def test_switched_off_criteria_are_not_applicable_and_missing_disease_has_common_only():
    present = [f.name for f in FIELDS if f.name not in ("patient_id", "disease", "consent_signed")]
    rows = [eligible_row("SSc", patient_id="S"), {**eligible_row("SSc", patient_id="M"), "disease": None}]
    cohort = make_cohort(rows, present=present)
    res = screen_frame(cohort, resolve({"disabled": ["INC-7"]}))
    n = _n_applicable("SSc", {"INC-7"})
    assert res["assessed"].iloc[0] == f"{n}/{n}"
    assert res["status"].iloc[0] == "eligible"
    m = _n_applicable(None, {"INC-7"})
    assert res["assessed"].iloc[1] == f"{m}/{m}"
    assert res["status"].iloc[1] == "pending"  # DX-1 unknown


def test_cli_summary_says_how_many_are_eligible_on_assessed_criteria_only(tmp_path, capsys):
    from eligibility.cli import main

    rows = [eligible_row("SSc", patient_id=f"P{i}") for i in range(3)]
    df = pd.DataFrame(rows).drop(columns=["consent_signed"])
    src = tmp_path / "c.csv"
    df.to_csv(src, index=False)
    assert main(["screen", str(src), "-o", str(tmp_path / "r.csv")]) == 0
    err = capsys.readouterr().err
    res = pd.read_csv(tmp_path / "r.csv", dtype=str, encoding="utf-8-sig")
    units = {u.id: u.block for u in default_catalog().units}
    missing = [u for u in res["not_assessed"].iloc[0].split(";") if units[u] in ("common", "SSc")]
    assert "INC-7" in missing
    assert (f"3 eligible (3 of them eligible on assessed criteria only, {len(missing)} applicable criteria "
            "not assessed)") in err
    n = _n_applicable("SSc")
    assert set(res["assessed"]) == {f"{n - len(missing)}/{n}"}


_DROPPABLE = [f.name for f in FIELDS if f.name not in ("patient_id", "disease") and not f.optional]


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(_DROPPABLE), max_size=12), st.sampled_from([*DISEASES, None]),
       st.sets(st.sampled_from([u.id for u in default_catalog().units]), max_size=4))
def test_assessed_counts_match_not_assessed_list(dropped, disease, disabled):
    row = {**eligible_row(disease or "SSc", patient_id="P"), "disease": disease}
    present = [n for n in _DROPPABLE if n not in dropped]
    cohort = make_cohort([row], present=present)
    ev = Evaluator.for_cohort(cohort).evaluate(resolve({"disabled": sorted(disabled)}))
    k, n = ev.assessed_counts()
    applicable = [u.id for u in ev.catalog.units if u.block in ("common", disease) and u.id not in disabled]
    missing = [u for u in applicable if u in ev.not_assessed]
    assert n[0] == len(applicable)
    assert k[0] == len(applicable) - len(missing)
    shown = ev.status_display()[0]
    assert shown.startswith("eligible on assessed") == (ev.status[0] == 2 and k[0] < n[0])
