"""Screen-failure figures: attrition waterfall and UpSet-style failure combinations.

Pure functions of engine results (`eligibility.attribution` frames); no Streamlit.
Each builder has a `*_data` step (a small DataFrame, testable) and a figure step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..labels import label
from . import SERIES_COLORS, STATUS_COLORS, base_layout

BLOCK_NAMES = {"common": "common"}
NEUTRAL = "#4D4D4D"
LIGHT = "#D9D9D9"


# -- attrition waterfall ------------------------------------------------------------------


def waterfall_data(att: pd.DataFrame, hide_zero: bool = False) -> pd.DataFrame:
    """Steps of the attrition waterfall from `attribution.attrition(ev, group)`.

    Rows: "Screened" (absolute), one row per criterion in catalog order (negative:
    patients whose first failing criterion it is), then "Remaining (eligible + pending)"
    (total). `hide_zero` drops criteria that exclude no one (the sums are unchanged).
    Columns: step, measure, value, excluded, remaining, text.
    """
    screened = int(att.attrs.get("screened", 0))
    eligible, pending = int(att.attrs.get("eligible", 0)), int(att.attrs.get("pending", 0))
    rows = [{"step": "Screened", "measure": "absolute", "value": screened, "excluded": 0,
             "remaining": screened, "text": "patients screened"}]
    for r in att.itertuples(index=False):
        if hide_zero and r.excluded == 0:
            continue
        rows.append({"step": r.criterion, "measure": "relative", "value": -int(r.excluded),
                     "excluded": int(r.excluded), "remaining": int(r.remaining), "text": r.text})
    remaining = screened - int(att["excluded"].sum()) if len(att) else screened
    rows.append({"step": "Remaining (eligible + pending)", "measure": "total", "value": remaining,
                 "excluded": 0, "remaining": remaining,
                 "text": f"{eligible:,} eligible + {pending:,} pending"})
    df = pd.DataFrame(rows)
    df["label"] = [s if m != "relative" else _axis_label(s) for s, m in zip(df["step"], df["measure"], strict=True)]
    df.attrs.update(screened=screened, eligible=eligible, pending=pending)
    return df


def _axis_label(cid: str, width: int = 38) -> str:
    """'EXC-3 · Hepatitis B or C' for an axis, shortened to `width` characters."""
    text = label(cid)
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _pct(x: float, n: int) -> str:
    return f"{100.0 * x / n:.1f}%" if n else "–"


def waterfall_figure(steps: pd.DataFrame, title: str = "") -> go.Figure:
    """Horizontal waterfall (first step at the top), every bar labelled with its count."""
    n = int(steps.attrs.get("screened", steps["value"].iloc[0] if len(steps) else 0))
    labels = []
    for r in steps.itertuples(index=False):
        if r.measure == "relative":
            labels.append(f"−{r.excluded:,} ({_pct(r.excluded, n)})" if r.excluded else "0")
        else:
            labels.append(f"{r.value:,} patients ({_pct(r.value, n)})")
    hover = [f"<b>{label(s) if r == 'relative' else s}</b><br>{t}<br>excluded: {e:,} patients<br>"
             f"remaining: {m:,} patients"
             for s, r, t, e, m in zip(steps["step"], steps["measure"], steps["text"].map(_wrap),
                                      steps["excluded"], steps["remaining"], strict=True)]
    y = steps["label"] if "label" in steps else steps["step"]
    fig = go.Figure(go.Waterfall(
        orientation="h", y=y, x=steps["value"], measure=steps["measure"],
        text=labels, textposition="outside", cliponaxis=False, hovertext=hover, hoverinfo="text",
        connector=dict(line=dict(color=LIGHT, width=1)),
        decreasing=dict(marker=dict(color=STATUS_COLORS["ineligible"])),
        increasing=dict(marker=dict(color=STATUS_COLORS["eligible"])),
        totals=dict(marker=dict(color=SERIES_COLORS[0])),
        name="patients",
    ))
    base_layout(fig, title, height=max(320, 22 * len(steps) + 110))
    fig.update_yaxes(autorange="reversed", title=None, type="category")
    fig.update_xaxes(title="patients (n)", rangemode="tozero", range=[0, max(n, 1) * 1.38])
    fig.update_layout(showlegend=False)
    return fig


def _wrap(text: str, width: int = 70) -> str:
    words, lines, cur = str(text).split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width and cur:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return "<br>".join(lines)


# -- per-criterion table ------------------------------------------------------------------

TABLE_COLUMNS = [
    "label", "applicable",
    "all_reasons", "all_reasons_pct", "first_reason", "first_reason_pct",
    "sole_reason", "sole_reason_pct", "unknown", "unknown_pct",
]


def criterion_display(table: pd.DataFrame, group: str | None = None, sort: str = "impact") -> pd.DataFrame:
    """`attribution.criterion_table` reduced to the columns the page shows (a criterion's ID
    with its short name first; the full text stays in `text`, the ID in `id`), for one disease
    only the common criteria and that disease's block. `sort`: "impact" (sole reason, then all
    reasons, largest first) or "catalog" (attrition order)."""
    if group not in (None, "All"):
        table = table[table["block"].isin(["common", group])]
    kinds = table["kind"].map({"inclusion": "incl.", "exclusion": "excl."})
    table = table.assign(label=[f"{label(i)} ({k})" for i, k in zip(table["id"], kinds, strict=True)])
    if sort == "impact":
        table = table.sort_values(["sole_reason", "all_reasons", "unknown"], ascending=False, kind="stable")
    cols = [c for c in TABLE_COLUMNS if c in table.columns] + ["id", "text"]
    return table[cols].reset_index(drop=True)


# -- UpSet-style failure combinations --------------------------------------------------------


def upset_data(combos: pd.DataFrame, totals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(combinations, sets) for the UpSet chart.

    combinations: one row per combination (as given, most common first) with a label.
    sets: the criteria that occur in any shown combination, with their total failures
    (from `criterion_totals`), ordered largest first.
    """
    combos = combos.reset_index(drop=True).copy()
    combos["label"] = [" + ".join(label(x) for x in c) for c in combos["criteria"]] if len(combos) else []
    used = list(dict.fromkeys(c for crits in combos["criteria"] for c in crits)) if len(combos) else []
    tot = totals.set_index("criterion")["failed"] if len(totals) else pd.Series(dtype=int)
    sets = pd.DataFrame({"criterion": used, "failed": [int(tot.get(c, 0)) for c in used]})
    sets = sets.sort_values("failed", ascending=False, kind="stable").reset_index(drop=True)
    return combos, sets


def upset_figure(combos: pd.DataFrame, sets: pd.DataFrame, title: str = "") -> go.Figure:
    """Bars of combination counts above a dot matrix of criteria, with set sizes at the left."""
    k, m = len(combos), len(sets)
    fig = make_subplots(
        rows=2, cols=2, shared_xaxes=False, shared_yaxes=False,
        column_widths=[0.22, 0.78], row_heights=[0.55, 0.45],
        horizontal_spacing=0.02, vertical_spacing=0.03,
        specs=[[None, {"type": "xy"}], [{"type": "xy"}, {"type": "xy"}]],
    )
    if k == 0 or m == 0:
        fig.add_annotation(text="No ineligible patients in this selection", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
        return base_layout(fig, title, height=300)
    xs = list(range(k))
    ys = list(range(m))  # row 0 at the top (y axis reversed)
    # Released counts (small-cell suppression): "text" columns give each count as shown and
    # `count` / `failed` the bar heights (0 where hidden), so a hidden bar never has its height.
    released = "text" in combos
    fig.add_trace(go.Bar(
        x=xs, y=combos["count"], text=list(combos["text"]) if released else [f"{c:,}" for c in combos["count"]],
        textposition="outside",
        cliponaxis=False, marker_color=SERIES_COLORS[0], name="patients with exactly this set",
        customdata=(np.stack([combos["label"], combos["text"]], axis=1) if released else
                    np.stack([combos["label"], combos["pct_of_ineligible"].round(1)], axis=1)),
        hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]} patients<extra></extra>" if released else
                       "<b>%{customdata[0]}</b><br>%{y:,} patients (%{customdata[1]} % of ineligible)"
                       "<extra></extra>"),
    ), row=1, col=2)
    # dot matrix: grey for not in the combination, dark for in it, joined by a line
    gx, gy = np.meshgrid(xs, ys)
    fig.add_trace(go.Scatter(
        x=gx.ravel(), y=gy.ravel(), mode="markers", marker=dict(size=11, color=LIGHT),
        hoverinfo="skip", showlegend=False,
    ), row=2, col=2)
    row_of = {c: i for i, c in enumerate(sets["criterion"])}
    lx, ly, dx, dy, dtext = [], [], [], [], []
    for j, crits in enumerate(combos["criteria"]):
        rows = sorted(row_of[c] for c in crits)
        lx += [j, j, None]
        ly += [rows[0], rows[-1], None]
        for r in rows:
            dx.append(j)
            dy.append(r)
            dtext.append(f"{combos['label'].iloc[j]}")
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(color=NEUTRAL, width=2),
                             hoverinfo="skip", showlegend=False), row=2, col=2)
    fig.add_trace(go.Scatter(
        x=dx, y=dy, mode="markers", marker=dict(size=12, color=NEUTRAL, symbol="circle"),
        text=dtext, hovertemplate="%{text}<extra></extra>", showlegend=False,
    ), row=2, col=2)
    set_text = list(sets["text"]) if "text" in sets else [f"{v:,}" for v in sets["failed"]]
    fig.add_trace(go.Bar(
        x=sets["failed"], y=ys, orientation="h", text=set_text,
        textposition="outside", cliponaxis=False, marker_color=SERIES_COLORS[4], textfont=dict(size=11),
        name="patients failing the criterion (any combination)",
        customdata=np.stack([[label(c) for c in sets["criterion"]], set_text], axis=1),
        hovertemplate="<b>%{customdata[0]}</b>: %{customdata[1]} patients<extra></extra>",
    ), row=2, col=1)
    base_layout(fig, title, height=260 + 26 * m)
    top = max(int(combos["count"].max()), 1)
    fig.update_xaxes(row=1, col=2, range=[-0.6, k - 0.4], showticklabels=False, showgrid=False)
    fig.update_yaxes(row=1, col=2, title="patients (n)", range=[0, top * 1.18])
    fig.update_xaxes(row=2, col=2, range=[-0.6, k - 0.4], showticklabels=False, showgrid=False,
                     zeroline=False)
    fig.update_yaxes(row=2, col=2, range=[m - 0.5, -0.5], tickmode="array", tickvals=ys,
                     ticktext=[_axis_label(c, 30) for c in sets["criterion"]], side="right", showgrid=False,
                     zeroline=False)
    fig.update_xaxes(row=2, col=1, title="failing (n)", showgrid=False,
                     range=[max(int(sets["failed"].max()), 1) * 1.35, 0])
    fig.update_yaxes(row=2, col=1, range=[m - 0.5, -0.5], showticklabels=False, showgrid=False,
                     zeroline=False)
    fig.update_layout(bargap=0.3, margin=dict(t=95 if title else 60))
    return fig
