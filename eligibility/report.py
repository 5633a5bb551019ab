"""A screening report a planner can circulate: one self-contained HTML file (printable to PDF).

Cohort, scenario, date and protocol version; headline numbers; per-disease table;
attrition; the CONSORT flow (inline SVG); demographics; the dose plan. Charts embed
plotly.js from the installed plotly package, so the file opens offline and requests
nothing. Every piece of text from a user or a file is HTML-escaped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from . import attribution as A
from . import demographics as D
from .evaluate import Evaluation
from .figures import consort as C
from .figures.demographics import demographics_figure
from .figures.overview import status_by_group
from .labels import label
from .pageview import MemoryView, PageView
from .protocol_files import read_bytes


def protocol_version() -> str:
    """The trial and a fingerprint of the catalog files (criteria and parameters) in use."""
    h = hashlib.sha256()
    for name in ("criteria.yaml", "parameters.yaml"):
        h.update(read_bytes(name))
    return f"NCT06614270 criteria catalog {h.hexdigest()[:10]}"


@dataclass
class ReportInput:
    cohort: str  # the cohort's name as shown to the user
    scenario: str  # "protocol as registered" or the scenario's name
    changes: list[str] = field(default_factory=list)  # the scenario's changes, in words
    disease: str | None = None  # the disease filter, None = all
    dose: pd.DataFrame | None = None  # `level`/`label` and `n` (eligible per dose level)
    dose_plan: str = ""  # the dose plan in words
    when: datetime | None = None


CSS = """
body{font-family:Arial,Helvetica,sans-serif;margin:24px;color:#1a1a1a;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc}
.meta{color:#444;font-size:13px} .meta td{padding:1px 12px 1px 0;vertical-align:top}
table.data{border-collapse:collapse;font-size:12.5px;margin:4px 0 8px}
table.data th,table.data td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
table.data th{background:#f3f3f3} table.data td:first-child,table.data th:first-child{text-align:left}
.cards{display:flex;gap:10px;flex-wrap:wrap} .card{border:1px solid #ccc;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:22px} .note{font-size:12.5px;color:#444}
.warn{border-left:4px solid #E69F00;padding:4px 10px;background:#fdf3e1;font-size:13px}
svg{max-width:100%;height:auto}
@media print{body{margin:0} h2{break-after:avoid} .chart,table,svg{break-inside:avoid}}
"""


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, classes="data", border=0, na_rep="–",
                      float_format=lambda x: f"{x:,.1f}")


def _chart(fig: go.Figure, div_id: str) -> str:
    return '<div class="chart">' + fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                               config={"displaylogo": False, "staticPlot": False}) + "</div>"


def build_report(ev: Evaluation | PageView, protocol: Evaluation | PageView, info: ReportInput) -> str:
    """The whole report as an HTML document (a str). `ev` / `protocol`: evaluations, or the
    page views of either source (a database cohort in aggregate mode: its aggregates)."""
    ev = ev if isinstance(ev, PageView) else MemoryView(ev)
    protocol = protocol if isinstance(protocol, PageView) else MemoryView(protocol)
    when = (info.when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    group = info.disease or A.ALL
    counts = ev.status_counts()
    row = counts.loc[group]
    scope = "all diseases" if info.disease is None else info.disease
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>Screening report — {escape(info.cohort)}</title><style>{CSS}</style>"
             f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"]
    parts.append("<h1>NCT06614270 eligibility screening report</h1><table class='meta'>")
    for k, v in (("Cohort", info.cohort), ("Scenario", info.scenario),
                 ("Changes from the protocol", "; ".join(info.changes) or "none"),
                 ("Scope", scope), ("Generated", when), ("Protocol version", protocol_version())):
        parts.append(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>")
    parts.append("</table>")

    parts.append("<h2>Headline numbers</h2><div class='cards'>")
    for k in ("screened", "eligible", "pending", "ineligible"):
        parts.append(f"<div class='card'>{k.capitalize()}<b>{int(row[k]):,}</b></div>")
    parts.append(f"<div class='card'>Eligible range<b>{int(row['eligible_low']):,} to "
                 f"{int(row['eligible_high']):,}</b></div></div>")
    notes = []
    if ev.empty_rows:
        notes.append(f"{ev.empty_rows:,} empty row(s) in the file, not patients: not counted.")
    if ev.not_assessed:
        notes.append("Not assessed (columns absent; they neither fail nor make anyone pending): "
                     + ", ".join(label(u) for u in ev.not_assessed) + ".")
    if ev.disabled:
        notes.append("Switched off by the scenario: " + ", ".join(label(u) for u in ev.disabled) + ".")
    for n in notes:
        parts.append(f"<p class='warn'>{escape(n)}</p>")

    parts.append("<h2>Per disease</h2>")
    per = counts.reset_index()[["group", "screened", "eligible", "pending", "ineligible",
                                "eligible_pct", "pending_pct"]]
    base = protocol.status_counts()
    per.insert(3, "eligible_protocol", [int(base.loc[g, "eligible"]) for g in per["group"]])
    per.columns = ["Group", "Screened", "Eligible", "Eligible (protocol)", "Pending", "Ineligible",
                   "Eligible %", "Pending %"]
    parts.append(_table(per))
    groups = [g for g in counts.index if g != A.ALL] if info.disease is None else [info.disease]
    parts.append(_chart(status_by_group(counts, groups, title="Screening status by disease"), "status"))

    parts.append(f"<h2>Attrition ({escape(scope)})</h2>")
    att = ev.attrition(group)
    att = att[att["excluded"] > 0]
    shown = pd.DataFrame({"Criterion": [label(c) for c in att["criterion"]],
                          "Excluded (first failing)": att["excluded"], "Remaining": att["remaining"]})
    parts.append(_table(shown))
    parts.append("<p class='note'>Each patient is counted once, under the first failing criterion in "
                 "catalog order (DX, INC, EXC, disease block).</p>")

    parts.append("<h2>Screening flow (CONSORT)</h2>")
    lay = C.consort_layout(ev.consort_data(), groups=None if info.disease is None else [info.disease],
                           dose_levels=info.dose, reasons=ev.top_reasons())
    parts.append(C.consort_svg(lay, title=f"Screening flow — {scope}"))

    parts.append("<h2>Demographics of the pool</h2>")
    pool = ev.pool(ev.scope_groups(info.disease))
    parts.append(_table(D.display_pool(pool)))
    parts.append(_chart(demographics_figure(pool[pool["group"] == group],
                                            title=f"Age and sex — {scope}"), "demographics"))
    parts.append("<p class='note'>At each attrition step (patients remaining):</p>")
    parts.append(_table(D.display_steps(ev.by_step(group))))

    parts.append("<h2>Dose plan</h2>")
    if info.dose is not None and len(info.dose):
        parts.append(f"<p>{escape(info.dose_plan)}</p>")
        dose = info.dose.rename(columns={"level": "Dose level", "label": "Dose level", "n": "Eligible patients"})
        parts.append(_table(dose[[c for c in dose.columns if c in ("Dose level", "Eligible patients", "group")]]))
    else:
        parts.append("<p>No dose plan included.</p>")
    parts.append("<p class='note'>Generated offline by the NCT06614270 eligibility dashboard. "
                 "Print this page to PDF from the browser.</p></body></html>")
    return "".join(parts)


def _value(v) -> str:
    if isinstance(v, frozenset | set | list | tuple):
        return ", ".join(sorted(v)) or "(none)"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def scenario_changes(resolved, catalog=None) -> list[str]:
    """A scenario's changes from the protocol in words ('Maximum age: 65 → 70 years')."""
    from .catalog import default_catalog

    catalog = catalog or default_catalog()
    defaults = catalog.defaults()
    out = []
    for name, value in resolved.params.items():
        if value != defaults[name]:
            p = catalog.parameters[name]
            out.append(f"{p.label}: {_value(defaults[name])} → {_value(value)} {p.unit}".rstrip())
    out += [f"switched off: {label(d)}" for d in resolved.disabled_given]
    return out
