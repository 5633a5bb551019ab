"""What-if figures and tables: threshold sweep chart and the baseline-vs-scenario summary.

Pure functions of engine outputs (`whatif.sweep`, `screen.status_change`,
`attribution.status_counts`); no Streamlit.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import FONT, STATUS_COLORS, STATUS_TITLES

NEUTRAL = "#4D4D4D"


@cache
def parameter_users(catalog) -> dict[str, tuple[str, ...]]:
    """Parameter name → IDs of the criterion parts that read it (computed once per catalog)."""
    out: dict[str, list[str]] = {name: [] for name in catalog.parameters}
    for u in catalog.units:
        for name in sorted(catalog.params_of(u.rule)):
            out.setdefault(name, []).append(u.id)
    return {k: tuple(v) for k, v in out.items()}


def fmt_value(value, unit: str = "") -> str:
    """A parameter value for people: 65 years, 2.5 ×10⁹/L, {limited}, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, frozenset | set | list | tuple):
        return "{" + ", ".join(sorted(value)) + "}" if value else "(none)"
    if isinstance(value, int | float | np.integer | np.floating):
        v = float(value)
        text = f"{v:,.0f}" if v.is_integer() else f"{v:,.2f}".rstrip("0").rstrip(".")
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text


def sweep_figure(df: pd.DataFrame, title: str = "") -> go.Figure:
    """Eligible and pending counts across a parameter's what-if range, with the protocol
    default and the scenario's current value marked (dashed / solid vertical lines)."""
    label, unit = df.attrs.get("label", df.attrs.get("param", "value")), df.attrs.get("unit", "")
    default, current = df.attrs.get("default"), df.attrs.get("current")
    x = df["value"].to_numpy(float)
    xtitle = f"{label} ({unit})" if unit else label
    # A suppressed sweep (access/joint.sweep) gives each count as text with a height that is
    # None where it is hidden: the line breaks there and the point is drawn on the axis with
    # its text ("<5", "*"), never at its true height.
    released = "eligible_height" in df
    fig = go.Figure()
    for s, dash, symbol, width in (("eligible", None, "circle", 2.5), ("pending", "dash", "square", 2)):
        name = STATUS_TITLES[s]
        y = df[f"{s}_height"].astype(object).where(df[f"{s}_height"].notna(), None) if released else df[s]
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", name=name, text=df[s].astype(str) if released else None,
            line=dict(color=STATUS_COLORS[s], width=width, dash=dash), marker=dict(symbol=symbol, size=7),
            hovertemplate=f"{label} %{{x}} {unit}<br>{s}: %{{{'text' if released else 'y:,'}}} patients<extra></extra>",
        ))
        if released:
            hid = df[f"{s}_height"].isna().to_numpy()
            if hid.any():
                fig.add_trace(go.Scatter(
                    x=x[hid], y=[0] * int(hid.sum()), mode="markers+text", text=df[s][hid].astype(str),
                    textposition="top center", showlegend=False, name=f"{s} (hidden)",
                    marker=dict(symbol="x-thin-open", size=8, color=STATUS_COLORS[s]),
                    hovertemplate=f"{label} %{{x}} {unit}<br>{s}: %{{text}} (suppressed)<extra></extra>"))
    heights = [df[f"{s}_height"].dropna() if released else df[s] for s in ("eligible", "pending")]
    ymax = float(max([h.max() for h in heights if len(h)] + [1])) if len(df) else 1.0

    def mark(v, text: str, dash: str, yshift: float) -> None:
        if v is None or not len(x):
            return
        v = float(v)
        i = int(np.argmin(np.abs(x - v)))
        shown = df["eligible"].iloc[i] if released else f"{int(df['eligible'].iloc[i]):,}"
        at = f"<br>{shown} eligible" if np.isclose(x[i], v) else ""
        if at and held and text == "protocol":
            at += "<br>(other what-if changes kept)"
        # What add_vline draws (a line across the plot's height at x); shapes and labels are set
        # in one layout update below (add_vline/add_annotation each redo subplot bookkeeping).
        shapes.append(dict(type="line", x0=v, x1=v, xref="x", y0=0, y1=1, yref="y domain",
                           line=dict(color=NEUTRAL, width=1.5, dash=dash)))
        # Short lines, anchored by where the line is, so the label never leaves a narrow chart.
        lo, hi = float(np.min(x)), float(np.max(x))
        pos = (v - lo) / (hi - lo) if hi > lo else 0.5
        anchor = "left" if pos < 0.35 else ("right" if pos > 0.65 else "center")
        labels.append(dict(x=v, y=ymax * yshift, text=f"{text}: {fmt_value(v, unit)}{at}", showarrow=False,
                           xanchor=anchor, xshift={"left": 4, "right": -4, "center": 0}[anchor],
                           bgcolor="rgba(255,255,255,0.85)", font=dict(size=11), yanchor="top"))

    shapes: list[dict] = []
    labels: list[dict] = []
    held = bool(df.attrs.get("held"))  # the scenario changes other parameters or criteria too
    same = default is not None and current is not None and np.isclose(float(default), float(current))
    # Labels sit above the curves (the y range leaves them a band) so they hide no data.
    if same:
        mark(default, "protocol = scenario", "dash", 1.72)
    else:  # two labels stacked in the band above the curves
        mark(default, "protocol", "dash", 1.72)
        mark(current, "scenario", "solid", 1.38)
    # figures.base_layout, with the template set last: validating a template copies it whole,
    # the slowest step of the chart on every What-if rerun; the validated copy is made once.
    # One layout update (each update_* call validates and walks the layout again).
    fig.update_layout(
        **(dict(shapes=shapes, annotations=labels) if shapes else {}),
        title=title or None, font=FONT, margin=dict(l=10, r=10, t=95 if title else 50, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0), height=440,
        xaxis=dict(title=xtitle), yaxis=dict(title="patients (n)", rangemode="tozero", range=[0, ymax * 1.75]))
    return with_template(fig, "plotly_white")


@cache
def _template(name: str) -> dict:
    """A registered plotly template as a validated figure holds it (built once per process)."""
    return go.Figure().update_layout(template=name).layout.to_plotly_json()["template"]


def with_template(fig: go.Figure, name: str) -> go.Figure:
    """`fig` with layout.template = name: the same figure as update_layout(template=name),
    built from a once-validated copy of the template instead of validating it again."""
    layout = fig.layout.to_plotly_json()
    layout["template"] = copy.deepcopy(_template(name))
    return go.Figure(data=fig.data, layout=layout, _validate=False)


def delta_table(change: pd.DataFrame, base_counts: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Per group: eligible before/after, gained, lost, net, pending before/after, changed status."""
    out = change[["eligible_before", "eligible_after", "gained", "lost", "net", "changed"]].copy()
    out.insert(5, "pending_before", base_counts["pending"].reindex(out.index).fillna(0).astype(int))
    out.insert(6, "pending_after", counts["pending"].reindex(out.index).fillna(0).astype(int))
    out.insert(0, "screened", counts["screened"].reindex(out.index).fillna(0).astype(int))
    return out.reset_index()
