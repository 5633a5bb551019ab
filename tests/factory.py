"""Build small typed cohorts directly (without the loader) for engine tests.

`eligible_row(disease)` is a patient who passes every criterion of the protocol
defaults; tests change one field at a time to cross a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eligibility.fields import DERIVED, FIELDS, IMMUNOMODULATORS

COMMON_OK = {
    "age_years": 40, "sex": "M", "hemoglobin_g_l": 120, "wbc_10e9_l": 6.0, "anc_10e9_l": 3.5,
    "days_since_gcsf": None, "alt_u_l": 30, "ast_u_l": 30, "tbil_umol_l": 12, "inr": 1.0, "pt_s": 12.0,
    "hemodynamically_stable": True, "childbearing_potential": False, "pregnancy_test_negative": None,
    "contraception_agreed": None, "consent_signed": True, "other_ctd": False, "severe_heart_disease": False,
    "egfr_ml_min_1_73m2": 90, "fvc_pct_pred": 85, "dlco_pct_pred": 80, "hbsag_pos": False,
    "hbcab_pos": False, "hcv_ab_pos": False, "tb_active": False, "tb_latent": False, "hiv_pos": False,
    "active_serious_infection": False, "chronic_infection_on_treatment": False,
    "immunodeficiency": False, "iga_mg_dl": 200, "igg_mg_dl": 1100, "malignancy_excepted": None,
    "pregnant": False, "breastfeeding": False, "planning_pregnancy": False,
    "protein_antibody_allergy": False, "expected_noncompliance": False, "investigator_unsuitable": False,
    "disease_course": "refractory", "prior_glucocorticoid": True, "gc_max_mg_kg_day": 1.0,
    "prior_cyclophosphamide": True, "prior_immunomodulators": "mycophenolate",
    "conventional_therapy_months": 12, "hrct_ggo": False,
}
BLOCK_OK = {
    "SSc": {"ssc_acr_eular_2013_score": 12, "disease_duration_months": 30, "mrss": 18,
            "mrss_change_6m_pct": 0, "fvc_change_6m_pct": 0, "dlco_change_6m_pct": 0,
            "ssc_subtype": "diffuse", "ssc_environmental": False, "renal_crisis_history": False,
            "ph_risk": "none", "gave_active": False},
    "IIM": {"iim_eular_acr_2017_prob_pct": 80, "iim_subtype": "DM", "mmt8": 120, "phga_cm": 5,
            "ptga_cm": 5, "extramuscular_activity_cm": 1, "haq_di": 0.1, "muscle_enzyme_x_uln": 1.0,
            "msa_positive": True, "rp_ild": False, "drug_induced_myopathy": False,
            "cancer_associated_myositis": False},
    "AAV": {"aav_acr_eular_2022_met": True, "aav_subtype": "MPA", "anca_pr3_pos": False,
            "anca_mpo_pos": True, "bvas": 20, "bvas_major_items": 1, "bvas_minor_items": 0,
            "renal_hematuria_proteinuria": False, "alveolar_hemorrhage_ventilation": False,
            "dialysis_or_plasmapheresis": False, "kidney_transplant": False},
    "SjS": {"sjs_aecg_2002_met": True, "sjs_acr_eular_2016_score": 6, "anti_ssa_ro60_pos": True,
            "essdai": 10, "cirrhosis": False, "aa_mds_mpd": False, "drug_induced_thrombocytopenia": False,
            "ttp_tma": False},
    "APS": {"aps_sydney_2006_met": True, "aps_primary": True, "apl_medium_high_titer": True,
            "apl_positive_count": 3, "apl_interval_weeks": 14,
            "recurrent_thrombosis_on_anticoagulation": True, "caps_organ_count": 0,
            "caps_onset_within_1_week": False, "caps_small_vessel_occlusion": False,
            "aps_obstetric": False, "aps_neurologic": False},
}


def eligible_row(disease: str = "SSc", **changes) -> dict:
    row = {"disease": disease, **COMMON_OK, **BLOCK_OK.get(disease, {})}
    row.update(changes)
    return row


def _drug_count(value) -> float:
    if value is None or pd.isna(value):  # pd.NA from a string column, NaN, None
        return np.nan
    names = [v.strip() for v in str(value).split(";") if v.strip()]
    if names == ["none"]:
        return 0.0
    return float(len({n for n in names if n in IMMUNOMODULATORS}))


@dataclass
class TypedCohort:
    """The parts of the loader's Cohort that the engine reads."""

    frame: pd.DataFrame
    present: frozenset = field(default_factory=frozenset)
    issues: list = field(default_factory=list)
    source: str = "test"

    def __len__(self) -> int:
        return len(self.frame)


def make_cohort(rows: list[dict], present=None) -> TypedCohort:
    """Typed cohort from dicts (None = empty cell). Columns default to every contract
    column; `present` limits the file's columns (others are absent, i.e. not assessed)."""
    names = [f.name for f in FIELDS] if present is None else ["patient_id", "disease", *present]
    data = {}
    for f in FIELDS:
        if f.name not in names:
            continue
        vals = [r.get(f.name) if f.name != "patient_id" else r.get("patient_id", f"P{i + 1}") for i, r in enumerate(rows)]
        if f.kind == "number":
            data[f.name] = np.array([np.nan if v is None else float(v) for v in vals], np.float64)
        elif f.kind == "yesno":
            data[f.name] = pd.array(vals, dtype="boolean")
        elif f.kind == "category":
            data[f.name] = pd.Categorical(vals, categories=f.categories)
        elif f.kind in ("id", "disease", "druglist"):
            data[f.name] = pd.array(vals, dtype="string")
        elif f.kind == "date":
            data[f.name] = pd.to_datetime(pd.Series(vals, dtype="object"))
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    for derived, src in DERIVED.items():
        if src in frame:
            frame[derived] = np.array([_drug_count(v) for v in frame[src].astype(object)], np.float64)
    return TypedCohort(frame, frozenset(c for c in names if c in frame))
