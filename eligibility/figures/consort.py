"""CONSORT-style screening flow: data, a box layout, and two renderings (plotly, SVG).

    assessed ─┬─> excluded by reason group (first failing criterion)
              └─> per disease: assessed → excluded (by reason group) → eligible / pending
                                                                       └─> dose levels (optional)

`consort_data` is a pure function of an Evaluation; `consort_layout` turns it into
boxes and arrows; `consort_figure` (plotly shapes + annotations) and `consort_svg`
(a hand-written SVG string) draw the same layout, so both show the same numbers.
No Streamlit, no kaleido, no network: `consort_html` embeds plotly.js.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..attribution import ALL, group_slices
from ..evaluate import ELIGIBLE, PENDING, Evaluation
from ..fields import DISEASE_NAMES
from ..labels import label
from . import FONT, SERIES_COLORS, STATUS_COLORS

REASON_GROUPS = (
    "diagnosis",
    "common inclusion",
    "common exclusion",
    "disease-specific inclusion",
    "disease-specific exclusion",
)
SHORT = {"diagnosis": "diagnosis", "common inclusion": "common incl.", "common exclusion": "common excl.",
         "disease-specific inclusion": "disease incl.", "disease-specific exclusion": "disease excl."}
GROUP_LABELS = {**DISEASE_NAMES, "other": "Other diagnosis", "missing": "Diagnosis missing", ALL: "All"}


def reason_group(unit) -> str:
    """Which CONSORT reason group a criterion unit belongs to."""
    if unit.criterion.startswith("DX"):
        return "diagnosis"
    if unit.block == "common":
        return "common inclusion" if unit.kind == "incl" else "common exclusion"
    return "disease-specific inclusion" if unit.kind == "incl" else "disease-specific exclusion"


def consort_data(ev: Evaluation) -> pd.DataFrame:
    """Per disease group (and All): assessed, excluded by reason group (first reason),
    excluded, eligible, pending. assessed = excluded + eligible + pending on every row."""
    groups = np.array([REASON_GROUPS.index(reason_group(u)) for u in ev.units], np.int32)
    first = ev.first_failed_index()
    rows = []
    for g, sl in group_slices(ev).items():
        f = first[sl]
        by = np.bincount(groups[f[f >= 0]], minlength=len(REASON_GROUPS)) if len(groups) else np.zeros(5, int)
        st = np.bincount(ev.status[sl], minlength=3)
        row = {"group": g, "label": GROUP_LABELS.get(g, g), "assessed": int(sl.stop - sl.start)}
        row.update({r: int(by[i]) for i, r in enumerate(REASON_GROUPS)})
        row.update(excluded=int(by.sum()), eligible=int(st[ELIGIBLE]), pending=int(st[PENDING]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


def top_reasons(ev: Evaluation, k: int = 4) -> dict[str, list[tuple[str, int]]]:
    """Per disease group (and All): the k most frequent first failing criteria (criterion
    IDs with counts, most first), then ("other criteria", rest) if any remain."""
    crits = [u.criterion for u in ev.units]
    order = list(dict.fromkeys(crits))
    of_unit = np.array([order.index(c) for c in crits], np.int32)
    first = ev.first_failed_index()
    out: dict[str, list[tuple[str, int]]] = {}
    for g, sl in group_slices(ev).items():
        f = first[sl]
        counts = np.bincount(of_unit[f[f >= 0]], minlength=len(order)) if len(order) else np.zeros(0, int)
        out[g] = ranked_reasons(counts, order, k)
    return out


def ranked_reasons(counts: np.ndarray, order: list[str], k: int) -> list[tuple[str, int]]:
    """The k criteria with the most patients (most first, ties in catalog order), then
    ("other criteria", the rest) if any remain."""
    ranked = [i for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    items = [(order[i], int(counts[i])) for i in ranked[:k]]
    rest = int(sum(counts[i] for i in ranked[k:]))
    if rest:
        items.append(("other criteria", rest))
    return items


def _reason_lines(items: list[tuple[str, int]], width: int) -> list[str]:
    """'• INC-7 · Informed consent: 12', wrapped to the box width (continuations indented)."""
    lines: list[str] = []
    for cid, n in items:
        text = f"{label(cid) if cid != 'other criteria' else cid}: {n:,}"
        wrapped = _wrap(text, width - 2)
        lines += [f"• {wrapped[0]}", *(f"  {w}" for w in wrapped[1:])]
    return lines


# -- layout ----------------------------------------------------------------------------------


@dataclass
class Box:
    x: float  # left
    y: float  # top (y grows downwards, as in SVG)
    w: float
    h: float
    lines: list[str]
    dashed: bool = False
    fill: str = "#FFFFFF"
    kind: str = ""  # assessed, excluded, disease, eligible, pending, dose

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Layout:
    width: float
    height: float
    boxes: list[Box] = field(default_factory=list)
    arrows: list[tuple[float, float, float, float]] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)


LINE_H = 16
PAD = 8
COL_W = 190
GAP = 18
MIN_W = 4 * COL_W + 5 * GAP
NARROW_COL_W = 120  # the narrowest column when a width limit is given (six groups at 1280 px)
CHAR_W = 6.2  # width of a 12 px character in the rendered flow (measured ~5.2 px; bold and wide letters allowed for)


def _h(lines: list[str]) -> float:
    return PAD * 2 + LINE_H * len(lines)


def _wrap(text: str, width: int) -> list[str]:
    """Words to lines of at most `width` characters; a longer word is broken with a hyphen."""
    lines, cur = [], ""
    words: list[str] = []
    for word in text.split():
        while len(word) > width:
            words.append(word[: width - 1] + "-")
            word = word[width - 1:]
        words.append(word)
    for word in words:
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}".strip()
    return [*lines, cur] if cur else lines


def _chars(box_w: float) -> int:
    """Characters of 12 px text that fit a box of this width."""
    return max(8, int((box_w - 2 * PAD) / CHAR_W))


def _fit(lines: list[str], width: int) -> list[str]:
    """Every line wrapped to `width` characters (continuations indented)."""
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        lead = "  " if line.startswith(("• ", "  ")) else ""
        parts = _wrap(line, width)
        out += [parts[0], *(lead + p for p in _wrap(" ".join(parts[1:]), width - len(lead)))]
    return out


def _count(x) -> str:
    """A count as drawn: a number, or the text a suppressed release gives it ("<5", "*")."""
    return x if isinstance(x, str) else f"{int(x):,}"


def _n(x) -> str:
    return f"n = {_count(x)}"


def consort_layout(data: pd.DataFrame, groups: list[str] | None = None,
                   dose_levels: pd.DataFrame | None = None,
                   reasons: dict[str, list[tuple[str, int]]] | None = None,
                   empty_rows: int = 0, max_width: float | None = None) -> Layout:
    """Boxes and arrows for the flow. `groups`: disease columns to draw (default: every
    row except All). `dose_levels` (hook for the dose-cohort page): rows with `level`
    (label) and `n` (patients), optionally `group` (a disease; drawn under it) — else the
    levels are drawn in one row under all eligible boxes. `reasons` (`top_reasons`): the
    specific first failing criteria listed in each excluded box. `empty_rows`: blank file
    rows, named in the top box and not counted as patients. `max_width`: the width (px) the
    flow is shown at; columns narrow and text wraps to fit it (text never scales)."""
    groups = [g for g in (groups or [g for g in data.index if g != ALL]) if g in data.index]
    k = max(len(groups), 1)
    col_w = float(COL_W)
    if max_width:  # narrower columns with more wrapped lines, so the text is never scaled down
        col_w = max(NARROW_COL_W, min(COL_W, (max_width - (k + 1) * GAP) / k))
    content = k * col_w + (k + 1) * GAP
    width = max(content, min(MIN_W, max_width) if max_width else MIN_W)
    x0 = (width - content) / 2
    lay = Layout(width=width, height=0)
    total = data.loc[ALL] if ALL in data.index else data.loc[groups].sum(numeric_only=True)
    # One disease: its own row; every disease: the All row (= their sum, and the only sum a
    # table of suppressed counts as text still has).
    every = ALL in data.index and set(groups) == {g for g in data.index if g != ALL}
    scope = data.loc[groups[0]] if len(groups) == 1 else total if every or not groups \
        else data.loc[groups].sum(numeric_only=True)

    # assessed (all) and the excluded summary to its right
    y: float = GAP
    box_w = min(260, width / 2 - GAP)
    top_lines = ["Assessed for eligibility", _n(scope["assessed"])]
    if empty_rows:
        top_lines.append(f"({empty_rows:,} empty file row{'s' if empty_rows != 1 else ''}, not patients)")
    top_lines = _fit(top_lines, _chars(box_w))
    single = len(groups) == 1  # one disease: its own column says it all; no duplicate box
    top = Box(width / 2 - box_w / 2 if single else width / 2 - box_w - GAP / 2, y, box_w, _h(top_lines),
              top_lines, kind="assessed")
    lay.boxes.append(top)
    bottom = top.y + top.h
    if not single:
        excl_lines = [f"Excluded ({_n(scope['excluded'])})", "by first failing criterion:"]
        excl_lines += [f"• {r}: {_count(scope[r])}" for r in REASON_GROUPS]
        if reasons and ALL in reasons and reasons[ALL]:
            excl_lines.append("most frequent:")
            excl_lines += _reason_lines(reasons[ALL], _chars(box_w))
        excl_lines = _fit(excl_lines, _chars(box_w))
        excl = Box(width / 2 + GAP / 2, y, box_w, _h(excl_lines), excl_lines, fill="#F7F7F7", kind="excluded")
        lay.boxes.append(excl)
        lay.arrows.append((top.x + top.w, top.y + top.h / 2, excl.x, top.y + top.h / 2))
        bottom = max(bottom, excl.y + excl.h)
    y = bottom + GAP * 2

    # a bus line from the assessed box down to each disease column
    bus_y = y - GAP
    lay.lines.append((top.cx, top.y + top.h, top.cx, bus_y))
    xs = [x0 + GAP + i * (col_w + GAP) for i in range(len(groups))]
    if xs:  # the bus reaches the assessed box's line and every column
        left, right = min(xs[0] + col_w / 2, top.cx), max(xs[-1] + col_w / 2, top.cx)
        lay.lines.append((left, bus_y, right, bus_y))
    cols: dict[str, list[Box]] = {}
    # per column: disease box; a trunk down its left edge with the excluded box branching
    # off to the right; the trunk then splits into eligible | pending side by side (or, in
    # narrow columns, branches to pending and then eligible, one under the other).
    heads = {}
    for g in groups:
        r = data.loc[g]
        name = str(r.get("label", g))
        words_fit = all(len(w) <= _chars(col_w) for w in name.split())
        # In narrow columns a long name (e.g. "Antiphospholipid") would not fit: the code alone.
        head_lines = [g, *_wrap(name, _chars(col_w))] if name != g and words_fit else [g]
        head_lines.append(f"assessed {_n(r['assessed'])}")
        heads[g] = _fit(head_lines, _chars(col_w))
    head_h = max((_h(h) for h in heads.values()), default=_h([""]))
    ex_lines_of = {}
    indent = 22 if col_w >= COL_W else 14  # where branch boxes start, right of the trunk
    branch_w = col_w - indent
    for g in groups:
        r = data.loc[g]
        lines = [f"Excluded ({_n(r['excluded'])})"]
        if reasons is not None:
            lines += _reason_lines(reasons.get(g, []), _chars(branch_w))
        else:
            lines += [f"• {SHORT[rg]}: {_count(r[rg])}" for rg in REASON_GROUPS]
        ex_lines_of[g] = _fit(lines, _chars(branch_w))
    excl_h = max((_h(v) for v in ex_lines_of.values()), default=_h([""]))
    half = (col_w - GAP / 2) / 2
    stacked = half - 2 * PAD < 9 * CHAR_W  # "n = 1,234" must fit a half-width box
    small_h = _h(["", ""])
    for g, x in zip(groups, xs, strict=True):
        r = data.loc[g]
        head = Box(x, y, col_w, head_h, heads[g], kind="disease")
        trunk = x + indent / 2
        ex = Box(x + indent, head.y + head.h + GAP, branch_w, excl_h, ex_lines_of[g], fill="#F7F7F7", kind="excluded")
        lay.arrows.append((head.cx, bus_y, head.cx, head.y))
        lay.arrows.append((trunk, ex.y + ex.h / 2, ex.x, ex.y + ex.h / 2))
        if stacked:
            pe = Box(x + indent, ex.y + ex.h + GAP, branch_w, small_h, ["Pending", _n(r["pending"])],
                     dashed=True, fill="#FDF3E1", kind="pending")
            el = Box(x + indent, pe.y + pe.h + GAP, branch_w, small_h, ["Eligible", _n(r["eligible"])],
                     fill="#E6F5EF", kind="eligible")
            lay.lines.append((trunk, head.y + head.h, trunk, el.y + el.h / 2))
            lay.arrows.append((trunk, pe.y + pe.h / 2, pe.x, pe.y + pe.h / 2))
            lay.arrows.append((trunk, el.y + el.h / 2, el.x, el.y + el.h / 2))
        else:
            split_y = ex.y + ex.h + GAP / 2
            low_y = split_y + GAP / 2 + 2
            el = Box(x, low_y, half, small_h, ["Eligible", _n(r["eligible"])], fill="#E6F5EF",
                     kind="eligible")
            pe = Box(x + half + GAP / 2, low_y, half, small_h, ["Pending", _n(r["pending"])],
                     dashed=True, fill="#FDF3E1", kind="pending")
            lay.lines.append((trunk, head.y + head.h, trunk, split_y))
            lay.lines.append((trunk, split_y, pe.cx, split_y))
            lay.arrows.append((el.cx, split_y, el.cx, el.y))
            lay.arrows.append((pe.cx, split_y, pe.cx, pe.y))
        lay.boxes += [head, ex, el, pe]
        cols[g] = [head, ex, el, pe]
    y = max((c[2].y + c[2].h for c in cols.values()), default=y + head_h) + GAP * 2

    if dose_levels is not None and len(dose_levels):
        y = _dose_boxes(lay, dose_levels, groups, cols, xs, y, col_w)
    lay.height = y + GAP / 2
    return lay


def _dose_boxes(lay: Layout, dose: pd.DataFrame, groups, cols, xs, y: float, col_w: float = COL_W) -> float:
    """Boxes for dose levels below the eligible boxes (hook for the dose-cohort engineer)."""
    labels = dose["label"] if "label" in dose else dose["level"].map(lambda v: f"Dose level {v}")
    per_group = "group" in dose and set(dose["group"]).issubset(set(groups))
    if per_group:
        h = max(_h(_fit([str(lab), "n"], _chars(col_w))) for lab in labels)
        bottom = y
        for g in groups:
            sub = dose[dose["group"] == g]
            eligible_box = cols[g][2]
            yy, above = y, eligible_box.y + eligible_box.h
            for lab, n in zip(labels[sub.index], sub["n"], strict=True):
                b = Box(eligible_box.x, yy, eligible_box.w, h, _fit([str(lab), _n(n)], _chars(col_w)),
                        fill="#EAF2FA", kind="dose")
                lay.boxes.append(b)
                lay.arrows.append((eligible_box.cx, above, eligible_box.cx, b.y))
                above = b.y + b.h
                yy += h + GAP
            bottom = max(bottom, yy)
        return bottom
    k = len(dose)
    w = min(col_w, (lay.width - GAP * (k + 1)) / max(k, 1))
    h = max(_h(_fit([str(lab), "n"], _chars(w))) for lab in labels)
    start = (lay.width - (k * w + (k - 1) * GAP)) / 2
    for i, (lab, n) in enumerate(zip(labels, dose["n"], strict=True)):
        b = Box(start + i * (w + GAP), y, w, h, _fit([str(lab), _n(n)], _chars(w)), fill="#EAF2FA",
                kind="dose")
        lay.boxes.append(b)
        lay.arrows.append((b.cx, y - GAP, b.cx, b.y))
    if groups:
        firsts = [cols[g][2] for g in groups]
        for e in firsts:
            lay.lines.append((e.cx, e.y + e.h, e.cx, y - GAP))
        left = min([e.cx for e in firsts] + [start + w / 2])
        right = max([e.cx for e in firsts] + [start + (k - 1) * (w + GAP) + w / 2])
        lay.lines.append((left, y - GAP, right, y - GAP))
    return y + h + GAP


# -- renderings ------------------------------------------------------------------------------

BORDER = {"assessed": SERIES_COLORS[0], "excluded": "#4D4D4D", "disease": SERIES_COLORS[0],
          "eligible": STATUS_COLORS["eligible"], "pending": STATUS_COLORS["pending"], "dose": SERIES_COLORS[0]}


def consort_figure(lay: Layout, title: str = "") -> go.Figure:
    fig = go.Figure()
    shapes, annotations = [], []
    for b in lay.boxes:
        shapes.append(dict(type="rect", x0=b.x, x1=b.x + b.w, y0=b.y, y1=b.y + b.h, fillcolor=b.fill,
                           line=dict(color=BORDER.get(b.kind, "#4D4D4D"), width=1.5,
                                     dash="dash" if b.dashed else "solid"), layer="below"))
        text = "<br>".join([f"<b>{escape(b.lines[0])}</b>", *(escape(t) for t in b.lines[1:])])
        annotations.append(dict(x=b.x + PAD, y=b.y + PAD, xanchor="left", yanchor="top", text=text,
                                showarrow=False, align="left", font=dict(size=12, color="#1A1A1A")))
    for x0, y0, x1, y1 in lay.lines:
        shapes.append(dict(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color="#4D4D4D", width=1.2)))
    for x0, y0, x1, y1 in lay.arrows:
        annotations.append(dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                                showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.2,
                                arrowcolor="#4D4D4D", text=""))
    fig.update_layout(
        shapes=shapes, annotations=annotations, title=title or None, font=FONT,
        template="plotly_white", height=int(lay.height) + (60 if title else 20), width=int(lay.width) + 20,
        margin=dict(l=10, r=10, t=50 if title else 10, b=10), showlegend=False,
    )
    fig.update_xaxes(range=[0, lay.width], visible=False, fixedrange=True)
    # Drawn at its natural size (text does not scale with the figure): show it with
    # st.plotly_chart(width="content").
    fig.update_yaxes(range=[lay.height, 0], visible=False, fixedrange=True)
    return fig


def consort_html(fig: go.Figure, meta: str = "") -> str:
    """A self-contained HTML page (plotly.js embedded; opens offline); `meta` (cohort,
    scenario, date, protocol version) is printed above the flow."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, include_mathjax=False,
                       config={"displaylogo": False})
    if meta:
        html = html.replace("<body>", f"<body><p style='font-family:Arial,sans-serif;font-size:13px'>"
                            f"{escape(meta)}</p>", 1)
    return html


def consort_svg(lay: Layout, title: str = "", meta: str = "") -> str:
    """The same layout as a standalone SVG document (well-formed XML); `meta` (cohort,
    scenario, date, protocol version) is a line under the title."""
    top = (30 if title else 0) + (20 if meta else 0)
    w, h = lay.width, lay.height + top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" font-family="Arial, Helvetica, sans-serif" font-size="12">',
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" "
        "markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" "
        "fill=\"#4D4D4D\"/></marker></defs>",
        f'<rect x="0" y="0" width="{w:.0f}" height="{h:.0f}" fill="#FFFFFF"/>',
    ]
    if title:
        out.append(f'<text x="{w / 2:.1f}" y="20" text-anchor="middle" font-size="15" '
                   f'font-weight="bold">{escape(title)}</text>')
    if meta:
        out.append(f'<text x="{w / 2:.1f}" y="{top - 8}" text-anchor="middle" font-size="11" '
                   f'fill="#444444">{escape(meta)}</text>')
    out.append(f'<g transform="translate(0,{top})">')
    for x0, y0, x1, y1 in lay.lines:
        out.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#4D4D4D" '
                   'stroke-width="1.2"/>')
    for x0, y0, x1, y1 in lay.arrows:
        out.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#4D4D4D" '
                   'stroke-width="1.2" marker-end="url(#arrow)"/>')
    for b in lay.boxes:
        dash = ' stroke-dasharray="6 4"' if b.dashed else ""
        out.append(f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="3" '
                   f'fill="{b.fill}" stroke="{BORDER.get(b.kind, "#4D4D4D")}" stroke-width="1.5"{dash}/>')
        out.append(f'<text x="{b.x + PAD:.1f}" y="{b.y + PAD:.1f}" fill="#1A1A1A">')
        for i, line in enumerate(b.lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(f'<tspan x="{b.x + PAD:.1f}" dy="{LINE_H if i else 13}"{weight}>{escape(line)}</tspan>')
        out.append("</text>")
    out.append("</g></svg>")
    return "\n".join(out)
