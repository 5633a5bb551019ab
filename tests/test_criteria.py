"""Every criterion and part of criteria.md, both sides of every boundary, missing values
(unknown → pending), the Kleene cases, set parameters, not-assessed columns and
switched-off criteria.

Each case is one patient: `eligible_row(disease, **changes)` under a scenario; the
expected outcome is the exact set of failing and unknown IDs (status follows from
them). All cases sharing a scenario are screened together in one cohort (fast), but
every case is its own test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from factory import eligible_row, make_cohort

from eligibility.catalog import default_catalog
from eligibility.fields import FIELDS
from eligibility.scenario import resolve
from eligibility.screen import screen_frame

DISEASES = ("SSc", "IIM", "AAV", "SjS", "APS")


def ids(text: str) -> frozenset[str]:
    return frozenset(x for x in str(text).split(";") if x)


def expected_status(failed, unknown) -> str:
    return "ineligible" if failed else "pending" if unknown else "eligible"


@dataclass(frozen=True)
class Case:
    name: str
    disease: str | None
    changes: dict
    failed: frozenset
    unknown: frozenset
    params: dict = field(default_factory=dict)
    disabled: tuple = ()

    @property
    def scenario_key(self) -> str:
        return json.dumps({"parameters": self.params, "disabled": list(self.disabled)}, sort_keys=True)


def c(name, disease, failed=(), unknown=(), params=None, disabled=(), **changes) -> Case:
    return Case(name, disease, changes, frozenset(failed), frozenset(unknown), params or {}, tuple(disabled))


# ---------------------------------------------------------------------------------------
# Common criteria (INC-1..7, EXC-1..15): run for every disease. Written for a disease-
# neutral patient; `_common_for` adds the disease-specific merged partners.
# ---------------------------------------------------------------------------------------
COMMON = [
    # INC-1 age 18..65 inclusive
    c("age 18", None, age_years=18),
    c("age 65", None, age_years=65),
    c("age 17.9", None, ["INC-1"], age_years=17.9),
    c("age 65.1", None, ["INC-1"], age_years=65.1),
    c("age empty", None, [], ["INC-1"], age_years=None),
    c("age 70 with age_max 70", None, params={"age_max": 70}, age_years=70),
    c("age 16 with age_min 16", None, params={"age_min": 16}, age_years=16),
    c("age 16 with age_min 16.5", None, ["INC-1"], params={"age_min": 16.5}, age_years=16),
    # INC-2 / EXC-2 blood counts (both fail, as written)
    c("hb 60", None, hemoglobin_g_l=60),
    c("hb 59.9", None, ["INC-2.hb", "EXC-2.hb"], hemoglobin_g_l=59.9),
    c("hb empty", None, [], ["INC-2.hb", "EXC-2.hb"], hemoglobin_g_l=None),
    c("hb 55 with hb_min 50", None, params={"hb_min_g_l": 50}, hemoglobin_g_l=55),
    c("hb 65 with hb_min 70", None, ["INC-2.hb", "EXC-2.hb"], params={"hb_min_g_l": 70}, hemoglobin_g_l=65),
    c("wbc 2.5", None, wbc_10e9_l=2.5),
    c("wbc 2.49", None, ["INC-2.wbc", "EXC-2.wbc"], wbc_10e9_l=2.49),
    c("wbc empty", None, [], ["INC-2.wbc", "EXC-2.wbc"], wbc_10e9_l=None),
    c("anc 1.0", None, anc_10e9_l=1.0),
    c("anc 0.99", None, ["INC-2.anc", "EXC-2.anc"], anc_10e9_l=0.99),
    c("anc empty", None, [], ["INC-2.anc", "EXC-2.anc"], anc_10e9_l=None),
    # INC-2.gcsf washout 14: days_since = W passes, W-1 fails, empty = never
    c("gcsf 14 days", None, days_since_gcsf=14),
    c("gcsf 13 days", None, ["INC-2.gcsf"], days_since_gcsf=13),
    c("gcsf 13.9 days", None, ["INC-2.gcsf"], days_since_gcsf=13.9),
    c("gcsf 0 days", None, ["INC-2.gcsf"], days_since_gcsf=0),
    c("gcsf never", None, days_since_gcsf=None),
    c("gcsf 13 days washout 10", None, params={"gcsf_washout_days": 10}, days_since_gcsf=13),
    c("gcsf 0 days washout 0", None, params={"gcsf_washout_days": 0}, days_since_gcsf=0),
    # INC-3 / EXC-2 liver: value <= max x ULN (row ULN, else default)
    c("alt 120", None, alt_u_l=120),
    c("alt 120.01", None, ["INC-3.alt", "EXC-2.alt"], alt_u_l=120.01),
    c("alt empty", None, [], ["INC-3.alt", "EXC-2.alt"], alt_u_l=None),
    c("alt 150 row uln 50", None, alt_u_l=150, alt_uln_u_l=50),
    c("alt 150.01 row uln 50", None, ["INC-3.alt", "EXC-2.alt"], alt_u_l=150.01, alt_uln_u_l=50),
    c("alt 100 row uln 30", None, ["INC-3.alt", "EXC-2.alt"], alt_u_l=100, alt_uln_u_l=30),
    c("alt 120 row uln empty", None, alt_u_l=120, alt_uln_u_l=None),
    c("alt 12.3 row uln 4.1 (rounding)", None, alt_u_l=12.3, alt_uln_u_l=4.1),
    c("alt 150 default uln 50", None, params={"default_alt_uln_u_l": 50}, alt_u_l=150),
    c("alt 160 max 4x", None, params={"alt_max_x_uln": 4}, alt_u_l=160),
    c("alt 161 max 4x", None, ["INC-3.alt", "EXC-2.alt"], params={"alt_max_x_uln": 4}, alt_u_l=161),
    c("ast 120", None, ast_u_l=120),
    c("ast 120.01", None, ["INC-3.ast", "EXC-2.ast"], ast_u_l=120.01),
    c("ast empty", None, [], ["INC-3.ast", "EXC-2.ast"], ast_u_l=None),
    c("ast 90 row uln 30", None, ast_u_l=90, ast_uln_u_l=30),
    c("ast 90.01 row uln 30", None, ["INC-3.ast", "EXC-2.ast"], ast_u_l=90.01, ast_uln_u_l=30),
    c("tbil 31.5", None, tbil_umol_l=31.5),
    c("tbil 31.51", None, ["INC-3.tbil", "EXC-2.tbil"], tbil_umol_l=31.51),
    c("tbil empty", None, [], ["INC-3.tbil", "EXC-2.tbil"], tbil_umol_l=None),
    c("tbil 30 row uln 20", None, tbil_umol_l=30, tbil_uln_umol_l=20),
    c("tbil 30.01 row uln 20", None, ["INC-3.tbil", "EXC-2.tbil"], tbil_umol_l=30.01, tbil_uln_umol_l=20),
    c("tbil 1.8 row uln 1.2 (rounding)", None, tbil_umol_l=1.8, tbil_uln_umol_l=1.2),
    # INC-4 coagulation: strict value < max x ULN
    c("inr 1.79", None, inr=1.79),
    c("inr 1.8 = 1.5 x 1.2", None, ["INC-4.inr"], inr=1.8),
    c("inr empty", None, [], ["INC-4.inr"], inr=None),
    c("inr 1.49 row uln 1.0", None, inr=1.49, inr_uln=1.0),
    c("inr 1.5 row uln 1.0", None, ["INC-4.inr"], inr=1.5, inr_uln=1.0),
    c("inr 1.9 row uln 1.3", None, inr=1.9, inr_uln=1.3),
    c("inr 1.8 default uln 1.3", None, params={"default_inr_uln": 1.3}, inr=1.8),
    c("pt 20.24", None, pt_s=20.24),
    c("pt 20.25 = 1.5 x 13.5", None, ["INC-4.pt"], pt_s=20.25),
    c("pt empty", None, [], ["INC-4.pt"], pt_s=None),
    c("pt 18.45 row uln 12.3 (rounding)", None, ["INC-4.pt"], pt_s=18.45, pt_uln_s=12.3),
    c("pt 18.44 row uln 12.3", None, pt_s=18.44, pt_uln_s=12.3),
    c("pt 26 max 2x", None, params={"pt_max_x_uln": 2}, pt_s=26),
    # INC-5, INC-7 flags
    c("haemodynamically unstable", None, ["INC-5"], hemodynamically_stable=False),
    c("haemodynamics empty", None, [], ["INC-5"], hemodynamically_stable=None),
    c("no consent", None, ["INC-7"], consent_signed=False),
    c("consent empty", None, [], ["INC-7"], consent_signed=None),
    # INC-6 childbearing potential
    c("F cbp test+contra", None, sex="F", childbearing_potential=True, pregnancy_test_negative=True, contraception_agreed=True),
    c("F cbp test no", None, ["INC-6"], sex="F", childbearing_potential=True, pregnancy_test_negative=False, contraception_agreed=True),
    c("F cbp contra no", None, ["INC-6"], sex="F", childbearing_potential=True, pregnancy_test_negative=True, contraception_agreed=False),
    c("F cbp test empty", None, [], ["INC-6"], sex="F", childbearing_potential=True, pregnancy_test_negative=None, contraception_agreed=True),
    c("F cbp test empty contra no", None, ["INC-6"], sex="F", childbearing_potential=True, pregnancy_test_negative=None, contraception_agreed=False),
    c("F cbp empty test+contra", None, sex="F", childbearing_potential=None, pregnancy_test_negative=True, contraception_agreed=True),
    c("F cbp empty test no", None, [], ["INC-6"], sex="F", childbearing_potential=None, pregnancy_test_negative=False, contraception_agreed=True),
    c("F cbp empty all empty", None, [], ["INC-6"], sex="F", childbearing_potential=None, pregnancy_test_negative=None, contraception_agreed=None),
    c("F no cbp test no", None, sex="F", childbearing_potential=False, pregnancy_test_negative=False, contraception_agreed=False),
    c("M cbp test no", None, sex="M", childbearing_potential=True, pregnancy_test_negative=False, contraception_agreed=False),
    c("M cbp empty test empty", None, sex="M", childbearing_potential=None, pregnancy_test_negative=None, contraception_agreed=None),
    c("sex empty cbp no", None, sex=None, childbearing_potential=False, pregnancy_test_negative=None),
    c("sex empty cbp yes test no", None, [], ["INC-6"], sex=None, childbearing_potential=True, pregnancy_test_negative=False, contraception_agreed=True),
    c("sex empty cbp yes test+contra", None, sex=None, childbearing_potential=True, pregnancy_test_negative=True, contraception_agreed=True),
    # EXC-1
    c("other ctd", None, ["EXC-1"], other_ctd=True),
    c("other ctd empty", None, [], ["EXC-1"], other_ctd=None),
    # EXC-2 organ parts
    c("severe heart disease", None, ["EXC-2.heart"], severe_heart_disease=True),
    c("heart empty", None, [], ["EXC-2.heart"], severe_heart_disease=None),
    c("egfr 15", None, egfr_ml_min_1_73m2=15),
    c("egfr 14.9", None, ["EXC-2.kidney"], egfr_ml_min_1_73m2=14.9),
    c("egfr empty", None, [], ["EXC-2.kidney"], egfr_ml_min_1_73m2=None),
    c("egfr 14.9 egfr_min 10", None, params={"egfr_min": 10}, egfr_ml_min_1_73m2=14.9),
    c("fvc 50", None, fvc_pct_pred=50),
    c("fvc 49.9", None, ["EXC-2.fvc"], fvc_pct_pred=49.9),
    c("fvc empty", None, [], ["EXC-2.fvc"], fvc_pct_pred=None),
    c("dlco 40", None, dlco_pct_pred=40),
    c("dlco 39.9", None, ["EXC-2.dlco"], dlco_pct_pred=39.9),
    c("dlco empty", None, [], ["EXC-2.dlco"], dlco_pct_pred=None),
    c("dlco 35 dlco_min 30", None, params={"dlco_min_pct": 30}, dlco_pct_pred=35),
    # EXC-3 .. EXC-5, EXC-7, EXC-12, EXC-14, EXC-15 flags
    *[
        c(f"{fld} {label}", None, [uid] if v else [], [] if v is not None else [uid], **{fld: v})
        for uid, fld in [
            ("EXC-3.hbsag", "hbsag_pos"), ("EXC-3.hbcab", "hbcab_pos"), ("EXC-3.hcv", "hcv_ab_pos"),
            ("EXC-4.active", "tb_active"), ("EXC-4.latent", "tb_latent"), ("EXC-5", "hiv_pos"),
            ("EXC-6.active", "active_serious_infection"),
            ("EXC-6.chronic", "chronic_infection_on_treatment"), ("EXC-7", "immunodeficiency"),
            ("EXC-12", "protein_antibody_allergy"), ("EXC-14", "expected_noncompliance"),
            ("EXC-15", "investigator_unsuitable"),
        ]
        for v, label in [(True, "yes"), (None, "empty")]
    ],
    # EXC-6 washouts, EXC-9, EXC-13
    *[
        c(f"{fld} {d}", None, [uid] if fails else [], **{fld: d})
        for uid, fld, w in [
            ("EXC-6.iv", "days_since_iv_antibiotics", 28),
            ("EXC-6.hosp", "days_since_infection_hospitalization", 28),
            ("EXC-6.oral", "days_since_oral_antibiotics", 14),
            ("EXC-9", "days_since_investigational_drug", 90),
            ("EXC-13", "days_since_live_vaccine", 28),
        ]
        for d, fails in [(w, False), (w - 1, True), (w - 0.5, True), (0, True), (w + 100, False), (None, False)]
    ],
    c("iv abx 20 days washout 20", None, params={"iv_abx_washout_days": 20}, days_since_iv_antibiotics=20),
    c("hosp 20 days washout 21", None, ["EXC-6.hosp"], params={"hosp_infection_washout_days": 21}, days_since_infection_hospitalization=20),
    c("oral abx 10 days washout 10", None, params={"oral_abx_washout_days": 10}, days_since_oral_antibiotics=10),
    c("investigational 60 days washout 60", None, params={"investigational_washout_days": 60}, days_since_investigational_drug=60),
    c("live vaccine 1 day washout 0", None, params={"live_vaccine_washout_days": 0}, days_since_live_vaccine=1),
    # EXC-8 immunoglobulins
    c("iga 10", None, iga_mg_dl=10),
    c("iga 9.9", None, ["EXC-8.iga"], iga_mg_dl=9.9),
    c("iga empty", None, [], ["EXC-8.iga"], iga_mg_dl=None),
    c("igg 400", None, igg_mg_dl=400),
    c("igg 399.9", None, ["EXC-8.igg"], igg_mg_dl=399.9),
    c("igg empty", None, [], ["EXC-8.igg"], igg_mg_dl=None),
    c("igg 350 igg_min 300", None, params={"igg_min_mg_dl": 300}, igg_mg_dl=350),
    c("iga 5 iga_min 0", None, params={"iga_min_mg_dl": 0}, iga_mg_dl=5),
    # EXC-10 malignancy within 5 years unless excepted
    c("malignancy 5 years", None, years_since_malignancy=5),
    c("malignancy 4.9 years", None, ["EXC-10"], years_since_malignancy=4.9, malignancy_excepted=False),
    c("malignancy 4.9 years excepted", None, years_since_malignancy=4.9, malignancy_excepted=True),
    c("malignancy 4.9 years excepted empty", None, [], ["EXC-10"], years_since_malignancy=4.9, malignancy_excepted=None),
    c("malignancy never", None, years_since_malignancy=None, malignancy_excepted=None),
    c("malignancy 3 years free 2", None, params={"malignancy_free_years": 2}, years_since_malignancy=3, malignancy_excepted=False),
    # EXC-11 pregnancy (sex = F and any of)
    c("F pregnant", None, ["EXC-11"], sex="F", pregnant=True),
    c("F breastfeeding", None, ["EXC-11"], sex="F", breastfeeding=True),
    c("F planning pregnancy", None, ["EXC-11"], sex="F", planning_pregnancy=True),
    c("F pregnant empty", None, [], ["EXC-11"], sex="F", pregnant=None),
    c("F pregnant empty breastfeeding", None, ["EXC-11"], sex="F", pregnant=None, breastfeeding=True),
    c("M pregnant", None, sex="M", pregnant=True),
    c("M pregnant empty", None, sex="M", pregnant=None, breastfeeding=None, planning_pregnancy=None),
    c("sex empty pregnant", None, [], ["EXC-11"], sex=None, pregnant=True),
    c("sex empty not pregnant", None, sex=None, pregnant=False),
]


def _common_for(case: Case, disease: str) -> Case:
    failed, unknown = set(case.failed), set(case.unknown)
    for s in (failed, unknown):
        if disease == "APS" and "EXC-1" in s:
            s.add("APS-EXC-2")  # same field other_ctd
        if disease == "AAV" and "EXC-2.kidney" in s:
            s.add("AAV-INC-4")  # same field, same parameter egfr_min
    return Case(f"{disease}: {case.name}", disease, case.changes, frozenset(failed), frozenset(unknown),
                case.params, case.disabled)


# ---------------------------------------------------------------------------------------
# DX-1
# ---------------------------------------------------------------------------------------
DX = [
    *[c(f"{d} baseline eligible", d) for d in DISEASES],
    c("unrecognised disease", "Lupus", ["DX-1"]),
    c("unrecognised disease with bad labs", "RA", ["DX-1", "INC-1"], age_years=80),
    c("empty disease", None, [], ["DX-1"]),
    c("empty disease, failing common", None, ["INC-7"], ["DX-1"], consent_signed=False),
]


# ---------------------------------------------------------------------------------------
# RR-A, shared by SSC-INC-4 (no GC dose), IIM-INC-4, AAV-INC-5, SJS-INC-4 (with GC dose).
# For SSc, progression fields are 0 in the base row, so SSC-INC-4 hinges on RR-A.
# ---------------------------------------------------------------------------------------
RR_ID = {"SSc": "SSC-INC-4", "IIM": "IIM-INC-4", "AAV": "AAV-INC-5", "SjS": "SJS-INC-4"}
RR_CASES = [
    # (name, changes, outcome for SSc, outcome with GC (IIM/AAV/SjS), params)
    ("relapsed", {"disease_course": "relapsed"}, "pass", "pass", None),
    ("responding", {"disease_course": "responding"}, "fail", "fail", None),
    ("untreated", {"disease_course": "untreated"}, "fail", "fail", None),
    ("course empty", {"disease_course": None}, "unknown", "unknown", None),
    ("no prior GC", {"prior_glucocorticoid": False}, "fail", "fail", None),
    ("prior GC empty", {"prior_glucocorticoid": None}, "unknown", "unknown", None),
    ("gc 1.0", {"gc_max_mg_kg_day": 1.0}, "pass", "pass", None),
    ("gc 0.99", {"gc_max_mg_kg_day": 0.99}, "pass", "fail", None),
    ("gc 0.5", {"gc_max_mg_kg_day": 0.5}, "pass", "fail", None),
    ("gc empty", {"gc_max_mg_kg_day": None}, "pass", "unknown", None),
    ("gc 0.5 with gc_min 0.5", {"gc_max_mg_kg_day": 0.5}, "pass", "pass", {"gc_min_mg_kg_day": 0.5}),
    ("gc 0 with gc_min 0", {"gc_max_mg_kg_day": 0}, "pass", "pass", {"gc_min_mg_kg_day": 0}),
    ("no cyclophosphamide", {"prior_cyclophosphamide": False}, "fail", "fail", None),
    ("cyclophosphamide empty", {"prior_cyclophosphamide": None}, "unknown", "unknown", None),
    ("no cyclophosphamide, not required", {"prior_cyclophosphamide": False}, "pass", "pass",
     {"require_cyclophosphamide": False}),
    ("cyclophosphamide empty, not required", {"prior_cyclophosphamide": None}, "pass", "pass",
     {"require_cyclophosphamide": False}),
    ("immunomodulators none", {"prior_immunomodulators": "none"}, "fail", "fail", None),
    ("immunomodulators empty", {"prior_immunomodulators": None}, "unknown", "unknown", None),
    ("immunomodulators unrecognised only", {"prior_immunomodulators": "snake oil"}, "fail", "fail", None),
    ("immunomodulators none, min 0", {"prior_immunomodulators": "none"}, "pass", "pass", {"min_immunomodulators": 0}),
    ("immunomodulators empty, min 0", {"prior_immunomodulators": None}, "pass", "pass", {"min_immunomodulators": 0}),
    ("two immunomodulators, min 2", {"prior_immunomodulators": "mycophenolate;azathioprine"}, "pass", "pass",
     {"min_immunomodulators": 2}),
    ("one immunomodulator, min 2", {"prior_immunomodulators": "mycophenolate"}, "fail", "fail",
     {"min_immunomodulators": 2}),
    ("one known + one unrecognised, min 2", {"prior_immunomodulators": "mycophenolate;snake oil"}, "fail", "fail",
     {"min_immunomodulators": 2}),
    ("same drug twice, min 2", {"prior_immunomodulators": "mycophenolate;mycophenolate"}, "fail", "fail",
     {"min_immunomodulators": 2}),
    ("therapy 6 months", {"conventional_therapy_months": 6}, "fail", "fail", None),
    ("therapy 6.01 months", {"conventional_therapy_months": 6.01}, "pass", "pass", None),
    ("therapy empty", {"conventional_therapy_months": None}, "unknown", "unknown", None),
    ("therapy 6 months, min 5", {"conventional_therapy_months": 6}, "pass", "pass", {"conventional_therapy_min_months": 5}),
    ("relapsed therapy 6 months", {"disease_course": "relapsed", "conventional_therapy_months": 6}, "fail", "fail", None),
    ("responding, GC empty", {"disease_course": "responding", "prior_glucocorticoid": None}, "fail", "fail", None),
    ("course empty, no cyclophosphamide", {"disease_course": None, "prior_cyclophosphamide": False}, "fail", "fail", None),
]


def _rr_cases() -> list[Case]:
    out = []
    for name, changes, ssc, gc, params in RR_CASES:
        for d, uid in RR_ID.items():
            outcome = ssc if d == "SSc" else gc
            failed = [uid] if outcome == "fail" else []
            unknown = [uid] if outcome == "unknown" else []
            out.append(c(f"{d} RR-A: {name}", d, failed, unknown, params, **changes))
        # APS has no RR-A clause: any treatment history is fine
        out.append(c(f"APS RR-A n/a: {name}", "APS", params=params, **changes))
    return out


# ---------------------------------------------------------------------------------------
# Disease blocks
# ---------------------------------------------------------------------------------------
NO_RR = {"disease_course": "responding"}  # SSc: RR-A fails, progression alone decides SSC-INC-4

BLOCKS = [
    # SSC-INC-1
    c("ssc score 9", "SSc", ssc_acr_eular_2013_score=9),
    c("ssc score 8.9", "SSc", ["SSC-INC-1"], ssc_acr_eular_2013_score=8.9),
    c("ssc score empty", "SSc", [], ["SSC-INC-1"], ssc_acr_eular_2013_score=None),
    # SSC-INC-2 / SSC-EXC-2
    c("duration 60", "SSc", disease_duration_months=60),
    c("duration 60.1", "SSc", ["SSC-INC-2", "SSC-EXC-2"], disease_duration_months=60.1),
    c("duration empty", "SSc", [], ["SSC-INC-2", "SSC-EXC-2"], disease_duration_months=None),
    c("duration 80 max 90", "SSc", params={"disease_duration_max_months": 90}, disease_duration_months=80),
    # SSC-INC-3
    c("mrss 10", "SSc", mrss=10),
    c("mrss 9.9", "SSc", ["SSC-INC-3"], mrss=9.9),
    c("mrss empty, no ggo", "SSc", [], ["SSC-INC-3"], mrss=None, hrct_ggo=False),
    c("mrss empty, ggo + fvc 60", "SSc", mrss=None, hrct_ggo=True, fvc_pct_pred=60),
    c("mrss 5, ggo + dlco 69.9", "SSc", mrss=5, hrct_ggo=True, fvc_pct_pred=85, dlco_pct_pred=69.9),
    c("mrss 5, ggo + fvc 69.9", "SSc", mrss=5, hrct_ggo=True, fvc_pct_pred=69.9, dlco_pct_pred=80),
    c("mrss 5, ggo, fvc 70 dlco 70", "SSc", ["SSC-INC-3"], mrss=5, hrct_ggo=True, fvc_pct_pred=70, dlco_pct_pred=70),
    c("mrss 5, no ggo, fvc 60", "SSc", ["SSC-INC-3"], mrss=5, hrct_ggo=False, fvc_pct_pred=60),
    c("mrss 5, ggo empty, fvc 60", "SSc", [], ["SSC-INC-3"], mrss=5, hrct_ggo=None, fvc_pct_pred=60),
    c("mrss 5, ggo, fvc empty, dlco 80", "SSc", [], ["SSC-INC-3", "EXC-2.fvc"], mrss=5, hrct_ggo=True,
      fvc_pct_pred=None, dlco_pct_pred=80),
    c("mrss 5, ggo, fvc empty, dlco 60", "SSc", [], ["EXC-2.fvc"], mrss=5, hrct_ggo=True,
      fvc_pct_pred=None, dlco_pct_pred=60),
    c("mrss empty, ggo empty, fvc 85", "SSc", [], ["SSC-INC-3"], mrss=None, hrct_ggo=None),
    c("mrss 5 mrss_min 5", "SSc", params={"mrss_min": 5}, mrss=5),
    c("mrss 5, ggo, fvc 75 ild cut-off 80", "SSc", params={"ild_pft_max_pct": 80}, mrss=5, hrct_ggo=True,
      fvc_pct_pred=75),
    # SSC-INC-4 progression arms (RR-A fails because the course is 'responding')
    c("not RR, no progression", "SSc", ["SSC-INC-4"], **NO_RR),
    c("not RR, mrss +25.1%", "SSc", **NO_RR, mrss_change_6m_pct=25.1),
    c("not RR, mrss +25%", "SSc", ["SSC-INC-4"], **NO_RR, mrss_change_6m_pct=25),
    c("not RR, fvc -10%", "SSc", **NO_RR, fvc_change_6m_pct=-10),
    c("not RR, fvc -9.9%", "SSc", ["SSC-INC-4"], **NO_RR, fvc_change_6m_pct=-9.9),
    c("not RR, fvc -5% dlco -15%", "SSc", **NO_RR, fvc_change_6m_pct=-5, dlco_change_6m_pct=-15),
    c("not RR, fvc -5% dlco -14.9%", "SSc", ["SSC-INC-4"], **NO_RR, fvc_change_6m_pct=-5, dlco_change_6m_pct=-14.9),
    c("not RR, fvc -4.9% dlco -20%", "SSc", ["SSC-INC-4"], **NO_RR, fvc_change_6m_pct=-4.9, dlco_change_6m_pct=-20),
    c("not RR, changes empty", "SSc", [], ["SSC-INC-4"], **NO_RR, mrss_change_6m_pct=None,
      fvc_change_6m_pct=None, dlco_change_6m_pct=None),
    c("not RR, mrss change empty only", "SSc", [], ["SSC-INC-4"], **NO_RR, mrss_change_6m_pct=None),
    c("not RR, dlco change empty, fvc -6%", "SSc", [], ["SSC-INC-4"], **NO_RR, fvc_change_6m_pct=-6,
      dlco_change_6m_pct=None),
    c("not RR, dlco change empty, fvc -4%", "SSc", ["SSC-INC-4"], **NO_RR, fvc_change_6m_pct=-4,
      dlco_change_6m_pct=None),
    c("course empty, mrss +30%", "SSc", disease_course=None, mrss_change_6m_pct=30),
    c("course empty, no progression", "SSc", [], ["SSC-INC-4"], disease_course=None),
    c("RR, progression data empty", "SSc", mrss_change_6m_pct=None, fvc_change_6m_pct=None, dlco_change_6m_pct=None),
    c("not RR, mrss +20% progression 15", "SSc", params={"mrss_progression_pct": 15}, **NO_RR, mrss_change_6m_pct=20),
    c("not RR, fvc -8% decline 8", "SSc", params={"fvc_decline_pct": 8}, **NO_RR, fvc_change_6m_pct=-8),
    c("not RR, fvc -3% dlco -10% (3,10)", "SSc", params={"fvc_decline_with_dlco_pct": 3, "dlco_decline_pct": 10},
      **NO_RR, fvc_change_6m_pct=-3, dlco_change_6m_pct=-10),
    # SSC-EXC-1 subtype (set parameter)
    c("ssc limited", "SSc", ["SSC-EXC-1"], ssc_subtype="limited"),
    c("ssc sine", "SSc", ssc_subtype="sine"),
    c("ssc subtype empty", "SSc", [], ["SSC-EXC-1"], ssc_subtype=None),
    c("ssc limited, excluded {}", "SSc", params={"ssc_excluded_subtypes": []}, ssc_subtype="limited"),
    c("ssc sine, excluded {limited, sine}", "SSc", ["SSC-EXC-1"], params={"ssc_excluded_subtypes": ["limited", "sine"]},
      ssc_subtype="sine"),
    c("ssc limited, excluded {LIMITED} case-insensitive", "SSc", ["SSC-EXC-1"],
      params={"ssc_excluded_subtypes": ["LIMITED"]}, ssc_subtype="limited"),
    c("ssc diffuse, excluded {Diffuse}", "SSc", ["SSC-EXC-1"], params={"ssc_excluded_subtypes": ["Diffuse"]}),
    # SSC-EXC-3, -4, -6 flags
    *[
        c(f"{fld} {v}", "SSc", [uid] if v else [], [] if v is not None else [uid], **{fld: v})
        for uid, fld in [("SSC-EXC-3", "ssc_environmental"), ("SSC-EXC-4", "renal_crisis_history"),
                         ("SSC-EXC-6", "gave_active")]
        for v in (True, None)
    ],
    # SSC-EXC-5 PH risk (set parameter)
    c("ph intermediate", "SSc", ["SSC-EXC-5"], ph_risk="intermediate"),
    c("ph high", "SSc", ["SSC-EXC-5"], ph_risk="high"),
    c("ph low", "SSc", ph_risk="low"),
    c("ph none", "SSc", ph_risk="none"),
    c("ph empty", "SSc", [], ["SSC-EXC-5"], ph_risk=None),
    c("ph intermediate, excluded {high}", "SSc", params={"ph_excluded_risks": ["high"]}, ph_risk="intermediate"),
    c("ph low, excluded {low, high}", "SSc", ["SSC-EXC-5"], params={"ph_excluded_risks": ["low", "high"]}, ph_risk="low"),
    # IIM-INC-1
    c("iim prob 55", "IIM", iim_eular_acr_2017_prob_pct=55),
    c("iim prob 54.9", "IIM", ["IIM-INC-1"], iim_eular_acr_2017_prob_pct=54.9),
    c("iim prob empty", "IIM", [], ["IIM-INC-1"], iim_eular_acr_2017_prob_pct=None),
    c("iim prob 60 min 70", "IIM", ["IIM-INC-1"], params={"iim_prob_min_pct": 70}, iim_eular_acr_2017_prob_pct=60),
    *[c(f"iim subtype {s}", "IIM", iim_subtype=s) for s in ("DM", "PM", "ASS", "IMNM")],
    c("iim subtype IBM", "IIM", ["IIM-INC-1", "IIM-EXC-2"], iim_subtype="IBM"),
    c("iim subtype other", "IIM", ["IIM-INC-1"], iim_subtype="other"),
    c("iim subtype empty", "IIM", [], ["IIM-INC-1", "IIM-EXC-2"], iim_subtype=None),
    c("iim subtype empty, prob 50", "IIM", ["IIM-INC-1"], ["IIM-EXC-2"], iim_subtype=None,
      iim_eular_acr_2017_prob_pct=50),
    c("iim PM, included {DM}", "IIM", ["IIM-INC-1"], params={"iim_included_subtypes": ["DM"]}, iim_subtype="PM"),
    c("iim other, included +other", "IIM", params={"iim_included_subtypes": ["DM", "PM", "ASS", "IMNM", "other"]},
      iim_subtype="other"),
    c("iim IBM, included +IBM: still IIM-EXC-2", "IIM", ["IIM-EXC-2"],
      params={"iim_included_subtypes": ["DM", "IBM"]}, iim_subtype="IBM"),
    c("iim dm, included {dm} case-insensitive", "IIM", params={"iim_included_subtypes": ["dm"]}, iim_subtype="DM"),
    # IIM-INC-2 (base: mmt8 120, phga 5, ptga 5 abnormal; extramuscular 1, haq 0.1, enzyme 1.0 normal)
    c("mmt8 141.9", "IIM", mmt8=141.9),
    c("mmt8 142, no ggo", "IIM", ["IIM-INC-2"], mmt8=142),
    c("mmt8 142, ggo", "IIM", mmt8=142, hrct_ggo=True),
    c("mmt8 150, ggo empty", "IIM", [], ["IIM-INC-2"], mmt8=150, hrct_ggo=None),
    c("mmt8 empty, no ggo", "IIM", [], ["IIM-INC-2"], mmt8=None, hrct_ggo=False),
    c("mmt8 empty, ggo (Kleene: unknown)", "IIM", [], ["IIM-INC-2"], mmt8=None, hrct_ggo=True),
    c("mmt8 empty, no ggo, core 0 abnormal", "IIM", ["IIM-INC-2"], mmt8=None, hrct_ggo=False, phga_cm=0, ptga_cm=0),
    c("mmt8 145 mmt8_max 150", "IIM", params={"mmt8_max": 150}, mmt8=145),
    c("core: 2 known abnormal + 3 unknown", "IIM", extramuscular_activity_cm=None, haq_di=None, muscle_enzyme_x_uln=None),
    c("core: 1 abnormal + 0 unknown", "IIM", ["IIM-INC-2"], ptga_cm=1),
    c("core: 1 abnormal + 1 unknown", "IIM", [], ["IIM-INC-2"], ptga_cm=None, phga_cm=5, haq_di=0.1),
    c("core: 0 abnormal + 1 unknown", "IIM", ["IIM-INC-2"], phga_cm=None, ptga_cm=1),
    c("core: 0 abnormal + 5 unknown", "IIM", [], ["IIM-INC-2"], phga_cm=None, ptga_cm=None,
      extramuscular_activity_cm=None, haq_di=None, muscle_enzyme_x_uln=None),
    c("core: 1 abnormal, min 1", "IIM", params={"core_set_min_abnormal": 1}, ptga_cm=1),
    c("core: 2 abnormal, min 3", "IIM", ["IIM-INC-2"], params={"core_set_min_abnormal": 3}),
    c("core: 2 abnormal + 1 unknown, min 3", "IIM", [], ["IIM-INC-2"], params={"core_set_min_abnormal": 3},
      haq_di=None),
    c("core: 5 abnormal, min 5", "IIM", params={"core_set_min_abnormal": 5}, extramuscular_activity_cm=2,
      haq_di=0.25, muscle_enzyme_x_uln=1.5),
    c("core: 4 abnormal, min 5", "IIM", ["IIM-INC-2"], params={"core_set_min_abnormal": 5}, extramuscular_activity_cm=2,
      haq_di=0.25, muscle_enzyme_x_uln=1.49),
    c("core: phga 2 boundary", "IIM", phga_cm=2),
    c("core: phga 1.9", "IIM", ["IIM-INC-2"], phga_cm=1.9),
    c("core: ptga 2 boundary", "IIM", ptga_cm=2),
    c("core: ptga 1.9", "IIM", ["IIM-INC-2"], ptga_cm=1.9),
    c("core: extramuscular 2 (ptga 0)", "IIM", ptga_cm=0, extramuscular_activity_cm=2),
    c("core: extramuscular 1.9 (ptga 0)", "IIM", ["IIM-INC-2"], ptga_cm=0, extramuscular_activity_cm=1.9),
    c("core: haq 0.25 (ptga 0)", "IIM", ptga_cm=0, haq_di=0.25),
    c("core: haq 0.24 (ptga 0)", "IIM", ["IIM-INC-2"], ptga_cm=0, haq_di=0.24),
    c("core: enzyme 1.5 (ptga 0)", "IIM", ptga_cm=0, muscle_enzyme_x_uln=1.5),
    c("core: enzyme 1.49 (ptga 0)", "IIM", ["IIM-INC-2"], ptga_cm=0, muscle_enzyme_x_uln=1.49),
    c("core: phga 3 with phga_min 4", "IIM", ["IIM-INC-2"], params={"phga_min_cm": 4}, phga_cm=3),
    c("core: haq 0.2 with haq_min 0.2 (ptga 0)", "IIM", params={"haq_min": 0.2}, ptga_cm=0, haq_di=0.2),
    # IIM-INC-3
    c("msa negative", "IIM", ["IIM-INC-3"], msa_positive=False),
    c("msa empty", "IIM", [], ["IIM-INC-3"], msa_positive=None),
    # IIM-INC-4 via rp_ild
    c("iim rp_ild rescues low gc", "IIM", gc_max_mg_kg_day=0.5, rp_ild=True),
    c("iim rp_ild rescues responding", "IIM", disease_course="responding", rp_ild=True),
    c("iim rp_ild empty, gc low", "IIM", [], ["IIM-INC-4"], gc_max_mg_kg_day=0.5, rp_ild=None),
    c("iim rp_ild empty, RR ok", "IIM", rp_ild=None),
    # IIM exclusions
    c("drug-induced myopathy", "IIM", ["IIM-EXC-1"], drug_induced_myopathy=True),
    c("drug-induced myopathy empty", "IIM", [], ["IIM-EXC-1"], drug_induced_myopathy=None),
    c("cancer-associated myositis", "IIM", ["IIM-EXC-3"], cancer_associated_myositis=True),
    c("cancer-associated myositis empty", "IIM", [], ["IIM-EXC-3"], cancer_associated_myositis=None),
    # AAV-INC-1
    c("aav criteria not met", "AAV", ["AAV-INC-1"], aav_acr_eular_2022_met=False),
    c("aav criteria empty", "AAV", [], ["AAV-INC-1"], aav_acr_eular_2022_met=None),
    c("aav GPA", "AAV", aav_subtype="GPA"),
    c("aav EGPA", "AAV", ["AAV-INC-1"], aav_subtype="EGPA"),
    c("aav subtype empty", "AAV", [], ["AAV-INC-1"], aav_subtype=None),
    c("aav subtype empty, not met", "AAV", ["AAV-INC-1"], aav_subtype=None, aav_acr_eular_2022_met=False),
    c("aav EGPA, included +EGPA", "AAV", params={"aav_included_subtypes": ["GPA", "MPA", "EGPA"]}, aav_subtype="EGPA"),
    c("aav MPA, included {GPA}", "AAV", ["AAV-INC-1"], params={"aav_included_subtypes": ["GPA"]}),
    # AAV-INC-2
    c("anca both negative", "AAV", ["AAV-INC-2"], anca_pr3_pos=False, anca_mpo_pos=False),
    c("anca pr3 empty mpo negative", "AAV", [], ["AAV-INC-2"], anca_pr3_pos=None, anca_mpo_pos=False),
    c("anca pr3 empty mpo positive", "AAV", anca_pr3_pos=None, anca_mpo_pos=True),
    c("anca pr3 positive mpo empty", "AAV", anca_pr3_pos=True, anca_mpo_pos=None),
    c("anca both empty", "AAV", [], ["AAV-INC-2"], anca_pr3_pos=None, anca_mpo_pos=None),
    # AAV-INC-3
    c("bvas 15", "AAV", bvas=15),
    c("bvas 14.9", "AAV", ["AAV-INC-3"], bvas=14.9),
    c("bvas empty", "AAV", [], ["AAV-INC-3"], bvas=None),
    c("bvas 10, items unknown (Kleene: fails)", "AAV", ["AAV-INC-3"], bvas=10, bvas_major_items=None,
      bvas_minor_items=None, renal_hematuria_proteinuria=None),
    c("bvas 20, 0 major, 3 minor", "AAV", bvas_major_items=0, bvas_minor_items=3),
    c("bvas 20, 0 major, 2 minor", "AAV", ["AAV-INC-3"], bvas_major_items=0, bvas_minor_items=2),
    c("bvas 20, 0 major, 2 minor, renal", "AAV", bvas_major_items=0, bvas_minor_items=2, renal_hematuria_proteinuria=True),
    c("bvas 20, major empty, 0 minor", "AAV", [], ["AAV-INC-3"], bvas_major_items=None, bvas_minor_items=0),
    c("bvas 20, 0 major, 0 minor, renal empty", "AAV", [], ["AAV-INC-3"], bvas_major_items=0,
      renal_hematuria_proteinuria=None),
    c("bvas 20, major empty, renal", "AAV", bvas_major_items=None, renal_hematuria_proteinuria=True),
    c("bvas empty, 0 items, no renal", "AAV", ["AAV-INC-3"], bvas=None, bvas_major_items=0, bvas_minor_items=0),
    c("bvas 12, bvas_min 10", "AAV", params={"bvas_min": 10}, bvas=12),
    c("major items empty, min major 0", "AAV", params={"bvas_min_major_items": 0}, bvas_major_items=None),
    c("all items 0, min minor 0", "AAV", params={"bvas_min_minor_items": 0}, bvas_major_items=0, bvas_minor_items=0),
    c("1 major, min major 2", "AAV", ["AAV-INC-3"], params={"bvas_min_major_items": 2}),
    # AAV-INC-4 / EXC-2.kidney one condition
    c("aav egfr 15", "AAV", egfr_ml_min_1_73m2=15),
    c("aav egfr 10", "AAV", ["AAV-INC-4", "EXC-2.kidney"], egfr_ml_min_1_73m2=10),
    c("aav egfr 10, egfr_min 5", "AAV", params={"egfr_min": 5}, egfr_ml_min_1_73m2=10),
    # AAV exclusions
    *[
        c(f"{fld} {v}", "AAV", [uid] if v else [], [] if v is not None else [uid], **{fld: v})
        for uid, fld in [("AAV-EXC-1", "alveolar_hemorrhage_ventilation"),
                         ("AAV-EXC-2", "dialysis_or_plasmapheresis"), ("AAV-EXC-3", "kidney_transplant")]
        for v in (True, None)
    ],
    # SJS-INC-1
    c("sjs aecg met", "SjS", sjs_aecg_2002_met=True, sjs_acr_eular_2016_score=0),
    c("sjs aecg no, score 4", "SjS", sjs_aecg_2002_met=False, sjs_acr_eular_2016_score=4),
    c("sjs aecg no, score 3.9", "SjS", ["SJS-INC-1"], sjs_aecg_2002_met=False, sjs_acr_eular_2016_score=3.9),
    c("sjs aecg empty, score 3", "SjS", [], ["SJS-INC-1"], sjs_aecg_2002_met=None, sjs_acr_eular_2016_score=3),
    c("sjs aecg empty, score 4", "SjS", sjs_aecg_2002_met=None, sjs_acr_eular_2016_score=4),
    c("sjs aecg no, score empty", "SjS", [], ["SJS-INC-1"], sjs_aecg_2002_met=False, sjs_acr_eular_2016_score=None),
    c("sjs aecg met, score empty", "SjS", sjs_aecg_2002_met=True, sjs_acr_eular_2016_score=None),
    c("sjs aecg no, score 5 min 6", "SjS", ["SJS-INC-1"], params={"sjs_score_min": 6}, sjs_aecg_2002_met=False,
      sjs_acr_eular_2016_score=5),
    # SJS-INC-2, -3
    c("anti-ssa negative", "SjS", ["SJS-INC-2"], anti_ssa_ro60_pos=False),
    c("anti-ssa empty", "SjS", [], ["SJS-INC-2"], anti_ssa_ro60_pos=None),
    c("essdai 5", "SjS", essdai=5),
    c("essdai 4.9", "SjS", ["SJS-INC-3"], essdai=4.9),
    c("essdai empty", "SjS", [], ["SJS-INC-3"], essdai=None),
    c("essdai 3 min 3", "SjS", params={"essdai_min": 3}, essdai=3),
    *[
        c(f"{fld} {v}", "SjS", [uid] if v else [], [] if v is not None else [uid], **{fld: v})
        for uid, fld in [("SJS-EXC-1", "cirrhosis"), ("SJS-EXC-2", "aa_mds_mpd"),
                         ("SJS-EXC-3", "drug_induced_thrombocytopenia"), ("SJS-EXC-4", "ttp_tma")]
        for v in (True, None)
    ],
    # APS-INC-1
    c("aps sydney not met", "APS", ["APS-INC-1"], aps_sydney_2006_met=False),
    c("aps secondary", "APS", ["APS-INC-1"], aps_primary=False),
    c("aps sydney empty", "APS", [], ["APS-INC-1"], aps_sydney_2006_met=None),
    c("aps primary empty, sydney not met", "APS", ["APS-INC-1"], aps_primary=None, aps_sydney_2006_met=False),
    # APS-INC-2 (base: titre yes, 3 positives, 14 weeks; APS-INC-3 via recurrent thrombosis)
    c("apl titre no", "APS", ["APS-INC-2"], apl_medium_high_titer=False),
    c("apl titre empty", "APS", [], ["APS-INC-2"], apl_medium_high_titer=None),
    c("apl count 2", "APS", apl_positive_count=2),
    c("apl count 1", "APS", ["APS-INC-2"], apl_positive_count=1),
    c("apl count empty", "APS", [], ["APS-INC-2"], apl_positive_count=None),
    c("apl interval 12", "APS", apl_interval_weeks=12),
    c("apl interval 11.9", "APS", ["APS-INC-2"], apl_interval_weeks=11.9),
    c("apl interval empty", "APS", [], ["APS-INC-2"], apl_interval_weeks=None),
    c("apl interval empty, titre no", "APS", ["APS-INC-2"], apl_interval_weeks=None, apl_medium_high_titer=False),
    c("apl count 1, min 1", "APS", params={"apl_min_positive_count": 1}, apl_positive_count=1),
    c("apl interval 11, min 10", "APS", params={"apl_min_interval_weeks": 10}, apl_interval_weeks=11),
    # APS-INC-3: recurrent thrombosis OR CAPS (all four)
    c("no thrombosis, no CAPS", "APS", ["APS-INC-3"], recurrent_thrombosis_on_anticoagulation=False),
    c("thrombosis empty, no CAPS", "APS", [], ["APS-INC-3"], recurrent_thrombosis_on_anticoagulation=None),
    *[
        c(f"CAPS {label}", "APS", failed, unknown, params, recurrent_thrombosis_on_anticoagulation=rt,
          **{"caps_organ_count": 3, "caps_onset_within_1_week": True, "caps_small_vessel_occlusion": True,
             "apl_medium_high_titer": True, **chg})
        for label, rt, chg, failed, unknown, params in [
            ("all four", False, {}, [], [], None),
            ("all four, thrombosis empty", None, {}, [], [], None),
            ("2 organs", False, {"caps_organ_count": 2}, ["APS-INC-3"], [], None),
            ("2 organs, caps_min_organs 2", False, {"caps_organ_count": 2}, [], [], {"caps_min_organs": 2}),
            ("3 organs, caps_min_organs 4", False, {}, ["APS-INC-3"], [], {"caps_min_organs": 4}),
            ("organs empty", False, {"caps_organ_count": None}, [], ["APS-INC-3"], None),
            ("onset not within a week", False, {"caps_onset_within_1_week": False}, ["APS-INC-3"], [], None),
            ("onset empty", False, {"caps_onset_within_1_week": None}, [], ["APS-INC-3"], None),
            ("no small-vessel occlusion", False, {"caps_small_vessel_occlusion": False}, ["APS-INC-3"], [], None),
            ("small-vessel empty", False, {"caps_small_vessel_occlusion": None}, [], ["APS-INC-3"], None),
            ("titre no", False, {"apl_medium_high_titer": False}, ["APS-INC-2", "APS-INC-3"], [], None),
            ("titre no, thrombosis", True, {"apl_medium_high_titer": False}, ["APS-INC-2"], [], None),
            ("onset no, thrombosis empty", None, {"caps_onset_within_1_week": False}, [], ["APS-INC-3"], None),
        ]
    ],
    # APS exclusions
    c("aps obstetric", "APS", ["APS-EXC-1"], aps_obstetric=True),
    c("aps obstetric empty", "APS", [], ["APS-EXC-1"], aps_obstetric=None),
    c("aps neurologic", "APS", ["APS-EXC-3"], aps_neurologic=True),
    c("aps neurologic empty", "APS", [], ["APS-EXC-3"], aps_neurologic=None),
    # block fields of other diseases are irrelevant (not applicable), even when wrong
    c("SSc patient with IIM/AAV/SjS/APS failures", "SSc", iim_subtype="IBM", bvas=0, essdai=0, aps_obstetric=True),
    c("APS patient with SSc failures", "APS", ssc_subtype="limited", mrss=0, ph_risk=None, msa_positive=False),
]


ALL_CASES: list[Case] = [
    *DX,
    *[_common_for(x, d) for x in COMMON for d in DISEASES],
    *_rr_cases(),
    *BLOCKS,
]


def _case_id(case: Case) -> str:
    d = case.disease or "no disease"
    return case.name if case.name.startswith(d) else f"{d}: {case.name}"


_RESULTS: dict[str, dict] = {}


def _screen_all() -> dict[str, dict]:
    """Screen every case, one cohort per distinct scenario."""
    if _RESULTS:
        return _RESULTS
    groups: dict[str, list[tuple[str, Case]]] = {}
    for case in ALL_CASES:
        groups.setdefault(case.scenario_key, []).append((_case_id(case), case))
    for key, members in groups.items():
        rows = [eligible_row(case.disease, patient_id=f"R{i}", **case.changes) for i, (_, case) in enumerate(members)]
        out = screen_frame(make_cohort(rows), resolve(json.loads(key)))
        assert list(out["patient_id"]) == [f"R{i}" for i in range(len(members))]
        for (cid, _), rec in zip(members, out.to_dict("records"), strict=True):
            _RESULTS[cid] = rec
    return _RESULTS


def test_case_ids_unique():
    names = [_case_id(x) for x in ALL_CASES]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_case(case: Case):
    rec = _screen_all()[_case_id(case)]
    assert ids(rec["failed"]) == case.failed, rec
    assert ids(rec["unknown"]) == case.unknown, rec
    assert rec["status"] == expected_status(case.failed, case.unknown), rec
    assert rec["not_assessed"] == ""
    if case.failed:
        assert rec["first_reason"] in case.failed
    else:
        assert rec["first_reason"] == ""


# ---------------------------------------------------------------------------------------
# Catalog coverage: the catalog holds exactly the IDs of criteria.md, and the table above
# makes every one of them fail and (except DX/constant-free ones) be unknown somewhere.
# ---------------------------------------------------------------------------------------
SPEC_IDS = [
    "DX-1", "INC-1", "INC-2.hb", "INC-2.wbc", "INC-2.anc", "INC-2.gcsf", "INC-3.alt", "INC-3.ast",
    "INC-3.tbil", "INC-4.inr", "INC-4.pt", "INC-5", "INC-6", "INC-7", "EXC-1", "EXC-2.heart",
    "EXC-2.kidney", "EXC-2.alt", "EXC-2.ast", "EXC-2.tbil", "EXC-2.fvc", "EXC-2.dlco", "EXC-2.hb",
    "EXC-2.wbc", "EXC-2.anc", "EXC-3.hbsag", "EXC-3.hbcab", "EXC-3.hcv", "EXC-4.active",
    "EXC-4.latent", "EXC-5", "EXC-6.active", "EXC-6.chronic", "EXC-6.iv", "EXC-6.hosp", "EXC-6.oral",
    "EXC-7", "EXC-8.iga", "EXC-8.igg", "EXC-9", "EXC-10", "EXC-11", "EXC-12", "EXC-13", "EXC-14",
    "EXC-15",
    "SSC-INC-1", "SSC-INC-2", "SSC-INC-3", "SSC-INC-4", "SSC-EXC-1", "SSC-EXC-2", "SSC-EXC-3",
    "SSC-EXC-4", "SSC-EXC-5", "SSC-EXC-6",
    "IIM-INC-1", "IIM-INC-2", "IIM-INC-3", "IIM-INC-4", "IIM-EXC-1", "IIM-EXC-2", "IIM-EXC-3",
    "AAV-INC-1", "AAV-INC-2", "AAV-INC-3", "AAV-INC-4", "AAV-INC-5", "AAV-EXC-1", "AAV-EXC-2",
    "AAV-EXC-3",
    "SJS-INC-1", "SJS-INC-2", "SJS-INC-3", "SJS-INC-4", "SJS-EXC-1", "SJS-EXC-2", "SJS-EXC-3",
    "SJS-EXC-4",
    "APS-INC-1", "APS-INC-2", "APS-INC-3", "APS-EXC-1", "APS-EXC-2", "APS-EXC-3",
]
# Washout-only units can never be unknown (empty = never).
NEVER_UNKNOWN = {"INC-2.gcsf", "EXC-6.iv", "EXC-6.hosp", "EXC-6.oral", "EXC-9", "EXC-13"}


def test_catalog_ids_in_spec_order():
    assert [u.id for u in default_catalog().units] == SPEC_IDS


def test_every_unit_fails_somewhere_in_table():
    seen = set().union(*(x.failed for x in ALL_CASES))
    assert set(SPEC_IDS) - seen == set()


def test_every_unit_unknown_somewhere_in_table():
    seen = set().union(*(x.unknown for x in ALL_CASES))
    assert set(SPEC_IDS) - NEVER_UNKNOWN - seen == set()


# ---------------------------------------------------------------------------------------
# Not assessed: a column absent from the file makes exactly the units needing it not
# assessed. The needs below are written from criteria.md, independently of the YAML.
# ---------------------------------------------------------------------------------------
RR_FIELDS = {"disease_course", "prior_glucocorticoid", "prior_cyclophosphamide", "prior_immunomodulators",
             "conventional_therapy_months"}
NEEDS: dict[str, set[str]] = {
    "DX-1": {"disease"},
    "INC-1": {"age_years"},
    "INC-2.hb": {"hemoglobin_g_l"}, "INC-2.wbc": {"wbc_10e9_l"}, "INC-2.anc": {"anc_10e9_l"},
    "INC-2.gcsf": {"days_since_gcsf"},
    "INC-3.alt": {"alt_u_l"}, "INC-3.ast": {"ast_u_l"}, "INC-3.tbil": {"tbil_umol_l"},
    "INC-4.inr": {"inr"}, "INC-4.pt": {"pt_s"},
    "INC-5": {"hemodynamically_stable"},
    "INC-6": {"sex", "childbearing_potential", "pregnancy_test_negative", "contraception_agreed"},
    "INC-7": {"consent_signed"},
    "EXC-1": {"other_ctd"}, "EXC-2.heart": {"severe_heart_disease"}, "EXC-2.kidney": {"egfr_ml_min_1_73m2"},
    "EXC-2.alt": {"alt_u_l"}, "EXC-2.ast": {"ast_u_l"}, "EXC-2.tbil": {"tbil_umol_l"},
    "EXC-2.fvc": {"fvc_pct_pred"}, "EXC-2.dlco": {"dlco_pct_pred"}, "EXC-2.hb": {"hemoglobin_g_l"},
    "EXC-2.wbc": {"wbc_10e9_l"}, "EXC-2.anc": {"anc_10e9_l"},
    "EXC-3.hbsag": {"hbsag_pos"}, "EXC-3.hbcab": {"hbcab_pos"}, "EXC-3.hcv": {"hcv_ab_pos"},
    "EXC-4.active": {"tb_active"}, "EXC-4.latent": {"tb_latent"}, "EXC-5": {"hiv_pos"},
    "EXC-6.active": {"active_serious_infection"}, "EXC-6.chronic": {"chronic_infection_on_treatment"},
    "EXC-6.iv": {"days_since_iv_antibiotics"}, "EXC-6.hosp": {"days_since_infection_hospitalization"},
    "EXC-6.oral": {"days_since_oral_antibiotics"}, "EXC-7": {"immunodeficiency"},
    "EXC-8.iga": {"iga_mg_dl"}, "EXC-8.igg": {"igg_mg_dl"}, "EXC-9": {"days_since_investigational_drug"},
    "EXC-10": {"years_since_malignancy", "malignancy_excepted"},
    "EXC-11": {"sex", "pregnant", "breastfeeding", "planning_pregnancy"},
    "EXC-12": {"protein_antibody_allergy"}, "EXC-13": {"days_since_live_vaccine"},
    "EXC-14": {"expected_noncompliance"}, "EXC-15": {"investigator_unsuitable"},
    "SSC-INC-1": {"ssc_acr_eular_2013_score"}, "SSC-INC-2": {"disease_duration_months"},
    "SSC-INC-3": {"mrss", "hrct_ggo", "fvc_pct_pred", "dlco_pct_pred"},
    "SSC-INC-4": RR_FIELDS | {"mrss_change_6m_pct", "fvc_change_6m_pct", "dlco_change_6m_pct"},
    "SSC-EXC-1": {"ssc_subtype"}, "SSC-EXC-2": {"disease_duration_months"},
    "SSC-EXC-3": {"ssc_environmental"}, "SSC-EXC-4": {"renal_crisis_history"}, "SSC-EXC-5": {"ph_risk"},
    "SSC-EXC-6": {"gave_active"},
    "IIM-INC-1": {"iim_eular_acr_2017_prob_pct", "iim_subtype"},
    "IIM-INC-2": {"mmt8", "phga_cm", "ptga_cm", "extramuscular_activity_cm", "haq_di", "muscle_enzyme_x_uln",
                  "hrct_ggo"},
    "IIM-INC-3": {"msa_positive"}, "IIM-INC-4": RR_FIELDS | {"gc_max_mg_kg_day", "rp_ild"},
    "IIM-EXC-1": {"drug_induced_myopathy"}, "IIM-EXC-2": {"iim_subtype"},
    "IIM-EXC-3": {"cancer_associated_myositis"},
    "AAV-INC-1": {"aav_acr_eular_2022_met", "aav_subtype"}, "AAV-INC-2": {"anca_pr3_pos", "anca_mpo_pos"},
    "AAV-INC-3": {"bvas", "bvas_major_items", "bvas_minor_items", "renal_hematuria_proteinuria"},
    "AAV-INC-4": {"egfr_ml_min_1_73m2"}, "AAV-INC-5": RR_FIELDS | {"gc_max_mg_kg_day"},
    "AAV-EXC-1": {"alveolar_hemorrhage_ventilation"}, "AAV-EXC-2": {"dialysis_or_plasmapheresis"},
    "AAV-EXC-3": {"kidney_transplant"},
    "SJS-INC-1": {"sjs_aecg_2002_met", "sjs_acr_eular_2016_score"}, "SJS-INC-2": {"anti_ssa_ro60_pos"},
    "SJS-INC-3": {"essdai"}, "SJS-INC-4": RR_FIELDS | {"gc_max_mg_kg_day"},
    "SJS-EXC-1": {"cirrhosis"}, "SJS-EXC-2": {"aa_mds_mpd"}, "SJS-EXC-3": {"drug_induced_thrombocytopenia"},
    "SJS-EXC-4": {"ttp_tma"},
    "APS-INC-1": {"aps_sydney_2006_met", "aps_primary"},
    "APS-INC-2": {"apl_medium_high_titer", "apl_positive_count", "apl_interval_weeks"},
    "APS-INC-3": {"recurrent_thrombosis_on_anticoagulation", "caps_organ_count", "caps_onset_within_1_week",
                  "caps_small_vessel_occlusion", "apl_medium_high_titer"},
    "APS-EXC-1": {"aps_obstetric"}, "APS-EXC-2": {"other_ctd"}, "APS-EXC-3": {"aps_neurologic"},
}
ALL_COLUMNS = [f.name for f in FIELDS if f.name not in ("patient_id", "disease")]
OPTIONAL = {"alt_uln_u_l", "ast_uln_u_l", "tbil_uln_umol_l", "inr_uln", "pt_uln_s", "weight_kg", "screening_date"}
DROPPABLE = [f for f in ALL_COLUMNS if f not in OPTIONAL]


def test_needs_table_covers_catalog():
    assert list(NEEDS) == SPEC_IDS
    used = set().union(*NEEDS.values())
    assert used - {"disease"} == set(DROPPABLE)


def _five_patients():
    return [eligible_row(d, patient_id=f"{d}-1") for d in DISEASES]


def _screen_without(columns: set[str], scenario=None):
    present = [x for x in ALL_COLUMNS if x not in columns]
    return screen_frame(make_cohort(_five_patients(), present=present), resolve(scenario or {}))


@pytest.mark.parametrize("column", DROPPABLE)
def test_absent_column_makes_exactly_its_units_not_assessed(column):
    out = _screen_without({column})
    expected = [u for u in SPEC_IDS if column in NEEDS[u]]
    assert expected, column
    for rec in out.to_dict("records"):
        assert rec["not_assessed"].split(";") == expected  # catalog order, same on every row
        assert rec["status"] == "eligible"  # neither fails nor makes anyone pending
        assert rec["failed"] == rec["unknown"] == ""


@pytest.mark.parametrize("column", sorted(OPTIONAL))
def test_absent_optional_column_changes_nothing(column):
    out = _screen_without({column})
    assert set(out["not_assessed"]) == {""}
    assert set(out["status"]) == {"eligible"}


def test_absent_uln_columns_use_default_uln():
    uln_cols = {"alt_uln_u_l", "ast_uln_u_l", "tbil_uln_umol_l", "inr_uln", "pt_uln_s"}
    present = [x for x in ALL_COLUMNS if x not in uln_cols]
    rows = [eligible_row("SSc", alt_u_l=120, ast_u_l=121, tbil_umol_l=31.5, inr=1.8, pt_s=20.24)]
    rec = screen_frame(make_cohort(rows, present=present)).iloc[0]
    assert ids(rec["failed"]) == {"INC-3.ast", "EXC-2.ast", "INC-4.inr"}
    assert rec["not_assessed"] == ""


def test_absent_column_does_not_hide_other_failures():
    rows = [eligible_row("SSc", tb_latent=True, hemoglobin_g_l=50, tb_active=None)]
    out = screen_frame(make_cohort(rows, present=[x for x in ALL_COLUMNS if x != "tb_latent"])).iloc[0]
    assert out["not_assessed"] == "EXC-4.latent"
    assert ids(out["failed"]) == {"INC-2.hb", "EXC-2.hb"}
    assert ids(out["unknown"]) == {"EXC-4.active"}


def test_not_assessed_unit_would_otherwise_fail_or_be_unknown():
    rows = [eligible_row("SSc", mrss_change_6m_pct=None, disease_course="responding"),
            eligible_row("SSc", disease_course="responding")]
    present = [x for x in ALL_COLUMNS if x != "mrss_change_6m_pct"]
    out = screen_frame(make_cohort(rows, present=present))
    assert list(out["status"]) == ["eligible", "eligible"]
    assert set(out["not_assessed"]) == {"SSC-INC-4"}


@pytest.mark.parametrize("require", [True, False])
def test_cyclophosphamide_column_needed_only_when_required(require):
    out = _screen_without({"prior_cyclophosphamide"}, {"parameters": {"require_cyclophosphamide": require}})
    expected = ["SSC-INC-4", "IIM-INC-4", "AAV-INC-5", "SJS-INC-4"] if require else []
    assert set(out["not_assessed"]) == {";".join(expected)}
    assert set(out["status"]) == {"eligible"}


def test_cyclophosphamide_not_required_and_absent_still_evaluates_rr():
    present = [x for x in ALL_COLUMNS if x != "prior_cyclophosphamide"]
    rows = [eligible_row(d, prior_immunomodulators="none") for d in ("SSc", "IIM", "AAV", "SjS")]
    out = screen_frame(make_cohort(rows, present=present), resolve({"parameters": {"require_cyclophosphamide": False}}))
    assert list(out["failed"]) == ["SSC-INC-4", "IIM-INC-4", "AAV-INC-5", "SJS-INC-4"]


def test_several_absent_columns():
    out = _screen_without({"sex", "tb_latent", "mrss"})
    assert set(out["not_assessed"]) == {"INC-6;EXC-4.latent;EXC-11;SSC-INC-3"}


def test_only_required_columns():
    out = screen_frame(make_cohort(_five_patients() + [eligible_row("Lupus")], present=[]))
    assert list(out["status"]) == ["eligible"] * 5 + ["ineligible"]
    assert set(out["not_assessed"]) == {";".join(SPEC_IDS[1:])}
    assert list(out["failed"]) == [""] * 5 + ["DX-1"]


# ---------------------------------------------------------------------------------------
# Switched-off criteria and parts
# ---------------------------------------------------------------------------------------
def _one(row, scenario=None, present=None):
    return screen_frame(make_cohort([row], present=present), resolve(scenario or {})).iloc[0]


def test_disable_part_removes_it_from_failed_and_not_listed():
    rec = _one(eligible_row("SSc", hemoglobin_g_l=50), {"disabled": ["INC-2.hb"]})
    assert ids(rec["failed"]) == {"EXC-2.hb"}
    assert rec["first_reason"] == "EXC-2.hb"
    assert rec["not_assessed"] == ""


def test_disable_both_parts_of_merged_cause_admits():
    rec = _one(eligible_row("SSc", hemoglobin_g_l=50), {"disabled": ["INC-2.hb", "EXC-2.hb"]})
    assert rec["status"] == "eligible" and rec["failed"] == "" and rec["not_assessed"] == ""


def test_disable_whole_criterion_disables_all_parts():
    row = eligible_row("SSc", hemoglobin_g_l=None, wbc_10e9_l=1.0, days_since_gcsf=1)
    rec = _one(row, {"disabled": ["INC-2"]})
    assert ids(rec["failed"]) == {"EXC-2.wbc"}
    assert ids(rec["unknown"]) == {"EXC-2.hb"}


def test_disable_removes_unknown():
    rec = _one(eligible_row("SSc", consent_signed=None), {"disabled": ["INC-7"]})
    assert rec["status"] == "eligible" and rec["unknown"] == ""


def test_disable_dx1_keeps_unrecognised_disease_out_of_failed():
    rec = _one(eligible_row("Lupus"), {"disabled": ["DX-1"]})
    assert rec["status"] == "eligible"
    rec = _one(eligible_row(None), {"disabled": ["DX-1"]})
    assert rec["status"] == "eligible"


def test_disabled_not_assessed_unit_not_listed():
    present = [x for x in ALL_COLUMNS if x not in ("tb_latent", "mrss")]
    rec = _one(eligible_row("SSc"), {"disabled": ["EXC-4.latent"]}, present=present)
    assert rec["not_assessed"] == "SSC-INC-3"
    rec = _one(eligible_row("SSc"), {"disabled": ["EXC-4"]}, present=present)
    assert rec["not_assessed"] == "SSC-INC-3"


def test_disable_block_criterion_only_affects_that_block():
    rows = [eligible_row("IIM", iim_subtype="IBM"), eligible_row("SSc", ssc_subtype="limited")]
    out = screen_frame(make_cohort(rows), resolve({"disabled": ["IIM-EXC-2", "IIM-INC-1"]}))
    assert list(out["status"]) == ["eligible", "ineligible"]
    assert out["failed"][1] == "SSC-EXC-1"


# ---------------------------------------------------------------------------------------
# An empty set parameter settles membership: nothing is in {}, so an empty category cell
# cannot make "subtype ∈ {}" unknown (the same reasoning the engine applies to counts:
# `min_immunomodulators` 0 makes an empty drug list pass). Switching an exclusion off by
# emptying its set must not leave patients with an empty cell pending.
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("param, fld, uid", [
    ("ssc_excluded_subtypes", "ssc_subtype", "SSC-EXC-1"),
    ("ph_excluded_risks", "ph_risk", "SSC-EXC-5"),
])
def test_empty_excluded_set_settles_empty_category(param, fld, uid):
    rec = _one(eligible_row("SSc", **{fld: None}), {"parameters": {param: []}})
    assert uid not in ids(rec["unknown"])
    assert rec["status"] == "eligible"


def test_empty_included_set_fails_even_with_empty_category():
    # "subtype ∈ {}" is false whatever the subtype: the inclusion fails, not unknown.
    rec = _one(eligible_row("AAV", aav_subtype=None), {"parameters": {"aav_included_subtypes": []}})
    assert ids(rec["failed"]) == {"AAV-INC-1"}


def test_zero_immunomodulators_needs_no_drug_column():
    """With min_immunomodulators = 0 the drug-count clause holds for everyone, so a file
    without prior_immunomodulators is still assessed for the refractory criteria."""
    from eligibility.fields import FIELD_NAMES

    present = [f for f in FIELD_NAMES if f not in ("patient_id", "disease", "prior_immunomodulators")]
    rows = [eligible_row("SSc", disease_course="responding"), eligible_row("IIM")]
    cohort = make_cohort(rows, present=present)
    base = screen_frame(cohort, resolve({}))
    assert "SSC-INC-4" in base["not_assessed"].iloc[0] and base["status"].tolist() == ["eligible", "eligible"]
    relaxed = screen_frame(cohort, resolve({"parameters": {"min_immunomodulators": 0}}))
    assert "SSC-INC-4" not in relaxed["not_assessed"].iloc[0]
    assert relaxed["status"].tolist() == ["ineligible", "eligible"]
    assert relaxed["failed"].iloc[0] == "SSC-INC-4"
