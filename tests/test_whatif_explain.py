"""Engine helpers behind the What-if and Patients pages: sweeps, explanations, near misses."""

import numpy as np
import pytest
from factory import eligible_row, make_cohort

from eligibility.evaluate import Evaluator
from eligibility.explain import explain_patient, near_misses
from eligibility.scenario import baseline, resolve
from eligibility.whatif import parameter_groups, sweep, sweep_values


@pytest.fixture(scope="module")
def cohort():
    rows = [
        eligible_row("SSc", hemoglobin_g_l=57),  # misses hb by 3 g/L (5 %)
        eligible_row("IIM", alt_u_l=125),  # ALT 125 > 3 × 40 by 5 U/L
        eligible_row("AAV", egfr_ml_min_1_73m2=14),  # eGFR 1 below 15
        eligible_row("SjS", hemoglobin_g_l=40, age_years=70),  # two causes: no near miss
        eligible_row("APS", hemoglobin_g_l=None),  # pending
        eligible_row("SSc", age_years=66),
        eligible_row("SSc"),
    ]
    return make_cohort(rows)


def test_sweep_counts_equal_full_evaluations(cohort):
    ev = Evaluator.for_cohort(cohort)
    df = sweep(ev, baseline(), "hb_min_g_l", values=[30, 45, 57, 58, 60, 80])
    for value, row in zip([30, 45, 57, 58, 60, 80], df.itertuples(), strict=True):
        counts = Evaluator.for_cohort(cohort).evaluate(resolve({"parameters": {"hb_min_g_l": value}})).counts()
        assert (row.eligible, row.pending, row.ineligible) == (counts["eligible"], counts["pending"], counts["ineligible"])
    assert list(df["eligible"]) == sorted(df["eligible"], reverse=True)  # raising a minimum never admits more
    assert df.attrs["default"] == 60


def test_sweep_per_group_and_held_scenario(cohort):
    ev = Evaluator.for_cohort(cohort)
    held = resolve({"parameters": {"age_max": 70}})
    df = sweep(ev, held, "hb_min_g_l", values=[50, 60], group="SSc")
    # SSc: hb 57 passes at 50; age 66 admitted by the held age_max 70.
    assert list(df["eligible"]) == [3, 2]


def test_sweep_values_cover_range_and_default():
    from eligibility.catalog import default_catalog

    p = default_catalog().parameters
    v = sweep_values(p["hb_min_g_l"])
    assert v[0] == 40 and v[-1] == 120 and 60 in v
    assert list(sweep_values(p["min_immunomodulators"])) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="age_cap|no numeric"):
        sweep_values(p["ssc_excluded_subtypes"])


def test_parameter_groups_cover_every_parameter_once():
    from eligibility.catalog import default_catalog

    cat = default_catalog()
    groups = parameter_groups(cat)
    names = [p.name for ps in groups.values() for p in ps]
    assert sorted(names) == sorted(cat.parameters) and len(names) == len(set(names))
    assert list(groups)[:2] == ["common", "refractory"]


def test_explanation_lists_values_thresholds_and_distance(cohort):
    ev = Evaluator.for_cohort(cohort)
    ex = explain_patient(ev, 0, baseline())
    hb = ex[ex["criterion"] == "INC-2.hb"].iloc[0]
    assert (hb["outcome"], hb["value"], hb["threshold"], hb["result"]) == ("fail", "57", "60", "no")
    assert hb["distance"] == pytest.approx(-3.0)
    assert set(ex["criterion"]) >= {"DX-1", "INC-1", "SSC-INC-1"} and not ex["criterion"].str.startswith("IIM").any()
    # ×ULN limits show the computed limit.
    alt = explain_patient(ev, 1, baseline()).query("criterion == 'INC-3.alt'").iloc[0]
    assert alt["threshold"] == "120" and alt["outcome"] == "fail" and "3 × ULN" in alt["condition"]


def test_explanation_marks_switched_off_and_unknown(cohort):
    ev = Evaluator.for_cohort(cohort)
    scen = resolve({"disabled": ["INC-7"]})
    ex = explain_patient(ev, 4, scen)
    assert (ex.loc[ex["criterion"] == "INC-7", "outcome"] == "switched off").all()
    hb = ex[ex["criterion"] == "INC-2.hb"].iloc[0]
    assert hb["outcome"] == "unknown" and hb["value"] == "" and np.isnan(hb["distance"])


def test_near_misses_find_single_numeric_causes(cohort):
    ev = Evaluator.for_cohort(cohort).evaluate()
    nm = near_misses(ev, cohort.frame, max_relative=0.1)
    # P4 fails two causes; P6 (age 66) is 1.5 % past the age range's upper bound.
    assert set(nm["patient_id"]) == {"P1", "P2", "P3", "P6"}
    assert nm.set_index("patient_id").loc["P6", "threshold"] == 65
    by = nm.set_index("patient_id")
    assert by.loc["P1", "cause"] == "INC-2.hb / EXC-2.hb" and by.loc["P1", "distance"] == pytest.approx(-3)
    assert by.loc["P2", "threshold"] == pytest.approx(120)
    assert list(nm["relative"]) == sorted(nm["relative"])
    assert near_misses(ev, cohort.frame, max_relative=0.045)["patient_id"].tolist() == ["P6", "P2"]
    young = make_cohort([eligible_row("SSc", age_years=17.5)])
    nm_young = near_misses(Evaluator.for_cohort(young).evaluate(), young.frame)
    assert nm_young["threshold"].tolist() == [18] and nm_young["distance"].tolist() == [-0.5]


def test_sweep_marks_when_other_changes_are_held(cohort):
    from eligibility.figures.whatif import sweep_figure

    ev = Evaluator.for_cohort(cohort)
    alone = sweep(ev, resolve({"parameters": {"hb_min_g_l": 70}}), "hb_min_g_l", values=[50, 60, 70])
    held = sweep(ev, resolve({"parameters": {"hb_min_g_l": 70, "age_max": 70}}), "hb_min_g_l", values=[50, 60, 70])
    assert not alone.attrs["held"] and held.attrs["held"]
    texts = [a.text for a in sweep_figure(held).layout.annotations]
    assert any(t.startswith("protocol:") and "other what-if changes kept" in t for t in texts)
    assert not any("other what-if changes kept" in a.text for a in sweep_figure(alone).layout.annotations)
