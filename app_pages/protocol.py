"""Protocol: the criteria catalog with its rules in words, the parameters, the documented
readings of unclear protocol text, the cohort contract and what this cohort cannot assess."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import streamlit as st
import yaml

from app_pages import _shared as S
from app_pages._shared import cohort_label, guard
from eligibility.catalog import AllOf, AnyOf, AtLeast, Catalog, Implies, Not, ParamTrue, Ref
from eligibility.explain import describe
from eligibility.fields import DERIVED, DISEASE_NAMES, FIELDS, field

# Readings of unclear protocol text, as documented in the spec (criteria.md,
# "Readings of unclear protocol text"); the engine implements them as written.
READINGS: list[tuple[str, str]] = [
    ("SSc exclusion 1: “localized cutaneous SSc”",
     "Read as limited cutaneous SSc (lcSSc), so only diffuse and sine SSc remain; the excluded "
     "set is a parameter (ssc_excluded_subtypes)."),
    ("SSc “active ILD”",
     "GGO on HRCT together with FVC or DLCO below 70 % predicted (ild_pft_max_pct)."),
    ("“Glucocorticoids more than 1 mg/kg/d”",
     "Read as at least 1 mg/kg/d (standard high dose); for SSc the protocol sets no dose."),
    ("IIM core-set cut-offs the protocol leaves out (PhGA, PtGA)",
     "≥ 2 cm, following the IMACS convention used by the other cut-offs in the same sentence."),
    ("APS refractory",
     "Recurrent thrombosis on standard anticoagulation; the glucocorticoid + cyclophosphamide "
     "clause is not required."),
    ("Typos in the registry text",
     "“GRANULOMATOSIS WITH POLYANGIITIS (MPA)” is GPA; “tetatercept” is telitacicept."),
    ("Liver and blood limits in both INC and EXC-2",
     "Both fail, as written, and count as one cause for sole-reason impact."),
    ("APS aPL “with an interval of more than 12 weeks”",
     "Read as at least 12 weeks apart (the Sydney criteria's wording)."),
    ("CAPS criterion (4) “positive aPL”",
     "Uses apl_medium_high_titer."),
]

REF_TITLES = {
    "rr_no_gc": "RR-A: refractory/relapsed on conventional therapy",
    "rr_gc": "RR-A(gc): refractory/relapsed on conventional therapy incl. glucocorticoid dose",
}
BLOCK_TITLES = {"common": "Common (all diseases)", **{d: f"{d} — {n}" for d, n in DISEASE_NAMES.items()}}


def decisions() -> list[tuple[str, str]]:
    """The project's own decisions (eligibility/protocol/decisions.yaml)."""
    text = resources.files("eligibility.protocol").joinpath("decisions.yaml").read_text("utf-8")
    return [(str(d["topic"]), str(d["decision"])) for d in yaml.safe_load(text)]


def render_rule(catalog: Catalog, node, params: dict) -> str:
    """A rule tree in words, with the scenario's parameter values filled in."""

    def wrap(child) -> str:
        text = render_rule(catalog, child, params)
        composite = isinstance(child, AllOf | AnyOf | Implies | AtLeast)
        return f"({text})" if composite else text

    if isinstance(node, Ref):
        return REF_TITLES.get(node.name, node.name)
    if isinstance(node, AllOf):
        return " AND ".join(wrap(c) for c in node.of)
    if isinstance(node, AnyOf):
        return " OR ".join(wrap(c) for c in node.of)
    if isinstance(node, Not):
        return "NOT " + wrap(node.item)
    if isinstance(node, Implies):
        if isinstance(node.if_, ParamTrue):
            on = bool(params[node.if_.param])
            label = catalog.parameters[node.if_.param].label
            return (f"[{label}: {'on' if on else 'off'}] " + (wrap(node.then) if on else "nothing required"))
        return f"IF {wrap(node.if_)} THEN {wrap(node.then)}"
    if isinstance(node, AtLeast):
        k = params[node.param] if node.param else node.value
        return f"at least {k} of: " + "; ".join(render_rule(catalog, c, params) for c in node.of)
    text = describe(node, params)
    field_name = getattr(node, "field", None)
    if field_name in DERIVED:  # a count derived from a list column
        label = field(field_name).label
        text = text.replace(label, f"Number of recognised {label.lower()}", 1)
    return text


def _value_text(value) -> str:
    if isinstance(value, frozenset | set | list | tuple):
        return ", ".join(sorted(value)) or "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _status_of(ctx: S.Context, unit) -> str:
    ev = ctx.current
    if unit.id in ev.disabled:
        return "○ switched off (what-if)"
    if unit.id in ev.not_assessed:
        absent = sorted(ev.catalog.fields_of(unit.rule, ctx.scenario.params) - set(ctx.cohort.present))
        return "– not assessed: absent " + ", ".join(absent)
    return "✓ assessed"


def catalog_table(ctx: S.Context) -> None:
    catalog = ctx.current.catalog
    params = ctx.scenario.params
    defaults = catalog.defaults()
    blocks = ["common", *DISEASE_NAMES]
    default_blocks = blocks if ctx.disease is None else ["common", ctx.disease]
    c1, c2 = st.columns([2, 1])
    chosen = c1.multiselect("Blocks", blocks, default=default_blocks, key="pr_blocks",
                            format_func=BLOCK_TITLES.get)
    search = c2.text_input("Search ID or text", key="pr_search", placeholder="e.g. ULN or EXC-8")
    rows = []
    for u in catalog.units:
        if u.block not in chosen:
            continue
        used = sorted(catalog.params_of(u.rule))
        changed = [p for p in used if params[p] != defaults[p]]
        parent = catalog.criterion_by_id[u.criterion]
        rows.append({
            "id": u.id, "kind": "inclusion" if u.kind == "incl" else "exclusion", "block": u.block,
            "text": u.text,
            "rule": render_rule(catalog, u.rule, params),
            "parameters": ", ".join(f"{p} = {_value_text(params[p])}"
                                    + (f" (protocol {_value_text(defaults[p])})" if p in changed else "")
                                    for p in used),
            "this_cohort": _status_of(ctx, u),
            "protocol_text": parent.text if parent.parts else "",
            "cause": catalog.cause_of[u.id] if catalog.cause_of[u.id] != u.id else "",
        })
    df = pd.DataFrame(rows)
    if search.strip() and len(df):
        text = df.astype("string").apply(lambda c: c.str.contains(search.strip(), case=False, regex=False))
        df = df[text.any(axis=1).to_numpy(bool)]
    scenario_note = ("protocol defaults" if ctx.is_baseline
                     else "the active what-if scenario's values (protocol value in brackets where changed)")
    st.caption(f"{len(df)} criteria / parts in attrition order (DX, INC, EXC, then disease blocks). "
               f"Rules are shown with {scenario_note}. An inclusion criterion fails when its rule is "
               "false; an exclusion criterion fails (excludes) when its rule is true.")
    st.dataframe(
        df, hide_index=True, key="pr_catalog", height=560,
        column_config={
            "id": st.column_config.TextColumn("ID", pinned=True), "kind": "Kind", "block": "Block",
            "text": st.column_config.TextColumn("Protocol text (this part)", width="large"),
            "rule": st.column_config.TextColumn("Rule (current values)", width="large"),
            "parameters": st.column_config.TextColumn("Parameters", width="medium"),
            "this_cohort": st.column_config.TextColumn("This cohort", width="medium"),
            "protocol_text": st.column_config.TextColumn("Whole criterion (parts only)", width="large"),
            "cause": st.column_config.TextColumn("Counted as one cause with",
                                                 help="Parts testing the same condition with the same "
                                                      "parameter count as one cause for impact"),
        },
    )
    st.caption("Hover a cell to read long text in full; the table scrolls sideways for the remaining columns.")
    defs = catalog.definitions
    if defs:
        with st.expander("Shared definitions used by several criteria"):
            for name, node in defs.items():
                st.markdown(f"**{REF_TITLES.get(name, name)}** (`{name}`): {render_rule(catalog, node, params)}")


def parameters_table(ctx: S.Context) -> None:
    catalog = ctx.current.catalog
    params = ctx.scenario.params
    rows = []
    for p in catalog.parameters.values():
        current = params[p.name]
        default = frozenset(p.default) if p.type == "set" else p.default
        rng = ""
        if p.range is not None:
            rng = f"{_value_text(float(p.range[0]))}–{_value_text(float(p.range[1]))} {p.unit}".strip()
        elif p.type == "set":
            rng = "any subset of " + ", ".join(p.choices)
        elif p.type == "bool":
            rng = "on / off"
        rows.append({
            "parameter": p.name, "label": p.label, "group": p.group,
            "default": f"{_value_text(default)} {p.unit}".strip(),
            "current": f"{_value_text(current)} {p.unit}".strip(),
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


def readings() -> None:
    st.markdown("**Readings of unclear protocol text** (documented choices, implemented as written)")
    st.dataframe(pd.DataFrame(READINGS, columns=["Protocol text", "Reading"]), hide_index=True,
                 key="pr_readings", column_config={"Reading": st.column_config.TextColumn(width="large")})
    st.markdown("**Project decisions where the specification is silent**")
    st.dataframe(pd.DataFrame(decisions(), columns=["Topic", "Decision"]), hide_index=True,
                 key="pr_decisions", column_config={"Decision": st.column_config.TextColumn(width="large")})


def cohort_contract(ctx: S.Context) -> None:
    catalog = ctx.current.catalog
    present = ctx.cohort.present
    rows = []
    for f in FIELDS:
        rows.append({
            "column": f.name, "label": f.label, "kind": f.kind, "unit": f.unit, "block": f.block,
            "values": ", ".join(f.categories),
            "plausible": "" if f.plausible is None else f"{_value_text(float(f.plausible[0]))}–"
                                                        f"{_value_text(float(f.plausible[1]))} {f.unit}".strip(),
            "required": "required" if f.required else ("optional" if f.optional else ""),
            "in_file": f.name in present,
            "criteria": ", ".join(catalog.units_reading_field(f.name)),
        })
    st.caption("Column names are fixed. Yes/no cells accept true/false, yes/no, y/n, 1/0. An empty "
               "value makes its criteria unknown; an empty `days_since_*` cell means 'never'; a column "
               "absent from the file makes its criteria not assessed.")
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
    ev = ctx.current
    if not ev.not_assessed:
        st.success(f"Every criterion can be assessed for **{cohort_label(ctx)}**.", icon=":material/check_circle:")
        return
    rows = []
    for uid in ev.not_assessed:
        u = ev.catalog.unit_by_id[uid]
        absent = sorted(ev.catalog.fields_of(u.rule, ctx.scenario.params) - set(ctx.cohort.present))
        rows.append({"criterion": uid, "text": u.text, "absent columns": ", ".join(absent)})
    st.warning(f"{len(rows)} criteria / parts are **not assessed** for **{cohort_label(ctx)}**: the columns "
               "they need are absent, so they neither fail nor make anyone pending.",
               icon=":material/visibility_off:")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="pr_not_assessed")


ctx = S.context()
st.title("Protocol")
st.caption(f"NCT06614270 eligibility criteria as implemented · cohort **{cohort_label(ctx)}** · "
           + ("protocol as registered" if ctx.is_baseline else f"what-if scenario “{ctx.scenario.name or 'What-if'}”"))

with guard("the list of criteria not assessed"):
    not_assessed(ctx)
tab_cat, tab_par, tab_read, tab_contract = st.tabs(
    ["Criteria", "Parameters", "Readings & decisions", "Cohort columns"])
with tab_cat, guard("the criteria catalog"):
    catalog_table(ctx)
with tab_par, guard("the parameters"):
    parameters_table(ctx)
with tab_read, guard("the readings of the protocol"):
    readings()
with tab_contract, guard("the cohort contract"):
    cohort_contract(ctx)
