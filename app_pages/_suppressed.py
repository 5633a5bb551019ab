"""The aggregate pages with small-cell suppression on (always for viewers; a setting for
analysts and admins): every count comes from the suppressed release of the cohort
(eligibility/access/release.py) or from `display_table`, and nothing patient-level is drawn
— no patient tables, explanations, near misses, data-quality rows or patient downloads.
Each page calls its view here and stops, so nothing unsuppressed can follow it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import _access as A
from app_pages import _shared as S
from eligibility import export
from eligibility.access import release as R
from eligibility.access.suppression import HIDDEN_TEXT, WITHHELD_TEXT, total_of
from eligibility.access.tables import display_table
from eligibility.attribution import ALL, attrition, criterion_table
from eligibility.fields import DISEASE_NAMES
from eligibility.figures.consort import REASON_GROUPS
from eligibility.figures.failures import criterion_display
from eligibility.figures.overview import STATUS_COLORS, STATUS_PATTERNS, STATUS_TITLES
from eligibility.labels import label

TOTAL = "all levels"
NAMES = {ALL: "All diseases", "other": "Other diagnosis (not an indication)", "missing": "Diagnosis missing"}


def release(ctx: S.Context) -> R.Release:
    """The suppressed counts of this cohort under the protocol and the active scenario."""
    return R.build(ctx.base, ctx.current, A.min_cell())


def legend(k: int) -> str:
    return (f"Small-cell suppression is on: counts from 1 to {k - 1} are shown as “<{k}”; “{HIDDEN_TEXT}” "
            f"is a count of {k} or more hidden so that a small one cannot be worked out from a total; "
            f"“{WITHHELD_TEXT}” is not shown (any value). Percentages and differences are shown only "
            "when every count they come from is shown. Patient-level tables and files are left out.")


def _header(ctx: S.Context, title: str, rel: R.Release) -> None:
    st.title(title)
    st.caption(f"{S.scenario_label(ctx)} · {S.scope_text(ctx)}")
    st.info(legend(rel.k), icon=":material/shield:")


def _groups(ctx: S.Context, rel: R.Release) -> list[str]:
    return rel.groups if ctx.disease is None else [ALL, *([ctx.disease] if ctx.disease in rel.groups else [])]


def _name(g: str) -> str:
    return f"{g} — {DISEASE_NAMES[g]}" if g in DISEASE_NAMES else NAMES.get(g, g)


def _csv(where, label_: str, table: pd.DataFrame, name: str, key: str) -> None:
    A.download_button(where, label_, lambda: export.to_csv_bytes(table), file_name=name, mime="text/csv",
                      on_click="ignore", icon=":material/download:", key=key)


def status_table(ctx: S.Context, rel: R.Release, tag: str = "cur") -> pd.DataFrame:
    rows = []
    for g in _groups(ctx, rel):
        row = {"group": _name(g), **rel.status_row(tag, g)}
        for s in ("eligible", "pending", "ineligible"):
            row[f"{s}_pct"] = rel.pct("status", tag, g, s)
        rows.append(row)
    return pd.DataFrame(rows)


def status_figure(ctx: S.Context, rel: R.Release) -> go.Figure:
    """Bars of the shown counts; a hidden count has no bar, only its label ("<k", "*")."""
    groups = [g for g in _groups(ctx, rel) if g != ALL] or [ALL]
    bars = R.status_bars(rel, groups)
    fig = go.Figure()
    for s in R.STATUSES:
        sub = bars[bars["status"] == s]
        fig.add_trace(go.Bar(name=STATUS_TITLES[s], x=[_name(g).split(" — ")[0] for g in sub["group"]],
                             y=sub["height"], text=sub["label"], textposition="outside", cliponaxis=False,
                             hoverinfo="skip",
                             marker=dict(color=STATUS_COLORS[s], pattern=dict(shape=STATUS_PATTERNS[s]),
                                         line=dict(color="#333333", width=0.5))))
    fig.update_layout(barmode="group", height=400, margin=dict(t=60, l=50, r=20, b=40),
                      title="Screening status by disease (suppressed counts)",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    fig.update_yaxes(title_text="Patients (n)", tickformat=",d")
    return fig


def _metric(col, title: str, rel: R.Release, g: str, s: str, compare: bool) -> None:
    cur = rel.key("status", "cur", g, s)
    delta = rel.change("base", "cur", g, s) if compare else None
    col.metric(title, rel.sup.text(cur), delta=delta, border=True,
               delta_color="off", delta_arrow="off" if delta in (None, HIDDEN_TEXT) else "auto",
               delta_description="vs protocol" if compare else None)


def overview(ctx: S.Context) -> None:
    rel = release(ctx)
    _header(ctx, "Screening overview", rel)
    g = ctx.group
    cols = st.columns(5)
    for col, (title, s) in zip(cols, [("Screened", "screened"), ("Eligible", "eligible"), ("Pending", "pending"),
                                      ("Ineligible", "ineligible"), ("Eligible + pending", "remaining")],
                               strict=True):
        _metric(col, title, rel, g, s, not ctx.is_baseline and s != "screened")
    st.plotly_chart(status_figure(ctx, rel), key="sup_status_chart", config={"displaylogo": False})
    table = status_table(ctx, rel)
    st.dataframe(table, hide_index=True, key="sup_status_table", column_config={
        "group": "Disease", "screened": "Screened (n)", "eligible": "Eligible (n)", "pending": "Pending (n)",
        "ineligible": "Ineligible (n)", "remaining": "Eligible + pending (n)", "eligible_pct": "Eligible %",
        "pending_pct": "Pending %", "ineligible_pct": "Ineligible %"})
    _csv(st, "Download this table (CSV, suppressed)", table, f"status_{g}_suppressed.csv", "sup_dl_status")
    st.caption("Data quality, demographics, the screening report and patient-level results are left out "
               "while suppression is on.")


def screen_failures(ctx: S.Context) -> None:
    rel = release(ctx)
    _header(ctx, "Screen failures", rel)
    g = ctx.group
    tab_a, tab_t, tab_c = st.tabs(["Attrition", "Per criterion", "CONSORT flow"])
    with tab_a:
        att = S.memo(ctx, ("sf:attrition", g), lambda: attrition(ctx.current, g))
        table = R.attrition_table(rel, att, g)
        table["criterion"] = table["criterion"].map(label)
        st.markdown(f"Screened: **{rel.text('status', 'cur', g, 'screened')}** → eligible + pending: "
                    f"**{rel.text('status', 'cur', g, 'remaining')}**")
        st.dataframe(table[["criterion", "block", "excluded", "remaining"]], hide_index=True,
                     key="sup_attrition", column_config={"criterion": "Criterion", "block": "Block",
                                                         "excluded": "Excluded here (n)",
                                                         "remaining": "Remaining (n)"})
        st.caption("Each criterion removes the patients for whom it is the first failing criterion. The "
                   "running remainder is shown only while every step before it is shown.")
        _csv(st, "Download attrition (CSV, suppressed)", table, f"attrition_{g}_suppressed.csv", "sup_dl_attrition")
    with tab_t:
        raw = S.memo(ctx, ("sf:crit", g), lambda: criterion_table(ctx.current, g))
        shown = criterion_display(raw, g, sort="catalog")
        shown["block"] = shown["id"].map(dict(zip(raw["id"], raw["block"], strict=True)))
        cause_of = ctx.current.catalog.cause_of
        table = R.criterion_table(rel, shown, g, cause_of=cause_of)
        cols = [c for c in ["label", "applicable", "all_reasons", "all_reasons_pct", "first_reason",
                            "first_reason_pct", "sole_reason", "sole_reason_pct", "unknown", "unknown_pct"]
                if c in table.columns]
        st.dataframe(table[cols], hide_index=True, key="sup_criteria", column_config={
            "label": "Criterion", "applicable": "Applies (n)", "all_reasons": "All (n)", "all_reasons_pct": "All %",
            "first_reason": "First (n)", "first_reason_pct": "First %", "sole_reason": "Sole (n)",
            "sole_reason_pct": "Sole %", "unknown": "Unknown (n)", "unknown_pct": "Unknown %"})
        _csv(st, "Download this table (CSV, suppressed)", table[cols], f"criteria_{g}_suppressed.csv",
             "sup_dl_criteria")
    with tab_c:
        flow = R.consort_counts(rel).reset_index()
        flow = flow[flow["group"].isin(_groups(ctx, rel))]
        flow["group"] = flow["group"].map(_name)
        st.dataframe(flow, hide_index=True, key="sup_consort", column_config={
            "group": "Disease", "assessed": "Assessed (n)", "excluded": "Excluded (n)", "eligible": "Eligible (n)",
            "pending": "Pending (n)", **{r: f"{r} (n)" for r in REASON_GROUPS}})
        st.caption("CONSORT flow: assessed = excluded + eligible + pending; excluded = the sum of the "
                   "reason groups (each patient's first failing criterion).")
        _csv(st, "Download the flow (CSV, suppressed)", flow, "consort_suppressed.csv", "sup_dl_consort")


def what_if(ctx: S.Context) -> None:
    """The deltas of the active scenario (the page draws its controls after this)."""
    rel = release(ctx)
    _header(ctx, "What-if: protocol amendments", rel)
    groups = _groups(ctx, rel)
    cols = st.columns(len(groups))
    for col, g in zip(cols, groups, strict=True):
        _metric(col, {"All": "All", "other": "Other", "missing": "No dx"}.get(g, g), rel, g, "eligible",
                not ctx.is_baseline)
    table = R.delta_table(rel, groups)
    table["group"] = table["group"].map(_name)
    st.dataframe(table, hide_index=True, key="sup_delta_table", column_config={
        "group": "Disease", "screened": "Screened (n)", "eligible_before": "Eligible, protocol (n)",
        "eligible_after": "Eligible, scenario (n)", "gained": "Gained (n)", "lost": "Lost (n)",
        "net": "Net change (n)", "pending_before": "Pending, protocol (n)", "pending_after": "Pending, scenario (n)",
        "changed": "Any status change (n)"})
    _csv(st, "Download the changes (CSV, suppressed)", table, "whatif_suppressed.csv", "sup_dl_whatif")
    st.caption("The threshold sweep, the patients who change and the comparison of two scenarios are left "
               "out while suppression is on.")


def dose_pool(ctx: S.Context) -> None:
    """The eligible pool per disease for dose planning, from the suppressed release."""
    rel = release(ctx)
    st.info(legend(rel.k), icon=":material/shield:")
    rows = [{"group": _name(g), "eligible": rel.text("status", "cur", g, "eligible"),
             "pending": rel.text("status", "cur", g, "pending"),
             "remaining": rel.text("status", "cur", g, "remaining")} for g in _groups(ctx, rel)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="sup_dose_pool", column_config={
        "group": "Disease", "eligible": "Eligible (n)", "pending": "Pending (n)",
        "remaining": "Eligible + pending (n)"})


def dose_step(ctx: S.Context, step: pd.DataFrame) -> pd.DataFrame:
    """Patients per dose level (eligible placed, pending behind them) with a total row, suppressed
    together with the release: the total is the scope's eligible (pending) count when every
    such patient has a row, so the levels and the release's counts are one set of relations."""
    rel = release(ctx)
    g = ctx.group
    frame = step.set_index("dose_level")[["eligible", "pending"]].astype("int64")
    frame.loc[TOTAL] = frame.sum()
    links = [total_of(("status", "cur", g, s), [(TOTAL, s)]) for s in ("eligible", "pending")
             if rel.sup.values.get(("status", "cur", g, s)) == int(frame.at[TOTAL, s])]
    shown, _ = display_table(frame, ["eligible", "pending"], rel.k,
                             total_row=(TOTAL, [r for r in frame.index if r != TOTAL]),
                             relations=links, fixed=rel.sup)
    shown = shown.reset_index()
    st.dataframe(shown, hide_index=True, key="sup_dose_step", column_config={
        "dose_level": "Dose level", "eligible": "Eligible (patients)", "pending": "Pending (patients)"})
    st.caption("Eligible patients in screening-date order fill the cohorts of the expected path; pending "
               "patients would take the slots left. Suppressed counts; patient lists are left out.")
    return shown
