"""What-if section: the smallest relaxations of the protocol that reach a target number of eligible patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages._shared import guard
from eligibility.evaluate import ELIGIBLE
from eligibility.relax import RelaxError, relax

MAX_IDS = 50


def _changes(o) -> str:
    parts = [f"{k} = {', '.join(v) if isinstance(v, list) else v}" for k, v in o.parameters.items()]
    return "; ".join(parts + [f"{c} off" for c in o.disabled]) or "no change needed"


def relax_section(ctx: S.Context) -> None:
    st.subheader("Smallest relaxation that reaches a target")
    catalog = S.catalog()
    scope = ctx.disease or "all diseases"
    sl = slice(0, ctx.base.n) if ctx.disease is None else ctx.base.bounds[ctx.disease]
    base = int(np.count_nonzero(ctx.base.status[sl] == ELIGIBLE))
    st.caption(f"From the protocol as registered ({base:,} eligible, {scope}): the fewest parameter changes and "
               "switched-off criteria, then the nearest to the protocol, that reach the target. Safety criteria "
               "(locked in the catalog) and the criteria you lock below are never relaxed.")
    unlocked = [c.id for c in catalog.criteria if not c.locked]
    with st.form("wi_relax_form", border=False):
        target = st.number_input("Eligible patients wanted", min_value=0, value=base + max(1, base // 10),
                                 step=1, key="wi_relax_target")
        lock = st.multiselect("Also lock", unlocked, key="wi_relax_lock",
                              help="Criteria the search may neither switch off nor relax.")
        go = st.form_submit_button("Search", icon=":material/search:")
    key = ("wi:relax", ctx.disease, int(target), tuple(sorted(lock)))
    if not go and key not in ctx.base._memo:
        return
    with guard("the relaxation search"):
        try:
            with st.spinner("Searching…"):
                options = memo_base(ctx, key, lambda: relax(ctx.data.evaluator, int(target), ctx.disease, lock))
        except RelaxError as e:
            st.error("The search could not run:")
            st.text(str(e))
            return
        if not options:
            st.warning(f"No relaxation within the what-if ranges reaches {int(target):,} eligible ({scope}) "
                       "with the locked criteria kept.")
            return
        ids = ctx.cohort.frame["patient_id"].astype("string").to_numpy()
        rows = [{"rank": i, "changes": _changes(o), "n_changes": o.changes, "distance": round(o.distance, 3),
                 "eligible": o.eligible, "gained": o.gained,
                 "gained_ids": ", ".join(str(ids[r]) for r in o.gained_rows[:MAX_IDS])
                 + (f" … (+{len(o.gained_rows) - MAX_IDS})" if len(o.gained_rows) > MAX_IDS else "")}
                for i, o in enumerate(options, 1)]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="wi_relax_table",
                     column_config={"changes": st.column_config.TextColumn("Changes", width="large"),
                                    "gained_ids": st.column_config.TextColumn("Gained (IDs)")})
        pick = st.selectbox("Option", [r["rank"] for r in rows], key="wi_relax_pick",
                            format_func=lambda i: f"{i}. {rows[i - 1]['changes']}")
        if st.button("Apply this option as the scenario", key="wi_relax_apply", icon=":material/check:"):
            o = options[pick - 1]
            S.set_scenario({"name": f"relaxation to {int(target)}", "parameters": o.parameters,
                            "disabled": o.disabled})
            st.rerun()


def memo_base(ctx: S.Context, key: tuple, build):
    """Kept with the protocol evaluation: the search does not depend on the active scenario."""
    store = ctx.base._memo
    if key not in store:
        store[key] = build()
    return store[key]

