"""Patients: a filterable, paged results table, a per-patient explanation and near misses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages._access import download_button
from app_pages._omop_import import provenance_panel
from app_pages._shared import cohort_label, guard, results
from eligibility import export
from eligibility.assessment import blank_rows_input_order
from eligibility.explain import explain_patient, explanation_view, to_settle
from eligibility.fields import DISEASE_NAMES
from eligibility.figures.patients import (
    OUTCOME_STYLE,
    near_miss_by_cause,
    patient_outcomes,
)
from eligibility.labels import label, labels
from eligibility.textsafe import markdown_literal as lit

PAGE_SIZES = (100, 500, 1_000)  # rows sent to the browser at once; never the whole cohort
STATUS_ICONS = {"eligible": "✓ eligible", "pending": "◐ pending", "ineligible": "✗ ineligible"}
EMPTY = "(empty)"


def patient_rows(ctx: S.Context) -> pd.DataFrame:
    """The results of every patient (blank file rows are not patients and are left out;
    the index stays the input row)."""
    res = results(ctx)
    blank = S.memo(ctx, ("pt:blank",), lambda: blank_rows_input_order(ctx.current))
    return res[~blank] if blank.any() else res


def _contains(col: pd.Series, text: str) -> np.ndarray:
    return col.astype("string").str.contains(text.strip(), case=False, regex=False).fillna(False).to_numpy(bool)


def filters(ctx: S.Context, res: pd.DataFrame) -> pd.DataFrame:
    """The filter controls; returns the matching rows (input order, index = input row)."""
    order = {u.id: i for i, u in enumerate(ctx.current.catalog.units)}
    disease = res["disease"].astype("string").fillna(EMPTY)
    options = sorted(disease.unique().tolist(), key=lambda d: (d not in DISEASE_NAMES, d))
    reasons = sorted((r for r in res["first_reason"].unique() if r), key=lambda r: order.get(r, 10**6))
    # The filters survive a visit to another page; remembered choices that this cohort or
    # scenario no longer offers are dropped.
    S.remember(pt_status=list(STATUS_ICONS), pt_disease=[], pt_first=[], pt_failed="", pt_unknown="",
               pt_search="")
    for key, offered in (("pt_disease", options), ("pt_first", reasons)):
        st.session_state[key] = [v for v in st.session_state[key] if v in offered]
    c1, c2, c3 = st.columns(3)
    statuses = c1.multiselect("Status", list(STATUS_ICONS), key="pt_status", on_change=S.keep("pt_status"),
                              format_func=lambda s: STATUS_ICONS.get(s, s))
    if ctx.disease is None:
        diseases = c2.multiselect("Disease", options, key="pt_disease", on_change=S.keep("pt_disease"),
                                  placeholder="All diseases")
    else:
        c2.text_input("Disease", f"{ctx.disease} (sidebar filter)", disabled=True, key="pt_disease_fixed")
        diseases = [ctx.disease]
    first = c3.multiselect("First reason", reasons, key="pt_first", on_change=S.keep("pt_first"),
                           placeholder="Any", format_func=label)
    c4, c5, c6 = st.columns(3)
    failed = c4.text_input("Failed criteria contain", key="pt_failed", on_change=S.keep("pt_failed"),
                           placeholder="e.g. EXC-2 or INC-3.alt")
    unknown = c5.text_input("Unknown criteria contain", key="pt_unknown", on_change=S.keep("pt_unknown"),
                            placeholder="e.g. SSC-INC-4")
    pid = c6.text_input("Patient ID contains", key="pt_search", on_change=S.keep("pt_search"),
                        placeholder="e.g. 000123")

    mask = np.array(res["status"].isin(statuses).to_numpy(bool), copy=True)  # writable (copy-on-write)
    if diseases:
        mask &= disease.isin(diseases).to_numpy(bool)
    if first:
        mask &= res["first_reason"].isin(first).to_numpy(bool)
    if failed.strip():
        mask &= _contains(res["failed"], failed)
    if unknown.strip():
        mask &= _contains(res["unknown"], unknown)
    if pid.strip():
        mask &= _contains(res["patient_id"], pid)
    return res[mask]


def _remember_selection() -> None:
    """Table row picked → that patient goes into the explanation box."""
    state = st.session_state.get("pt_table")
    rows = state["selection"]["rows"] if state else []
    ids = st.session_state.get("_pt_page_ids", [])
    if rows and rows[0] < len(ids) and ids[rows[0]] is not None:
        st.session_state["pt_explain_id"] = ids[rows[0]]


def table(ctx: S.Context, shown: pd.DataFrame, total: int) -> None:
    n = len(shown)
    top = st.columns([3, 1, 1], vertical_alignment="bottom")
    by_status = shown["status"].value_counts()
    top[0].markdown(f"**{n:,}** of {total:,} patients match · "
                    + " · ".join(f"{STATUS_ICONS[s]} {int(by_status.get(s, 0)):,}" for s in STATUS_ICONS))
    size = top[1].selectbox("Rows per page", PAGE_SIZES, index=len(PAGE_SIZES) - 1, key="pt_page_size")
    pages = max(1, -(-n // size))
    if st.session_state.get("pt_page", 1) > pages:
        st.session_state["pt_page"] = pages
    download_button(top[2], "Export filtered (CSV)", data=lambda: export.to_csv_bytes(shown),
                           file_name="patients_filtered.csv", mime="text/csv", on_click="ignore",
                           icon=":material/download:", key="pt_dl_filtered",
                           help="All matching rows (not only this page), Excel-safe UTF-8 CSV.")
    page = st.pagination(pages, key="pt_page") if pages > 1 else 1
    start = (page - 1) * size
    view = shown.iloc[start:start + size].copy()
    st.session_state["_pt_page_ids"] = [None if pd.isna(x) else str(x) for x in view["patient_id"]]
    view.insert(0, "row", view.index + 1)
    partial = _partially_assessed(view)
    view["status"] = view["status"].map(STATUS_ICONS)
    view.loc[partial, "status"] = ["✓ eligible on assessed criteria ({} of {})".format(*a.split("/"))
                                   for a in view.loc[partial, "assessed"]]
    view["first_reason"] = view["first_reason"].map(label)
    view["failed"] = view["failed"].map(labels)
    view["unknown"] = view["unknown"].map(labels)
    st.caption(f"Rows {start + 1 if n else 0:,}–{min(start + size, n):,} of {n:,}; page {page} of {pages}. "
               "Select a row to explain it below. Row = 1-based data row in the file.")
    st.dataframe(
        view.drop(columns=["not_assessed"]), hide_index=True, key="pt_table",
        on_select=_remember_selection, selection_mode="single-row",
        column_config={
            "row": st.column_config.NumberColumn("Row", format="%d"),
            "patient_id": "Patient ID", "disease": "Disease", "status": "Status",
            "first_reason": st.column_config.TextColumn("First reason", width="medium", help=(
                "First failing criterion in attrition order (DX, INC, EXC, disease block)")),
            "failed": st.column_config.TextColumn("All failing", help="Every failing criterion / part"),
            "unknown": st.column_config.TextColumn("Unknown", help="Parts that cannot be decided (missing values)"),
            "assessed": st.column_config.TextColumn("Assessed", help="k/n: applicable criteria assessed of "
                                                    "applicable (the others lack a column in this file)"),
        },
    )
    if ctx.current.not_assessed:
        st.caption("Not assessed for this file (same for every patient): "
                   + ", ".join(label(u) for u in ctx.current.not_assessed))


def _partially_assessed(view: pd.DataFrame) -> pd.Series:
    """Eligible rows with applicable criteria not assessed (assessed k/n with k < n)."""
    if "assessed" not in view or view.empty:
        return pd.Series(False, index=view.index)
    kn = view["assessed"].astype("string").str.split("/", expand=True)
    return (view["status"] == "eligible") & (kn[0].astype(int) < kn[1].astype(int))


def _style_outcomes(df: pd.DataFrame, outcomes: pd.Series):
    """Tint each row by its outcome (the Outcome column also says it in words and an icon)."""
    tints = {o: c + "22" for o, (c, _, _) in OUTCOME_STYLE.items()}
    raw = outcomes.to_numpy()

    def row_style(row):
        return [f"background-color: {tints.get(raw[row.name], '')}"] * len(row)

    return df.style.apply(row_style, axis=1)


def _patient_id_input() -> str | None:
    """The heading and the patient ID box of the explanation (None until one is given)."""
    st.subheader("Explain one patient")
    pid = st.text_input("Patient ID", key="pt_explain_id",
                        placeholder="Select a row in the table above, or type an exact patient ID")
    if not pid.strip():
        st.info("Pick a patient: select a row in the table or type a patient ID.", icon=":material/touch_app:")
        return None
    return pid


def explanation(ctx: S.Context, res: pd.DataFrame) -> None:
    pid = _patient_id_input()
    if pid is None:
        return
    ids = res["patient_id"].astype("string")
    hit = np.flatnonzero((ids == pid.strip()).fillna(False).to_numpy(bool))
    if not len(hit):
        hit = np.flatnonzero((ids.str.strip().str.lower() == pid.strip().lower()).fillna(False).to_numpy(bool))
    if not len(hit):
        st.warning(f"No patient with ID “{lit(pid.strip())}” in this cohort.", icon=":material/search_off:")
        return
    row = int(res.index[hit[0]])  # the input row (blank rows are not in `res`)
    rec = res.loc[row]
    expl = explain_patient(ctx.data.evaluator, row, ctx.scenario, ev=ctx.current)
    show_explanation(ctx, pid, row, rec, expl)


def explanation_aggregate(ctx: S.Context) -> None:
    """Aggregate mode: the patient's results row and typed values are fetched from the database
    (one row), and the criteria are explained from those values alone."""
    pid = _patient_id_input()
    if pid is None:
        return
    found = S.last_page("explain", (ctx.data.key, ctx.scenario.key, pid.strip()),
                        lambda: ctx.view.explain(pid))
    if found is None:
        st.warning(f"No patient with ID “{lit(pid.strip())}” in this cohort.", icon=":material/search_off:")
        return
    rec, expl = found
    show_explanation(ctx, pid, int(rec["row"]) - 1, rec, expl)


def show_explanation(ctx: S.Context, pid: str, row: int, rec, expl: pd.DataFrame) -> None:
    """The explanation of one patient (`row`: 0-based input row; `rec`: their results row)."""
    c1, c2 = st.columns([2, 3])
    with c1:
        disease = EMPTY if pd.isna(rec["disease"]) else rec["disease"]
        st.markdown(f"{lit(pid.strip())} · row {row + 1} · disease {lit(disease)}")
        st.markdown(f"Status: **{STATUS_ICONS.get(rec['status'], rec['status'])}**"
                    + (f" · first reason **{label(rec['first_reason'])}**" if rec["first_reason"] else ""))
        if rec["failed"]:
            st.markdown("Failing: " + labels(rec["failed"]))
        if rec["unknown"]:
            st.markdown("Undecided: " + labels(rec["unknown"]))
        if rec["status"] == "pending":
            settle = to_settle(expl)
            if settle:
                st.markdown("**To settle this patient:**\n" + "\n".join(f"- {S.md_escape(x)}" for x in settle))
    with c2:
        st.plotly_chart(patient_outcomes(expl, title="This patient's criteria by outcome"),
                        key="pt_outcome_chart", config={"displaylogo": False})
    only = st.toggle("Only failing and unknown criteria", value=False, key="pt_only_problems")
    view, outcomes = explanation_view(expl, only_problems=only)
    st.dataframe(_style_outcomes(view, outcomes), hide_index=True, key="pt_explain_table",
                 column_config={
                     "Criterion": st.column_config.TextColumn(width=230),
                     "Outcome": st.column_config.TextColumn(width=130),
                     "Value − threshold": st.column_config.TextColumn(width=110, help=(
                         "How far the value is from the threshold, in the field's unit "
                         "(for a failing limit: the distance to passing).")),
                     "Patient value": st.column_config.TextColumn(width=110),
                     "Threshold": st.column_config.TextColumn(width=100),
                     "Condition tested": st.column_config.TextColumn(width="large"),
                     "Holds": st.column_config.TextColumn(width=70, help="Does the condition hold (yes/no/unknown)"),
                     "Note": st.column_config.TextColumn(width="medium"),
                 })
    st.caption("Outcome per criterion (✓ passes, ✗ fails, ? unknown, – not assessed). An exclusion criterion "
               "fails when its condition holds. A condition with an empty value is unknown; so is one with "
               "an implausible value (value to verify). An empty `days since` cell means the event never "
               "happened.")
    provenance_panel(ctx, str(rec["patient_id"]))


def near_miss_panel(ctx: S.Context) -> None:
    st.markdown("Ineligible patients whose **only** failing cause is a numeric limit they miss narrowly: "
                "the cheapest candidates for a re-test or an amendment.")
    pct = st.slider("Missed by at most (% of the threshold)", 1, 50, 10, key="pt_near_pct", format="%d%%")
    # Aggregate mode: only the candidates' rows (sole failing cause a numeric limit) are read.
    near = ctx.view.near_misses(pct / 100.0, ctx.disease)
    if near.empty:
        st.info(f"No near misses within {pct}% of a threshold"
                + ("" if ctx.disease is None else f" for {ctx.disease}") + ".", icon=":material/info:")
        return
    st.caption(f"{len(near):,} patients within {pct}% of one limit"
               + ("" if ctx.disease is None else f" ({ctx.disease})") + ".")
    st.plotly_chart(near_miss_by_cause(near, title="Near misses by limit"), key="pt_near_chart",
                    config={"displaylogo": False})
    view = near.head(1_000).assign(cause=lambda d: d["cause"].map(label))
    st.dataframe(
        view, hide_index=True, key="pt_near_table",
        column_config={
            "row": st.column_config.NumberColumn("Row", format="%d"), "patient_id": "Patient ID",
            "disease": "Disease", "cause": "Failing limit", "field": "Column", "unit": "Unit",
            "value": st.column_config.NumberColumn("Value", format="%.4g"),
            "threshold": st.column_config.NumberColumn("Threshold", format="%.4g"),
            "distance": st.column_config.NumberColumn("Value − threshold", format="%+.4g"),
            "relative": st.column_config.NumberColumn("Missed by (% of threshold)", format="percent"),
        },
    )
    if len(near) > len(view):
        st.caption(f"Showing the {len(view):,} closest; the export holds all {len(near):,}.")
    download_button(st, "Export near misses (CSV)", data=lambda: export.to_csv_bytes(near),
                       file_name="near_misses.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:", key="pt_dl_near")


AGG_PAGE_SIZES = (50, 100, 500)  # aggregate mode: each page is one query to the database
ANY = "any"


def paged_table(ctx: S.Context) -> None:
    """Aggregate mode: the filters answered in the database (status, disease, first reason, text in
    the failing / unknown criteria and the patient ID), the matching count, one page at a time."""
    view = ctx.view
    c1, c2, c3 = st.columns(3)
    status = c1.selectbox("Status", [ANY, *STATUS_ICONS], key="pt_db_status",
                          format_func=lambda s: "Any status" if s == ANY else STATUS_ICONS[s])
    if ctx.disease is None:
        groups = [g for g in view.status_counts().index if g != "All"]
        disease = c2.selectbox("Disease", [ANY, *groups], key="pt_db_disease",
                               format_func=lambda d: "All diseases" if d == ANY else d)
    else:
        c2.text_input("Disease", f"{ctx.disease} (sidebar filter)", disabled=True, key="pt_disease_fixed")
        disease = ctx.disease
    first = c3.selectbox("First reason", [ANY, *view.unit_ids], key="pt_db_first",
                         format_func=lambda u: "Any" if u == ANY else label(u))
    c4, c5, c6 = st.columns(3)
    contains = {
        "failed": c4.text_input("Failed criteria contain", key="pt_db_failed", placeholder="e.g. EXC-2 or INC-3.alt"),
        "unknown": c5.text_input("Unknown criteria contain", key="pt_db_unknown", placeholder="e.g. SSC-INC-4"),
        "patient_id": c6.text_input("Patient ID contains", key="pt_db_search", placeholder="e.g. 000123"),
    }
    filt: dict = {"status": None if status == ANY else status, "group": None if disease == ANY else disease,
                  "first": None if first == ANY else first,
                  "contains": {k: v.strip() for k, v in contains.items() if v.strip()}}
    n = view.count_patients(**filt)
    top = st.columns([3, 1, 1], vertical_alignment="bottom")
    top[0].markdown(f"**{n:,}** patients match (counted in the database)")
    size = top[1].selectbox("Rows per page", AGG_PAGE_SIZES, index=1, key="pt_db_page_size")
    pages = max(1, -(-n // size))
    if st.session_state.get("pt_db_page", 1) > pages:
        st.session_state["pt_db_page"] = pages
    page = st.pagination(pages, key="pt_db_page") if pages > 1 else 1
    start = (page - 1) * size
    filt_key = (filt["status"], filt["group"], filt["first"], tuple(sorted(filt["contains"].items())))
    view_page = S.last_page("patients", (ctx.data.key, view.scenario.key, filt_key, start, size),
                            lambda: view.patients(offset=start, limit=size, **filt))
    download_button(top[2], "Export this page (CSV)", data=lambda: export.to_csv_bytes(view_page),
                    file_name=f"patients_page{page}.csv", mime="text/csv", on_click="ignore",
                    icon=":material/download:", key="pt_dl_filtered",
                    help="The rows of this page, Excel-safe UTF-8 CSV (the batch command writes all of them).")
    st.session_state["_pt_page_ids"] = [None if pd.isna(x) else str(x) for x in view_page["patient_id"]]
    shown = view_page.assign(status=view_page["status"].map(STATUS_ICONS),
                             first_reason=view_page["first_reason"].map(label),
                             failed=view_page["failed"].map(labels), unknown=view_page["unknown"].map(labels))
    st.caption(f"Rows {start + 1 if n else 0:,}–{start + len(shown):,} of {n:,}; page {page} of {pages}. "
               "Select a row to explain it below. Row = 1-based data row in the file.")
    st.dataframe(shown, hide_index=True, key="pt_table", on_select=_remember_selection,
                 selection_mode="single-row", column_config={
        "row": st.column_config.NumberColumn("Row", format="%d"),
        "patient_id": "Patient ID", "disease": "Disease", "status": "Status",
        "first_reason": st.column_config.TextColumn("First reason", width="medium"),
        "failed": st.column_config.TextColumn("All failing", help="Every failing criterion / part"),
        "unknown": st.column_config.TextColumn("Unknown", help="Parts that cannot be decided (missing values)"),
    })
    if view.not_assessed:
        st.caption("Not assessed for this file (same for every patient): "
                   + ", ".join(label(u) for u in view.not_assessed))


ctx = S.context()
st.title("Patients")
scope = "all diseases" if ctx.disease is None else f"{ctx.disease} ({DISEASE_NAMES[ctx.disease]})"
st.caption(f"Cohort: **{lit(cohort_label(ctx))}** · {ctx.view.n_patients:,} patients · {S.scenario_label(ctx)} · "
           f"{scope}")
S.status_notes(ctx)

tab_list, tab_near = st.tabs(["Patient list", "Near misses"])
if ctx.aggregate_only:
    with tab_list:
        with guard("the patient table"):
            paged_table(ctx)
        with guard("the explanation of this patient"):
            explanation_aggregate(ctx)
    with tab_near, guard("the near misses"):
        near_miss_panel(ctx)
    st.stop()
with tab_list:
    res = None
    with guard("the patient table"):
        res = patient_rows(ctx)
        shown = filters(ctx, res)
        table(ctx, shown, len(res) if ctx.disease is None else int((res["disease"] == ctx.disease).sum()))
    if res is not None:
        with guard("the explanation of this patient"):
            explanation(ctx, res)
with tab_near, guard("the near misses"):
    near_miss_panel(ctx)
