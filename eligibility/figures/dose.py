"""Dose-cohort figures: assignment per dose level × disease, and the escalation timeline.

Pure functions of the dose engine's results (``assign_cohorts(...).counts``,
``project_timeline(...)``). Bars carry their values as text; diseases differ by colour
(Okabe-Ito) and by fill pattern, and the timeline's two phases differ by pattern too,
so colour is never the only carrier of meaning.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..fields import DISEASE_NAMES
from . import SERIES_COLORS, base_layout

DOSE_UNIT = "×10⁹ cells"
BEYOND_CAPACITY = "beyond capacity"
PATTERNS = ["", "/", "\\", "x", ".", "-", "|", "+"]
FILL_NAME = "Screening to fill the cohort"
WINDOW_NAME = "DLT window"
END_PLAN_NAME = "End of the expected path"
END_SIM_NAME = "Simulated end of the trial (p10–p90)"
MS_PER_DAY = 86_400_000


def _disease_style(i: int) -> dict:
    return dict(color=SERIES_COLORS[i % len(SERIES_COLORS)], pattern=dict(shape=PATTERNS[i % len(PATTERNS)]),
                line=dict(color="#333333", width=0.5))


def assignment_bars(
    counts: pd.DataFrame,
    doses: dict[str, float] | None = None,
    title: str = "",
    kind: str = "eligible",
    include_beyond: bool = True,
) -> go.Figure:
    """Stacked bars: patients per dose level (x) and disease (one trace per disease).

    ``counts``: ``assign_cohorts(...).counts`` (or ``.pending_counts``) — rows are dose
    levels (plus "beyond capacity"), columns diseases plus "total". Each segment is
    labelled with its count (empty segments unlabelled) and each stack with its total;
    ``doses`` ({label: dose}) adds the dose in ×10⁹ cells to the axis labels;
    ``include_beyond=False`` leaves out the "beyond capacity" row (it can dwarf the levels).
    """
    doses = doses or {}
    if not include_beyond:
        counts = counts.drop(index=BEYOND_CAPACITY, errors="ignore")
    diseases = [c for c in counts.columns if c != "total"]
    levels = [str(i) for i in counts.index]
    x = [f"{lv}<br>{doses[lv]:g} {DOSE_UNIT}" if lv in doses else lv for lv in levels]
    fig = go.Figure()
    for i, d in enumerate(diseases):
        y = counts[d].to_numpy(dtype=np.int64)
        fig.add_trace(go.Bar(
            name=d, x=x, y=y,
            text=[str(v) if v else "" for v in y], textposition="inside", insidetextanchor="middle",
            marker=_disease_style(i),
            hovertemplate=(f"{DISEASE_NAMES.get(d, d)}<br>%{{x}}<br>%{{y}} {kind} patients<extra></extra>"),
        ))
    totals = (counts["total"] if "total" in counts else counts[diseases].sum(axis=1)).to_numpy(dtype=np.int64)
    fig.add_trace(go.Scatter(
        name="Total", x=x, y=totals, mode="text", text=[f"{v} total" for v in totals],
        textposition="top center", showlegend=False, hoverinfo="skip", cliponaxis=False,
    ))
    base_layout(fig, title, height=380)
    top = float(totals.max()) if len(totals) else 1.0
    fig.update_layout(barmode="stack", bargap=0.35, legend_title_text="Disease",
                      legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02))
    fig.update_yaxes(title_text=f"{kind.capitalize()} patients (n)", range=[0, max(top, 1.0) * 1.2],
                     tickformat=",d", rangemode="tozero")
    fig.update_xaxes(title_text="Dose level")
    return fig


def _fmt_date(ts) -> str:
    return "—" if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d")


def timeline_figure(timeline, title: str = "", start_date=None) -> go.Figure:
    """Gantt-like chart of the escalation calendar (``project_timeline`` result).

    One row per cohort of the expected path (the plan the assignment fills), each with two
    bars: the screening period until the cohort is full, then its DLT window (hatched);
    bar texts that do not fit are hidden (the hover and the page's table carry them). A
    dashed line marks the end of the expected path (date in its legend entry); with a
    simulation interval, an extra row shows the simulated end of the trial (p10, median,
    p90, labelled with dates).
    """
    c = timeline.cohorts
    start = pd.Timestamp(start_date if start_date is not None else c["open_date"].iloc[0]).normalize()

    def at(day: float):
        return (start + pd.Timedelta(days=float(day))).round("s").to_pydatetime()

    y = [f"Cohort {int(r.cohort)} · {r.dose_level}" for r in c.itertuples(index=False)]
    fill = (c["filled_day"] - c["open_day"]).to_numpy(dtype=float)
    window = (c["window_end_day"] - c["filled_day"]).to_numpy(dtype=float)
    fig = go.Figure()
    fig.add_trace(go.Bar(
        name=FILL_NAME, orientation="h", y=y, x=fill * MS_PER_DAY,
        base=[at(d) for d in c["open_day"]],
        text=[f"fill {v:.0f} days" for v in fill], textposition="inside", insidetextanchor="middle",
        marker=dict(color=SERIES_COLORS[0], line=dict(color="#333333", width=0.5)),
        customdata=np.column_stack([fill, [_fmt_date(d) for d in c["open_date"]],
                                    [_fmt_date(d) for d in c["filled_date"]]]),
        hovertemplate="%{y}<br>screening %{customdata[1]} → %{customdata[2]}"
                      " (%{customdata[0]:.1f} days)<extra></extra>",
    ))
    fig.add_trace(go.Bar(
        name=f"{WINDOW_NAME} ({timeline.dlt_window_days} days)", orientation="h", y=y, x=window * MS_PER_DAY,
        base=[at(d) for d in c["filled_day"]],
        text=[f"DLT {v:.0f} days" for v in window], textposition="inside", insidetextanchor="middle",
        marker=dict(color=SERIES_COLORS[1], pattern=dict(shape="/"), line=dict(color="#333333", width=0.5)),
        customdata=np.column_stack([window, [_fmt_date(d) for d in c["filled_date"]],
                                    [_fmt_date(d) for d in c["window_end_date"]]]),
        hovertemplate="%{y}<br>DLT window %{customdata[1]} → %{customdata[2]}"
                      " (%{customdata[0]:.0f} days)<extra></extra>",
    ))
    end_day = timeline.end_plan_day
    rows = list(y)
    if math.isfinite(end_day):
        end = at(end_day)
        fig.add_trace(go.Scatter(
            name=f"{END_PLAN_NAME} ({_fmt_date(timeline.end_plan_date)})", x=[end, end],
            y=[y[0], y[-1]], mode="lines", line=dict(color="#000000", dash="dash", width=1.5),
            hovertemplate=f"{END_PLAN_NAME}: {_fmt_date(timeline.end_plan_date)}<extra></extra>",
        ))
    iv = timeline.interval
    if iv is not None and all(math.isfinite(iv[k]) for k in ("p10_day", "p50_day", "p90_day")):
        row = "Simulated end"
        rows.append(row)
        xs = [at(iv["p10_day"]), at(iv["p50_day"]), at(iv["p90_day"])]
        labels = [f"p10 {_fmt_date(iv['p10_date'])}", f"median {_fmt_date(iv['p50_date'])}",
                  f"p90 {_fmt_date(iv['p90_date'])}"]
        if iv["p10_day"] == iv["p90_day"]:  # one date for all three: say it once, not three times on top
            labels = ["", f"p10 = median = p90 {_fmt_date(iv['p50_date'])}", ""]
        fig.add_trace(go.Scatter(
            name=END_SIM_NAME, x=xs, y=[row] * 3, mode="lines+markers+text",
            marker=dict(symbol=["line-ns-open", "diamond", "line-ns-open"], size=[16, 12, 16],
                        color="#D55E00", line=dict(width=2, color="#D55E00")),
            line=dict(color="#D55E00", width=3),
            text=labels, textposition=["bottom center", "top center", "bottom center"],
            hovertemplate="%{text}<extra></extra>", cliponaxis=False,
        ))
    base_layout(fig, title, height=max(260, 34 * len(rows) + 140))
    fig.update_layout(barmode="overlay", bargap=0.3, uniformtext=dict(minsize=10, mode="hide"))
    fig.update_yaxes(categoryorder="array", categoryarray=rows[::-1], title_text=None, type="category")
    fig.update_xaxes(type="date", title_text="Date")
    return fig
