"""Screen-failure attribution (criteria.md): all reasons, first reason in catalog order,
sole reason with merged causes and its impact, attrition, combinations, status counts
with the eligible range, and scenario diffs (status_change)."""

from __future__ import annotations

import numpy as np
import pytest
from factory import eligible_row, make_cohort

from eligibility import attribution as A
from eligibility.evaluate import Evaluator
from eligibility.scenario import resolve
from eligibility.screen import screen_frame, status_change


def evaluate(rows, scenario=None, present=None):
    cohort = make_cohort(rows, present)
    return cohort, Evaluator.for_cohort(cohort).evaluate(resolve(scenario or {}))


def first_reason(row, scenario=None) -> str:
    return screen_frame(make_cohort([row]), resolve(scenario or {}))["first_reason"][0]


def sole(ev) -> list[str | None]:
    """Sole cause name per patient in input order (None when not exactly one cause)."""
    _, names = A._cause_index(ev)
    idx = ev.to_input_order(A.sole_cause(ev))
    return [names[i] if i >= 0 else None for i in idx]


def impact(ev, group=None) -> dict[str, int]:
    df = A.cause_impact(ev, group)
    return {c: int(n) for c, n in zip(df["cause"], df["impact"], strict=True) if n}


# ---------------------------------------------------------------------------------------
# First reason: DX, INC, EXC, then the disease block; part order within a criterion
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("row, expected", [
    (eligible_row("Lupus", age_years=80, consent_signed=False), "DX-1"),
    (eligible_row(None, age_years=80), "INC-1"),
    (eligible_row("SSc", age_years=80, hemoglobin_g_l=50), "INC-1"),
    (eligible_row("SSc", hemoglobin_g_l=50, wbc_10e9_l=1.0), "INC-2.hb"),
    (eligible_row("SSc", anc_10e9_l=0.5, wbc_10e9_l=1.0), "INC-2.wbc"),
    (eligible_row("SSc", anc_10e9_l=0.5, days_since_gcsf=1), "INC-2.anc"),
    (eligible_row("SSc", days_since_gcsf=1, alt_u_l=500), "INC-2.gcsf"),
    (eligible_row("SSc", tbil_umol_l=100, ast_u_l=500), "INC-3.ast"),
    (eligible_row("SSc", tbil_umol_l=100, inr=3), "INC-3.tbil"),
    (eligible_row("SSc", pt_s=30, inr=3), "INC-4.inr"),
    (eligible_row("SSc", pt_s=30, consent_signed=False), "INC-4.pt"),
    (eligible_row("SSc", hemodynamically_stable=False, consent_signed=False), "INC-5"),
    (eligible_row("SSc", sex="F", childbearing_potential=True, pregnancy_test_negative=False,
                  consent_signed=False), "INC-6"),
    (eligible_row("SSc", consent_signed=False, other_ctd=True), "INC-7"),
    (eligible_row("APS", other_ctd=True, severe_heart_disease=True), "EXC-1"),
    (eligible_row("SSc", severe_heart_disease=True, fvc_pct_pred=30), "EXC-2.heart"),
    (eligible_row("SSc", fvc_pct_pred=30, dlco_pct_pred=30), "EXC-2.fvc"),
    (eligible_row("SSc", dlco_pct_pred=30, hbsag_pos=True), "EXC-2.dlco"),
    (eligible_row("SSc", hcv_ab_pos=True, hbcab_pos=True), "EXC-3.hbcab"),
    (eligible_row("SSc", tb_latent=True, hiv_pos=True), "EXC-4.latent"),
    (eligible_row("SSc", days_since_oral_antibiotics=1, days_since_infection_hospitalization=1), "EXC-6.hosp"),
    (eligible_row("SSc", igg_mg_dl=100, iga_mg_dl=1), "EXC-8.iga"),
    (eligible_row("SSc", investigator_unsuitable=True, ssc_acr_eular_2013_score=0), "EXC-15"),
    (eligible_row("SSc", gave_active=True, ssc_acr_eular_2013_score=0), "SSC-INC-1"),
    (eligible_row("SSc", gave_active=True, ssc_subtype="limited"), "SSC-EXC-1"),
    (eligible_row("SSc", disease_duration_months=100), "SSC-INC-2"),
    (eligible_row("IIM", iim_subtype="IBM"), "IIM-INC-1"),
    (eligible_row("IIM", cancer_associated_myositis=True, msa_positive=False), "IIM-INC-3"),
    (eligible_row("AAV", egfr_ml_min_1_73m2=10), "EXC-2.kidney"),
    (eligible_row("AAV", kidney_transplant=True, bvas=0), "AAV-INC-3"),
    (eligible_row("SjS", ttp_tma=True, cirrhosis=True), "SJS-EXC-1"),
    (eligible_row("APS", aps_neurologic=True, aps_obstetric=True), "APS-EXC-1"),
])
def test_first_reason_catalog_order(row, expected):
    assert first_reason(row) == expected


def test_first_reason_skips_disabled_part():
    row = eligible_row("SSc", hemoglobin_g_l=50)
    assert first_reason(row) == "INC-2.hb"
    assert first_reason(row, {"disabled": ["INC-2.hb"]}) == "EXC-2.hb"
    assert first_reason(row, {"disabled": ["INC-2"]}) == "EXC-2.hb"


def test_first_reason_empty_unless_ineligible():
    rows = [eligible_row("SSc"), eligible_row("SSc", consent_signed=None), eligible_row("SSc", consent_signed=False)]
    out = screen_frame(make_cohort(rows))
    assert list(out["status"]) == ["eligible", "pending", "ineligible"]
    assert list(out["first_reason"]) == ["", "", "INC-7"]


# ---------------------------------------------------------------------------------------
# All reasons, sole reason (merged causes), impact
# ---------------------------------------------------------------------------------------
def test_all_reasons_counts_each_failing_part():
    rows = [
        eligible_row("SSc", hemoglobin_g_l=50),  # INC-2.hb + EXC-2.hb
        eligible_row("SSc", hemoglobin_g_l=50, age_years=70),  # + INC-1
        eligible_row("IIM", age_years=70),
        eligible_row("AAV", consent_signed=None),  # pending
        eligible_row("SjS"),
    ]
    _, ev = evaluate(rows)
    t = A.criterion_table(ev).set_index("id")
    assert t.loc["INC-2.hb", "all_reasons"] == 2
    assert t.loc["EXC-2.hb", "all_reasons"] == 2
    assert t.loc["INC-1", "all_reasons"] == 2
    assert t.loc["INC-7", "all_reasons"] == 0 and t.loc["INC-7", "unknown"] == 1
    assert t.loc["INC-2.hb", "first_reason"] == 1
    assert t.loc["INC-1", "first_reason"] == 2  # INC-1 precedes INC-2 in catalog order
    assert t.loc["EXC-2.hb", "first_reason"] == 0
    assert t["first_reason"].sum() == 3  # one per ineligible patient
    assert t.loc["INC-2.hb", "sole_reason"] == 1 == t.loc["EXC-2.hb", "sole_reason"]
    assert t.loc["INC-2.hb", "cause"] == "INC-2.hb / EXC-2.hb"
    assert t.loc["INC-1", "sole_reason"] == 1  # the IIM patient
    assert t.loc["INC-1", "all_reasons_pct"] == pytest.approx(40.0)
    assert t.loc["SSC-INC-1", "applicable"] == 2 and t.loc["INC-1", "applicable"] == 5
    # per-disease table
    s = A.criterion_table(ev, "SSc").set_index("id")
    assert s.loc["INC-1", "all_reasons"] == 1 and s.loc["INC-2.hb", "all_reasons"] == 2


def test_sole_reason_merged_hb():
    _, ev = evaluate([eligible_row("SSc", hemoglobin_g_l=50)])
    assert sole(ev) == ["INC-2.hb / EXC-2.hb"]
    assert impact(ev) == {"INC-2.hb / EXC-2.hb": 1}


def test_two_causes_no_sole_reason():
    _, ev = evaluate([eligible_row("SSc", hemoglobin_g_l=50, age_years=70)])
    assert sole(ev) == [None]
    assert impact(ev) == {}


@pytest.mark.parametrize("row, cause, relax", [
    (eligible_row("SSc", hemoglobin_g_l=50), "INC-2.hb / EXC-2.hb", {"parameters": {"hb_min_g_l": 50}}),
    (eligible_row("SSc", hemoglobin_g_l=50), "INC-2.hb / EXC-2.hb", {"disabled": ["INC-2.hb", "EXC-2.hb"]}),
    (eligible_row("SSc", wbc_10e9_l=2.0), "INC-2.wbc / EXC-2.wbc", {"parameters": {"wbc_min_10e9_l": 2.0}}),
    (eligible_row("SSc", anc_10e9_l=0.5), "INC-2.anc / EXC-2.anc", {"parameters": {"anc_min_10e9_l": 0.5}}),
    (eligible_row("SSc", alt_u_l=150), "INC-3.alt / EXC-2.alt", {"parameters": {"alt_max_x_uln": 4}}),
    (eligible_row("SSc", ast_u_l=150), "INC-3.ast / EXC-2.ast", {"parameters": {"default_ast_uln_u_l": 50}}),
    (eligible_row("SSc", tbil_umol_l=40), "INC-3.tbil / EXC-2.tbil", {"parameters": {"tbil_max_x_uln": 2}}),
    (eligible_row("SSc", disease_duration_months=70), "SSC-INC-2 / SSC-EXC-2",
     {"parameters": {"disease_duration_max_months": 70}}),
    (eligible_row("AAV", egfr_ml_min_1_73m2=10), "AAV-INC-4 / EXC-2.kidney", {"parameters": {"egfr_min": 10}}),
    (eligible_row("AAV", egfr_ml_min_1_73m2=10), "AAV-INC-4 / EXC-2.kidney",
     {"disabled": ["AAV-INC-4", "EXC-2.kidney"]}),
    (eligible_row("IIM", iim_subtype="IBM"), "IIM-INC-1 / IIM-EXC-2", {"disabled": ["IIM-INC-1", "IIM-EXC-2"]}),
    (eligible_row("APS", other_ctd=True), "EXC-1 / APS-EXC-2", {"disabled": ["EXC-1", "APS-EXC-2"]}),
    (eligible_row("SSc", other_ctd=True), "EXC-1 / APS-EXC-2", {"disabled": ["EXC-1"]}),
    (eligible_row("SSc", age_years=70), "INC-1", {"parameters": {"age_max": 70}}),
    (eligible_row("SSc", ssc_subtype="limited"), "SSC-EXC-1", {"parameters": {"ssc_excluded_subtypes": []}}),
    (eligible_row("IIM", prior_cyclophosphamide=False), "IIM-INC-4", {"parameters": {"require_cyclophosphamide": False}}),
    (eligible_row("SSc", days_since_gcsf=7), "INC-2.gcsf", {"parameters": {"gcsf_washout_days": 7}}),
    (eligible_row("SjS", essdai=4), "SJS-INC-3", {"disabled": ["SJS-INC-3"]}),
])
def test_sole_cause_and_relaxing_it_alone_admits(row, cause, relax):
    _, ev = evaluate([row])
    assert sole(ev) == [cause]
    assert impact(ev) == {cause: 1}
    t = A.criterion_table(ev).set_index("id")
    for uid in cause.split(" / "):
        assert t.loc[uid, "sole_reason"] == 1
        assert t.loc[uid, "cause"] == cause
    _, relaxed = evaluate([row], relax)
    assert relaxed.status_labels()[0] == "eligible"


def test_sole_cause_with_unknown_relaxes_to_pending():
    row = eligible_row("SSc", hemoglobin_g_l=50, consent_signed=None)
    _, ev = evaluate([row])
    assert sole(ev) == ["INC-2.hb / EXC-2.hb"]
    _, relaxed = evaluate([row], {"parameters": {"hb_min_g_l": 40}})
    assert relaxed.status_labels()[0] == "pending"


def test_relaxing_one_part_of_merged_cause_is_not_enough():
    _, ev = evaluate([eligible_row("SSc", hemoglobin_g_l=50)], {"disabled": ["INC-2.hb"]})
    assert ev.status_labels()[0] == "ineligible"
    assert sole(ev) == ["INC-2.hb / EXC-2.hb"]


@pytest.mark.parametrize("row", [
    eligible_row("SSc", hemoglobin_g_l=50, wbc_10e9_l=1.0),  # two different merged causes
    eligible_row("AAV", egfr_ml_min_1_73m2=10, bvas=0),
    eligible_row("IIM", iim_subtype="IBM", msa_positive=False),
    eligible_row("APS", other_ctd=True, aps_obstetric=True),
    eligible_row("Lupus", age_years=70),
])
def test_no_sole_reason_with_two_causes(row):
    _, ev = evaluate([row])
    assert sole(ev) == [None]
    assert impact(ev) == {}


def test_impact_per_group():
    rows = [eligible_row("SSc", hemoglobin_g_l=50), eligible_row("IIM", hemoglobin_g_l=50),
            eligible_row("IIM", iim_subtype="IBM"), eligible_row("AAV", egfr_ml_min_1_73m2=10),
            eligible_row("Lupus")]
    _, ev = evaluate(rows)
    assert impact(ev) == {"INC-2.hb / EXC-2.hb": 2, "IIM-INC-1 / IIM-EXC-2": 1,
                          "AAV-INC-4 / EXC-2.kidney": 1, "DX-1": 1}
    assert impact(ev, "IIM") == {"INC-2.hb / EXC-2.hb": 1, "IIM-INC-1 / IIM-EXC-2": 1}
    assert impact(ev, "SSc") == {"INC-2.hb / EXC-2.hb": 1}
    assert impact(ev, "other") == {"DX-1": 1}
    # impact table lists each cause once, sorted by impact
    df = A.cause_impact(ev)
    assert df["cause"].is_unique
    assert list(df["impact"]) == sorted(df["impact"], reverse=True)


# ---------------------------------------------------------------------------------------
# Mixed cohort for counts, attrition, combinations
# ---------------------------------------------------------------------------------------
MIXED = [
    eligible_row("SSc"),
    eligible_row("SSc", ssc_subtype="limited"),
    eligible_row("SSc", hemoglobin_g_l=50, ssc_subtype="limited"),
    eligible_row("SSc", consent_signed=None),
    eligible_row("IIM"),
    eligible_row("IIM", iim_subtype="IBM"),
    eligible_row("IIM", age_years=70, msa_positive=None),
    eligible_row("AAV", bvas=None),
    eligible_row("AAV", egfr_ml_min_1_73m2=10),
    eligible_row("SjS"),
    eligible_row("SjS", essdai=2, age_years=16),
    eligible_row("APS", other_ctd=True),
    eligible_row("APS"),
    eligible_row("Lupus"),
    eligible_row(None),
    eligible_row("SSc", age_years=80),
]
# (group, screened, eligible, pending, ineligible)
MIXED_COUNTS = [
    ("SSc", 5, 1, 1, 3), ("IIM", 3, 1, 0, 2), ("AAV", 2, 0, 1, 1), ("SjS", 2, 1, 0, 1),
    ("APS", 2, 1, 0, 1), ("other", 1, 0, 0, 1), ("missing", 1, 0, 1, 0), ("All", 16, 4, 3, 9),
]


@pytest.fixture(scope="module")
def mixed():
    return evaluate(MIXED)


def test_status_counts(mixed):
    _, ev = mixed
    sc = A.status_counts(ev)
    assert list(sc.index) == [g for g, *_ in MIXED_COUNTS]
    for g, n, e, p, i in MIXED_COUNTS:
        row = sc.loc[g]
        assert (row["screened"], row["eligible"], row["pending"], row["ineligible"]) == (n, e, p, i), g
        assert (row["eligible_low"], row["eligible_high"]) == (e, e + p)
        assert row["eligible_pct"] == pytest.approx(100 * e / n)


def test_status_counts_lists_empty_disease_groups():
    _, ev = evaluate([eligible_row("SSc")])
    sc = A.status_counts(ev)
    assert list(sc.index) == ["SSc", "IIM", "AAV", "SjS", "APS", "All"]
    assert sc.loc["IIM", "screened"] == 0 and np.isnan(sc.loc["IIM", "eligible_pct"])


@pytest.mark.parametrize("group", [None, "SSc", "IIM", "AAV", "SjS", "APS", "other", "missing"])
def test_attrition(mixed, group):
    _, ev = mixed
    df = A.attrition(ev, group)
    counts = {g: (n, e, p, i) for g, n, e, p, i in MIXED_COUNTS}
    n, e, p, i = counts[group or "All"]
    assert df.attrs["screened"] == n
    assert (df.attrs["eligible"], df.attrs["pending"]) == (e, p)
    assert df["excluded"].sum() == i  # screened − Σ excluded = eligible + pending
    assert n - df["excluded"].sum() == e + p
    rem = [n, *df["remaining"]]
    assert all(a >= b for a, b in zip(rem, rem[1:], strict=False))  # monotone
    assert np.array_equal(np.diff(rem), -df["excluded"].to_numpy())
    assert df["remaining"].iloc[-1] == e + p
    assert (df["excluded"] >= 0).all()
    if group in ("SSc", "IIM", "AAV", "SjS", "APS"):
        assert set(df["block"]) == {"common", group}
    elif group is None:
        assert set(df["block"]) == {"common", "SSc", "IIM", "AAV", "SjS", "APS"}
    # catalog (CONSORT) order: criterion IDs appear in catalog order, DX-1 first
    assert df["criterion"].iloc[0] == "DX-1"


def test_attrition_steps(mixed):
    _, ev = mixed
    df = A.attrition(ev).set_index("criterion")
    assert df.loc["DX-1", "excluded"] == 1  # Lupus
    assert df.loc["INC-1", "excluded"] == 3  # IIM age 70, SjS age 16, SSc age 80
    assert df.loc["INC-2", "excluded"] == 1  # hb 50
    assert df.loc["EXC-1", "excluded"] == 1  # APS other_ctd
    assert df.loc["EXC-2", "excluded"] == 1  # AAV eGFR 10 (EXC-2.kidney before AAV-INC-4)
    assert df.loc["SSC-EXC-1", "excluded"] == 1  # limited (the other limited one left at INC-2)
    assert df.loc["IIM-INC-1", "excluded"] == 1
    assert df.loc["IIM-EXC-2", "excluded"] == 0
    ssc = A.attrition(ev, "SSc").set_index("criterion")
    assert ssc.loc["INC-1", "excluded"] == 1 and ssc.loc["SSC-EXC-1", "excluded"] == 1


def test_combinations(mixed):
    _, ev = mixed
    df = A.combinations(ev, top=100)
    assert df["count"].sum() == 9
    assert df["pct_of_ineligible"].sum() == pytest.approx(100.0)
    combos = {tuple(c): int(n) for c, n in zip(df["criteria"], df["count"], strict=True)}
    assert combos[("INC-1",)] == 2  # IIM age 70 (msa unknown), SSc age 80
    assert combos[("INC-2", "EXC-2", "SSC-EXC-1")] == 1
    assert combos[("INC-1", "SJS-INC-3")] == 1
    assert combos[("EXC-2", "AAV-INC-4")] == 1
    assert combos[("EXC-1", "APS-EXC-2")] == 1
    assert combos[("IIM-INC-1", "IIM-EXC-2")] == 1
    assert combos[("DX-1",)] == 1
    assert combos[("SSC-EXC-1",)] == 1
    assert all(len(c) == s for c, s in zip(df["criteria"], df["size"], strict=True))
    assert list(df["count"]) == sorted(df["count"], reverse=True)
    for g in ("SSc", "IIM", "AAV", "SjS", "APS", "other"):
        sub = A.combinations(ev, g, top=100)
        assert sub["count"].sum() == dict((x[0], x[4]) for x in MIXED_COUNTS)[g]
    assert A.combinations(ev, "missing").empty


def test_combinations_top_limits_rows(mixed):
    _, ev = mixed
    assert len(A.combinations(ev, top=2)) == 2


# ---------------------------------------------------------------------------------------
# status_change
# ---------------------------------------------------------------------------------------
def test_status_change_gained_lost_and_changed_patients():
    rows = [
        eligible_row("SSc", patient_id="a", age_years=68, hemoglobin_g_l=130),  # ineligible -> eligible
        eligible_row("IIM", patient_id="b"),  # eligible -> ineligible (hb 120 < hb_min 125)
        eligible_row("SSc", patient_id="c"),  # eligible -> ineligible
        eligible_row("AAV", patient_id="d", age_years=69, consent_signed=None, hemoglobin_g_l=130),  # ineligible -> pending
        eligible_row("SjS", patient_id="e", hemoglobin_g_l=140),  # unchanged eligible
        eligible_row("APS", patient_id="f", age_years=90),  # unchanged ineligible
    ]
    cohort = make_cohort(rows)
    evaluator = Evaluator.for_cohort(cohort)
    before = evaluator.evaluate(resolve({}))
    after = evaluator.evaluate(resolve({"parameters": {"age_max": 70, "hb_min_g_l": 125}}))
    summary, patients = status_change(before, after, cohort.frame)
    assert list(patients["patient_id"]) == ["a", "b", "c", "d"]  # input order
    assert list(patients["row"]) == [1, 2, 3, 4]
    assert list(patients["status_before"]) == ["ineligible", "eligible", "eligible", "ineligible"]
    assert list(patients["status_after"]) == ["eligible", "ineligible", "ineligible", "pending"]
    assert list(patients["first_reason_before"]) == ["INC-1", "", "", "INC-1"]
    assert list(patients["first_reason_after"]) == ["", "INC-2.hb", "INC-2.hb", ""]
    assert list(patients["disease"]) == ["SSc", "IIM", "SSc", "AAV"]
    total = summary.loc["All"]
    assert (total["eligible_before"], total["eligible_after"]) == (3, 2)
    assert (total["gained"], total["lost"], total["changed"], total["net"]) == (1, 2, 4, -1)
    ssc = summary.loc["SSc"]
    assert (ssc["gained"], ssc["lost"], ssc["changed"], ssc["net"]) == (1, 1, 2, 0)
    assert summary.loc["AAV", "changed"] == 1 and summary.loc["AAV", "gained"] == 0
    assert summary.loc["SjS", "changed"] == 0


def test_status_change_identical_scenarios():
    cohort = make_cohort(MIXED)
    ev = Evaluator.for_cohort(cohort)
    summary, patients = status_change(ev.evaluate(), ev.evaluate(resolve({})), cohort.frame)
    assert patients.empty
    assert (summary["changed"] == 0).all() and (summary["net"] == 0).all()


def test_status_change_order_with_interleaved_diseases():
    # evaluation order groups by disease; the changed list must come back in input order
    rows = [eligible_row(d, patient_id=f"p{i}", age_years=68) for i, d in
            enumerate(["APS", "SSc", "Lupus", "IIM", None, "AAV", "SSc", "SjS"])]
    cohort = make_cohort(rows)
    ev = Evaluator.for_cohort(cohort)
    _, patients = status_change(ev.evaluate(), ev.evaluate(resolve({"parameters": {"age_max": 70}})), cohort.frame)
    assert list(patients["patient_id"]) == ["p0", "p1", "p3", "p4", "p5", "p6", "p7"]
    assert list(patients["status_after"]) == ["eligible", "eligible", "eligible", "pending", "eligible",
                                              "eligible", "eligible"]
    assert list(patients["row"]) == [1, 2, 4, 5, 6, 7, 8]


# ---------------------------------------------------------------------------------------
# Degenerate cohorts and scenarios
# ---------------------------------------------------------------------------------------
def test_empty_cohort():
    cohort, ev = evaluate([])
    assert len(screen_frame(cohort)) == 0
    assert A.status_counts(ev).loc["All", "screened"] == 0
    assert A.attrition(ev)["excluded"].sum() == 0
    assert A.combinations(ev).empty
    assert A.cause_impact(ev)["impact"].sum() == 0
    assert A.criterion_table(ev)["all_reasons"].sum() == 0


def test_attribution_with_every_criterion_disabled():
    """A what-if that switches every criterion off: everyone is eligible, and every
    attribution view still works (no unit is active)."""
    from eligibility.catalog import default_catalog

    every = [c.id for c in default_catalog().criteria]
    cohort, ev = evaluate([eligible_row("SSc", age_years=90), eligible_row("Lupus")], {"disabled": every})
    assert list(ev.status_labels()) == ["eligible", "eligible"]
    assert A.attrition(ev).empty
    assert A.combinations(ev).empty
    assert len(A.criterion_table(ev)) == 0
    assert A.cause_impact(ev)["impact"].sum() == 0
    assert A.status_counts(ev).loc["All", "eligible"] == 2
