"""The protocol in words: rule trees rendered as text with the scenario's values (the `Render`
visitor), the documented readings of unclear protocol text, the project's decisions, and one
readable row per criterion part (what the Protocol page and its printable view show)."""

from __future__ import annotations

from functools import cache
from html import escape

import pandas as pd

from .catalog import AllOf, AnyOf, AtLeast, Catalog, Compare, Implies, Not, ParamTrue, Ref
from .explain import Describe
from .fields import DERIVED, field
from .labels import label
from .protocol_files import read_yaml

REF_TITLES = {
    "rr_no_gc": "RR-A: refractory/relapsed on conventional therapy",
    "rr_gc": "RR-A(gc): refractory/relapsed on conventional therapy incl. glucocorticoid dose",
    "rr_regimen": "the conventional regimen (glucocorticoid, cyclophosphamide, immunomodulators)",
}


class Render(Describe):
    """Leaves as the explainer words them; composites written out. `inline`: named
    definitions written out instead of named (to compare protocol versions)."""

    def __init__(self, catalog: Catalog, params: dict, inline: bool = False):
        super().__init__(params)
        self.catalog = catalog
        self.inline = inline

    def _wrap(self, child) -> str:
        text = self.visit(child)
        target = self.catalog.definitions[child.name] if self.inline and isinstance(child, Ref) else child
        return f"({text})" if isinstance(target, AllOf | AnyOf | Implies | AtLeast) else text

    def ref(self, node: Ref) -> str:
        if self.inline:
            return self.visit(self.catalog.definitions[node.name])
        return REF_TITLES.get(node.name, node.name)

    def all_of(self, node: AllOf) -> str:
        return " AND ".join(self._wrap(c) for c in node.of)

    def any_of(self, node: AnyOf) -> str:
        return " OR ".join(self._wrap(c) for c in node.of)

    def not_(self, node: Not) -> str:
        return "NOT " + self._wrap(node.item)

    def implies(self, node: Implies) -> str:
        if isinstance(node.if_, ParamTrue):
            on = bool(self.params[node.if_.param])
            name = self.catalog.parameters[node.if_.param].label
            return f"[{name}: {'on' if on else 'off'}] " + (self._wrap(node.then) if on else "nothing required")
        return f"IF {self._wrap(node.if_)} THEN {self._wrap(node.then)}"

    def at_least(self, node: AtLeast) -> str:
        return f"at least {node.k(self.params)} of: " + "; ".join(self.visit(c) for c in node.of)

    def compare(self, node: Compare) -> str:
        text = super().compare(node)
        if node.field in DERIVED:  # a count derived from a list column
            name = field(node.field).label
            text = text.replace(name, f"Number of recognised {name.lower()}", 1)
        return text


def render(catalog: Catalog, node, params: dict, inline: bool = False) -> str:
    return Render(catalog, params, inline).visit(node)


def _yaml(name: str):
    return read_yaml(name)


@cache
def readings() -> tuple[tuple[str, str], ...]:
    """(protocol text, reading) pairs: the documented readings of unclear protocol text
    (eligibility/protocol/interpretations.yaml; the switchable alternatives are readings.yaml)."""
    return tuple((str(r["text"]), str(r["reading"])) for r in _yaml("interpretations.yaml"))


@cache
def decisions() -> tuple[tuple[str, str], ...]:
    """(topic, decision) pairs: the project's own decisions (protocol/decisions.yaml)."""
    return tuple((str(d["topic"]), str(d["decision"])) for d in _yaml("decisions.yaml"))


def value_text(value) -> str:
    if isinstance(value, frozenset | set | list | tuple):
        return ", ".join(sorted(value)) or "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_rule(catalog: Catalog, node, params: dict) -> str:
    """A rule tree in words, with the scenario's parameter values filled in."""
    return render(catalog, node, params)


def unit_status(unit, not_assessed, disabled, absent_of) -> str:
    if unit.id in disabled:
        return "○ switched off (what-if)"
    if unit.id in not_assessed:
        return "– not assessed: absent " + ", ".join(absent_of(unit))
    return "✓ assessed"


def criteria_rows(catalog: Catalog, params: dict, present=None, not_assessed=(), disabled=()) -> pd.DataFrame:
    """One row per criterion part in catalog order: label, kind, block, protocol text, rule in
    words, parameters (with the protocol value where changed), status for this cohort."""
    defaults = catalog.defaults()
    present = set(present or ())

    def absent_of(u):
        return sorted(catalog.fields_of(u.rule, params) - present)

    rows = []
    for u in catalog.units:
        used = sorted(catalog.params_of(u.rule))
        changed = [p for p in used if params[p] != defaults[p]]
        parent = catalog.criterion_by_id[u.criterion]
        rows.append({
            "id": u.id, "label": label(u.id), "kind": "inclusion" if u.kind == "incl" else "exclusion",
            "block": u.block, "text": u.text, "rule": render_rule(catalog, u.rule, params),
            "parameters": ", ".join(f"{p} = {value_text(params[p])}"
                                    + (f" (protocol {value_text(defaults[p])})" if p in changed else "")
                                    for p in used),
            "this_cohort": unit_status(u, set(not_assessed), set(disabled), absent_of),
            "protocol_text": parent.text if parent.parts else "",
            "cause": catalog.cause_of[u.id] if catalog.cause_of[u.id] != u.id else "",
        })
    return pd.DataFrame(rows)


PRINT_CSS = """body{font-family:Arial,Helvetica,sans-serif;margin:24px;max-width:1000px;color:#1a1a1a}
h1{font-size:21px} h2{font-size:17px;border-bottom:1px solid #ccc;margin-top:26px}
.c{margin:10px 0;break-inside:avoid} .c b{font-size:14px} .r{font-family:monospace;font-size:12.5px;
white-space:pre-wrap;background:#f6f6f6;padding:4px 6px;margin:3px 0} .m{color:#555;font-size:12.5px}
dt{font-weight:bold;margin-top:8px} dd{margin-left:14px}
@media print{body{margin:0}}"""


def protocol_html(rows: pd.DataFrame, title: str, meta: str) -> str:
    """A printable page of the criteria (wrapped text, no hovering), readings and decisions."""
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
           f"<style>{PRINT_CSS}</style></head><body><h1>{escape(title)}</h1><p class='m'>{escape(meta)}</p>"]
    for block, sub in rows.groupby("block", sort=False):
        out.append(f"<h2>{escape('Common (all diseases)' if block == 'common' else block)}</h2>")
        for r in sub.itertuples(index=False):
            out.append(f"<div class='c'><b>{escape(r.label)}</b> <span class='m'>({escape(r.kind)}; "
                       f"{escape(r.this_cohort)})</span><div>{escape(r.text)}</div>"
                       f"<div class='r'>{escape(r.rule)}</div>"
                       + (f"<div class='m'>Parameters: {escape(r.parameters)}</div>" if r.parameters else "")
                       + "</div>")
    out.append("<h2>Readings of unclear protocol text</h2><dl>")
    out += [f"<dt>{escape(t)}</dt><dd>{escape(r)}</dd>" for t, r in readings()]
    out.append("</dl><h2>Project decisions where the specification is silent</h2><dl>")
    out += [f"<dt>{escape(t)}</dt><dd>{escape(d)}</dd>" for t, d in decisions()]
    out.append("</dl></body></html>")
    return "".join(out)
