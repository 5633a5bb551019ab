"""Protocol: the criteria catalog with its rules in words, the parameters, the documented
readings of unclear protocol text, the cohort contract and what this cohort cannot assess.

Everything is readable without hovering (wrapped text), and a printable view is offered.
The text itself comes from the engine (eligibility.rule_text)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages._access import download_button
from app_pages._readings import readings_table
from app_pages._shared import cohort_label, guard, md_escape, memo
from app_pages._versions import versions_section
from eligibility.fields import DISEASE_NAMES, FIELDS
from eligibility.rule_text import (
    REF_TITLES,
    criteria_rows,
    decisions,
    protocol_html,
    readings,
    render_rule,
    value_text,
)
from eligibility.textsafe import markdown_literal as lit

BLOCK_TITLES = {"common": "Common (all diseases)", **{d: f"{d} — {n}" for d, n in DISEASE_NAMES.items()}}
MAX_READABLE = 120  # parts written out as text at once (the whole catalog has fewer)


def rows_for(ctx: S.Context) -> pd.DataFrame:
    ev = ctx.view
    return memo(ctx, ("pr:rows",), lambda: criteria_rows(ev.catalog, ctx.scenario.params, ctx.data.present,
                                                          ev.not_assessed, ev.disabled))


def catalog_view(ctx: S.Context) -> None:
    df = rows_for(ctx)
    blocks = ["common", *DISEASE_NAMES]
    default_blocks = blocks if ctx.disease is None else ["common", ctx.disease]
    c1, c2, c3 = st.columns([2, 1.3, 1], vertical_alignment="bottom")
    chosen = c1.multiselect("Blocks", blocks, default=default_blocks, key="pr_blocks",
                            format_func=lambda b: BLOCK_TITLES.get(b, b))
    search = c2.text_input("Search ID or text", key="pr_search", placeholder="e.g. ULN or EXC-8")
    view = c3.segmented_control("View", ["text", "table"], default="text", key="pr_view",
                                format_func=lambda v: {"text": "Readable", "table": "Table"}[v]) or "text"
    df = df[df["block"].isin(chosen)]
    if search.strip() and len(df):
        hit = df.astype("string").apply(lambda c: c.str.contains(search.strip(), case=False, regex=False))
        df = df[hit.any(axis=1).to_numpy(bool)]
    scenario_note = ("protocol defaults" if ctx.is_baseline
                     else "the active what-if scenario's values (protocol value in brackets where changed)")
    st.caption(f"{len(df)} criteria / parts in attrition order (DX, INC, EXC, then disease blocks). "
               f"Rules are shown with {scenario_note}. An inclusion criterion fails when its rule is "
               "false; an exclusion criterion fails (excludes) when its rule is true.")
    if view == "table":
        st.dataframe(
            df.drop(columns=["id"]), hide_index=True, key="pr_catalog", height=560,
            column_config={
                "label": st.column_config.TextColumn("Criterion", pinned=True, width="medium"),
                "kind": "Kind", "block": "Block",
                "text": st.column_config.TextColumn("Protocol text (this part)", width="large"),
                "rule": st.column_config.TextColumn("Rule (current values)", width="large"),
                "parameters": st.column_config.TextColumn("Parameters", width="medium"),
                "this_cohort": st.column_config.TextColumn("This cohort", width="medium"),
                "protocol_text": st.column_config.TextColumn("Whole criterion (parts only)", width="large"),
                "cause": st.column_config.TextColumn("Counted as one cause with"),
            },
        )
        return
    for block, sub in df.head(MAX_READABLE).groupby("block", sort=False):
        st.markdown(f"#### {BLOCK_TITLES.get(block, block)}")
        for r in sub.itertuples(index=False):
            with st.container(border=True, key=f"pr_c_{r.id}"):
                st.markdown(f"**{md_escape(r.label)}** · {r.kind} · {md_escape(r.this_cohort)}")
                st.markdown(md_escape(r.text))
                st.markdown("Rule: " + md_escape(r.rule))
                if r.parameters:
                    st.caption("Parameters: " + md_escape(r.parameters))
                if r.protocol_text:
                    st.caption("Whole criterion: " + md_escape(r.protocol_text))
    defs = ctx.view.catalog.definitions
    if defs:
        st.markdown("#### Shared definitions used by several criteria")
        for name, node in defs.items():
            st.markdown(f"**{REF_TITLES.get(name, name)}** (`{name}`): "
                        + md_escape(render_rule(ctx.view.catalog, node, ctx.scenario.params)))


def printable(ctx: S.Context) -> None:
    title = "NCT06614270 eligibility criteria as implemented"
    meta = S.download_meta(ctx)
    download_button(st, "Printable view (HTML)", data=lambda: protocol_html(rows_for(ctx), title, meta),
                       file_name="protocol_criteria.html", mime="text/html", on_click="ignore",
                       icon=":material/print:", key="pr_dl_print",
                       help="Every criterion with its rule in words, the readings and the decisions, as one "
                            "page to print or save as PDF from the browser.")


def parameters_table(ctx: S.Context) -> None:
    catalog = ctx.view.catalog
    params = ctx.scenario.params
    rows = []
    for p in catalog.parameters.values():
        current = params[p.name]
        default = frozenset(p.default) if p.type == "set" else p.default
        rng = ""
        if p.range is not None:
            rng = f"{value_text(float(p.range[0]))}–{value_text(float(p.range[1]))} {p.unit}".strip()
        elif p.type == "set":
            rng = "any subset of " + ", ".join(p.choices)
        elif p.type == "bool":
            rng = "on / off"
        rows.append({
            "parameter": p.name, "label": p.label, "group": p.group,
            "default": f"{value_text(default)} {p.unit}".strip(),
            "current": f"{value_text(current)} {p.unit}".strip(),
            "changed": current != default,
            "unit": p.unit, "what_if_range": rng or "not offered as a control",
            "source": p.source, "used_by": ", ".join(catalog.units_reading_param(p.name)),
        })
    df = pd.DataFrame(rows)
    n_changed = int(df["changed"].sum())
    st.caption(f"{len(df)} parameters; {n_changed} changed by the active scenario. "
               "Source = the protocol text the default comes from.")
    st.dataframe(
        df, hide_index=True, key="pr_params",
        column_config={
            "parameter": st.column_config.TextColumn("Parameter", pinned=True), "label": "Meaning",
            "group": "Group", "default": "Protocol default", "current": "Current value",
            "changed": st.column_config.CheckboxColumn("Changed"), "unit": "Unit",
            "what_if_range": "What-if range", "source": st.column_config.TextColumn("Source text", width="large"),
            "used_by": "Used by",
        },
    )


def readings_text() -> None:
    st.markdown("**Readings of unclear protocol text** (documented choices, implemented as written)")
    for text, reading in readings():
        with st.container(border=True):
            st.markdown(f"**{md_escape(text)}**")
            st.markdown(md_escape(reading))
    readings_table()
    st.markdown("**Project decisions where the specification is silent**")
    for topic, decision in decisions():
        with st.container(border=True):
            st.markdown(f"**{md_escape(topic)}**")
            st.markdown(md_escape(decision))


def cohort_contract(ctx: S.Context) -> None:
    catalog = ctx.view.catalog
    present = ctx.data.present
    rows = []
    for f in FIELDS:
        rows.append({
            "column": f.name, "label": f.label, "kind": f.kind, "unit": f.unit, "block": f.block,
            "values": ", ".join(f.categories),
            "plausible": "" if f.plausible is None else f"{value_text(float(f.plausible[0]))}–"
                                                        f"{value_text(float(f.plausible[1]))} {f.unit}".strip(),
            "required": "required" if f.required else ("optional" if f.optional else ""),
            "in_file": f.name in present,
            "criteria": ", ".join(catalog.units_reading_field(f.name)),
        })
    st.caption("Column names are fixed. Yes/no cells accept true/false, yes/no, y/n, 1/0. An empty "
               "value makes its criteria unknown; an empty `days_since_*` cell means 'never'; a column "
               "absent from the file makes its criteria not assessed. A value outside its plausible range is "
               "kept and reported, and its criteria are unknown (value to verify) unless the parameter "
               "`implausible_values_unknown` is off.")
    st.dataframe(
        pd.DataFrame(rows), hide_index=True, key="pr_contract",
        column_config={
            "column": st.column_config.TextColumn("Column", pinned=True), "label": "Meaning",
            "kind": "Type", "unit": "Unit", "block": "Block", "values": "Accepted values",
            "plausible": "Plausible range", "required": "Required?",
            "in_file": st.column_config.CheckboxColumn("In loaded file"), "criteria": "Criteria",
        },
    )


def not_assessed(ctx: S.Context) -> None:
    table = ctx.view.not_assessed_table()
    if table.empty:
        st.success(f"Every criterion can be assessed for **{lit(cohort_label(ctx))}**.", icon=":material/check_circle:")
        return
    st.warning(f"{len(table)} criteria / parts are **not assessed** for **{lit(cohort_label(ctx))}**: the columns "
               "they need are absent, so they neither fail nor make anyone pending.",
               icon=":material/visibility_off:")
    st.dataframe(table, hide_index=True, key="pr_not_assessed",
                 column_config={"criterion": "Criterion", "name": "Short name", "text": "Protocol text",
                                "absent_columns": "Absent column(s)"})


ctx = S.context()
st.title("Protocol")
st.caption(f"NCT06614270 eligibility criteria as implemented · cohort **{lit(cohort_label(ctx))}** · "
           + S.scenario_label(ctx))

with guard("the list of criteria not assessed"):
    not_assessed(ctx)
with guard("the printable view"):
    printable(ctx)
tab_cat, tab_par, tab_read, tab_contract = st.tabs(
    ["Criteria", "Parameters", "Readings & decisions", "Cohort columns"])
with tab_cat, guard("the criteria catalog"):
    catalog_view(ctx)
with tab_par, guard("the parameters"):
    parameters_table(ctx)
with tab_read, guard("the readings of the protocol"):
    readings_text()
with tab_contract, guard("the cohort contract"):
    cohort_contract(ctx)
versions_section(ctx)
