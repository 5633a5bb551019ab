"""Demographics figure: age bands and sex of the screened, eligible and pending patients.

A pure function of `demographics.pool` rows for one group; bars carry their counts.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..demographics import AGE_BANDS, POPULATIONS, SEXES
from . import SERIES_COLORS, STATUS_COLORS, STATUS_PATTERNS, base_layout

POP_COLORS = {"screened": SERIES_COLORS[0], "eligible": STATUS_COLORS["eligible"],
              "pending": STATUS_COLORS["pending"]}
POP_PATTERNS = {"screened": "", "eligible": STATUS_PATTERNS["eligible"], "pending": STATUS_PATTERNS["pending"]}


def demographics_figure(rows: pd.DataFrame, title: str = "") -> go.Figure:
    """Two panels: patients per age band, and per sex, for each population of one group."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], horizontal_spacing=0.08,
                        subplot_titles=("Age band (years)", "Sex"))
    bands = [b for b in AGE_BANDS if b != "age missing" or rows[b].sum() > 0]
    sexes = [s for s in SEXES if s != "sex missing" or rows[s].sum() > 0]
    top = 1
    for pop in POPULATIONS:
        r = rows[rows["population"] == pop]
        if r.empty:
            continue
        r = r.iloc[0]
        for col, cats in ((1, bands), (2, sexes)):
            y = [int(r[c]) for c in cats]
            top = max(top, *y)
            fig.add_trace(go.Bar(
                x=list(cats), y=y, name=pop, legendgroup=pop, showlegend=col == 1,
                text=[f"{v:,}" for v in y], textposition="outside", cliponaxis=False,
                marker=dict(color=POP_COLORS[pop], pattern=dict(shape=POP_PATTERNS[pop]),
                            line=dict(color="#333333", width=0.5)),
                hovertemplate=f"{pop}: %{{y:,}} patients, %{{x}}<extra></extra>",
            ), row=1, col=col)
    base_layout(fig, title, height=420)
    # Legend under the plot: above it, it would cover the panel titles.
    fig.update_layout(barmode="group", margin=dict(t=80 if title else 40, b=70),
                      legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0))
    fig.update_yaxes(title_text="Patients (n)", range=[0, top * 1.15], row=1, col=1)
    fig.update_yaxes(range=[0, top * 1.15], row=1, col=2)
    return fig
