"""Overview: headline counts, status per disease, data quality and result downloads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages import _suppressed as SUP
from app_pages._access import download_button, suppression_on
from app_pages._shared import cohort_label, guard, memo, results
from eligibility import demographics as D
from eligibility import export
from eligibility.fields import FIELD_BY_NAME
from eligibility.figures.demographics import demographics_figure
from eligibility.figures.overview import missingness_bars, status_by_group
from eligibility.labels import label
from eligibility.report import ReportInput, build_report, scenario_changes
from eligibility.textsafe import markdown_literal as lit

MAX_ROWS = 1_000  # rows of a table sent to the browser at once


def disease_mask(ctx: S.Context, frame: pd.DataFrame) -> np.ndarray:
    """Rows (input order) of the sidebar's disease, or all rows."""
    if ctx.disease is None:
        return np.ones(len(frame), bool)
    return (frame["disease"].astype("string") == ctx.disease).fillna(False).to_numpy(bool)


scope_text = S.scope_text


def headline(ctx: S.Context) -> None:
    counts = ctx.view.status_counts().loc[ctx.group]
    base = ctx.base_view.status_counts().loc[ctx.group]
    compare = not ctx.is_baseline

    def delta(key: str) -> int | None:
        return int(counts[key] - base[key]) if compare else None

    # Deltas are against the protocol (said in the caption below: a "vs protocol" label is
    # cut off in the narrow cards at 1280 px). The range card is wider: "1,234 – 2,345" must fit at 1280 px without being cut off.
    cols = st.columns([1, 1, 1, 1, 1.45])
    cols[0].metric("Screened", f"{int(counts['screened']):,}", border=True,
                   help="Patients in the cohort (and in the disease filter). Every input row is kept; "
                        "empty file rows are not patients and are counted apart.")
    cols[1].metric("Eligible", f"{int(counts['eligible']):,}", delta=delta("eligible"), border=True,
                   help="Every applicable, assessed criterion passes.")
    cols[2].metric("Pending", f"{int(counts['pending']):,}", delta=delta("pending"), border=True,
                   delta_color="off",
                   help="No criterion fails, but at least one cannot be decided: a value is missing or "
                        "is implausible and needs verifying.")
    cols[3].metric("Ineligible", f"{int(counts['ineligible']):,}", delta=delta("ineligible"), border=True,
                   delta_color="inverse",
                   help="At least one applicable criterion fails.")
    lo, hi = int(counts["eligible_low"]), int(counts["eligible_high"])
    cols[4].metric("Eligible range", f"{lo:,}–{hi:,}", border=True,
                   delta=(f"{int(lo - base['eligible_low']):+,} / {int(hi - base['eligible_high']):+,}"
                          if compare else None),
                   delta_color="off", delta_description="vs protocol" if compare else None,
                   help="From the eligible count to eligible + pending: the count if every pending "
                        "patient's missing values turned out to pass.")

    def pct(key: str) -> str:
        v = counts[f"{key}_pct"]
        return "–" if pd.isna(v) else f"{v:.1f}%"

    st.caption(f"Of {int(counts['screened']):,} screened ({scope_text(ctx)}): eligible {pct('eligible')}, "
               f"pending {pct('pending')}, ineligible {pct('ineligible')}."
               + ("" if not compare else
                  f" Changes are relative to the protocol as registered "
                  f"({int(base['eligible']):,} eligible, {int(base['pending']):,} pending)."))
    partial, missing = eligible_on_assessed(ctx)
    if partial:
        st.warning(f"{partial:,} of the eligible patients are **eligible on assessed criteria** only: "
                   f"{len(missing)} applicable criterion part(s) are not assessed for this file "
                   f"({', '.join(missing[:12])}{' …' if len(missing) > 12 else ''}; see *Criteria not "
                   "assessed* below). The Patients page shows each as “eligible on assessed criteria (k of n)”.",
                   icon=":material/visibility_off:")


def eligible_on_assessed(ctx: S.Context) -> tuple[int, list[str]]:
    """Eligible patients (in scope) with applicable criteria not assessed, and those criteria."""
    view = ctx.view
    return view.eligible_on_assessed(ctx.group), list(view.not_assessed_applicable())


def status_chart(ctx: S.Context) -> None:
    counts = ctx.view.status_counts()
    if ctx.disease is None:
        groups = [g for g in counts.index if g != "All"]
    else:
        groups = [ctx.disease]
    title = "Screening status by disease" + (" — what-if scenario" if not ctx.is_baseline else "")
    fig = status_by_group(counts, groups, title=title)
    st.plotly_chart(fig, key="overview_status_chart",
                    config={"displaylogo": False},
                    alt="Bar chart of eligible, pending and ineligible patients per disease")
    st.caption("Bar labels: patients (n) and % of that disease group's screened patients. "
               "Patterns: plain = eligible, hatched = pending, crossed = ineligible.")


def _issue_rows_in_scope(ctx: S.Context, report: pd.DataFrame) -> pd.Series:
    """Issues of rows with the sidebar's disease (file-level issues are always kept)."""
    if ctx.disease is None or report.empty or ctx.aggregate_only:  # aggregate mode: no per-row diseases
        return pd.Series(True, index=report.index)
    frame = ctx.cohort.frame
    numbers = ctx.cohort.row_numbers
    if len(numbers) != len(frame):
        numbers = np.arange(1, len(frame) + 1)
    rows = report["row"]
    return rows.isna() | rows.isin(np.asarray(numbers)[disease_mask(ctx, frame)])


def validation_report(ctx: S.Context) -> None:
    report = ctx.data.report
    if report.empty:
        st.success("The loader reported no problems with this file.", icon=":material/check_circle:")
        return
    c1, c2 = st.columns(2)
    severities = sorted(report["severity"].dropna().unique().tolist(),
                        key=lambda s: {"error": 0, "warning": 1, "info": 2}.get(s, 3))
    kinds = sorted(report["kind"].dropna().unique().tolist())
    chosen_sev = c1.multiselect("Severity", severities, default=severities, key=f"ov_issue_severity_{ctx.data.key}")
    chosen_kind = c2.multiselect("Kind", kinds, default=kinds, key=f"ov_issue_kind_{ctx.data.key}",
                                 format_func=lambda k: k.replace("_", " "))
    shown = report[report["severity"].isin(chosen_sev) & report["kind"].isin(chosen_kind)
                   & _issue_rows_in_scope(ctx, report)]
    rank = shown["severity"].map({"error": 0, "warning": 1, "info": 2}).fillna(3)
    shown = shown.assign(_rank=rank).sort_values(["_rank", "row"], kind="stable").drop(columns="_rank")
    by_sev = shown["severity"].value_counts()
    st.caption(f"{len(shown):,} of {len(report):,} reported problems shown, errors first"
               f" ({', '.join(f'{n:,} {s}' for s, n in by_sev.items()) or 'none'}); "
               f"scope: {scope_text(ctx)}. Row = 1-based data row in the file. "
               "Cells with errors were read as empty; every row was kept."
               + (" (Database cohort in aggregate mode: the report is not narrowed to the disease filter.)"
                  if ctx.aggregate_only and ctx.disease is not None else ""))
    if len(shown) > MAX_ROWS:
        st.caption(f"Showing the first {MAX_ROWS:,}; download the full report below.")
    st.dataframe(
        shown.head(MAX_ROWS), hide_index=True, key="ov_issue_table",
        column_order=["row", "patient_id", "column", "value", "severity", "kind", "problem"],
        column_config={
            # narrow codes, so that the problem's wording fits at 1280 px
            "row": st.column_config.NumberColumn("Row", format="%d", help="1-based data row in the file",
                                                 width="small"),
            "patient_id": "Patient ID", "column": "Column", "value": "Value as given",
            "problem": st.column_config.TextColumn("Problem", width="large"),
            "severity": st.column_config.TextColumn("Severity", width="small"),
            "kind": st.column_config.TextColumn("Kind", width="small"),
        },
    )
    download_button(st, "Download this report (CSV)", data=lambda: export.to_csv_bytes(shown),
        file_name="validation_report.csv", mime="text/csv", on_click="ignore",
        icon=":material/download:", key="ov_dl_report",
    )


def missing_data(ctx: S.Context) -> None:
    miss = ctx.data.missingness(ctx.disease)
    absent = miss[~miss["present"]]
    st.caption("Empty cells per contract column. Common columns: % of all patients in scope; "
               "disease-specific columns: % of that disease's patients. An empty lab value makes its "
               "criteria unknown (pending); an empty `days_since_*` cell means 'never'.")
    if len(absent):
        st.warning(f"{len(absent)} contract column(s) are absent from the file: "
                   + ", ".join(f"`{f}`" for f in absent["field"]), icon=":material/warning:")
    # In the chart, leave out columns whose empty cells carry a meaning: `days_since_*` /
    # `years_since_*` (never happened) and optional columns (site ULN / default applies).
    meaningful = ~miss["field"].str.startswith(("days_since_", "years_since_")) & ~miss["field"].map(
        lambda f: FIELD_BY_NAME[f].optional)
    st.plotly_chart(missingness_bars(miss[meaningful], top=15, title="Columns with the most empty cells"),
                    key="ov_missing_chart", config={"displaylogo": False})
    st.caption("The chart leaves out `days_since_*` / `years_since_*` columns (empty = never) and optional "
               "columns (empty = the default ULN applies); the table lists every column.")
    st.dataframe(
        miss, hide_index=True, key="ov_missing_table",
        column_order=["field", "label", "block", "present", "missing", "missing_pct", "criteria"],
        column_config={
            "field": "Column", "label": "Field (unit)", "block": "Block",
            "present": st.column_config.CheckboxColumn("In file"),
            "missing": st.column_config.NumberColumn("Empty cells (n)", format="%d"),
            "missing_pct": st.column_config.ProgressColumn(
                "Empty cells (%)", format="%.1f%%", min_value=0.0, max_value=100.0),
            "criteria": "Criteria reading it",
        },
    )


def not_assessed(ctx: S.Context) -> None:
    ev = ctx.view
    table = ev.not_assessed_table()
    if table.empty:
        st.success("Every criterion can be assessed with the columns in this file.",
                   icon=":material/check_circle:")
    else:
        st.warning(f"{len(table)} criterion part(s) are **not assessed** for this cohort: they neither "
                   "fail nor make anyone pending. Eligible counts are therefore optimistic for them.",
                   icon=":material/visibility_off:")
        st.dataframe(table, hide_index=True, key="ov_not_assessed",
                     column_config={"criterion": "Criterion", "name": "Short name", "text": "Protocol text",
                                    "absent_columns": "Absent column(s)"})
    if ev.disabled:
        st.info("Switched off in the what-if scenario: " + ", ".join(label(u) for u in ev.disabled),
                icon=":material/tune:")


def demographics(ctx: S.Context) -> None:
    ev = ctx.view  # in aggregate mode: one GROUP BY (group, status, age, sex) in the database
    pool = memo(ctx, ("demo:pool", ctx.disease), lambda: ev.pool(ev.scope_groups(ctx.disease)))
    st.plotly_chart(demographics_figure(pool[pool["group"] == ctx.group],
                                        title=f"Age and sex of the pool — {scope_text(ctx)}"),
                    key="ov_demo_chart", config={"displaylogo": False},
                    alt="Bar charts of patients per age band and per sex, for screened, eligible and pending.")
    st.caption("Bars: patients (n) per age band (years; 60–65 includes 65) and per sex, for the screened, "
               "eligible and pending patients. Patterns: plain = screened, hatched = pending.")
    tab_sum, tab_bands = st.tabs(["Age and sex", "Age bands (n)"])
    with tab_sum:
        st.dataframe(D.display_pool(pool, "summary"), hide_index=True, key="ov_demo_table",
                     column_config={"Female %": st.column_config.NumberColumn(
                         format="%.1f%%", help="Of patients with a known sex")})
    with tab_bands:
        st.dataframe(D.display_pool(pool, "bands"), hide_index=True, key="ov_demo_bands")
    with st.expander("At each attrition step (patients remaining)"):
        steps = memo(ctx, ("demo:steps", ctx.group), lambda: ev.by_step(ctx.group))
        st.dataframe(D.display_steps(steps), hide_index=True, key="ov_demo_steps",
                     column_config={"Female %": st.column_config.NumberColumn(format="%.1f%%")})


def report(ctx: S.Context) -> None:
    plan, plan_text = S.dose_plan()

    def build() -> str:
        # Aggregate mode: no dose-level step (it orders the eligible patients by screening date).
        dose = None if ctx.aggregate_only else S.dose_levels(ctx, plan)
        info = ReportInput(
            cohort="bundled synthetic cohort" if ctx.data.key == S.BUNDLED_KEY else ctx.data.name,
            scenario="protocol as registered" if ctx.is_baseline else (ctx.scenario.name or "What-if"),
            changes=scenario_changes(ctx.scenario), disease=ctx.disease, dose=dose, dose_plan=plan_text)
        return build_report(ctx.view, ctx.base_view, info)

    if ctx.aggregate_only:
        st.caption("One HTML file with the cohort, scenario, date and protocol version, the headline numbers, "
                   "the per-disease table, attrition, the CONSORT flow and demographics, from the counts "
                   "computed in the database (no dose-level step for a database cohort in aggregate mode). "
                   "It opens offline; print it to PDF from the browser.")
    else:
        st.caption("One HTML file with the cohort, scenario, date and protocol version, the headline numbers, "
                   "the per-disease table, attrition, the CONSORT flow, demographics and the dose plan "
                   f"({plan_text}). It opens offline; print it to PDF from the browser.")
    download_button(st, "Download the screening report (HTML)", data=build,
                       file_name=f"screening_report_{ctx.group}.html", mime="text/html", on_click="ignore",
                       icon=":material/summarize:", key="ov_dl_report_html", type="primary")


def downloads(ctx: S.Context) -> None:
    if ctx.aggregate_only:  # one row per patient: the batch command writes it from the database
        S.unavailable("the per-patient results download")
        return
    res = results(ctx)
    mask = disease_mask(ctx, res)
    sub = res if ctx.disease is None else res[mask]
    suffix = "" if ctx.disease is None else f"_{ctx.disease}"
    st.caption(f"{len(sub):,} rows ({scope_text(ctx)}), one per input row in file order, with "
               "status, first reason, all failing and unknown criteria, and criteria not assessed"
               + ("" if ctx.is_baseline else " — under the active what-if scenario") + ".")
    c1, c2 = st.columns(2)
    download_button(c1, "Results as CSV (Excel-safe)", data=lambda: export.to_csv_bytes(sub),
                       file_name=f"screening_results{suffix}.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:", key="ov_dl_csv")
    download_button(c2, "Results as Parquet", data=lambda: export.to_parquet_bytes(sub),
                       file_name=f"screening_results{suffix}.parquet",
                       mime="application/vnd.apache.parquet",
                       on_click="ignore", icon=":material/download:", key="ov_dl_parquet")


ctx = S.context()
if suppression_on():  # aggregate counts only, each through the suppressed release
    S.stop_if_suppressed_aggregate(ctx, "Screening overview")
    SUP.overview(ctx)
    st.stop()
st.title("Screening overview")
st.caption(f"Cohort: **{lit(cohort_label(ctx))}** · {ctx.view.n_patients:,} patients · {S.scenario_label(ctx)} · "
           f"{scope_text(ctx)}")
S.status_notes(ctx)

with guard("the headline counts"):
    headline(ctx)
with guard("the status chart"):
    status_chart(ctx)

st.subheader("Data quality")
tab_report, tab_missing, tab_na = st.tabs(["Validation report", "Missing data", "Not assessed"])
with tab_report, guard("the validation report"):
    validation_report(ctx)
with tab_missing, guard("the missing-data summary"):
    missing_data(ctx)
with tab_na, guard("the list of criteria not assessed"):
    not_assessed(ctx)

st.subheader("Demographics of the pool")
with guard("the demographics"):
    demographics(ctx)

st.subheader("Report and downloads")
with guard("the screening report"):
    report(ctx)
with guard("the downloads"):
    downloads(ctx)
