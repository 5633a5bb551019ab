"""Tables the "Dose cohorts" page shows, with shown names and units (presentation only).

Pure functions of the dose engine's results (``assign_cohorts``, ``expected_plan``,
``operating_characteristics``, ``sample_size_summary``, ``screening_need_table``,
``project_timeline``) and of the settings, so the page stays a thin view and these can
be tested without a browser. Every table says what it shows in its column names.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from eligibility.dose.inputs import DOSE_UNIT
from eligibility.dose.planning import BEYOND_CAPACITY, CohortAssignment, CohortPlan, Timeline
from eligibility.dose.registry import DESIGN_LABELS
from eligibility.dose.settings import DoseSettings

ASSIGNMENT_COLUMNS = {
    "patient_id": "Patient",
    "disease": "Disease",
    "screening_date": "Screening date",
    "escalation": "Escalation",
    "order": "Order",
    "dose_level": "Dose level",
    "dose": f"Dose ({DOSE_UNIT})",
    "cohort": "Cohort in level",
    "escalation_cohort": "Cohort no.",
}


def _table_of(assignment: CohortAssignment | pd.DataFrame) -> pd.DataFrame:
    return assignment.table if isinstance(assignment, CohortAssignment) else assignment


def assignment_view(
    assignment: CohortAssignment | pd.DataFrame, settings: DoseSettings, kind: str = "eligible"
) -> pd.DataFrame:
    """Rows of one kind (eligible / pending) in assignment order, with the dose in
    ×10⁹ cells; patients past the plan show "beyond capacity" as their dose level."""
    table = _table_of(assignment)
    sub = table[table["kind"] == kind]
    doses = {lv.label: lv.dose for lv in settings.levels}
    out = pd.DataFrame(
        {
            "patient_id": sub["patient_id"].astype("string"),
            "disease": sub["disease"].astype("string"),
            "screening_date": sub["screening_date"].dt.date,
            "escalation": sub["escalation"].astype("string"),
            "order": sub["order"],
            "dose_level": sub["dose_level"].astype("string").fillna(BEYOND_CAPACITY),
            "dose": sub["dose_level"].astype("object").map(doses).astype("Float64"),
            "cohort": sub["cohort"],
            "escalation_cohort": sub["escalation_cohort"],
        }
    )
    return out.reset_index(drop=True)


def assignment_export(assignment: CohortAssignment | pd.DataFrame, settings: DoseSettings) -> pd.DataFrame:
    """Eligible then pending rows with a ``kind`` column, for the CSV download."""
    parts = []
    for kind in ("eligible", "pending"):
        v = assignment_view(assignment, settings, kind)
        v.insert(0, "kind", kind)
        parts.append(v)
    out = pd.concat(parts, ignore_index=True)
    return out.rename(columns={"dose": "dose_x1e9_cells"})


def plan_table(plan: CohortPlan, oc: Mapping) -> pd.DataFrame:
    """The one story per level: simulated mean patients (operating characteristics), the
    expected path in whole cohorts (assignment and timeline) and its patients."""
    return pd.DataFrame(
        {
            "dose_level": list(plan.labels),
            "mean_patients": [float(v) for v in oc["mean_n_per_level"]],
            "plan_cohorts": list(plan.cohorts_per_level),
            "plan_patients": list(plan.patients_per_level),
        }
    )


def sample_size_table(summary: Mapping, settings: DoseSettings) -> pd.DataFrame:
    """Patients treated in one escalation: the design's rule (minimum, every level
    escalates / no stopping rule fires, maximum) and, when simulated, expected and
    10th / 90th percentiles."""
    k = settings.n_levels
    rule = DESIGN_LABELS[settings.design]
    if settings.design == "3+3":
        basis = {"minimum": "DL1 exceeds at its first cohort" if settings.start_level == 1
                 else "start level exceeded, one cohort below",
                 "all_escalate": f"3 per level from the start level{' (+3 at the top)' if settings.six_at_mtd else ''}",
                 "maximum": f"6K = 6 × {k}"}
        all_name = "All levels escalate"
    else:
        basis = {"minimum": "earliest stopping rule (safety at DL1 or n-earlystop)",
                 "all_escalate": f"max N = {settings.max_n} ({settings.max_n // settings.cohort_size} cohorts)",
                 "maximum": "max N"}
        all_name = "No stopping rule fires"
    rows = [
        ("Minimum", summary["minimum"], f"{rule} rule: {basis['minimum']}"),
        (all_name, summary["all_escalate"], f"{rule} rule: {basis['all_escalate']}"),
        ("Maximum", summary["maximum"], f"{rule} rule: {basis['maximum']}"),
    ]
    if "expected" in summary:
        n = f"{settings.n_trials:,} simulated trials (seed {settings.seed})"
        rows += [
            ("Expected (mean)", summary["expected"], n),
            ("10th percentile", summary["p10"], n),
            ("90th percentile", summary["p90"], n),
        ]
    return pd.DataFrame(
        {"quantity": [r[0] for r in rows], "patients": [float(r[1]) for r in rows], "source": [r[2] for r in rows]}
    )


def screening_need_view(need: pd.DataFrame) -> pd.DataFrame:
    """``screening_need_table`` output as rows = dose level (+ "all levels"), one
    "to screen" column per group; unattainable cells stay <NA>."""
    order_levels = list(dict.fromkeys(need["dose_level"]))
    order_groups = list(dict.fromkeys(need["group"]))
    wide = need.pivot(index="dose_level", columns="group", values="to_screen")
    wide = wide.reindex(index=order_levels, columns=order_groups)
    needed = need.drop_duplicates("dose_level").set_index("dose_level")["needed"].reindex(order_levels)
    wide.insert(0, "needed", needed)
    wide.index.name = "dose_level"
    wide.columns.name = None
    return wide.reset_index()


def oc_table(settings: DoseSettings, oc: Mapping) -> pd.DataFrame:
    """Per level: dose, assumed true DLT rate, whether it is the true MTD, % selected as
    MTD, mean patients and DLTs (whole-trial measures are in :func:`oc_summary`)."""
    mtd = oc.get("true_mtd")
    return pd.DataFrame(
        {
            "dose_level": settings.labels,
            "dose": [lv.dose for lv in settings.levels],
            "true_dlt": list(settings.true_dlt),
            "true_mtd": [i == mtd for i in range(settings.n_levels)],
            "mtd_selection_pct": list(oc["mtd_selection_pct"]),
            "mean_patients": list(oc["mean_n_per_level"]),
            "mean_dlts": list(oc["mean_dlt_per_level"]),
        }
    )


def _opt(v):
    return float("nan") if v is None else float(v)


def oc_summary(oc: Mapping, duration: Mapping | None = None) -> pd.DataFrame:
    """Whole-trial operating characteristics as (measure, value, unit) rows, as R get.oc
    reports them and more; MTD-based rows are empty (NaN) when the true rates define
    no single MTD."""
    rows = [
        ("Correct selection (true MTD selected)", _opt(oc.get("pct_correct")), "% of trials"),
        ("Selection above the true MTD (over-dosing selection)", _opt(oc.get("pct_select_above_mtd")), "% of trials"),
        ("Patients treated at the true MTD", _opt(oc.get("pct_patients_at_mtd")), "% of patients"),
        ("Patients treated above the true MTD", _opt(oc.get("pct_patients_above_mtd")), "% of patients"),
        ("Over 60% of max N treated above the target rate (R overdose60)", _opt(oc.get("overdose60_pct")), "% of trials"),
        ("Over 80% of max N treated above the target rate (R overdose80)", _opt(oc.get("overdose80_pct")), "% of trials"),
        ("No MTD (lowest level too toxic)", oc["no_mtd_pct"], "% of trials"),
        ("Stopped early for safety", oc["early_stop_pct"], "% of trials"),
        ("Stopped by n-earlystop (MTD selected)", oc.get("n_earlystop_pct", 0.0), "% of trials"),
        ("Mean patients treated", oc["mean_n_total"], "patients"),
        ("Patients treated, SD", oc.get("n_total_sd", float("nan")), "patients"),
        ("Patients treated, 10th percentile", oc["n_total_p10"], "patients"),
        ("Patients treated, 90th percentile", oc["n_total_p90"], "patients"),
        ("Mean DLTs", oc.get("mean_dlt_total", float("nan")), "patients with DLT"),
    ]
    if duration is not None:
        rows += [
            ("Mean duration", duration["mean_day"], "days"),
            ("Duration, 10th percentile", duration["p10_day"], "days"),
            ("Duration, 90th percentile", duration["p90_day"], "days"),
        ]
    return pd.DataFrame({"measure": [r[0] for r in rows], "value": [float(r[1]) for r in rows],
                         "unit": [r[2] for r in rows]})


def oc_export(settings: DoseSettings, oc: Mapping, duration: Mapping | None = None) -> pd.DataFrame:
    """One long table for the CSV download: the settings used, per-level rows, then
    whole-trial rows, each with its unit."""
    opt = settings.design_options()
    rows = [
        ("setting", "", "design", DESIGN_LABELS[settings.design], ""),
        ("setting", "", "cohort size", settings.effective_cohort_size, "patients"),
        ("setting", "", "target DLT rate", settings.target, "rate"),
        ("setting", "", "maximum sample size", settings.effective_max_n, "patients"),
        ("setting", "", "start level", settings.labels[settings.start_level - 1], ""),
        ("setting", "", "DLT window", settings.dlt_window_days, "days"),
        ("setting", "", "simulated trials", settings.n_trials, "trials"),
        ("setting", "", "seed", settings.seed, ""),
    ]
    if settings.design != "3+3":
        rows += [
            ("setting", "", "n-earlystop", settings.n_earlystop, "patients"),
            ("setting", "", "elimination cut-off", settings.cutoff_eli, "probability"),
            ("setting", "", "extra-safe", settings.extrasafe, ""),
            ("setting", "", "extra-safe offset", settings.offset, "probability"),
            ("setting", "", "p1", opt.p_saf, "rate"),
            ("setting", "", "p2", opt.p_tox, "rate"),
        ]
    if settings.design == "i3+3":
        rows += [("setting", "", "eps1", settings.eps1, "rate"), ("setting", "", "eps2", settings.eps2, "rate")]
    if settings.design == "3+3":
        rows += [("setting", "", "de-escalation", settings.deescalation, ""),
                 ("setting", "", "6 patients at the MTD", settings.six_at_mtd, "")]
    per = oc_table(settings, oc)
    for rec in per.itertuples(index=False):
        rows += [
            ("level", rec.dose_level, "dose", rec.dose, DOSE_UNIT),
            ("level", rec.dose_level, "assumed true DLT rate", rec.true_dlt, "rate"),
            ("level", rec.dose_level, "true MTD", bool(rec.true_mtd), ""),
            ("level", rec.dose_level, "selected as MTD", rec.mtd_selection_pct, "% of trials"),
            ("level", rec.dose_level, "mean patients treated", rec.mean_patients, "patients"),
            ("level", rec.dose_level, "mean DLTs", rec.mean_dlts, "patients with DLT"),
        ]
    for rec in oc_summary(oc, duration).itertuples(index=False):
        rows.append(("trial", "", rec.measure, rec.value, rec.unit))
    return pd.DataFrame(rows, columns=["section", "dose_level", "measure", "value", "unit"])


def timeline_view(timeline: Timeline) -> pd.DataFrame:
    """The timeline's cohorts with dates and durations in days, for the table under the chart."""
    c = timeline.cohorts
    return pd.DataFrame(
        {
            "cohort": c["cohort"],
            "dose_level": c["dose_level"],
            "opens": c["open_date"].dt.date,
            "filled": c["filled_date"].dt.date,
            "dlt_window_closes": c["window_end_date"].dt.date,
            "fill_days": c["filled_day"] - c["open_day"],
            "window_days": c["window_end_day"] - c["filled_day"],
        }
    )
