"""Dose cohorts: who would fill which dose level, how many to screen, how long it takes.

A thin view over the dose engine (``eligibility.dose``) and the active what-if
Evaluation: every number here comes from the engine, so it recomputes when the
scenario changes who is eligible. Dose levels, design and rates are planning
assumptions the user edits (spec: dose-escalation.md). One plan runs through the page:
the expected path of the simulation (mean patients per level in whole cohorts) is what
the assignment fills, what the timeline draws and what the operating characteristics
average over.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages import _suppressed as SUP
from app_pages._access import download_button, suppression_on
from eligibility.dose import (
    REGISTRY,
    CohortAssignment,
    CohortPlan,
    DoseSettings,
    SimulationRun,
    assign_cohorts,
    boin_boundaries,
    eligible_fractions,
    expected_plan,
    operating_characteristics,
    patients_needed_per_level,
    project_timeline,
    run_simulation,
    sample_size_summary,
    screening_need_table,
    screening_rate_per_month,
)
from eligibility.dose import inputs as I
from eligibility.dose import tables as T
from eligibility.dose.planning import POOLED
from eligibility.dose.registry import DESIGN_LABELS, design_info
from eligibility.export import to_csv_bytes
from eligibility.fields import DISEASE_NAMES, DISEASES
from eligibility.figures import dose_tables as V
from eligibility.figures.dose import assignment_bars, timeline_figure
from eligibility.textsafe import markdown_literal as lit

NEED_BASES = {
    "plan": "Expected path (whole cohorts)",
    "expected": "Simulated mean",
    "maximum": "Maximum (3+3: 6 per level)",
}
MAX_ROWS = 1_000  # rows of the assignment sent to the browser (the CSV has all)
POOLING_LABELS = {"pooled": "Pooled", "per-disease": "Per disease"}
DESIGN_HELP = "; ".join(f"{d.label}: {d.source}" for d in REGISTRY)


# -- cached engine calls (keys are small JSON strings / tuples, never the cohort) ----------


@st.cache_data(max_entries=64, show_spinner=False)
def simulate(sim_key: str, eligible_per_month: float | None) -> SimulationRun:
    """10,000 seeded trials; keyed on the JSON of the settings the simulation depends on
    (and, for TITE-BOIN / BF-BOIN, the eligible-patient rate)."""
    return run_simulation(DoseSettings.model_validate_json(sim_key), eligible_per_month)


def screened_frame(ctx: S.Context) -> pd.DataFrame:
    """patient_id, disease, screening_date, status under the active scenario (sidebar filter applied)."""
    sf = T.screening_frame(ctx.cohort.frame, ctx.current.status_labels())
    if ctx.disease:
        sf = sf[sf["disease"] == ctx.disease].reset_index(drop=True)
    return sf


@st.cache_data(max_entries=16, show_spinner=False)
def cohort_stats(data_key: str, disease: str | None, _ctx: S.Context) -> dict:
    """What does not depend on the scenario: derived screening rate, last screening date,
    each disease's share of the screened. Keyed on the cohort and the filter."""
    sf = screened_frame(_ctx)
    dates = sf["screening_date"].dropna()
    return {
        "rate": screening_rate_per_month(sf["screening_date"]),
        "last": dates.max() if len(dates) else None,
        "shares": T.disease_shares(sf),
    }


@st.cache_data(max_entries=32, show_spinner=False)
def scenario_stats(data_key: str, scenario_key: str, disease: str | None, _ctx: S.Context) -> dict:
    """Eligible fractions and the eligible pool per group under the scenario (small results)."""
    sf = screened_frame(_ctx)
    fractions = eligible_fractions(sf) if len(sf) else {POOLED: None}
    groups = [d for d in DISEASES if d in fractions] + [POOLED]
    if disease:
        groups = [g for g in groups if g in (disease, POOLED)]
    return {"fractions": fractions, "groups": groups,
            "pool": T.eligible_pool(sf, {g: fractions.get(g) for g in groups})}


@st.cache_data(max_entries=16, show_spinner=False)
def assign(data_key: str, scenario_key: str, disease: str | None, settings_key: str, plan_key: str,
           _plan: CohortPlan, _ctx: S.Context) -> CohortAssignment:
    """Assignment of the screened cohort to the plan; keyed on cohort, scenario, filter, settings, plan."""
    return assign_cohorts(screened_frame(_ctx), DoseSettings.model_validate_json(settings_key), _plan)


def _assign_key(settings: DoseSettings) -> str:
    return settings.model_dump_json(include={"levels", "design", "cohort_size", "true_dlt", "max_n", "pooling",
                                             "start_level"})


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _group_name(g: str) -> str:
    return "Pooled (all diseases)" if g == POOLED else f"{g} — {DISEASE_NAMES.get(g, g)}"


# -- settings ----------------------------------------------------------------------------


def design_options_panel(design: str, n_levels: int) -> dict:
    """The options of the chosen design (the registry says which apply)."""
    info = design_info(design)
    S.remember(dose_start_level=1, dose_n_earlystop=100, dose_cutoff_eli=0.95, dose_extrasafe=False,
               dose_offset=0.05, dose_p1=None, dose_p2=None, dose_eps1=0.05, dose_eps2=0.05,
               dose_deescalation=True, dose_six_at_mtd=False, dose_stay_1_of_3=False, dose_max_pending=0.5,
               dose_n_cap=12)
    out: dict = {}
    with st.expander(f"{info.label} options", expanded=False):
        st.caption(f"Source: {info.source}. Defaults as the R BOIN package's get.oc.")
        c1, c2, c3, c4 = st.columns(4)
        out["start_level"] = c1.number_input("Start level (1 = DL1)", min_value=1, max_value=max(n_levels, 1),
                                             step=1, key="dose_start_level", on_change=S.keep("dose_start_level"))
        if info.uses_target:
            out["n_earlystop"] = c2.number_input(
                "Stop at n on a level (n-earlystop)", min_value=1, step=1, key="dose_n_earlystop",
                on_change=S.keep("dose_n_earlystop"),
                help="Stop the trial once this many patients are at the current level and the rule says stay "
                     "(R default 100: off).")
            out["cutoff_eli"] = c3.number_input(
                "Elimination cut-off", min_value=0.01, max_value=0.99, step=0.01, format="%.2f",
                key="dose_cutoff_eli", on_change=S.keep("dose_cutoff_eli"),
                help="Eliminate a level and all above when Pr(rate > target | data) exceeds this (n ≥ 3).")
            out["extrasafe"] = c4.checkbox("Extra-safe stopping", key="dose_extrasafe",
                                           on_change=S.keep("dose_extrasafe"),
                                           help="Stop when Pr(DL1 rate > target) > cut-off − offset (n ≥ 3).")
            d1, d2, d3, d4 = st.columns(4)
            out["offset"] = d1.number_input("Extra-safe offset", min_value=0.0, max_value=0.49, step=0.01,
                                            format="%.2f", key="dose_offset", on_change=S.keep("dose_offset"),
                                            disabled=not out["extrasafe"])
            if "p1" in info.options:
                out["p1"] = d2.number_input("p1 (sets λe; empty = 0.6 × target)", min_value=0.0, max_value=1.0,
                                            step=0.01, format="%.3f", key="dose_p1", on_change=S.keep("dose_p1"))
                out["p2"] = d3.number_input("p2 (sets λd; empty = 1.4 × target)", min_value=0.0, max_value=1.0,
                                            step=0.01, format="%.3f", key="dose_p2", on_change=S.keep("dose_p2"))
                out["stay_1_of_3"] = d4.checkbox("1 DLT in 3 means stay", key="dose_stay_1_of_3",
                                                 on_change=S.keep("dose_stay_1_of_3"),
                                                 help="The 3+3-like rule of bfboin's three.plus.three.")
            if "eps1" in info.options:
                out["eps1"] = d2.number_input("ε1 (interval below target)", min_value=0.0, max_value=0.5, step=0.01,
                                              format="%.2f", key="dose_eps1", on_change=S.keep("dose_eps1"))
                out["eps2"] = d3.number_input("ε2 (interval above target)", min_value=0.0, max_value=0.5, step=0.01,
                                              format="%.2f", key="dose_eps2", on_change=S.keep("dose_eps2"))
        else:
            out["deescalation"] = c2.checkbox("De-escalate to a level with 3 patients", key="dose_deescalation",
                                              on_change=S.keep("dose_deescalation"),
                                              help="Off: the next-lower level is the MTD whatever it holds "
                                                   "(R escalation's default).")
            out["six_at_mtd"] = c3.checkbox("6 patients at the MTD", key="dose_six_at_mtd",
                                            on_change=S.keep("dose_six_at_mtd"))
        if info.calendar:
            e1, e2, _, _ = st.columns(4)
            out["max_pending"] = e1.number_input(
                "Suspend accrual above this pending share", min_value=0.0, max_value=1.0, step=0.05, format="%.2f",
                key="dose_max_pending", on_change=S.keep("dose_max_pending"),
                help="TITE-BOIN: no new patient while more than this share of the current level's patients "
                     "are still in their DLT window (0.5, Yuan et al. 2018).")
            if design == "bf-boin":
                out["n_cap"] = e2.number_input("Backfill cap per level (patients)", min_value=1, step=1,
                                               key="dose_n_cap", on_change=S.keep("dose_n_cap"))
    return out


def settings_panel(derived_rate: float | None, default_start: dt.date) -> tuple[DoseSettings | None, dict]:
    st.subheader("Planning assumptions")
    S.remember(dose_design="3+3", dose_cohort_size=3, dose_target=0.30, dose_max_n=30, dose_window=28,
               dose_rate=None, dose_start=default_start, dose_pooling="pooled", dose_screen_during=False)
    st.caption("The registry gives no dose levels, rule or DLT window: everything below is an editable "
               "planning assumption (defaults from related CD19 CAR-NK trials).")
    # The edited levels survive a visit to another page: each visit starts from the last edit.
    if "dose_levels_editor" not in st.session_state:
        st.session_state["_dose_levels_start"] = st.session_state.get("_keep_dose_levels", I.default_levels_table())
    table = st.data_editor(
        st.session_state["_dose_levels_start"], key="dose_levels_editor", num_rows="dynamic", hide_index=True,
        column_config={
            "label": st.column_config.TextColumn(I.LEVEL_COLUMN_LABELS["label"], required=True),
            "dose": st.column_config.NumberColumn(I.LEVEL_COLUMN_LABELS["dose"], format="%.2f",
                                                  help="CAR-NK cells per infusion, ×10⁹"),
            "true_dlt": st.column_config.NumberColumn(
                I.LEVEL_COLUMN_LABELS["true_dlt"], format="%.2f",
                help="Assumed probability of a dose-limiting toxicity at this level; used only "
                     "for the simulation (operating characteristics, expected numbers)."),
        },
    )
    st.session_state["_keep_dose_levels"] = table
    st.caption("1–8 dose levels, lowest first; add or delete rows to change the number of levels. "
               "The assumed true DLT rates drive only the simulation.")
    c1, c2, c3, c4 = st.columns(4)
    design = c1.selectbox("Design", [d.name for d in REGISTRY], format_func=lambda d: DESIGN_LABELS.get(d, d),
                          key="dose_design", on_change=S.keep("dose_design"), help=DESIGN_HELP) or REGISTRY[0].name
    if design == "3+3":
        cohort_size = c2.number_input("Cohort size (patients)", value=3, disabled=True,
                                      key="dose_cohort_size_33", help="3+3 always treats cohorts of 3.")
        target = c3.number_input("Target DLT rate", min_value=0.0, max_value=1.0, step=0.05, format="%.2f",
                                 key="dose_target", on_change=S.keep("dose_target"),
                                 help="3+3 does not use it; it defines the true MTD (the level whose assumed "
                                      "rate is closest) for % correct selection.")
        max_n = c4.number_input("Max sample size (patients)", value=6 * len(table), disabled=True,
                                key="dose_max_n_33", help="3+3: at most 6 patients per level (6K).")
    else:
        cohort_size = c2.number_input("Cohort size (patients)", min_value=0, step=1,
                                      key="dose_cohort_size", on_change=S.keep("dose_cohort_size"))
        target = c3.number_input("Target DLT rate", min_value=0.0, max_value=1.0, step=0.05,
                                 format="%.2f", key="dose_target", on_change=S.keep("dose_target"))
        max_n = c4.number_input("Max sample size (patients)", min_value=1, step=1, key="dose_max_n",
                                on_change=S.keep("dose_max_n"),
                                help="A whole number of cohorts; the trial stops after this many patients.")
    options = design_options_panel(design, len(table))
    c1, c2, c3, c4 = st.columns(4)
    window = c1.number_input("DLT window (days)", min_value=0, step=1, key="dose_window", on_change=S.keep("dose_window"),
                             help="3+3 / BOIN / i3+3: the next cohort opens only after the current cohort's window "
                                  "closes. TITE-BOIN: pending patients count by their follow-up.")
    rate = c2.number_input(
        "Screening rate (patients/month)", min_value=0.0, step=1.0, format="%.1f",
        key="dose_rate", on_change=S.keep("dose_rate"), placeholder="derived" if derived_rate is None else f"{derived_rate:.1f}",
        help="Patients screened per month (eligible or not). Empty: derived from the cohort's "
             "screening dates.")
    start = c3.date_input("Escalation starts", key="dose_start", on_change=S.keep("dose_start"),
                          help="Default: the day after the last screening date in the cohort.")
    pooling = c4.selectbox("Escalation", ["pooled", "per-disease"], format_func=lambda p: POOLING_LABELS[p],
                           key="dose_pooling", on_change=S.keep("dose_pooling"), help="Pooled: one escalation across the five diseases. "
                           "Per disease: a separate escalation for each disease.") or "pooled"
    during = st.checkbox("Keep screening during DLT windows", key="dose_screen_during", on_change=S.keep("dose_screen_during"),
                         help="Off (the spec): screening for the next cohort starts when the current "
                              "window closes. On: patients found during a window wait for the next cohort.")
    derived_text = "unknown (needs screening dates spread over at least two days)" if derived_rate is None else \
        f"{derived_rate:.1f} patients/month"
    st.caption(f"Screening rate derived from the cohort's screening dates: {derived_text}"
               + ("; the rate entered above replaces it." if rate is not None else "."))
    try:
        settings = I.build_settings(
            table, design=design, cohort_size=cohort_size, target=target, max_n=max_n,
            dlt_window_days=window, pooling=pooling, screening_rate_per_month=rate, **options,
        )
    except I.SettingsError as e:
        st.error(f"These settings cannot be used — {e}", icon=":material/error:")
        return None, {}
    return settings, {"start": start, "during": during, "rate_entered": rate is not None}


# -- sections ------------------------------------------------------------------------------


def plan_section(settings: DoseSettings, plan: CohortPlan, oc: dict) -> None:
    st.subheader("One plan")
    st.caption(
        f"Every section below shows the same plan: the {plan.basis} "
        f"({settings.n_trials:,} simulated trials of {settings.design_label}). The assignment fills these cohorts, "
        "the timeline draws them, and the operating characteristics report the means they were rounded from.")
    st.dataframe(V.plan_table(plan, oc), key="dose_plan_table", hide_index=True, column_config={
        "dose_level": "Dose level",
        "mean_patients": st.column_config.NumberColumn("Mean patients (simulation)", format="%.2f"),
        "plan_cohorts": st.column_config.NumberColumn("Cohorts on the expected path"),
        "plan_patients": st.column_config.NumberColumn("Patients on the expected path")})


def assignment_section(settings: DoseSettings, plan: CohortPlan, assignment: CohortAssignment) -> None:
    st.subheader("Assignment to dose levels")
    st.caption(
        "Eligible patients in screening-date order fill the cohorts of the expected path "
        f"({' / '.join(f'{c} × {plan.cohort_size}' for c in plan.cohorts_per_level)} patients at "
        f"{' / '.join(plan.labels)}). Pending patients (data missing or to verify) are shown apart: they take the slots "
        "left if they turn eligible. "
        + ("Each disease fills its own escalation." if settings.pooling == "per-disease" else ""))
    doses = {lv.label: lv.dose for lv in settings.levels}
    step = T.consort_dose_step(assignment, settings.labels)
    placed = int(assignment.counts.loc[settings.labels, "total"].sum())
    if placed == 0:
        st.info("No eligible patients under the current scenario, so no cohort can be filled.")
    else:
        st.markdown("**Eligible patients placed per dose level and disease (expected path)**")
        st.plotly_chart(assignment_bars(assignment.counts, doses, include_beyond=False), key="dose_assign_chart")
    st.dataframe(step, key="dose_consort_step", hide_index=True, column_config={
        "dose_level": "Dose level", "eligible": st.column_config.NumberColumn("Eligible (patients)"),
        "pending": st.column_config.NumberColumn("Pending (patients)")})
    beyond = int(step.loc[step["dose_level"] == "beyond capacity", "eligible"].sum())
    st.caption("Patients per dose level on the expected path (the CONSORT flow's dose step)."
               + (f" {beyond:,} eligible patients are beyond the expected path." if beyond else ""))
    cfg = {k: st.column_config.Column(v) for k, v in V.ASSIGNMENT_COLUMNS.items()}
    cfg["dose"] = st.column_config.NumberColumn(V.ASSIGNMENT_COLUMNS["dose"], format="%.2f")
    for kind, title in (("eligible", "Eligible patients in assignment order"),
                        ("pending", "Pending patients — shown apart")):
        rows = V.assignment_view(assignment, settings, kind)
        with st.expander(f"{title} ({len(rows):,})", expanded=False):
            if len(rows) == 0:
                st.caption(f"No {kind} patients.")
                continue
            st.dataframe(rows.head(MAX_ROWS), key=f"dose_assign_{kind}", hide_index=True, column_config=cfg)
            if len(rows) > MAX_ROWS:
                st.caption(f"First {MAX_ROWS:,} of {len(rows):,} shown; the CSV download has all of them.")


def sample_size_section(settings: DoseSettings, run: SimulationRun, n_escalations: int) -> dict:
    st.subheader("Sample size")
    summary = sample_size_summary(settings, run)
    table = V.sample_size_table(summary, settings)
    table["patients"] = table["patients"].round(1)  # whole patients show without decimals ("plain")
    st.dataframe(table, key="dose_sample_size", hide_index=True,
                 column_config={"quantity": "Patients treated", "patients": st.column_config.NumberColumn(
                     "Patients (n)", format="plain"), "source": "From"})
    if settings.pooling == "per-disease" and n_escalations > 1:
        st.caption(f"Per escalation; with a separate escalation for each of {n_escalations} diseases, "
                   f"the expected total is {n_escalations} × {summary['expected']:.1f} = "
                   f"{n_escalations * summary['expected']:.1f} patients.")
    return summary


def screening_need_section(settings: DoseSettings, run: SimulationRun, plan: CohortPlan, fractions: dict,
                           pool: pd.DataFrame, groups: list[str]) -> None:
    st.subheader("Screening need")
    bases = [b for b in NEED_BASES if b != "maximum" or settings.design == "3+3"]
    basis = st.radio("Patients needed per level", bases, format_func=NEED_BASES.get,
                     key="dose_need_basis", horizontal=True)
    if basis not in bases:  # a remembered choice that no longer applies
        basis = "plan"
    needed = patients_needed_per_level(settings, basis, run=run, plan=plan)
    need = screening_need_table(needed, {g: fractions.get(g) for g in groups})
    wide = V.screening_need_view(need)
    wide["needed"] = wide["needed"].round(1)
    cfg: dict[str, Any] = {"dose_level": "Dose level",
                           "needed": st.column_config.NumberColumn("Needed (patients)", format="plain")}
    cfg.update({g: st.column_config.NumberColumn(f"{'Pooled' if g == POOLED else g} (to screen)")
                for g in groups})
    st.dataframe(wide, key="dose_need_table", hide_index=True, column_config=cfg)
    st.caption("Patients to screen = ⌈needed ÷ eligible fraction⌉ per group, using the eligible fractions "
               "below (current scenario). Empty: no eligible patient in that group.")
    st.dataframe(pool, key="dose_pool_table", hide_index=True, column_config={
        "group": "Group", "screened": "Screened (patients)", "eligible": "Eligible (patients)",
        "pending": "Pending (patients)",
        "eligible_fraction": st.column_config.NumberColumn("Eligible fraction used", format="%.3f")})
    st.caption("Pending and ineligible patients count in the denominator; the pooled row also "
               "counts screened patients with other diagnoses.")


def decision_table_block(settings: DoseSettings) -> None:
    opt = settings.design_options()
    label = settings.design_label
    with st.expander(f"{label} decision table (protocol appendix)"):
        if design_info(settings.design).uses_target:
            if settings.design == "i3+3":
                st.caption(f"Equivalence interval [{opt.target - opt.eps1:.2f}, {opt.target + opt.eps2:.2f}]; "
                           f"eliminate when Pr(rate > target | data) > {opt.cutoff_eli:.2f}.")
            else:
                le, ld = boin_boundaries(opt.target, opt.p_saf, opt.p_tox)
                st.caption(f"Escalate if the observed DLT rate ≤ λe = {le:.3f}; de-escalate if ≥ λd = {ld:.3f}; "
                           f"eliminate when Pr(rate > target | data) > {opt.cutoff_eli:.2f}. Counts as R BOIN's "
                           "get.boundary prints them; empty: no count does it.")
        st.dataframe(T.decision_table(settings.design, opt, settings.effective_max_n), key="dose_decision_table",
                     hide_index=True)
        st.caption("The CSV under Downloads has this table with the settings that made it.")


def oc_section(settings: DoseSettings, oc: dict, interval: dict | None, escalation: str) -> None:
    st.subheader("Operating characteristics")
    mtd = oc.get("true_mtd")
    mtd_text = ("no single true MTD (two levels are equally close to the target)" if mtd is None
                else f"true MTD {settings.labels[mtd]} (assumed rate closest to the target {settings.target:.2f})")
    st.caption(f"{settings.n_trials:,} simulated trials (seed {settings.seed}) of "
               f"{settings.design_label} under the assumed true DLT rates; {mtd_text}. As R BOIN's get.oc "
               "reports them, and more.")
    st.dataframe(V.oc_table(settings, oc), key="dose_oc_table", hide_index=True, column_config={
        "dose_level": "Dose level",
        "dose": st.column_config.NumberColumn("Dose (×10⁹)", format="%.2f", help=f"Dose in {I.DOSE_UNIT}"),
        "true_dlt": st.column_config.NumberColumn("True DLT rate", format="%.2f",
                                                  help="Assumed true DLT rate (planning assumption)"),
        "true_mtd": st.column_config.CheckboxColumn("True MTD"),
        "mtd_selection_pct": st.column_config.NumberColumn("MTD (% trials)", format="%.1f",
                                                           help="% of simulated trials selecting this level as MTD"),
        "mean_patients": st.column_config.NumberColumn("Mean patients", format="%.2f",
                                                       help="Mean patients treated at this level"),
        "mean_dlts": st.column_config.NumberColumn("Mean DLTs", format="%.2f",
                                                   help="Mean patients with a DLT at this level"),
    })
    st.dataframe(V.oc_summary(oc, interval), key="dose_oc_summary", hide_index=True, column_config={
        "measure": "Measure", "value": st.column_config.NumberColumn("Value", format="%.1f"), "unit": "Unit"})
    if interval is not None:
        how = ("the calendar simulation's own durations (staggered accrual)" if settings.is_calendar
               else "each simulated trial's number of cohorts with the timeline's fill time and DLT window")
        st.caption(f"Durations for {_group_name(escalation)}: {how}.")
    else:
        st.caption("Durations need a screening rate and a non-zero eligible fraction (see Timeline).")
    decision_table_block(settings)


def timeline_section(settings: DoseSettings, run: SimulationRun, plan: CohortPlan, escalation: str,
                     rate: float | None, frac: float | None, opts: dict):
    st.subheader("Timeline")
    if rate is None:
        st.info("The screening rate is unknown (needs screening dates spread over at least two days): enter one above to project the "
                "timeline.", icon=":material/info:")
        return None
    if frac is None or frac == 0:
        st.warning(f"No eligible patients in {_group_name(escalation)} under the current scenario: "
                   "cohorts cannot fill.", icon=":material/warning:")
        return None
    tl = project_timeline(settings, frac, rate, opts["start"], plan, sim_result=run,
                          screening_during_window=opts["during"])
    iv = tl.interval or {}
    wait = ("cohorts open back to back while earlier DLT windows run (TITE-BOIN)" if tl.overlapping
            else f"then waits the {settings.dlt_window_days}-day DLT window")
    st.caption(
        f"{_group_name(escalation)}: {rate:.1f} patients screened/month × eligible fraction {frac:.3f} → "
        f"{rate * frac:.1f} eligible patients/month; a cohort of {settings.effective_cohort_size} fills in "
        f"{tl.fill_days:.1f} days, {wait}.")
    m1, m2, m3 = st.columns(3)
    m1.metric("End of the expected path", f"{tl.end_plan_date:%Y-%m-%d}",
              help=f"{tl.end_plan_day:.0f} days after the start")
    if iv:
        m2.metric("Simulated end (median)", f"{iv['p50_date']:%Y-%m-%d}",
                  help=f"{iv['p50_day']:.0f} days after the start; {settings.n_trials:,} simulated trials")
        m3.metric("Simulated duration, p10–p90 (days)", f"{iv['p10_day']:.0f}–{iv['p90_day']:.0f}",
                  help=f"{iv['p10_date']:%Y-%m-%d} – {iv['p90_date']:%Y-%m-%d}; mean {iv['mean_day']:.0f} days")
        st.caption(f"Projected end of the trial: mean {iv['mean_day']:.0f} days, median {iv['p50_date']:%Y-%m-%d}, "
                   f"80% interval {iv['p10_date']:%Y-%m-%d} – {iv['p90_date']:%Y-%m-%d} (p10–p90 of the simulated trials).")
    st.markdown("**Cohorts of the expected path**: screening to fill each cohort, then its DLT window")
    st.plotly_chart(timeline_figure(tl, start_date=opts["start"]), key="dose_timeline_chart")
    with st.expander("Timeline table"):
        st.dataframe(V.timeline_view(tl), key="dose_timeline_table", hide_index=True, column_config={
            "cohort": "Cohort", "dose_level": "Dose level", "opens": "Opens", "filled": "Filled",
            "dlt_window_closes": "DLT window closes",
            "fill_days": st.column_config.NumberColumn("Fill (days)", format="%.1f"),
            "window_days": st.column_config.NumberColumn("DLT window (days)", format="%.0f")})
    return tl.interval


def design_downloads(d2, d3, settings, oc, interval) -> None:
    """The design's own files (no cohort counts): operating characteristics and decision table."""
    download_button(d2, "Operating characteristics (CSV)",
                    data=lambda: to_csv_bytes(V.oc_export(settings, oc, interval)),
                    file_name="dose_operating_characteristics.csv", mime="text/csv", key="dose_dl_oc",
                    icon=":material/download:", on_click="ignore")
    download_button(d3, "Decision table (CSV)", key="dose_dl_decisions", icon=":material/download:",
                    on_click="ignore", file_name=f"dose_decision_table_{settings.design}.csv", mime="text/csv",
                    data=lambda: to_csv_bytes(T.decision_table_export(settings.design, settings.design_options(),
                                                                      settings.effective_max_n)))


def suppressed_view(ctx: S.Context, settings: DoseSettings, plan: CohortPlan, oc: dict, run: SimulationRun,
                    assignment: CohortAssignment, stats: dict, escalation: str, rate: float | None,
                    opts: dict) -> None:
    """With small-cell suppression on: the design's own numbers (simulations, decision table) as
    they are, and every count of the cohort through the suppressed release — the pool, the
    assignment, and the screening need and timeline only for groups whose eligible fraction
    (two counts) is shown. No patient lists."""
    fractions, groups, pool = stats["fractions"], stats["groups"], stats["pool"]
    released = SUP.released_fractions(ctx, fractions, POOLED)
    st.subheader("Eligible pool (suppressed counts)")
    SUP.dose_pool(ctx)
    plan_section(settings, plan, oc)
    st.subheader("Assignment to dose levels")
    SUP.dose_assignment(ctx, assignment.counts, {lv.label: lv.dose for lv in settings.levels})
    step = SUP.dose_step(ctx, T.consort_dose_step(assignment, settings.labels))
    n_esc = int(sum(1 for g in groups if g != POOLED and (fractions.get(g) or 0) > 0))
    sample_size_section(settings, run, n_esc)
    screening_need_section(settings, run, plan, released, SUP.dose_pool_frame(ctx, pool, released, POOLED), groups)
    st.caption("Suppression: a group whose eligible or screened count is hidden has no eligible fraction here "
               "(its column is empty).")
    frac = released.get(escalation)
    if fractions.get(escalation) and frac is None:
        st.subheader("Timeline")
        st.info(f"The eligible fraction of {_group_name(escalation)} is hidden by small-cell suppression: no "
                "timeline.", icon=":material/shield:")
        interval = None
    else:
        interval = timeline_section(settings, run, plan, escalation, rate, frac, opts)
    oc_section(settings, oc, interval, escalation)
    st.subheader("Downloads")
    d1, d2, d3 = st.columns(3)
    download_button(d1, "Patients per dose level (CSV, suppressed)", data=lambda: to_csv_bytes(step),
                    file_name="dose_levels_suppressed.csv", mime="text/csv", key="sup_dl_dose_step",
                    icon=":material/download:", on_click="ignore")
    design_downloads(d2, d3, settings, oc, interval)


def main() -> None:
    ctx = S.context()
    st.title("Dose cohorts")
    if ctx.aggregate_only:  # the assignment fills dose levels with eligible patients by screening date
        S.unavailable("dose-cohort planning (it assigns the eligible patients, in screening-date order, "
                      "to dose levels)")
        return
    scope = f"{ctx.disease} only (sidebar filter)" if ctx.disease else "all screened patients"
    scen = ("protocol as registered" if ctx.is_baseline
            else f"what-if scenario {lit(ctx.scenario.name or '', 120)}".strip())
    st.caption(f"Eligibility under the **{scen}**; cohort: {scope}.")
    keys = (ctx.data.key, repr(ctx.scenario.key), ctx.disease)
    cstats = cohort_stats(ctx.data.key, ctx.disease, ctx)
    derived = cstats["rate"]
    last = cstats["last"]
    default_start = (last + pd.Timedelta(days=1)).date() if last is not None else dt.date.today()

    settings, opts = settings_panel(derived, default_start)
    st.session_state["dose_plan"] = settings  # the CONSORT flow's dose step uses the same plan
    if settings is None:
        st.info("Fix the setting above to see assignment, sample size, screening need and timeline.")
        return

    sstats = scenario_stats(*keys, ctx)
    fractions, groups, pool = sstats["fractions"], sstats["groups"], sstats["pool"]
    total_rate = settings.screening_rate_per_month if settings.screening_rate_per_month else derived
    rates = T.group_rates(cstats["shares"], total_rate)
    escalation = POOLED
    if settings.pooling == "per-disease":
        options = [g for g in groups if g != POOLED]
        escalation = st.selectbox("Escalation shown (timeline and calendar simulation)", options,
                                  format_func=_group_name, key="dose_timeline_group")
    rate, frac = rates.get(escalation), fractions.get(escalation)
    eligible_rate = rate * frac if rate is not None and frac else None
    if settings.is_calendar and eligible_rate is None:
        st.warning(f"{settings.design_label} is simulated in calendar time and needs a screening rate and "
                   f"eligible patients in {_group_name(escalation)}: enter a rate or choose another design.",
                   icon=":material/warning:")
        return
    sim_rate = eligible_rate if settings.is_calendar else None
    run = simulate(I.simulation_key(settings), sim_rate)
    oc = operating_characteristics(run)
    plan = expected_plan(settings, run)
    assignment = assign(*keys, _assign_key(settings), repr(plan), plan, ctx)
    if suppression_on():
        suppressed_view(ctx, settings, plan, oc, run, assignment, sstats, escalation, rate, opts)
        return

    pooled = pool[pool["group"] == POOLED].iloc[0]
    m = st.columns(4)
    m[0].metric("Eligible patients", f"{pooled['eligible']:,}",
                help=f"of {pooled['screened']:,} screened; {pooled['pending']:,} pending (data missing or to verify)")
    m[1].metric("Eligible fraction", _pct(fractions.get(POOLED)), help="eligible ÷ screened (pooled)")
    m[2].metric("Screened per month", "unknown" if total_rate is None else f"{total_rate:.1f}",
                help="Patients screened per month, "
                + ("as entered" if opts["rate_entered"] else "derived from the cohort's screening dates"))
    per_disease = settings.pooling == "per-disease"
    m[3].metric("Expected patients per escalation" if per_disease else "Expected patients",
                f"{oc['mean_n_total']:.1f}",
                help=f"p10–p90: {oc['n_total_p10']:.0f}–{oc['n_total_p90']:.0f} patients (per escalation"
                     + ("; one escalation per disease" if per_disease else "") + ")")

    plan_section(settings, plan, oc)
    assignment_section(settings, plan, assignment)
    n_esc = int(sum(1 for g in groups if g != POOLED and (fractions.get(g) or 0) > 0))
    sample_size_section(settings, run, n_esc)
    screening_need_section(settings, run, plan, fractions, pool, groups)
    interval = timeline_section(settings, run, plan, escalation, rate, frac, opts)
    oc_section(settings, oc, interval, escalation)

    st.subheader("Downloads")
    d1, d2, d3 = st.columns(3)
    download_button(d1, "Assignment (CSV)", data=lambda: to_csv_bytes(V.assignment_export(assignment, settings)),
                       file_name="dose_assignment.csv", mime="text/csv", key="dose_dl_assignment",
                       icon=":material/download:", on_click="ignore")
    design_downloads(d2, d3, settings, oc, interval)


main()
