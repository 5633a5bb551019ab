"""Overview figures: screening status per disease and data missingness.

Pure functions of engine outputs (`attribution.status_counts`, `quality.missingness`);
every bar carries its value as text and statuses also differ by pattern.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..fields import DISEASE_NAMES
from . import SERIES_COLORS, STATUS_COLORS, STATUS_PATTERNS, STATUS_TITLES, base_layout

STATUSES = ("eligible", "pending", "ineligible")
GROUP_TITLES = {"other": "Other diagnosis", "missing": "Diagnosis missing", "All": "All patients"}


def group_title(group: str) -> str:
    """Axis label for a disease group: the code and, for the five indications, nothing more
    (the full name goes into the hover text to keep the axis short)."""
    return GROUP_TITLES.get(group, group)


def status_label(n: int, pct: float) -> str:
    """Bar text: count over share of the group, e.g. '504<br>16.8%' (two short lines fit a bar)."""
    share = "–" if pct is None or not np.isfinite(pct) else f"{pct:.1f}%"
    return f"{int(n):,}<br>{share}"


def status_by_group(counts: pd.DataFrame, groups: list[str] | None = None, title: str = "") -> go.Figure:
    """Grouped bars per disease group: patients eligible, pending and ineligible.

    `counts` is `attribution.status_counts(ev)` (index = group). `groups` selects and
    orders the groups shown (default: every row). Each bar is labelled with its count
    and its percentage of the group's screened patients; statuses differ by colour
    (Okabe-Ito) and by fill pattern."""
    groups = list(counts.index) if groups is None else [g for g in groups if g in counts.index]
    sub = counts.loc[groups]
    x = [group_title(g) for g in groups]
    fig = go.Figure()
    for status in STATUSES:
        n = sub[status].to_numpy()
        pct = sub[f"{status}_pct"].to_numpy(dtype=float)
        fig.add_trace(go.Bar(
            name=STATUS_TITLES[status], x=x, y=n,
            text=[status_label(a, b) for a, b in zip(n, pct, strict=True)],
            textposition="outside", cliponaxis=False, textfont=dict(size=12),
            marker=dict(color=STATUS_COLORS[status], pattern=dict(shape=STATUS_PATTERNS[status]),
                        line=dict(color="#333333", width=0.5)),
            customdata=np.column_stack([sub["screened"].to_numpy(), pct,
                                        [DISEASE_NAMES.get(g, group_title(g)) for g in groups]]),
            hovertemplate=("%{customdata[2]}<br>" + STATUS_TITLES[status]
                           + ": %{y:,} patients (%{customdata[1]:.1f}% of %{customdata[0]:,} screened)"
                           "<extra></extra>"),
        ))
    base_layout(fig, title, height=420)
    top = float(sub[list(STATUSES)].to_numpy().max()) if len(sub) else 1.0
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05,
                      uniformtext=dict(minsize=10, mode="show"))
    if title:  # title on its own line above the legend
        fig.update_layout(margin=dict(t=90), title=dict(y=0.98, yanchor="top"))
    fig.update_yaxes(title_text="Patients (n)", range=[0, max(top, 1.0) * 1.22], tickformat=",d")
    if top < 10:  # whole patients: no repeated 0, 1, 1, 2 ticks on a small cohort
        fig.update_yaxes(dtick=1)
    fig.update_xaxes(title_text="Disease group")
    return fig


def missingness_bars(miss: pd.DataFrame, top: int = 25, title: str = "") -> go.Figure:
    """Horizontal bars: share of empty cells per contract field present in the file,
    the `top` fields with the most empty cells. `miss` is `quality.missingness(...)`."""
    present = miss[miss["present"] & (miss["missing"] > 0)]
    present = present.sort_values(["missing_pct", "field"], ascending=[False, True], kind="stable").head(top)
    present = present.iloc[::-1]  # largest at the top of a horizontal bar chart
    fig = go.Figure(go.Bar(
        x=present["missing_pct"], y=present["label"], orientation="h",
        text=[f"{p:.1f}% ({m:,})" for p, m in zip(present["missing_pct"], present["missing"], strict=True)],
        textposition="outside", cliponaxis=False,
        marker=dict(color=SERIES_COLORS[0]),
        customdata=np.column_stack([present["field"], present["criteria"].replace("", "—")]),
        hovertemplate="%{y} (%{customdata[0]})<br>%{x:.1f}% empty<br>criteria: %{customdata[1]}<extra></extra>",
        name="Empty cells",
    ))
    base_layout(fig, title, height=max(220, 28 * len(present) + 90))
    fig.update_xaxes(title_text="Empty cells (% of patients)", range=[0, 118], ticksuffix="%")
    fig.update_yaxes(title_text="", automargin=True)
    fig.update_layout(showlegend=False)
    return fig
