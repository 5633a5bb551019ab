"""Patient-level figures: near misses per cause, and a patient's criteria by outcome.

Pure functions of engine outputs (`explain.near_misses`, `explain.explain_patient`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import SERIES_COLORS, STATUS_COLORS, base_layout

# Outcome of a criterion for one patient: colour, symbol and words (never colour alone).
# Plain symbols (not emoji) so they render with common fonts, including headless browsers.
OUTCOME_STYLE = {
    "pass": ("#009E73", "✓", "passes"),
    "fail": (STATUS_COLORS["ineligible"], "✗", "fails"),
    "unknown": (STATUS_COLORS["pending"], "?", "undecided (missing or to verify)"),
    "not assessed": ("#999999", "–", "not assessed (column absent)"),
    "switched off": ("#999999", "○", "switched off in the scenario"),
    "n/a": ("#999999", "–", "not applicable"),
}
OUTCOME_ORDER = ("fail", "unknown", "pass", "not assessed", "switched off", "n/a")


def outcome_label(outcome: str) -> str:
    """'✗ fails' etc.: symbol plus words for a criterion outcome."""
    _, icon, words = OUTCOME_STYLE.get(outcome, ("#999999", "•", outcome))
    return f"{icon} {words}"


def near_miss_by_cause(near: pd.DataFrame, title: str = "") -> go.Figure:
    """Horizontal bars: near-miss patients per cause, labelled with the count and the
    median distance to the threshold (in the field's unit)."""
    if near.empty:
        summary = pd.DataFrame(columns=["cause", "patients", "median_distance", "unit"])
    else:
        summary = (near.groupby("cause", sort=False)
                   .agg(patients=("patient_id", "size"), median_distance=("distance", "median"),
                        unit=("unit", "first"))
                   .reset_index()
                   .sort_values(["patients", "cause"], ascending=[True, False], kind="stable"))
    text = [f"{n:,} patient{'s' if n != 1 else ''} · median miss {d:+.3g} {u}".rstrip()
            for n, d, u in zip(summary["patients"], summary["median_distance"], summary["unit"], strict=True)]
    fig = go.Figure(go.Bar(
        x=summary["patients"], y=summary["cause"], orientation="h", text=text,
        textposition="outside", cliponaxis=False, marker=dict(color=SERIES_COLORS[0]),
        hovertemplate="%{y}<br>%{x:,} patients<extra></extra>", name="Near misses",
    ))
    base_layout(fig, title, height=max(220, 34 * len(summary) + 100))
    top = float(summary["patients"].max()) if len(summary) else 1.0
    fig.update_xaxes(title_text="Patients (n) whose only failing cause is this limit",
                     range=[0, max(top, 1.0) * 1.6], tickformat=",d")
    fig.update_yaxes(title_text="", automargin=True)
    fig.update_layout(showlegend=False)
    return fig


def patient_outcomes(explain: pd.DataFrame, title: str = "") -> go.Figure:
    """One bar per outcome: how many of the patient's applicable criteria (or parts)
    pass, fail, are unknown or are not assessed. Colour, icon and words per bar."""
    if explain.empty:
        per_unit = pd.Series(dtype="string")
    else:
        per_unit = explain.drop_duplicates("criterion")["outcome"]
    counts = per_unit.value_counts()
    outcomes = [o for o in OUTCOME_ORDER if o in counts.index]
    n = [int(counts[o]) for o in outcomes]
    fig = go.Figure(go.Bar(
        x=n, y=[outcome_label(o) for o in outcomes], orientation="h",
        text=[f"{k}" for k in n], textposition="outside", cliponaxis=False,
        marker=dict(color=[OUTCOME_STYLE[o][0] for o in outcomes]),
        hovertemplate="%{y}: %{x} criteria<extra></extra>", name="Criteria",
    ))
    base_layout(fig, title, height=max(180, 40 * len(outcomes) + 90))
    top = max(n) if n else 1
    fig.update_xaxes(title_text="Criteria / parts (n)", range=[0, top * 1.2], dtick=max(1, int(np.ceil(top / 8))))
    fig.update_yaxes(title_text="", autorange="reversed", automargin=True)
    fig.update_layout(showlegend=False)
    return fig
