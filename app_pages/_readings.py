"""What-if section: contested readings of the protocol text, switchable, with who each one gains or loses.

The choice lives in the session scenario's "readings" (so it is in the URL and in saved
scenario files); widget keys start with "wi_" so "Reset to protocol" clears them.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages._shared import guard, memo
from eligibility.readings import Reading
from eligibility.readings_impact import reading_impact

MAX_IDS = 50  # patient IDs listed per cell
BIG_COHORT = 200_000  # above this, the gained/lost table is computed on request


def _key(name: str) -> str:
    return f"wi_rd_{name}"


def _on_reading(name: str, default: str) -> None:
    data = S.scenario_dict()
    readings = dict(data.get("readings", {}))
    value = st.session_state[_key(name)]
    if value == default:
        readings.pop(name, None)
    else:
        readings[name] = value
    S.change_scenario({**data, "readings": readings})


def _labeller(r: Reading) -> Callable[[str], str]:
    return lambda a: f"{a}{' (default)' if a == r.default else ''}: {r.alternatives[a].wording}"


def _ids(ids: list[str]) -> str:
    more = f" … (+{len(ids) - MAX_IDS})" if len(ids) > MAX_IDS else ""
    return ", ".join(ids[:MAX_IDS]) + more


def readings_section(ctx: S.Context, counts: bool = True, left_out: str = "while suppression is on") -> None:
    """`counts=False` (small-cell suppression on): the choices only — the table of what each
    alternative gains and loses names patients and is one scenario per row, so it is left out."""
    st.subheader("Contested readings of the protocol text")
    st.caption("Each sentence below can be read more than one way. Pick a reading to apply it to the scenario"
               + ("; the table shows, for every alternative, the patients who would become eligible (gained) or "
                  "stop being eligible (lost) compared with the scenario as it stands." if counts else
                  f". (The patients each alternative gains and loses are left out {left_out}.)"))
    with guard("the readings"):
        catalog = S.catalog()
        current = dict(ctx.scenario.readings)
        cols = st.columns(2)
        for i, r in enumerate(catalog.readings.values()):
            key = _key(r.name)
            want = current.get(r.name, r.default)
            if st.session_state.get(key) != want:
                st.session_state[key] = want
            with cols[i % 2]:
                st.selectbox(
                    r.title, list(r.alternatives), key=key, on_change=_on_reading, args=(r.name, r.default),
                    format_func=_labeller(r),
                    help=f"Protocol: “{r.quote}” — criteria {', '.join(r.criteria)}",
                )
        if not counts:
            return
        if len(ctx.cohort) > BIG_COHORT and not st.toggle(
                "Count the patients each reading gains and loses", key="wi_rd_count",
                help="One evaluation per alternative: off by default on large cohorts."):
            return
        table = memo(ctx, ("reading_impact", ctx.disease),
                     lambda: reading_impact(ctx.data.evaluator, ctx.scenario, ctx.cohort.frame, ctx.disease))
        shown = table.assign(gained_ids=table["gained_ids"].map(_ids), lost_ids=table["lost_ids"].map(_ids))[
            ["reading", "alternative", "eligible", "gained", "lost", "current", "default", "wording",
             "gained_ids", "lost_ids"]]
        st.dataframe(
            pd.DataFrame(shown), hide_index=True, key="wi_readings_table",
            column_config={
                "wording": st.column_config.TextColumn("Reading", width="large"),
                "default": st.column_config.CheckboxColumn("Default"),
                "current": st.column_config.CheckboxColumn("In scenario"),
                "gained_ids": st.column_config.TextColumn("Gained (IDs)"),
                "lost_ids": st.column_config.TextColumn("Lost (IDs)"),
            },
        )


def readings_table() -> None:
    """Protocol page: every contested reading with its protocol quote, default and alternatives."""
    rows = [{"Reading": r.name, "Protocol text": r.quote, "Criteria": ", ".join(r.criteria),
             "Default": r.default,
             "Alternatives": " | ".join(f"{k}: {a.wording}" for k, a in r.alternatives.items())}
            for r in S.catalog().readings.values()]
    st.markdown("**Switchable readings** (choose one on the What-if page or in a scenario file as "
                "`readings: {name: alternative}`)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="pr_switchable_readings",
                 column_config={"Protocol text": st.column_config.TextColumn(width="large"),
                                "Alternatives": st.column_config.TextColumn(width="large")})
