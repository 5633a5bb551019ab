"""The cohort input contract (../shared/spec/cohort-fields.md) as data.

One `Field` per contract column: its kind, unit, accepted categories and
plausible range. The loader, the synthetic generator and the dashboard all read
this table; nothing else hard-codes column names or units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "disease", "category", "number", "yesno", "druglist", "date"]

DISEASES: tuple[str, ...] = ("SSc", "IIM", "AAV", "SjS", "APS")
DISEASE_NAMES: dict[str, str] = {
    "SSc": "Systemic sclerosis",
    "IIM": "Idiopathic inflammatory myopathy",
    "AAV": "ANCA-associated vasculitis",
    "SjS": "Sjögren's syndrome",
    "APS": "Antiphospholipid syndrome",
}

IMMUNOMODULATORS: tuple[str, ...] = (
    "antimalarial",
    "azathioprine",
    "mycophenolate",
    "methotrexate",
    "leflunomide",
    "tacrolimus",
    "cyclosporine",
    "rituximab",
    "belimumab",
    "tocilizumab",
    "telitacicept",
)


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    unit: str = ""
    label: str = ""
    block: str = "common"
    categories: tuple[str, ...] = ()
    plausible: tuple[float, float] | None = None
    required: bool = False
    optional: bool = False  # absent column changes nothing (per-row ULN, weight)
    whole: bool = False  # counts: whole numbers

    @property
    def title(self) -> str:
        text = self.label or self.name
        return f"{text} ({self.unit})" if self.unit else text


def _f(name, kind, unit="", label="", **kw) -> Field:
    return Field(name=name, kind=kind, unit=unit, label=label, **kw)


def _yn(name, label="", block="common") -> Field:
    return Field(name=name, kind="yesno", label=label, block=block)


FIELDS: tuple[Field, ...] = (
    # identity and trial context
    _f("patient_id", "id", label="Patient ID", required=True),
    _f("disease", "disease", label="Disease", categories=DISEASES, required=True),
    _f("screening_date", "date", label="Screening date"),
    _f("age_years", "number", "years", "Age", plausible=(0, 120)),
    _f("sex", "category", label="Sex", categories=("F", "M")),
    _f("weight_kg", "number", "kg", "Weight", plausible=(25, 250), optional=True),
    # common inclusion / exclusion facts
    _f("hemoglobin_g_l", "number", "g/L", "Haemoglobin", plausible=(30, 250)),
    _f("wbc_10e9_l", "number", "×10⁹/L", "WBC", plausible=(0.1, 100)),
    _f("anc_10e9_l", "number", "×10⁹/L", "ANC", plausible=(0, 80)),
    _f("days_since_gcsf", "number", "days", "Days since G-CSF"),
    _f("alt_u_l", "number", "U/L", "ALT", plausible=(1, 5000)),
    _f("ast_u_l", "number", "U/L", "AST", plausible=(1, 5000)),
    _f("alt_uln_u_l", "number", "U/L", "ALT ULN", optional=True),
    _f("ast_uln_u_l", "number", "U/L", "AST ULN", optional=True),
    _f("tbil_umol_l", "number", "µmol/L", "Total bilirubin", plausible=(1, 800)),
    _f("tbil_uln_umol_l", "number", "µmol/L", "TBIL ULN", optional=True),
    _f("inr", "number", "ratio", "INR", plausible=(0.5, 10)),
    _f("inr_uln", "number", "ratio", "INR ULN", optional=True),
    _f("pt_s", "number", "s", "Prothrombin time", plausible=(5, 120)),
    _f("pt_uln_s", "number", "s", "PT ULN", optional=True),
    _yn("hemodynamically_stable", "Haemodynamically stable"),
    _yn("childbearing_potential", "Childbearing potential"),
    _yn("pregnancy_test_negative", "Pregnancy test negative"),
    _yn("contraception_agreed", "Contraception agreed"),
    _yn("consent_signed", "Consent signed"),
    _yn("other_ctd", "Other connective tissue disease"),
    _yn("severe_heart_disease", "Severe heart disease"),
    _f("egfr_ml_min_1_73m2", "number", "mL/min/1.73 m²", "eGFR", plausible=(1, 200)),
    _f("fvc_pct_pred", "number", "% predicted", "FVC", plausible=(10, 160)),
    _f("dlco_pct_pred", "number", "% predicted", "DLCO", plausible=(10, 160)),
    _yn("hbsag_pos", "HBsAg positive"),
    _yn("hbcab_pos", "HBcAb positive"),
    _yn("hcv_ab_pos", "HCV antibody positive"),
    _yn("tb_active", "Active TB"),
    _yn("tb_latent", "Latent TB"),
    _yn("hiv_pos", "HIV positive"),
    _yn("active_serious_infection", "Active serious infection"),
    _yn("chronic_infection_on_treatment", "Chronic infection on treatment"),
    _f("days_since_iv_antibiotics", "number", "days", "Days since IV antibiotics"),
    _f("days_since_infection_hospitalization", "number", "days", "Days since infection hospitalisation"),
    _f("days_since_oral_antibiotics", "number", "days", "Days since oral antibiotics"),
    _yn("immunodeficiency", "Immunodeficiency"),
    _f("iga_mg_dl", "number", "mg/dL", "IgA", plausible=(0, 1500)),
    _f("igg_mg_dl", "number", "mg/dL", "IgG", plausible=(50, 6000)),
    _f("days_since_investigational_drug", "number", "days", "Days since investigational drug"),
    _f("years_since_malignancy", "number", "years", "Years since malignancy"),
    _yn("malignancy_excepted", "Malignancy excepted (BCC / CIN)"),
    _yn("pregnant", "Pregnant"),
    _yn("breastfeeding", "Breastfeeding"),
    _yn("planning_pregnancy", "Planning pregnancy"),
    _yn("protein_antibody_allergy", "Protein / antibody allergy"),
    _f("days_since_live_vaccine", "number", "days", "Days since live vaccine"),
    _yn("expected_noncompliance", "Expected non-compliance"),
    _yn("investigator_unsuitable", "Investigator: unsuitable"),
    # treatment history
    _f(
        "disease_course",
        "category",
        label="Disease course",
        categories=("refractory", "relapsed", "responding", "untreated"),
    ),
    _yn("prior_glucocorticoid", "Prior glucocorticoid"),
    _f("gc_max_mg_kg_day", "number", "mg/kg/day", "Highest GC dose", plausible=(0, 30)),
    _yn("prior_cyclophosphamide", "Prior cyclophosphamide"),
    _f("prior_immunomodulators", "druglist", label="Prior immunomodulators", categories=IMMUNOMODULATORS),
    _f("conventional_therapy_months", "number", "months", "Conventional therapy duration"),
    # SSc
    _f("ssc_acr_eular_2013_score", "number", "points", "2013 ACR/EULAR SSc score", block="SSc"),
    _f("disease_duration_months", "number", "months", "Disease duration", block="SSc", plausible=(0, 600)),
    _f("mrss", "number", "points", "mRSS", block="SSc", plausible=(0, 51)),
    _yn("hrct_ggo", "GGO on HRCT"),
    _f("mrss_change_6m_pct", "number", "%", "mRSS change (6 m)", block="SSc"),
    _f("fvc_change_6m_pct", "number", "%", "FVC change (6 m)", block="SSc"),
    _f("dlco_change_6m_pct", "number", "%", "DLCO change (6 m)", block="SSc"),
    _f("ssc_subtype", "category", label="SSc subtype", block="SSc", categories=("diffuse", "limited", "sine")),
    _yn("ssc_environmental", "Environmental SSc-like syndrome", "SSc"),
    _yn("renal_crisis_history", "Scleroderma renal crisis history", "SSc"),
    _f("ph_risk", "category", label="PH risk", block="SSc", categories=("none", "low", "intermediate", "high")),
    _yn("gave_active", "Active GAVE", "SSc"),
    # IIM
    _f("iim_eular_acr_2017_prob_pct", "number", "%", "2017 EULAR/ACR probability", block="IIM", plausible=(0, 100)),
    _f("iim_subtype", "category", label="IIM subtype", block="IIM", categories=("DM", "PM", "ASS", "IMNM", "IBM", "other")),
    _f("mmt8", "number", "points", "MMT-8", block="IIM", plausible=(0, 150)),
    _f("phga_cm", "number", "cm", "PhGA", block="IIM", plausible=(0, 10)),
    _f("ptga_cm", "number", "cm", "PtGA", block="IIM", plausible=(0, 10)),
    _f("extramuscular_activity_cm", "number", "cm", "Extramuscular activity", block="IIM", plausible=(0, 10)),
    _f("haq_di", "number", "points", "HAQ-DI", block="IIM", plausible=(0, 3)),
    _f("muscle_enzyme_x_uln", "number", "× ULN", "Muscle enzyme", block="IIM"),
    _yn("msa_positive", "MSA positive", "IIM"),
    _yn("rp_ild", "Rapidly progressive ILD", "IIM"),
    _yn("drug_induced_myopathy", "Drug-induced myopathy", "IIM"),
    _yn("cancer_associated_myositis", "Cancer-associated myositis", "IIM"),
    # AAV
    _yn("aav_acr_eular_2022_met", "2022 ACR/EULAR AAV criteria met", "AAV"),
    _f("aav_subtype", "category", label="AAV subtype", block="AAV", categories=("GPA", "MPA", "EGPA")),
    _yn("anca_pr3_pos", "PR3-ANCA positive", "AAV"),
    _yn("anca_mpo_pos", "MPO-ANCA positive", "AAV"),
    _f("bvas", "number", "points", "BVAS v3", block="AAV", plausible=(0, 63)),
    _f("bvas_major_items", "number", "items", "BVAS major items", block="AAV", whole=True),
    _f("bvas_minor_items", "number", "items", "BVAS minor items", block="AAV", whole=True),
    _yn("renal_hematuria_proteinuria", "Renal haematuria / proteinuria", "AAV"),
    _yn("alveolar_hemorrhage_ventilation", "Alveolar haemorrhage on ventilation", "AAV"),
    _yn("dialysis_or_plasmapheresis", "Dialysis or plasmapheresis", "AAV"),
    _yn("kidney_transplant", "Kidney transplant", "AAV"),
    # SjS
    _yn("sjs_aecg_2002_met", "2002 AECG criteria met", "SjS"),
    _f("sjs_acr_eular_2016_score", "number", "points", "2016 ACR/EULAR SjS score", block="SjS"),
    _yn("anti_ssa_ro60_pos", "Anti-SSA/Ro60 positive", "SjS"),
    _f("essdai", "number", "points", "ESSDAI", block="SjS", plausible=(0, 123)),
    _yn("cirrhosis", "Cirrhosis", "SjS"),
    _yn("aa_mds_mpd", "AA / MDS / MPD", "SjS"),
    _yn("drug_induced_thrombocytopenia", "Drug-induced thrombocytopenia", "SjS"),
    _yn("ttp_tma", "TTP / TMA", "SjS"),
    # APS
    _yn("aps_sydney_2006_met", "2006 Sydney criteria met", "APS"),
    _yn("aps_primary", "Primary APS", "APS"),
    _yn("apl_medium_high_titer", "aPL medium/high titre", "APS"),
    _f("apl_positive_count", "number", "times", "aPL positive count", block="APS", whole=True),
    _f("apl_interval_weeks", "number", "weeks", "aPL interval", block="APS"),
    _yn("recurrent_thrombosis_on_anticoagulation", "Recurrent thrombosis on anticoagulation", "APS"),
    _f("caps_organ_count", "number", "organs", "CAPS organs involved", block="APS", whole=True),
    _yn("caps_onset_within_1_week", "CAPS onset within 1 week", "APS"),
    _yn("caps_small_vessel_occlusion", "CAPS small-vessel occlusion", "APS"),
    _yn("aps_obstetric", "Obstetric APS", "APS"),
    _yn("aps_neurologic", "Neurological APS", "APS"),
)

FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)

# Derived numeric columns the evaluator reads; each exists iff its source column does.
DERIVED: dict[str, str] = {"n_prior_immunomodulators": "prior_immunomodulators"}


def source_field(name: str) -> str:
    return DERIVED.get(name, name)


def field(name: str) -> Field:
    return FIELD_BY_NAME[source_field(name)]
