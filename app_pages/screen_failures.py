"""Screen failures: why candidates fail — attrition, per-criterion counts, combinations, CONSORT flow."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages import _shared as S
from app_pages import _suppressed as SUP
from app_pages._access import download_button, suppression_on
from app_pages._shared import guard, memo
from eligibility import export
from eligibility.figures import consort as C
from eligibility.figures import failures as F
from eligibility.labels import full_text, label
from eligibility.textsafe import markdown_literal as lit

CHART_CONFIG = {"displaylogo": False}
FLOW_WIDTH = 800


scope_text = S.scope_text


def waterfall(ctx: S.Context) -> None:
    att = memo(ctx, ("sf:attrition", ctx.group), lambda: ctx.view.attrition(ctx.group))
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
    table = memo(ctx, ("sf:crit", ctx.group), lambda: ctx.view.criterion_table(ctx.group))
    order = st.segmented_control("Order", ["impact", "catalog"], default="impact", key="sf_order",
                                 format_func=lambda o: {"impact": "By impact (sole reason)",
                                                        "catalog": "Catalog order"}[o]) or "impact"
    shown = F.criterion_display(table, ctx.group, sort=order)
    # Widths add up to what fits beside the sidebar at 1280 px: no sideways scrolling.
    pct: dict[str, Any] = {"format": "%.1f%%", "width": 58}
    n: dict[str, Any] = {"format": "%d", "width": 54}
    event = st.dataframe(
        shown, hide_index=True, key="sf_criterion_table", height=560, on_select="rerun",
        selection_mode="single-row", column_order=F.TABLE_COLUMNS,
        column_config={
            "label": st.column_config.TextColumn("Criterion", width=232, help=(
                "ID · short name (incl. = inclusion, excl. = exclusion). Select a row to read the "
                "protocol text below.")),
            "applicable": st.column_config.NumberColumn("Applies", help="Patients the criterion applies to "
                                                        "(the denominator of every % in its row)",
                                                        format="%d", width=66),
            "all_reasons": st.column_config.NumberColumn(
                "All", help="All reasons: patients failing it, whatever else they fail", **n),
            "all_reasons_pct": st.column_config.NumberColumn("All %", **pct),
            "first_reason": st.column_config.NumberColumn(
                "First", help="First reason: patients for whom it is the first failing criterion", **n),
            "first_reason_pct": st.column_config.NumberColumn("First %", **pct),
            "sole_reason": st.column_config.NumberColumn(
                "Sole", help="Sole reason (impact): patients failing only this cause; relaxing it alone "
                             "would make them eligible or pending. Parts testing the same condition count "
                             "as one cause.", **n),
            "sole_reason_pct": st.column_config.NumberColumn("Sole %", **pct),
            "unknown": st.column_config.NumberColumn(
                "Unkn.", help="Unknown: patients for whom it cannot be decided (missing or implausible "
                              "value)", **n),
            "unknown_pct": st.column_config.NumberColumn("Unkn. %", **pct),
        },
    )
    rows = event.selection.rows if event and event.selection else []
    if rows:
        r = shown.iloc[rows[0]]
        st.markdown(f"**{r['label']}** — protocol text:")
        st.text(full_text(r["id"]))
    st.caption("Percentages are of the patients each criterion applies to (all patients in scope for "
               f"common criteria, the disease's own patients for its block); scope: {scope_text(ctx)}. "
               "Click a column header to sort.")
    download_button(st, "Download this table (CSV)", data=lambda: export.to_csv_bytes(shown),
                       file_name=f"criteria_{ctx.group}.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:", key="sf_dl_table")


def combinations(ctx: S.Context) -> None:
    top = st.slider("Combinations shown", 5, 30, 15, key="sf_top",
                    help="The most common sets of failing criteria among ineligible patients.")
    combos = memo(ctx, ("sf:combos", ctx.group, top), lambda: ctx.view.combinations(ctx.group, top=top))
    totals = memo(ctx, ("sf:totals", ctx.group), lambda: ctx.view.criterion_totals(ctx.group))
    data, sets = F.upset_data(combos, totals)
    fig = F.upset_figure(data, sets, title=f"Most common failure combinations — {scope_text(ctx)}")
    st.plotly_chart(fig, key="sf_upset", config=CHART_CONFIG,
                    alt="UpSet chart: bars count the patients failing exactly each combination of "
                        "criteria; dots below mark the criteria in the combination.")
    n_inel = int(ctx.view.status_counts().loc[ctx.group, "ineligible"])
    covered = int(data["count"].sum()) if len(data) else 0
    st.caption(
        f"Top bars: ineligible patients (n) whose failing criteria are **exactly** the dotted set "
        f"(filled dots joined by a line). Left bars: all patients failing each criterion, in any "
        f"combination. The {len(data)} combinations shown cover {covered:,} of {n_inel:,} ineligible patients."
    )


def consort(ctx: S.Context, dose_levels=None) -> None:
    data = memo(ctx, ("sf:consort",), ctx.view.consort_data)
    reasons = memo(ctx, ("sf:reasons",), ctx.view.top_reasons)
    groups = None if ctx.disease is None else [ctx.disease]
    # Drawn at most FLOW_WIDTH px wide (beside the sidebar at 1280 px): text wraps, never shrinks.
    lay = C.consort_layout(data, groups=groups, dose_levels=dose_levels, reasons=reasons,
                           empty_rows=ctx.view.empty_rows, max_width=FLOW_WIDTH)
    title = f"Screening flow — {scope_text(ctx)}"
    meta = S.download_meta(ctx)
    fig = C.consort_figure(lay, title=title)
    st.plotly_chart(fig, key="sf_consort", width="content", config=CHART_CONFIG,
                    alt="CONSORT-style flow diagram: assessed, excluded by reason group, then eligible "
                        "and pending per disease.")
    st.caption("Excluded patients are counted once, under their **first** failing criterion; each "
               "excluded box lists the most frequent ones with counts. Pending (dashed box) = nothing "
               "fails but missing or implausible values leave at least one criterion undecided. Empty file "
               "rows are not patients and are not counted. Downloads carry the cohort, scenario, date and "
               "protocol version.")
    c1, c2 = st.columns(2)
    download_button(c1, "Download flow (HTML, works offline)", data=lambda: C.consort_html(fig, meta),
                       file_name=f"consort_{ctx.group}.html", mime="text/html", on_click="ignore",
                       icon=":material/download:", key="sf_dl_consort_html")
    download_button(c2, "Download flow (SVG)", data=lambda: C.consort_svg(lay, title=title, meta=meta),
                       file_name=f"consort_{ctx.group}.svg", mime="image/svg+xml", on_click="ignore",
                       icon=":material/download:", key="sf_dl_consort_svg")


ctx = S.context()
if suppression_on():  # aggregate counts only, each through the suppressed release
    S.stop_if_suppressed_aggregate(ctx, "Screen failures")
    SUP.screen_failures(ctx)
    st.stop()
st.title("Screen failures")
st.caption(f"Cohort: **{lit(S.cohort_label(ctx))}** · {ctx.view.n_patients:,} patients · {S.scenario_label(ctx)} · "
           f"{scope_text(ctx)} (change the disease in the sidebar)")
S.status_notes(ctx)
if ctx.view.disabled:
    st.info("Switched off in this scenario (not counted below): "
            + ", ".join(label(u) for u in ctx.view.disabled), icon=":material/tune:")

tab_w, tab_t, tab_u, tab_c = st.tabs(["Attrition", "Per criterion", "Combinations", "CONSORT flow"])
with tab_w, guard("the attrition waterfall"):
    waterfall(ctx)
with tab_t, guard("the per-criterion table"):
    criterion_table(ctx)
with tab_u, guard("the failure combinations"):
    combinations(ctx)
with tab_c, guard("the CONSORT flow"):
    plan, plan_text = S.dose_plan()
    if ctx.aggregate_only:  # the dose step orders eligible patients by screening date
        consort(ctx)
        S.unavailable("the dose-level step of the flow")
    else:
        consort(ctx, dose_levels=S.dose_levels(ctx, plan) if st.toggle(
            f"Add the dose-level step ({plan_text})", value=True, key="sf_dose_step",
            help="Eligible patients in screening-date order fill the planned dose cohorts up to their "
                 "capacity. Change the plan on the Dose cohorts page.") else None)
