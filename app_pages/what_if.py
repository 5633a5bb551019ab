"""What-if: move protocol thresholds, switch criteria off, and see who gains or loses eligibility.

The session's scenario is the plain dict in st.session_state["scenario"] (see
app_pages/_shared.py); it is the single source of truth. Every control here is
initialised from it on each run and writes back into it through an on_change
callback (callbacks run before the script, so app.py evaluates and encodes the new
scenario in the URL before this page draws). Values equal to the protocol default
are removed, so the URL stays minimal. Widget keys start with "wi_" (app.py's
"Reset to protocol" deletes them).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages import _suppressed as SUP
from app_pages._access import download_button, suppression_on
from app_pages._amend import amendment_sections
from app_pages._readings import readings_section
from app_pages._shared import guard, memo
from eligibility import export
from eligibility.catalog import Parameter
from eligibility.compare import counts_side_by_side, differing_patients
from eligibility.fields import DISEASE_NAMES
from eligibility.figures.whatif import delta_table, fmt_value, parameter_users, sweep_figure
from eligibility.labels import label as label_of
from eligibility.pageview import counts_side_by_side as view_counts_side_by_side
from eligibility.pageview import status_change as view_status_change
from eligibility.scenario import (
    MAX_NAME_CHARS,
    ScenarioError,
    dump_scenario,
    resolve,
    scenario_file_data,
    to_scenario,
    validate_scenario,
)
from eligibility.screen import status_change
from eligibility.textsafe import markdown_literal as lit
from eligibility.whatif import (
    GROUP_TITLES,
    catalog_order,
    control_groups,
    decimals,
    is_default,
    offered,
    scenario_problems,
    step_of,
    sweep,
    sweep_points,
    widget_value,
    with_criterion,
    with_parameter,
)

CAT = S.catalog()
MAX_ROWS = 1_000  # changed patients sent to the browser at once
BIG_COHORT = 200_000  # above this many patients the sweep uses fewer points
ORDER = catalog_order(CAT)


def groups() -> dict[str, list[Parameter]]:
    return control_groups(CAT)


def param_key(name: str) -> str:
    return f"wi_p_{name}"


def number_key(name: str) -> str:
    """The exact-value box beside a slider."""
    return f"wi_n_{name}"


def crit_key(cid: str) -> str:
    return f"wi_on_{cid}"


SHOWN = "wi__shown"  # widget key → value this page last drew (dropped with the wi_ keys on reset)


def _stale(key: str) -> bool:
    """A change event for a widget this page has not drawn since the scenario was reset.
    (After "Reset to protocol" deletes the wi_ keys, the browser's last values can come back
    once as "changes"; they must not undo the reset.)"""
    return key not in st.session_state.get(SHOWN, {})


def on_param(name: str, key: str | None = None) -> None:
    key = key or param_key(name)
    if _stale(key):
        return
    value = st.session_state[key]
    if value is None:  # an emptied number box: keep the scenario as it is
        return
    S.change_scenario(with_parameter(S.scenario_dict(), CAT.parameters[name], value))


def on_criterion(cid: str) -> None:
    if _stale(crit_key(cid)):
        return
    S.change_scenario(with_criterion(S.scenario_dict(), cid, bool(st.session_state[crit_key(cid)]), ORDER))


def undo() -> None:
    S.undo_scenario()


def on_name() -> None:
    data = S.scenario_dict()
    S.change_scenario({**data, "name": str(st.session_state.get("wi_name", "")).strip()})


def on_upload() -> None:
    """Load a scenario file; on any problem keep the current scenario and list every problem."""
    f = st.session_state.get("wi_upload")
    if f is None:
        return
    name = lit(f.name)
    try:
        data = scenario_file_data(f.getvalue(), f.name)
    except ScenarioError as e:
        st.session_state["wi_load_msg"] = (
            "error", [f"{name} was not loaded: {lit(e, 400)}. The current scenario is unchanged."])
        return
    problems = scenario_problems(data, CAT)
    if problems:
        st.session_state["wi_load_msg"] = (
            "error", [f"{name} was not loaded ({len(problems)} problem(s)); the current scenario is "
                      "unchanged:", *(lit(p, 400) for p in problems)])
        return
    try:
        sc = validate_scenario(data)
        resolve(sc, CAT)
    except ScenarioError as e:
        st.session_state["wi_load_msg"] = (
            "error", [f"{name} was not loaded: {lit(e, 400)}. The current scenario is unchanged."])
        return
    S.change_scenario(sc.model_dump(include={"name", "parameters", "disabled", "readings"}))
    n = len(sc.parameters) + len(sc.disabled) + len(sc.readings)
    st.session_state["wi_load_msg"] = ("success", [f"Loaded {name}: {n} change(s) from the protocol."])


_UNSET = object()


def shown_values() -> dict:
    """The SHOWN record (fetched once per panel: every session-state access takes a lock)."""
    return st.session_state.setdefault(SHOWN, {})


def sync_widget(key: str, want, shown: dict | None = None) -> bool:
    """Make a widget show the scenario's value (set before the widget is created).
    True if the state was written in this run (then the widget must get no `value=`).
    `shown`: shown_values(), when the caller draws many widgets."""
    (shown_values() if shown is None else shown)[key] = want
    if st.session_state.get(key, _UNSET) != want:
        st.session_state[key] = want
        return True
    return False


# -- controls -----------------------------------------------------------------------------------


def param_control(p: Parameter, value, shown: dict | None = None) -> None:
    key = param_key(p.name)
    want = widget_value(p, value)
    written = sync_widget(key, want, shown)
    # Passing value= when the state already holds it spares Streamlit a scan of the whole
    # session state per slider; passing it right after writing the state would warn.
    initial = None if written else want
    label = f"{p.label} ({p.unit})" if p.unit else p.label
    used_by = ", ".join(parameter_users(CAT)[p.name])
    help_text = (f"Protocol default: **{fmt_value(p.default, p.unit)}**. From the protocol: “{p.source}”. "
                 f"Parameter `{p.name}`; used by {used_by}.")
    if p.type in ("number", "count"):
        left, right = st.columns([3, 1.25], vertical_alignment="bottom")
        exact = number_key(p.name)
        exact_written = sync_widget(exact, want, shown)
        if p.type == "number":
            assert p.range is not None  # a slider parameter always has a what-if range
            lo, hi = (float(x) for x in p.range)
            step = step_of(p)
            fmt = f"%.{decimals(step)}f"
            left.slider(label, min_value=min(lo, want), max_value=max(hi, want), value=initial, step=step,
                        key=key, format=fmt, help=help_text, on_change=on_param, args=(p.name,))
            right.number_input(f"{p.label}: exact value", min_value=0.0, step=step, format=fmt, key=exact,
                               value=None if exact_written else want, label_visibility="collapsed",
                               on_change=on_param, args=(p.name, exact),
                               help="Type an exact value (any value ≥ 0, also outside the slider's range).")
        else:
            assert p.range is not None
            lo, hi = (int(x) for x in p.range)
            left.slider(label, min_value=min(lo, want), max_value=max(hi, want), value=initial, step=1,
                        key=key, help=help_text, on_change=on_param, args=(p.name,))
            right.number_input(f"{p.label}: exact value", min_value=0, step=1, key=exact,
                               value=None if exact_written else want, label_visibility="collapsed",
                               on_change=on_param, args=(p.name, exact), help="Type an exact whole number.")
    elif p.type == "bool":
        st.toggle(label, key=key, help=help_text, on_change=on_param, args=(p.name,))
    else:
        st.multiselect(label, options=list(p.choices), key=key, help=help_text, on_change=on_param,
                       args=(p.name,), placeholder="(none)")
    changed = not is_default(p, value)
    st.caption(("**Changed** · " if changed else "")
               + f"Protocol: {fmt_value(p.default, p.unit)} · “{p.source}”")


def criteria_controls(block: str, disabled: set[str], shown: dict | None = None) -> None:
    crits = [c for c in CAT.criteria if c.block == block]
    if not crits:
        return
    for c in crits:
        on = c.id not in disabled
        sync_widget(crit_key(c.id), on, shown)
        kind = "inclusion" if c.kind == "incl" else "exclusion"
        st.toggle(label_of(c.id), key=crit_key(c.id), on_change=on_criterion, args=(c.id,),
                  help=f"{kind.capitalize()} criterion: “{c.text}”. Off = not applied to anyone.")
        for part in c.parts:
            uid = f"{c.id}.{part.id}"
            sync_widget(crit_key(uid), on and uid not in disabled, shown)
            st.toggle(f"↳ {label_of(uid)}", key=crit_key(uid), disabled=not on,
                      on_change=on_criterion, args=(uid,),
                      help=f"Part of {c.id}: “{part.text}”." + ("" if on else f" {c.id} is switched off."))


OPEN = "wi__open"  # expander key → open, as the planner left it (else the default below)


def _remember_open(key: str) -> None:
    st.session_state.setdefault(OPEN, {})[key] = bool(st.session_state.get(key))


def lazy_expander(title: str, key: str, default: bool):
    """An expander whose controls are drawn only while it is open (opening it reruns the page).
    Each number box costs Streamlit a scan of the whole session state: drawn in every
    expander, the controls were half of a slider move's rerun at a million patients.
    Streamlit tells an expander by its title and `expanded` too, and a new title ("(1 changed)")
    would start it over at `expanded`: so `expanded` is where the planner left it, kept here."""
    left = st.session_state.get(OPEN, {}).get(key)
    return st.expander(title, expanded=default if left is None else left, key=key,
                       on_change=_remember_open, args=(key,))


def controls(ctx: S.Context) -> None:
    data = S.scenario_dict()
    params = ctx.scenario.params
    disabled = set(ctx.scenario.disabled_given)  # as applied (the protocol if the session's is invalid)
    shown = shown_values()
    st.markdown("**Thresholds** — each control shows its protocol default and source")
    for g, ps in groups().items():
        n_changed = sum(1 for p in ps if not is_default(p, params[p.name]))
        title = GROUP_TITLES.get(g, g) + (f" ({n_changed} changed)" if n_changed else "")
        box = lazy_expander(title, f"wi_x_{g}", bool(n_changed) or g == "common")
        if not box.open:
            continue
        with box:
            if g == "refractory":
                st.caption("The refractory/relapsed definition (RR-A) is used by SSC-INC-4, IIM-INC-4, "
                           "AAV-INC-5 and SJS-INC-4.")
            for p in ps:
                param_control(p, params[p.name], shown)
    st.markdown("**Criteria** — switch a criterion, or one part of it, off")
    for block in dict.fromkeys(c.block for c in CAT.criteria):
        n_off = sum(1 for d in disabled if getattr(CAT.unit_by_id.get(d) or CAT.criterion_by_id.get(d), "block", None)
                    == block)
        title = ("Common criteria (DX, INC, EXC)" if block == "common" else GROUP_TITLES.get(block, block)) \
            + (f" ({n_off} off)" if n_off else "")
        box = lazy_expander(title, f"wi_xc_{block}", bool(n_off))
        if box.open:
            with box:
                criteria_controls(block, disabled, shown)
    hidden = sorted(k for k in data["parameters"] if k in CAT.parameters and not offered(CAT.parameters[k]))
    if hidden:
        st.info("Also set by the scenario (no control here): "
                + ", ".join(f"`{k}` = {fmt_value(params[k], CAT.parameters[k].unit)}" for k in hidden),
                icon=":material/info:")


# -- results ------------------------------------------------------------------------------------


def changes(ctx: S.Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    return memo(ctx, ("wi:change", ctx.base.scenario.key),
                lambda: status_change(ctx.base, ctx.current, ctx.cohort.frame))


def change_summary(ctx: S.Context) -> pd.DataFrame:
    """Gained / lost / changed per group against the protocol (in the database in aggregate mode)."""
    if ctx.aggregate_only:
        return memo(ctx, ("wi:change_summary", ctx.base_view.scenario.key),
                    lambda: view_status_change(ctx.base_view, ctx.view, limit=0)[0])
    return changes(ctx)[0]


def group_label(g: str) -> str:
    """Short metric label: the disease code (full names are in the table below)."""
    return {"All": "All", "other": "Other", "missing": "No dx"}.get(g, g)


STICKY_CSS = """<style>
.st-key-wi_sticky {position: sticky; top: 3.75rem; z-index: 990; background: var(--background-color, #fff);
  padding: 0.25rem 0 0.5rem 0; border-bottom: 1px solid rgba(49, 51, 63, 0.15);}
</style>"""


def delta_cards(ctx: S.Context) -> None:
    """Eligible per disease with the change vs the protocol; stays in view (sticky) while the
    controls below are moved."""
    change = change_summary(ctx)
    compare = not ctx.is_baseline
    base_counts, counts = ctx.base_view.status_counts(), ctx.view.status_counts()
    order = ["All", *[g for g in change.index if g != "All"]]
    st.html(STICKY_CSS)
    with st.container(key="wi_sticky"):
        top = st.columns([5, 1], vertical_alignment="bottom")
        top[0].markdown("**Eligible patients under this scenario**"
                        + (" (change vs protocol)" if compare else " (= protocol)"))
        history = st.session_state.get(S.HISTORY_KEY, [])
        top[1].button("Undo", key="wi_undo", icon=":material/undo:", disabled=not history,
                      on_click=undo, width="stretch",
                      help=(f"Undo the last change ({len(history)} change(s) can be undone)." if history
                            else "Undo the last change (nothing to undo yet)."))
        cols = st.columns(len(order))
        for col, g in zip(cols, order, strict=True):
            r = change.loc[g]
            with col.container(key=f"whatif_metric_{g}"):
                st.metric(
                    group_label(g), f"{int(r['eligible_after']):,}",
                    delta=f"{int(r['net']):+,}" if compare else None, border=True,
                    delta_color="off" if int(r["net"]) == 0 else "normal",  # no green arrow for "no change"
                    delta_arrow="off" if int(r["net"]) == 0 else "auto",
                    help=(f"Protocol: {int(r['eligible_before']):,} eligible. This scenario: "
                          f"+{int(r['gained']):,} gained, −{int(r['lost']):,} lost. Pending "
                          f"{int(base_counts.loc[g, 'pending']):,} → {int(counts.loc[g, 'pending']):,}."),
                )


def _delta_table(ctx: S.Context) -> pd.DataFrame:
    change = change_summary(ctx)
    table = delta_table(change, ctx.base_view.status_counts(), ctx.view.status_counts())
    names = {"All": "All diseases", "other": "Other diagnosis (not an indication)", "missing": "Diagnosis missing"}
    table["group"] = table["group"].map(lambda g: f"{g} — {DISEASE_NAMES[g]}" if g in DISEASE_NAMES
                                        else names.get(g, g))
    return table


def deltas(ctx: S.Context) -> None:
    compare = not ctx.is_baseline
    table = memo(ctx, ("wi:delta_table", ctx.base_view.scenario.key), lambda: _delta_table(ctx))
    n = {c: st.column_config.NumberColumn(t, format="%d") for c, t in [
        ("screened", "Screened (n)"), ("eligible_before", "Eligible, protocol (n)"),
        ("eligible_after", "Eligible, scenario (n)"), ("gained", "Gained (n)"), ("lost", "Lost (n)"),
        ("net", "Net change (n)"), ("pending_before", "Pending, protocol (n)"),
        ("pending_after", "Pending, scenario (n)"), ("changed", "Any status change (n)")]}
    st.dataframe(table, hide_index=True, key="wi_delta_table", column_config={"group": "Disease", **n})
    if not compare:
        st.caption("The scenario equals the protocol as registered: move a control below to see changes.")
    else:
        st.caption("Gained: not eligible under the protocol, eligible under the scenario; lost: the reverse. "
                   "Net = gained − lost.")


def _changed_tables(ctx: S.Context) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Series | None]:
    """The changed patients (in the disease filter), the first MAX_ROWS as shown, and the moves."""
    _, patients = changes(ctx)
    if ctx.disease is not None:
        patients = patients[(patients["disease"] == ctx.disease).fillna(False).to_numpy(bool)]
    if patients.empty:
        return patients, None, None
    shown = patients.head(MAX_ROWS).copy()
    shown.insert(5, "change", shown["status_before"] + " → " + shown["status_after"])
    for c in ("first_reason_before", "first_reason_after"):
        shown[c] = shown[c].map(label_of)
    moves = (patients["status_before"] + " → " + patients["status_after"]).value_counts()
    return patients, shown, moves


def changed_patients(ctx: S.Context) -> None:
    if ctx.aggregate_only:
        changed_page(ctx)
        return
    patients, shown, moves = memo(ctx, ("wi:changed", ctx.base.scenario.key, ctx.disease),
                                  lambda: _changed_tables(ctx))
    if shown is None or moves is None:
        st.caption("No patient changes status under this scenario"
                   + ("" if ctx.disease is None else f" ({ctx.disease})") + ".")
        return
    st.caption(f"{len(patients):,} patient(s) change status"
               + ("" if ctx.disease is None else f" ({ctx.disease})") + ": "
               + ", ".join(f"{m} {k:,}" for m, k in moves.items())
               + (f". Showing the first {MAX_ROWS:,} (download for all)." if len(patients) > MAX_ROWS else "."))
    _show_changed(shown)
    download_button(st, "Download the patients who change (CSV)", data=lambda: export.to_csv_bytes(patients),
                       file_name="status_changes.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:", key="wi_dl_changed")


def _show_changed(shown) -> None:
    st.dataframe(
        shown, hide_index=True, key="wi_changed_table", height=300,
        column_order=["row", "patient_id", "disease", "change", "first_reason_before", "first_reason_after"],
        column_config={
            "row": st.column_config.NumberColumn("Row", format="%d", help="1-based data row in the file"),
            "patient_id": "Patient ID", "disease": "Disease", "change": "Status: protocol → scenario",
            "first_reason_before": st.column_config.TextColumn(
                "First reason, protocol", help="First failing criterion under the protocol (empty if none)"),
            "first_reason_after": st.column_config.TextColumn(
                "First reason, scenario", help="First failing criterion under the scenario (empty if none)"),
        },
    )


CHANGED_PAGE = 100  # changed patients per page for a database cohort in aggregate mode


def changed_page(ctx: S.Context) -> None:
    """Aggregate mode: the moves counted in the database, the changed patients a page at a time."""
    base = ctx.base_view
    moves = ctx.view.change_moves(base, ctx.group)
    n = int(moves.sum())
    scope = "" if ctx.disease is None else f" ({ctx.disease})"
    if n == 0:
        st.caption("No patient changes status under this scenario" + scope + ".")
        return
    pages = max(1, -(-n // CHANGED_PAGE))
    if st.session_state.get("wi_changed_page", 1) > pages:
        st.session_state["wi_changed_page"] = pages
    page = st.pagination(pages, key="wi_changed_page") if pages > 1 else 1
    start = (page - 1) * CHANGED_PAGE
    _, patients = S.last_page("changed", (ctx.data.key, base.scenario.key, ctx.scenario.key, ctx.group, page),
                              lambda: ctx.view.status_change_from(
                                  base, offset=start, limit=CHANGED_PAGE, group=ctx.group))
    st.caption(f"{n:,} patient(s) change status{scope}: " + ", ".join(f"{m} {k:,}" for m, k in moves.items())
               + f". Rows {start + 1:,}–{start + len(patients):,}; page {page} of {pages} (computed in the "
               "database a page at a time).")
    shown = patients.copy()
    shown.insert(5, "change", shown["status_before"] + " → " + shown["status_after"])
    for c in ("first_reason_before", "first_reason_after"):
        shown[c] = shown[c].map(label_of)
    _show_changed(shown)
    download_button(st, "Download this page (CSV)", data=lambda: export.to_csv_bytes(patients),
                    file_name=f"status_changes_page{page}.csv", mime="text/csv", on_click="ignore",
                    icon=":material/download:", key="wi_dl_changed")


SWEEP_CACHE = 16  # sweeps remembered per cohort


def cached_sweep(ctx: S.Context, name: str, points: int) -> pd.DataFrame | None:
    """whatif.sweep, remembered per cohort under the scenario *without* the swept parameter
    (the curve does not depend on its own current value): moving the slider of the swept
    parameter only moves the "scenario" marker. Kept with the protocol evaluation, which
    is held process-wide per cohort. The scenario's own value is always one of the points."""
    items, disabled = ctx.scenario.key
    key = ("wi:sweep", name, ctx.disease, points, tuple(i for i in items if i[0] != name), disabled)
    store = ctx.base_view.memo.setdefault("wi:sweeps", {})
    df = store.get(key)
    p = CAT.parameters[name]
    if df is None and ctx.aggregate_only:  # each point one evaluation in the database: on request
        assert ctx.data.database is not None
        if not st.button(f"Run the sweep in the database ({len(sweep_points(p, points))} evaluations)",
                         key="wi_sweep_run", icon=":material/play_arrow:",
                         help="Each point evaluates the whole cohort in the database; the curve is then "
                              "kept for this scenario."):
            return None
        with st.spinner("Evaluating each point in the database…"):
            df = ctx.data.database.sweep(ctx.scenario, name, sweep_points(p, points), ctx.disease)
        store[key] = df
    if df is None:
        df = sweep(ctx.data.evaluator, ctx.scenario, name, values=sweep_points(p, points), group=ctx.disease)
        store[key] = df
        for old in list(store)[:-SWEEP_CACHE]:
            store.pop(old, None)
    current = ctx.scenario.params[name]
    grid = sweep_points(p, points, current=current)
    if len(grid) > len(df):  # the scenario's value is not on the grid: add that one point
        # That point is the scenario itself: its counts are the page's own (no evaluation).
        own = ctx.view.status_counts().loc[ctx.group]
        extra = pd.DataFrame([{"value": float(current), "eligible": int(own["eligible"]),
                               "pending": int(own["pending"]), "ineligible": int(own["ineligible"])}])
        out = pd.concat([df, extra], ignore_index=True).sort_values("value", kind="stable").reset_index(drop=True)
    else:
        out = df.copy()
    out.attrs = {**df.attrs, "current": current}
    return out


def numeric_params() -> list[Parameter]:
    return [p for ps in groups().values() for p in ps if p.type in ("number", "count")]


@st.fragment
def sweep_panel(ctx: S.Context) -> None:
    """Its own fragment: choosing another parameter reruns only this panel."""
    with guard("the threshold sweep"):
        _sweep(ctx)


def _sweep(ctx: S.Context) -> None:
    params = numeric_params()
    names = [p.name for p in params]
    if st.session_state.get("wi_sweep_param") not in names:
        changed = [n for n in S.scenario_dict()["parameters"] if n in names]
        st.session_state["wi_sweep_param"] = changed[0] if changed else "age_max"
    name = st.selectbox(
        "Parameter to sweep", names, key="wi_sweep_param",
        format_func=lambda n: f"{CAT.parameters[n].label} ({GROUP_TITLES.get(CAT.parameters[n].group, '')})",
        help="Counts across the parameter's what-if range, with every other setting held at the scenario.",
    )
    p = CAT.parameters[name]
    # Each point evaluates the whole cohort: on large cohorts sweep fewer points of the same range.
    released = suppression_on()
    # With suppression, every two points differ by 0 or ≥ k or are hidden: a coarser grid (chosen
    # without looking at the counts) leaves larger steps between points, so more can be shown.
    points = SUP.SWEEP_POINTS if released else 21 if ctx.data.n_rows <= BIG_COHORT else 11
    df = cached_sweep(ctx, name, points)
    if df is None:  # aggregate mode, not run yet
        st.caption("The sweep evaluates the whole cohort once per point in the database; move the control on "
                   "the left instead for a single value.")
        return
    if released:  # counts as released, suppressed together with the page's counts
        df = SUP.sweep(ctx, df, name)
    scope = "all diseases" if ctx.disease is None else ctx.disease
    title = f"{p.label} — eligible and pending patients ({scope})"
    fig = (sweep_figure(df, title=title) if released else  # released counts: drawn afresh
           memo(ctx, ("wi:sweep_fig", name, ctx.disease, points), lambda: sweep_figure(df, title=title)))
    st.plotly_chart(fig, key="whatif_sweep_chart", config={"displaylogo": False},
                    alt=f"Line chart of eligible and pending patients as {p.label} varies.")
    st.caption(f"Solid green line with circles: eligible; dashed orange line with squares: pending. "
               f"Dashed vertical line: protocol default ({fmt_value(p.default, p.unit)}); solid: this "
               f"scenario ({fmt_value(ctx.scenario.params[name], p.unit)}). Source: “{p.source}”.")
    with st.expander("Sweep values (table)"):
        if released:
            st.dataframe(df[["value", "eligible", "pending", "ineligible"]], hide_index=True, key="wi_sweep_table",
                         column_config={"value": f"{p.label} ({p.unit})" if p.unit else p.label,
                                        "eligible": "Eligible (n)", "pending": "Pending (n)",
                                        "ineligible": "Ineligible (n)"})
            return
        st.dataframe(df, hide_index=True, key="wi_sweep_table", column_config={
            "value": st.column_config.NumberColumn(f"{p.label} ({p.unit})" if p.unit else p.label),
            "eligible": st.column_config.NumberColumn("Eligible (n)", format="%d"),
            "pending": st.column_config.NumberColumn("Pending (n)", format="%d"),
            "ineligible": st.column_config.NumberColumn("Ineligible (n)", format="%d"),
        })


def save_load(ctx: S.Context) -> None:
    msg = st.session_state.pop("wi_load_msg", None)
    if msg:
        kind, lines = msg
        text = lines[0] + "".join(f"\n- {line}" for line in lines[1:])
        (st.error if kind == "error" else st.success)(text)
    sync_widget("wi_name", S.scenario_dict().get("name", ""))
    st.text_input("Scenario name", key="wi_name", on_change=on_name, placeholder="e.g. relax age to 70",
                  max_chars=MAX_NAME_CHARS,
                  help="Saved in the scenario file and shown in the sidebar.")
    sc = to_scenario(ctx.scenario, CAT)
    stem = "".join(ch if ch.isalnum() else "_" for ch in (sc.name or "scenario")).strip("_") or "scenario"
    c1, c2 = st.columns(2)
    download_button(c1, "Save scenario (JSON)", data=dump_scenario(sc, "json"), file_name=f"{stem}.json",
                       mime="application/json", on_click="ignore", icon=":material/download:",
                       key="wi_dl_json")
    download_button(c2, "Save scenario (YAML)", data=dump_scenario(sc, "yaml"), file_name=f"{stem}.yaml",
                       mime="application/yaml", on_click="ignore", icon=":material/download:",
                       key="wi_dl_yaml")
    st.file_uploader("Load a scenario (JSON or YAML)", type=["json", "yaml", "yml"], key="wi_upload",
                     on_change=on_upload,
                     help='{"name": "…", "parameters": {"age_max": 70}, "disabled": ["INC-7"]} — '
                          "the same format as the batch command's --scenario file.")
    st.caption("The scenario is also in this page's address (parameter `s`): copy the link to share it.")


# -- two scenarios side by side -------------------------------------------------------------------

B_KEY = "scenario_b"  # session_state: the scenario kept as B (a plain dict)


def keep_as_b() -> None:
    st.session_state[B_KEY] = dict(S.scenario_dict())


def on_b_upload() -> None:
    f = st.session_state.get("wi_b_upload")
    if f is None:
        return
    try:
        data = scenario_file_data(f.getvalue(), f.name)
    except ScenarioError as e:
        st.session_state["wi_b_msg"] = [f"{lit(f.name)} was not used as B: {lit(e, 400)}."]
        return
    problems = scenario_problems(data, CAT)
    if problems:
        st.session_state["wi_b_msg"] = [f"{lit(f.name)} was not used as B:",
                                        *(lit(p, 400) for p in problems)]
        return
    st.session_state[B_KEY] = {"name": str(data.get("name") or f.name), "parameters": data.get("parameters", {}),
                               "disabled": data.get("disabled", []), "readings": data.get("readings", {})}


def compare_panel(ctx: S.Context) -> None:
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    c1.button("Keep this scenario as B", key="wi_keep_b", on_click=keep_as_b, icon=":material/push_pin:",
              help="Then change the controls (scenario A) and compare both, side by side and with the protocol.")
    c2.file_uploader("…or load B from a scenario file", type=["json", "yaml", "yml"], key="wi_b_upload",
                     on_change=on_b_upload)
    msg = st.session_state.pop("wi_b_msg", None)
    if msg:
        st.error(msg[0] + "".join(f"\n- {m}" for m in msg[1:]))
    b_data = st.session_state.get(B_KEY)
    if not b_data:
        st.caption("No scenario B yet: keep the current scenario as B, change the controls, and the two are "
                   "compared here (counts per disease, patients gained and lost, the patients who differ).")
        return
    b = resolve(b_data, CAT)
    if ctx.aggregate_only:
        compare_aggregate(ctx, b)
        return
    ev_b = S.evaluation(ctx.data, b)
    name_a = ctx.scenario.name or ("protocol" if ctx.is_baseline else "What-if")
    name_b = b.name or "B"
    if suppression_on():
        SUP.compare(ctx, ev_b, name_a, name_b)
        return
    table = memo(ctx, ("wi:cmp", b.key), lambda: counts_side_by_side(ctx.base, ctx.current, ev_b))
    _side_by_side(table, name_a, name_b)
    patients = memo(ctx, ("wi:cmp_pat", b.key),
                    lambda: differing_patients(ctx.base, ctx.current, ev_b, ctx.cohort.frame))
    if ctx.disease is not None:
        patients = patients[(patients["disease"] == ctx.disease).fillna(False).to_numpy(bool)]
    st.caption(f"{len(patients):,} patient(s) have a different status under A and B"
               + ("" if ctx.disease is None else f" ({ctx.disease})") + ". Gained in B: eligible under B but "
               "not under A; lost: the reverse.")
    if len(patients):
        shown = patients.head(MAX_ROWS).assign(first_reason_a=lambda d: d["first_reason_a"].map(label_of),
                                               first_reason_b=lambda d: d["first_reason_b"].map(label_of))
        st.dataframe(shown, hide_index=True, key="wi_cmp_patients", height=260,
                     column_config={"row": st.column_config.NumberColumn("Row", format="%d"),
                                    "patient_id": "Patient ID", "disease": "Disease",
                                    "status_protocol": "Protocol", "status_a": "A", "status_b": "B",
                                    "first_reason_a": "First reason, A", "first_reason_b": "First reason, B"})
        download_button(st, "Download the patients who differ (CSV)", data=lambda: export.to_csv_bytes(patients),
                           file_name="scenario_a_vs_b.csv", mime="text/csv", on_click="ignore",
                           icon=":material/download:", key="wi_dl_cmp")


def _side_by_side(table: pd.DataFrame, name_a: str, name_b: str) -> None:
    """The A-vs-B counts table (either cohort source)."""
    table = table.assign(group=table["group"].map(lambda g: "All diseases" if g == "All" else g))
    st.markdown(f"**A** = current scenario {lit(name_a)} · **B** = {lit(name_b)}")
    n = {c: st.column_config.NumberColumn(t, format="%d") for c, t in [
        ("screened", "Screened"), ("eligible_protocol", "Eligible, protocol"), ("eligible_a", "Eligible, A"),
        ("eligible_b", "Eligible, B"), ("net_b_vs_a", "B − A"), ("gained_b_vs_a", "Gained in B"),
        ("lost_b_vs_a", "Lost in B"), ("pending_protocol", "Pending, protocol"), ("pending_a", "Pending, A"),
        ("pending_b", "Pending, B"), ("differ", "Status differs")]}
    st.dataframe(table, hide_index=True, key="wi_cmp_table", column_config={"group": "Disease", **n},
                 column_order=["group", "screened", "eligible_protocol", "eligible_a", "eligible_b", "net_b_vs_a",
                               "gained_b_vs_a", "lost_b_vs_a", "pending_a", "pending_b", "differ"])


def compare_aggregate(ctx: S.Context, b) -> None:
    """Aggregate mode: A and B side by side from the database's counts and A → B diff; the
    patients who differ, the first page of them."""
    view_b = S.view(ctx.data, b)
    name_a = ctx.scenario.name or ("protocol" if ctx.is_baseline else "What-if")
    name_b = b.name or "B"
    diff, patients = S.last_page("compare", (ctx.data.key, ctx.scenario.key, b.key, ctx.group),
                                 lambda: view_b.status_change_from(ctx.view, offset=0, limit=MAX_ROWS,
                                                                   group=ctx.group))
    table = memo(ctx, ("wi:cmp", b.key), lambda: view_counts_side_by_side(ctx.base_view, ctx.view, view_b, diff))
    _side_by_side(table, name_a, name_b)
    total = int(diff.loc[ctx.group, "changed"]) if ctx.group in diff.index else 0
    st.caption(f"{total:,} patient(s) have a different status under A and B"
               + ("" if ctx.disease is None else f" ({ctx.disease})")
               + (f"; the first {len(patients):,} are listed" if total > len(patients) else "")
               + ". Gained in B: eligible under B but not under A; lost: the reverse.")
    if len(patients):
        shown = patients.rename(columns={"status_before": "status_a", "status_after": "status_b",
                                         "first_reason_before": "first_reason_a",
                                         "first_reason_after": "first_reason_b"})
        shown = shown.assign(first_reason_a=lambda d: d["first_reason_a"].map(label_of),
                             first_reason_b=lambda d: d["first_reason_b"].map(label_of))
        st.dataframe(shown, hide_index=True, key="wi_cmp_patients", height=260,
                     column_config={"row": st.column_config.NumberColumn("Row", format="%d"),
                                    "patient_id": "Patient ID", "disease": "Disease",
                                    "status_a": "A", "status_b": "B",
                                    "first_reason_a": "First reason, A", "first_reason_b": "First reason, B"})


def controls_and_sweep(ctx: S.Context):
    """The controls on the left, the threshold sweep heading the right column (returned)."""
    left, right = st.columns([5, 7], gap="large")
    with left:
        st.subheader("Controls")
        with guard("the controls"):
            controls(ctx)
    with right:
        st.subheader("Threshold sweep")
        sweep_panel(ctx)
    return right


# -- page ---------------------------------------------------------------------------------------

ctx = S.context()
if suppression_on():  # every count suppressed with the page's release; no patient lists
    S.stop_if_suppressed_aggregate(ctx, "What-if: protocol amendments")
    SUP.what_if(ctx)
    right = controls_and_sweep(ctx)
    with right:
        st.subheader("Save, load and share")
        with guard("saving and loading"):
            save_load(ctx)
        readings_section(ctx, counts=False)
        st.caption("The patients who change status, what each reading gains and loses, and the search for the "
                   "smallest relaxation (its eligible counts per option, one scenario each) are left out while "
                   "suppression is on.")
    st.subheader("Compare two scenarios")
    with guard("the comparison of two scenarios"):
        compare_panel(ctx)
    st.stop()
st.title("What-if: protocol amendments")
data = S.scenario_dict()
n_changes = len(data["parameters"]) + len(data["disabled"]) + len(data.get("readings", {}))
st.caption(f"Cohort: **{lit(S.cohort_label(ctx))}** · {ctx.view.n_patients:,} patients · "
           + ("protocol as registered" if n_changes == 0 else
              f"scenario {lit(data.get('name') or 'What-if')}: {len(data['parameters'])} parameter "
              f"change(s), {len(data['disabled'])} criterion/part(s) switched off"
              + (f", {len(data['readings'])} reading(s) changed" if data.get("readings") else ""))
           + " · every count below is against the protocol as registered.")
S.status_notes(ctx)

with guard("the eligible counts"):
    delta_cards(ctx)
with st.expander("Change per disease (table: gained, lost, pending)"), guard("the change per disease"):
    deltas(ctx)

right = controls_and_sweep(ctx)
with right:
    st.subheader("Patients who change status")
    with guard("the list of patients who change"):
        changed_patients(ctx)
    st.subheader("Save, load and share")
    with guard("saving and loading"):
        save_load(ctx)
    amendment_sections(ctx)

st.subheader("Compare two scenarios")
with guard("the comparison of two scenarios"):
    compare_panel(ctx)
