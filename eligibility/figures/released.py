"""Bar charts of released counts (small-cell suppression): each bar carries the count as
released ("12", "<5", "*", "n/s") and is drawn at its height only when that count is shown —
a hidden count gets an empty bar on the axis with its text, never its true height.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from . import SERIES_COLORS, STATUS_COLORS, STATUS_PATTERNS, base_layout


def height(text: str) -> int:
    """The height of a released count: its value when shown as a number, else 0."""
    t = str(text).replace(",", "").lstrip("+")
    return int(t) if t.isdigit() else 0


def bars(labels: Sequence[str], texts: Sequence[str], title: str = "", x_title: str = "patients (n)",
         color: str = SERIES_COLORS[0], horizontal: bool = True) -> go.Figure:
    """One series of released counts (e.g. an attrition step per criterion)."""
    hs = [height(t) for t in texts]
    top = max(hs + [1])
    bar = go.Bar(x=hs, y=list(labels), orientation="h") if horizontal else go.Bar(x=list(labels), y=hs)
    bar.update(text=list(texts), textposition="outside", cliponaxis=False, marker_color=color,
               customdata=list(texts), hovertemplate="<b>%{" + ("y" if horizontal else "x")
               + "}</b>: %{customdata} patients<extra></extra>")
    fig = go.Figure(bar)
    base_layout(fig, title, height=max(320, 22 * len(hs) + 120) if horizontal else 420)
    if horizontal:
        fig.update_yaxes(autorange="reversed", type="category", title=None)
        fig.update_xaxes(title=x_title, range=[0, top * 1.3])
    else:
        fig.update_yaxes(title=x_title, range=[0, top * 1.25])
    fig.update_layout(showlegend=False)
    return fig


def grouped(categories: Sequence[str], series: Mapping[str, Sequence[str]], title: str = "",
            y_title: str = "patients (n)") -> go.Figure:
    """Several series of released counts over the same categories (e.g. age bands for the
    screened, eligible and pending patients); statuses keep their colours and patterns."""
    fig = go.Figure()
    top = 1
    for i, (name, texts) in enumerate(series.items()):
        hs = [height(t) for t in texts]
        top = max([top, *hs])
        fig.add_trace(go.Bar(
            name=name, x=list(categories), y=hs, text=list(texts), textposition="outside", cliponaxis=False,
            customdata=list(texts), hovertemplate=f"{name} · %{{x}}: %{{customdata}} patients<extra></extra>",
            marker=dict(color=STATUS_COLORS.get(name, SERIES_COLORS[i % len(SERIES_COLORS)]),
                        pattern=dict(shape=STATUS_PATTERNS.get(name, "")),
                        line=dict(color="#333333", width=0.5))))
    base_layout(fig, title, height=420)
    fig.update_layout(barmode="group", margin=dict(t=90 if title else 50))
    fig.update_yaxes(title=y_title, range=[0, top * 1.25], tickformat=",d")
    return fig
