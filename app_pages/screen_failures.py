"""Screen failures: why candidates fail — attrition, per-criterion counts, combinations, CONSORT flow."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as S
from app_pages._shared import guard, memo
from eligibility import attribution as A
from eligibility import export
from eligibility.dose import DoseSettings, assign_cohorts
from eligibility.dose.view import consort_dose_step, screening_frame
from eligibility.fields import DISEASE_NAMES
from eligibility.figures import consort as C
from eligibility.figures import failures as F

CHART_CONFIG = {"displaylogo": False}


def scope_text(ctx: S.Context) -> str:
    return "all diseases" if ctx.disease is None else f"{ctx.disease} ({DISEASE_NAMES[ctx.disease]})"


def waterfall(ctx: S.Context) -> None:
    att = memo(ctx, ("sf:attrition", ctx.group), lambda: A.attrition(ctx.current, ctx.group))
    hide = st.toggle("Hide criteria that exclude no one", value=True, key="sf_hide_zero",
                     help="Criteria that are nobody's first failing criterion are left out; totals are unchanged.")
    steps = F.waterfall_data(att, hide_zero=hide)
    n_zero = int((att["excluded"] == 0).sum())
    fig = F.waterfall_figure(steps, title=f"Attrition by first failing criterion — {scope_text(ctx)}")
    st.plotly_chart(fig, key="sf_waterfall", config=CHART_CONFIG,
                    alt="Waterfall chart: screened patients, then the patients each criterion removes "
                        "(first failing criterion, catalog order), then those remaining.")
    screened, eligible, pending = att.attrs["screened"], att.attrs["eligible"], att.attrs["pending"]
    st.caption(
        f"Bars in catalog order (DX, INC, EXC, then the disease blocks). Each criterion's bar counts the "
        f"patients (n) for whom it is the **first** failing criterion, so the bars add up: "
        f"{screened:,} screened − {screened - eligible - pending:,} excluded = {eligible + pending:,} remaining "
        f"({eligible:,} eligible + {pending:,} pending)."
        + (f" {n_zero} criteria excluded no one and are hidden." if hide and n_zero else "")
    )


def criterion_table(ctx: S.Context) -> None:
    table = memo(ctx, ("sf:crit", ctx.group), lambda: A.criterion_table(ctx.current, ctx.group))
    shown = F.criterion_display(table, ctx.group)
    pct = dict(format="%.1f%%", min_value=0.0, max_value=100.0)
    st.dataframe(
        shown, hide_index=True, key="sf_criterion_table", height=600,
        column_config={
            "id": st.column_config.TextColumn("Criterion", help="Criterion or part ID (catalog order)"),
            "kind": "Kind", "block": "Block",
            "text": st.column_config.TextColumn("Protocol text", width="large"),
            "applicable": st.column_config.NumberColumn("Applicable (n)", format="%d",
                                                        help="Patients the criterion applies to"),
            "all_reasons": st.column_config.NumberColumn(
                "All reasons (n)", format="%d", help="Patients failing it, whatever else they fail"),
            "all_reasons_pct": st.column_config.ProgressColumn("All reasons (%)", **pct),
            "first_reason": st.column_config.NumberColumn(
                "First reason (n)", format="%d", help="Patients for whom it is the first failing criterion"),
            "first_reason_pct": st.column_config.NumberColumn("First reason (%)", format="%.1f%%"),
            "sole_reason": st.column_config.NumberColumn(
                "Sole reason / impact (n)", format="%d",
                help="Patients failing only this cause: relaxing it alone would make them eligible or "
                     "pending. Parts testing the same condition count as one cause."),
            "sole_reason_pct": st.column_config.NumberColumn("Sole reason (%)", format="%.1f%%"),
            "unknown": st.column_config.NumberColumn(
                "Unknown (n)", format="%d", help="Patients for whom it cannot be decided (missing data)"),
            "unknown_pct": st.column_config.NumberColumn("Unknown (%)", format="%.1f%%"),
            "cause": st.column_config.TextColumn("Cause (for impact)"),
        },
    )
    sl = A.group_slice(ctx.current, ctx.group)
    st.caption(f"Percentages are of the {sl.stop - sl.start:,} patients screened in scope ({scope_text(ctx)}). Click a column header to sort.")
    st.download_button("Download this table (CSV)", data=lambda: export.to_csv_bytes(shown),
                       file_name=f"criteria_{ctx.group}.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:", key="sf_dl_table")


def combinations(ctx: S.Context) -> None:
    top = st.slider("Combinations shown", 5, 30, 15, key="sf_top",
                    help="The most common sets of failing criteria among ineligible patients.")
    combos = memo(ctx, ("sf:combos", ctx.group, top), lambda: A.combinations(ctx.current, ctx.group, top=top))
    totals = memo(ctx, ("sf:totals", ctx.group), lambda: A.criterion_totals(ctx.current, ctx.group))
    data, sets = F.upset_data(combos, totals)
    fig = F.upset_figure(data, sets, title=f"Most common failure combinations — {scope_text(ctx)}")
    st.plotly_chart(fig, key="sf_upset", config=CHART_CONFIG,
                    alt="UpSet chart: bars count the patients failing exactly each combination of "
                        "criteria; dots below mark the criteria in the combination.")
    n_inel = int(A.status_counts(ctx.current).loc[ctx.group, "ineligible"])
    covered = int(data["count"].sum()) if len(data) else 0
    st.caption(
        f"Top bars: ineligible patients (n) whose failing criteria are **exactly** the dotted set "
        f"(filled dots joined by a line). Left bars: all patients failing each criterion, in any "
        f"combination. The {len(data)} combinations shown cover {covered:,} of {n_inel:,} ineligible patients."
    )


def dose_step(ctx: S.Context, plan: DoseSettings):
    """Eligible patients per dose level under a dose plan, for the flow's last step."""

    def build():
        frame, statuses = ctx.cohort.frame, ctx.current.status_labels()
        if ctx.disease is not None:
            mask = (frame["disease"].astype("string") == ctx.disease).fillna(False).to_numpy(bool)
            frame, statuses = frame[mask], statuses[mask]
        step = consort_dose_step(assign_cohorts(screening_frame(frame, statuses), plan), plan.labels)
        return step.rename(columns={"dose_level": "level", "eligible": "n"})

    return memo(ctx, ("sf:dose", ctx.group, plan.model_dump_json()), build)


def consort(ctx: S.Context, dose_levels=None) -> None:
    data = memo(ctx, ("sf:consort",), lambda: C.consort_data(ctx.current))
    groups = None if ctx.disease is None else [ctx.disease]
    lay = C.consort_layout(data, groups=groups, dose_levels=dose_levels)
    title = f"Screening flow — {scope_text(ctx)}"
    fig = C.consort_figure(lay, title=title)
    st.plotly_chart(fig, key="sf_consort", width="content", config=CHART_CONFIG,
                    alt="CONSORT-style flow diagram: assessed, excluded by reason group, then eligible "
                        "and pending per disease.")
    st.caption("Excluded patients are counted once, under their **first** failing criterion's group: "
               "diagnosis (DX-1), common inclusion (INC), common exclusion (EXC), disease-specific "
               "inclusion or exclusion. Pending (dashed box) = nothing fails but missing data leave at "
               "least one criterion undecided.")
    c1, c2 = st.columns(2)
    c1.download_button("Download flow (HTML, works offline)", data=lambda: C.consort_html(fig),
                       file_name=f"consort_{ctx.group}.html", mime="text/html", on_click="ignore",
                       icon=":material/download:", key="sf_dl_consort_html")
    c2.download_button("Download flow (SVG)", data=lambda: C.consort_svg(lay, title=title),
                       file_name=f"consort_{ctx.group}.svg", mime="image/svg+xml", on_click="ignore",
                       icon=":material/download:", key="sf_dl_consort_svg")


ctx = S.context()
st.title("Screen failures")
scenario = ("protocol as registered" if ctx.is_baseline
            else f"what-if scenario “{ctx.scenario.name or 'What-if'}” (see the What-if page)")
label = "bundled synthetic cohort" if ctx.data.key == S.BUNDLED_KEY else ctx.data.name
st.caption(f"Cohort: **{label}** · {len(ctx.cohort):,} patients · {scenario} · {scope_text(ctx)} "
           "(change the disease in the sidebar)")
if ctx.current.disabled:
    st.info("Switched off in this scenario (not counted below): " + ", ".join(ctx.current.disabled),
            icon=":material/tune:")

tab_w, tab_t, tab_u, tab_c = st.tabs(["Attrition", "Per criterion", "Combinations", "CONSORT flow"])
with tab_w, guard("the attrition waterfall"):
    waterfall(ctx)
with tab_t, guard("the per-criterion table"):
    criterion_table(ctx)
with tab_u, guard("the failure combinations"):
    combinations(ctx)
with tab_c, guard("the CONSORT flow"):
    plan = st.session_state.get("dose_plan") or DoseSettings()
    plan_text = "the plan from the Dose cohorts page" if st.session_state.get("dose_plan") else \
        "default plan: DL1–DL3, 3+3, pooled"
    consort(ctx, dose_levels=dose_step(ctx, plan) if st.toggle(
        f"Add the dose-level step ({plan_text})", value=True, key="sf_dose_step",
        help="Eligible patients in screening-date order fill the planned dose cohorts up to their "
             "capacity. Change the plan on the Dose cohorts page.") else None)
