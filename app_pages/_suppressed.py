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
from eligibility import demographics as D
from eligibility import export
from eligibility.access import joint as J
from eligibility.access import release as R
from eligibility.access.report import legend as report_legend
from eligibility.access.report import suppressed_report
from eligibility.access.suppression import (
    HIDDEN_TEXT,
    SMALL,
    WITHHELD,
    WITHHELD_TEXT,
    suppress,
    total_of,
)
from eligibility.access.tables import display_table
from eligibility.assessment import not_assessed_table
from eligibility.attribution import ALL, attrition, combinations, criterion_table
from eligibility.fields import DISEASE_NAMES, FIELD_BY_NAME
from eligibility.figures import consort as C
from eligibility.figures import released as RF
from eligibility.figures.consort import REASON_GROUPS
from eligibility.figures.failures import criterion_display, upset_data, upset_figure
from eligibility.figures.overview import STATUS_COLORS, STATUS_PATTERNS, STATUS_TITLES
from eligibility.labels import label
from eligibility.textsafe import markdown_literal

TOTAL = "all levels"
NAMES = {ALL: "All diseases", "other": "Other diagnosis (not an indication)", "missing": "Diagnosis missing"}


def release(ctx: S.Context) -> R.Release:
    """The suppressed counts of this cohort under the protocol and the active scenario."""
    return R.build(ctx.base, ctx.current, A.min_cell())


legend = report_legend


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
               delta_color="off", delta_arrow="off" if delta in (None, "0", HIDDEN_TEXT, WITHHELD_TEXT) else "auto",
               delta_description="vs protocol" if compare else None)


def overview(ctx: S.Context) -> None:
    rel = release(ctx)
    _header(ctx, "Screening overview", rel)
    g = ctx.group
    compare = not ctx.is_baseline
    cols = st.columns([1, 1, 1, 1, 1, 1.45])
    for col, (title, s) in zip(cols, [("Screened", "screened"), ("Eligible", "eligible"), ("Pending", "pending"),
                                      ("Ineligible", "ineligible"), ("Eligible + pending", "remaining")],
                               strict=False):
        _metric(col, title, rel, g, s, compare and s != "screened")
    # Metric values are markdown: "*–*" would be an italic dash, so the asterisks are escaped.
    lo, hi = (rel.text("status", "cur", g, s).replace("*", "\\*") for s in ("eligible", "remaining"))
    cols[5].metric("Eligible range", f"{lo}–{hi}",
                   delta=(f"{rel.change('base', 'cur', g, 'eligible')} / {rel.change('base', 'cur', g, 'remaining')}"
                          .replace("*", "\\*") if compare else None), border=True, delta_color="off", delta_arrow="off",
                   help="From the eligible count to eligible + pending (suppressed counts).")
    st.plotly_chart(status_figure(ctx, rel), key="sup_status_chart", config={"displaylogo": False})
    table = status_table(ctx, rel)
    st.dataframe(table, hide_index=True, key="sup_status_table", column_config={
        "group": "Disease", "screened": "Screened (n)", "eligible": "Eligible (n)", "pending": "Pending (n)",
        "ineligible": "Ineligible (n)", "remaining": "Eligible + pending (n)", "eligible_pct": "Eligible %",
        "pending_pct": "Pending %", "ineligible_pct": "Ineligible %"})
    _csv(st, "Download this table (CSV, suppressed)", table, f"status_{g}_suppressed.csv", "sup_dl_status")
    st.subheader("Data quality")
    tab_missing, tab_na = st.tabs(["Missing data", "Not assessed"])
    with tab_missing, S.guard("the missing-data summary"):
        missing = missing_table(ctx, rel)
        _missing_view(missing)
    with tab_na, S.guard("the list of criteria not assessed"):
        _not_assessed(ctx)
    st.caption("The validation report lists rows, patient IDs and values: it is left out while suppression is on.")
    st.subheader("Demographics of the pool")
    with S.guard("the demographics"):
        demo = demographics_table(ctx, rel)
        _demographics_view(ctx, demo)
    st.subheader("Report and downloads")
    with S.guard("the screening report"):
        sections = [("Screening status by disease", table), ("Empty cells per column", missing),
                    ("Demographics of the pool", demo),
                    ("CONSORT flow", _flow_table(ctx, rel)),
                    ("Attrition by first failing criterion", _attrition(ctx, rel))]
        if compare:
            sections.append(("Change against the protocol", _delta_named(ctx, rel)))
        A.download_button(st, "Download the screening report (HTML, suppressed)",
                          lambda: suppressed_report(f"Screening report — {S.scope_text(ctx)}", S.download_meta(ctx),
                                                    rel.k, sections),
                          file_name=f"screening_report_{g}_suppressed.html", mime="text/html", on_click="ignore",
                          icon=":material/summarize:", key="sup_dl_report_html", type="primary")
    st.caption("Patient-level results (one row per patient) are left out while suppression is on.")


def missing_table(ctx: S.Context, rel: R.Release) -> pd.DataFrame:
    """Empty cells per contract column, suppressed with the release (a count of 1 to k−1 is
    "<k"); the % only where the count and the patients it is of are both shown."""
    miss = ctx.data.missingness(ctx.disease).reset_index(drop=True)
    frame = miss.set_index("field")[["missing"]]
    shown, sup = S.memo(ctx, ("sup:missing", ctx.disease, rel.k),
                        lambda: display_table(frame, ["missing"], rel.k, fixed=rel.sup))
    out = miss[["field", "label", "block", "present"]].copy()
    out["missing"] = list(shown["missing"])
    pct = []
    for r in miss.itertuples(index=False):
        den = ("status", "base", ctx.group if r.block == "common" else r.block, "screened")
        ok = sup.shown((r.field, "missing")) and den in rel.sup and rel.sup.shown(den)
        pct.append(f"{r.missing_pct:.1f}%" if ok else HIDDEN_TEXT)
    out["missing_pct"] = pct
    return out


def _missing_view(missing: pd.DataFrame) -> None:
    meaningful = missing[~missing["field"].str.startswith(("days_since_", "years_since_"))
                         & ~missing["field"].map(lambda f: FIELD_BY_NAME[f].optional)]
    top = meaningful.assign(h=meaningful["missing"].map(RF.height)).sort_values(
        ["h", "field"], ascending=[False, True], kind="stable").head(15)
    st.plotly_chart(RF.bars(top["field"], top["missing"], title="Columns with the most empty cells (suppressed)",
                            x_title="empty cells (n)"), key="sup_missing_chart", config={"displaylogo": False})
    st.dataframe(missing, hide_index=True, key="sup_missing_table", column_config={
        "field": "Column", "label": "Field (unit)", "block": "Block",
        "present": st.column_config.CheckboxColumn("In file"), "missing": "Empty cells (n)",
        "missing_pct": "Empty cells (%)"})


def _not_assessed(ctx: S.Context) -> None:
    table = S.memo(ctx, ("na:table",), lambda: not_assessed_table(ctx.current))
    if table.empty:
        st.success("Every criterion can be assessed with the columns in this file.", icon=":material/check_circle:")
        return
    st.warning(f"{len(table)} criterion part(s) are **not assessed** for this cohort: they neither fail nor make "
               "anyone pending.", icon=":material/visibility_off:")
    st.dataframe(table, hide_index=True, key="sup_not_assessed",
                 column_config={"criterion": "Criterion", "name": "Short name", "text": "Protocol text",
                                "absent_columns": "Absent column(s)"})


DEMO_COLUMNS = [*D.SEXES, *D.AGE_BANDS]


def demographics_table(ctx: S.Context, rel: R.Release) -> pd.DataFrame:
    """Sex and age-band counts of the screened, eligible and pending patients, suppressed
    with the release: each population's sexes and its age bands add up to its count (the
    release's status count), and every disease adds up to All. Median age (IQR) only for a
    population whose count is not small or withheld; % female only from shown counts."""
    ev = ctx.current
    groups = D.scope_groups(ev, ctx.disease)
    pool = S.memo(ctx, ("demo:pool", ctx.disease), lambda: D.pool(ev, groups))
    values: dict = {}
    rels = []
    for _, r in pool.iterrows():
        g, pop = r["group"], r["population"]
        keys = {c: ("demo", g, pop, c) for c in DEMO_COLUMNS}
        values.update({keys[c]: int(r[c]) for c in DEMO_COLUMNS})
        n_key = ("status", "cur", g, pop)
        rels.append(total_of(n_key, [keys[c] for c in D.SEXES]))
        rels.append(total_of(n_key, [keys[c] for c in D.AGE_BANDS]))
    parts = [g for g in groups if g != ALL]
    if ALL in groups and parts:
        for pop in D.POPULATIONS:
            for c in DEMO_COLUMNS:
                rels.append(total_of(("demo", ALL, pop, c), [("demo", g, pop, c) for g in parts]))
    sup = S.memo(ctx, ("sup:demo", ctx.disease, rel.k), lambda: suppress(values, rels, rel.k, fixed=rel.sup))
    rows = []
    for _, r in pool.iterrows():
        g, pop = r["group"], r["population"]
        n_key = ("status", "cur", g, pop)
        state = rel.sup.hidden.get(n_key)
        row = {"Group": _name(g), "Population": pop, "Patients": rel.sup.text(n_key),
               "Median age (IQR)": (D._age_text(r) if state not in (SMALL, WITHHELD) else "–")}
        f, m = ("demo", g, pop, "F"), ("demo", g, pop, "M")
        row["Female %"] = sup.derived([f, m], lambda a, b: 100.0 * a / (a + b) if a + b else float("nan"), "{:.1f}%")
        row.update({c: sup.text(("demo", g, pop, c)) for c in DEMO_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def _demographics_view(ctx: S.Context, demo: pd.DataFrame) -> None:
    mine = demo[demo["Group"] == _name(ctx.group)]
    series = {pop: list(mine[mine["Population"] == pop][list(D.AGE_BANDS)].iloc[0])
              for pop in D.POPULATIONS if (mine["Population"] == pop).any()}
    st.plotly_chart(RF.grouped(list(D.AGE_BANDS), series, title=f"Age of the pool — {S.scope_text(ctx)} (suppressed)"),
                    key="sup_demo_chart", config={"displaylogo": False})
    st.dataframe(demo, hide_index=True, key="sup_demo_table")


def _flow_table(ctx: S.Context, rel: R.Release) -> pd.DataFrame:
    flow = R.consort_counts(rel).reset_index()
    flow = flow[flow["group"].isin(_groups(ctx, rel))].copy()
    flow["group"] = flow["group"].map(_name)
    return flow


def _attrition(ctx: S.Context, rel: R.Release) -> pd.DataFrame:
    g = ctx.group
    att = S.memo(ctx, ("sf:attrition", g), lambda: attrition(ctx.current, g))
    table = R.attrition_table(rel, att, g)
    table["criterion"] = table["criterion"].map(label)
    return table[["criterion", "block", "excluded", "remaining"]]


def _delta_named(ctx: S.Context, rel: R.Release) -> pd.DataFrame:
    table = R.delta_table(rel, _groups(ctx, rel))
    table["group"] = table["group"].map(_name)
    return table


def screen_failures(ctx: S.Context) -> None:
    rel = release(ctx)
    _header(ctx, "Screen failures", rel)
    g = ctx.group
    tab_a, tab_t, tab_u, tab_c = st.tabs(["Attrition", "Per criterion", "Combinations", "CONSORT flow"])
    with tab_a, S.guard("the attrition chart"):
        table = _attrition(ctx, rel)
        screened, remaining = rel.text("status", "cur", g, "screened"), rel.text("status", "cur", g, "remaining")
        st.plotly_chart(RF.bars(["Screened", *table["criterion"], "Remaining (eligible + pending)"],
                                [screened, *table["excluded"], remaining],
                                title=f"Patients excluded by first failing criterion — {S.scope_text(ctx)} (suppressed)"),
                        key="sup_attrition_chart", config={"displaylogo": False})
        st.markdown(f"Screened: **{screened}** → eligible + pending: **{remaining}**")
        st.dataframe(table, hide_index=True, key="sup_attrition",
                     column_config={"criterion": "Criterion", "block": "Block", "excluded": "Excluded here (n)",
                                    "remaining": "Remaining (n)"})
        st.caption("Each criterion removes the patients for whom it is the first failing criterion; a hidden "
                   "count has an empty bar with its text, never its height. The running remainder is shown only "
                   "while every step before it is shown.")
        _csv(st, "Download attrition (CSV, suppressed)", table, f"attrition_{g}_suppressed.csv", "sup_dl_attrition")
    with tab_t, S.guard("the per-criterion table"):
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
    with tab_u, S.guard("the failure combinations"):
        _combinations(ctx, rel)
    with tab_c, S.guard("the CONSORT flow"):
        flow = _flow_table(ctx, rel)
        data = R.consort_counts(rel)
        data.insert(0, "label", [C.GROUP_LABELS.get(x, x) for x in data.index])
        plan, plan_text = S.dose_plan()
        dose = None
        if st.toggle(f"Add the dose-level step ({plan_text})", value=True, key="sf_dose_step"):
            levels = S.dose_levels(ctx, plan).rename(columns={"level": "dose_level", "n": "eligible"})
            step = dose_step_table(ctx, levels)
            dose = step[step["dose_level"] != TOTAL].rename(columns={"dose_level": "level", "eligible": "n"})
        lay = C.consort_layout(data, groups=None if ctx.disease is None else [ctx.disease], reasons=None,
                               dose_levels=dose, max_width=800)
        title = f"Screening flow — {S.scope_text(ctx)} (suppressed counts)"
        meta = S.download_meta(ctx) + " · " + legend(rel.k)
        fig = C.consort_figure(lay, title=title)
        st.plotly_chart(fig, key="sup_consort_chart", width="content", config={"displaylogo": False})
        st.dataframe(flow, hide_index=True, key="sup_consort", column_config={
            "group": "Disease", "assessed": "Assessed (n)", "excluded": "Excluded (n)", "eligible": "Eligible (n)",
            "pending": "Pending (n)", **{r: f"{r} (n)" for r in REASON_GROUPS}})
        st.caption("CONSORT flow: assessed = excluded + eligible + pending; excluded = the sum of the "
                   "reason groups (each patient's first failing criterion). Every box takes the released count.")
        c1, c2, c3 = st.columns(3)
        A.download_button(c1, "Download flow (HTML, suppressed)", lambda: C.consort_html(fig, meta),
                          file_name=f"consort_{g}_suppressed.html", mime="text/html", on_click="ignore",
                          icon=":material/download:", key="sup_dl_consort_html")
        A.download_button(c2, "Download flow (SVG, suppressed)", lambda: C.consort_svg(lay, title=title, meta=meta),
                          file_name=f"consort_{g}_suppressed.svg", mime="image/svg+xml", on_click="ignore",
                          icon=":material/download:", key="sup_dl_consort_svg")
        _csv(c3, "Download the flow (CSV, suppressed)", flow, "consort_suppressed.csv", "sup_dl_consort")


COMBOS_MAX = 30  # the combinations are suppressed once for the most the slider shows


def _combinations(ctx: S.Context, rel: R.Release) -> None:
    g = ctx.group
    top = st.slider("Combinations shown", 5, COMBOS_MAX, 15, key="sf_top",
                    help="The most common sets of failing criteria among ineligible patients.")
    combos = S.memo(ctx, ("sf:combos", g, COMBOS_MAX), lambda: combinations(ctx.current, g, top=COMBOS_MAX))
    texts, sup = S.memo(ctx, ("sup:combos", g, rel.k), lambda: J.combos(rel, combos, g))
    shown = combos.assign(text=texts, count=[RF.height(t) for t in texts])
    # Shown counts largest first, hidden ones after in a fixed order: the order of a hidden
    # count among shown ones would bound it.
    shown = shown.assign(_h=shown["count"], _l=[" + ".join(c) for c in shown["criteria"]])
    shown = shown.sort_values(["_h", "_l"], ascending=[False, True], kind="stable").head(top).drop(columns=["_h", "_l"])
    sets_total = pd.DataFrame({"criterion": [c for c in dict.fromkeys(x for cs in shown["criteria"] for x in cs)]})
    sets_total["failed"] = [RF.height(rel.text("crit_failed", "cur", g, c)) for c in sets_total["criterion"]]
    data, sets = upset_data(shown, sets_total)
    sets["text"] = [rel.text("crit_failed", "cur", g, c) for c in sets["criterion"]]
    sets = sets.assign(_l=sets["criterion"]).sort_values(["failed", "_l"], ascending=[False, True],
                                                         kind="stable").drop(columns="_l").reset_index(drop=True)
    st.plotly_chart(upset_figure(data, sets, title=f"Most common failure combinations — {S.scope_text(ctx)} (suppressed)"),
                    key="sup_upset", config={"displaylogo": False})
    st.caption("Top bars: ineligible patients whose failing criteria are exactly the dotted set; left bars: all "
               "patients failing each criterion. Hidden counts have empty bars with their text. Combinations "
               "with a shown count come first, largest first; hidden ones follow in a fixed order.")
    table = pd.DataFrame({"combination": data["label"], "patients": data["text"]})
    st.dataframe(table, hide_index=True, key="sup_combos_table",
                 column_config={"combination": "Failing criteria (exactly)", "patients": "Patients (n)"})
    _csv(st, "Download the combinations (CSV, suppressed)", table, f"combinations_{g}_suppressed.csv",
         "sup_dl_combos")


def what_if(ctx: S.Context) -> None:
    """The deltas of the active scenario (the page draws its controls after this)."""
    rel = release(ctx)
    _header(ctx, "What-if: protocol amendments", rel)
    groups = _groups(ctx, rel)
    cols = st.columns(len(groups))
    for col, g in zip(cols, groups, strict=True):
        _metric(col, {"All": "All", "other": "Other", "missing": "No dx"}.get(g, g), rel, g, "eligible",
                not ctx.is_baseline)
    table = _delta_named(ctx, rel)
    st.dataframe(table, hide_index=True, key="sup_delta_table", column_config={
        "group": "Disease", "screened": "Screened (n)", "eligible_before": "Eligible, protocol (n)",
        "eligible_after": "Eligible, scenario (n)", "gained": "Gained (n)", "lost": "Lost (n)",
        "net": "Net change (n)", "pending_before": "Pending, protocol (n)", "pending_after": "Pending, scenario (n)",
        "changed": "Any status change (n)"})
    _csv(st, "Download the changes (CSV, suppressed)", table, "whatif_suppressed.csv", "sup_dl_whatif")
    st.caption("A change of 1 to " f"{rel.k - 1} patients is shown as “+<{rel.k}” or “-<{rel.k}”: the counts "
               "before and after are then not both shown, so it cannot be worked out by subtraction.")


SWEEP_POINTS = 6  # points of a suppressed threshold sweep (the scenario's own value is added)


def sweep(ctx: S.Context, df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The threshold sweep with its counts suppressed together with the release (every change
    between two points, and between a point and the protocol, is a cell: see joint.sweep)."""
    rel = release(ctx)
    shown, _ = S.memo(ctx, ("sup:sweep", name, ctx.disease, tuple(df["value"]), rel.k),
                      lambda: J.sweep(rel, df, ctx.disease, float(df.attrs["current"])))
    return shown


def compare(ctx: S.Context, ev_b, name_a: str, name_b: str) -> None:
    """A and B side by side with every count, and every difference B − A and B − protocol,
    suppressed together with the release (joint.compare)."""
    rel = release(ctx)
    sup = J.compare(rel, ctx.base, ctx.current, ev_b)
    table = J.compare_table(rel, sup, _groups(ctx, rel))
    table["group"] = table["group"].map(_name)
    st.markdown(f"**A** = current scenario {markdown_literal(name_a)} · **B** = {markdown_literal(name_b)}")
    st.dataframe(table, hide_index=True, key="sup_cmp_table", column_config={
        "group": "Disease", "screened": "Screened", "eligible_protocol": "Eligible, protocol",
        "eligible_a": "Eligible, A", "eligible_b": "Eligible, B", "net_b_vs_a": "B − A", "gained_b_vs_a": "Gained in B",
        "lost_b_vs_a": "Lost in B", "pending_protocol": "Pending, protocol", "pending_a": "Pending, A",
        "pending_b": "Pending, B", "differ": "Status differs"})
    st.caption("Suppressed counts. The patients who differ are a patient-level list: left out while suppression "
               "is on.")
    _csv(st, "Download the comparison (CSV, suppressed)", table, "scenario_a_vs_b_suppressed.csv", "sup_dl_cmp")


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


def dose_step_table(ctx: S.Context, step: pd.DataFrame) -> pd.DataFrame:
    """Patients per dose level (eligible placed, pending behind them) with a total row, suppressed
    together with the release: the total is the scope's eligible (pending) count when every
    such patient has a row, so the levels and the release's counts are one set of relations."""
    rel = release(ctx)
    g = ctx.group
    frame = step.set_index("dose_level")[["eligible", "pending"]].astype("int64")
    frame.loc[TOTAL] = frame.sum()
    links = [total_of(("status", "cur", g, s), [(TOTAL, s)]) for s in ("eligible", "pending")
             if rel.sup.values.get(("status", "cur", g, s)) == int(frame.at[TOTAL, s])]
    shown, _ = S.memo(ctx, ("sup:dose_step", g, repr(frame.to_dict()), rel.k), lambda: display_table(
        frame, ["eligible", "pending"], rel.k, total_row=(TOTAL, [r for r in frame.index if r != TOTAL]),
        relations=links, fixed=rel.sup))
    return shown.reset_index()


def dose_step(ctx: S.Context, step: pd.DataFrame) -> pd.DataFrame:
    shown = dose_step_table(ctx, step)
    st.dataframe(shown, hide_index=True, key="sup_dose_step", column_config={
        "dose_level": "Dose level", "eligible": "Eligible (patients)", "pending": "Pending (patients)"})
    st.caption("Eligible patients in screening-date order fill the cohorts of the expected path; pending "
               "patients would take the slots left. Suppressed counts; patient lists are left out.")
    return shown


def released_fractions(ctx: S.Context, fractions: dict, pooled: str) -> dict:
    """Eligible fractions (eligible ÷ screened) only for groups whose two counts are shown."""
    rel = release(ctx)
    out = {}
    for g, f in fractions.items():
        keys = [("status", "cur", ALL if g == pooled else g, s) for s in ("eligible", "screened")]
        out[g] = f if all(k in rel.sup for k in keys) and rel.sup.shown(*keys) else None
    return out


def dose_pool_frame(ctx: S.Context, pool: pd.DataFrame, released: dict, pooled: str) -> pd.DataFrame:
    """The screening-need section's pool table with released counts and fractions."""
    rel = release(ctx)
    rows = []
    for r in pool.itertuples(index=False):
        g = ALL if r.group == pooled else r.group
        known = ("status", "cur", g, "screened") in rel.sup
        rows.append({"group": r.group, **{s: rel.text("status", "cur", g, s) if known else HIDDEN_TEXT
                                          for s in ("screened", "eligible", "pending")},
                     "eligible_fraction": released.get(r.group)})
    return pd.DataFrame(rows)


def dose_assignment(ctx: S.Context, counts: pd.DataFrame, doses: dict) -> None:
    """Eligible patients placed per dose level and disease, suppressed with the release: each
    level's total is the sum of its diseases, and a disease's levels (with those beyond
    capacity) add up to its eligible count."""
    rel = release(ctx)
    diseases = [c for c in counts.columns if c != "total"]
    frame = counts.astype("int64")
    frame.index = [str(i) for i in frame.index]
    links = []
    for d, col in [*((d, d) for d in diseases), (ctx.group, "total")]:
        key = ("status", "cur", d, "eligible")
        if rel.sup.values.get(key) == int(frame[col].sum()):
            links.append(total_of(key, [(row, col) for row in frame.index]))
    shown, _ = S.memo(ctx, ("sup:assign", repr(frame.to_dict()), rel.k), lambda: display_table(
        frame, [*diseases, "total"], rel.k, row_total=("total", diseases), relations=links, fixed=rel.sup))
    levels = [lv for lv in shown.index if lv in doses]
    st.plotly_chart(RF.grouped([f"{lv} ({doses[lv]:g})" for lv in levels],
                               {d: list(shown.loc[levels, d]) for d in diseases},
                               title="Eligible patients placed per dose level and disease (suppressed)"),
                    key="sup_dose_assign_chart", config={"displaylogo": False})
    st.dataframe(shown.reset_index(names="dose_level"), hide_index=True, key="sup_dose_assign_table")
