"""A straightforward per-patient evaluator: plain Python, one row at a time.

Used as the baseline in the benchmark (how fast a naive implementation is) and as the
second opinion on the vectorised engine in the property tests. It follows criteria.md
directly (Kleene logic on 0/1/2 with Python scalars) and shares only the rule dispatch
with the engine, not its numpy semantics (eligibility/rules.py).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .catalog import (
    AllOf,
    AnyOf,
    AtLeast,
    Catalog,
    Compare,
    Flag,
    Implies,
    In,
    Not,
    ParamTrue,
    Ref,
    UlnLimit,
    Within,
)
from .fields import DERIVED, IMMUNOMODULATORS, field
from .rule_visit import RuleVisitor

F, U, T = 0, 1, 2
_OPS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def drug_count(text) -> float | None:
    """criteria.md RR-A: distinct recognised names; 'none' = 0; empty = unknown."""
    if _missing(text):
        return None
    names = [x.strip().lower() for x in str(text).split(";") if x.strip()]
    if names == ["none"]:
        return 0.0
    return float(len({n for n in names if n in IMMUNOMODULATORS}))


class _Truth(RuleVisitor[int]):
    """Truth (0 false, 1 unknown, 2 true) of a rule for one patient (a dict of column → value;
    an absent key is an empty cell; `_unreadable` lists columns whose cell could not be read;
    `_implausible` those whose value the loader flagged as outside its plausible range, unknown
    while the `implausible_values_unknown` parameter is on)."""

    def __init__(self, row: dict, params: dict, catalog: Catalog):
        self.row, self.p, self.catalog = row, params, catalog

    def value(self, name: str):
        if name in DERIVED and name not in self.row:
            return drug_count(self.row.get(DERIVED[name]))
        v = self.row.get(name)
        if _missing(v) or (self.p.get("implausible_values_unknown", False)
                           and name in self.row.get("_implausible", ())):
            return None
        return v

    def ref(self, node: Ref) -> int:
        return self.visit(self.catalog.definitions[node.name])

    def flag(self, node: Flag) -> int:
        v = self.value(node.field)
        return U if v is None else (T if v else F)

    def compare(self, node: Compare) -> int:
        if node.always_holds(self.p):
            return T
        v = self.value(node.field)
        return U if v is None else (T if _OPS[node.op](float(v), node.threshold(self.p)) else F)

    def uln(self, node: UlnLimit) -> int:
        v = self.value(node.field)
        if v is None:
            return U
        uln = self.value(node.uln_field)
        uln = self.p[node.default_param] if uln is None else uln
        return T if _OPS[node.op](float(v), round(self.p[node.max_param] * uln, 9)) else F

    def within(self, node: Within) -> int:
        v = self.value(node.field)
        if v is None:  # empty = never, unless the cell could not be read and that counts as unknown
            unreadable = bool(node.unreadable and self.p[node.unreadable]
                              and node.field in self.row.get("_unreadable", ()))
            return U if unreadable else F
        return T if float(v) + node.offset(self.p) < self.p[node.param] else F

    def in_(self, node: In) -> int:
        allowed = {a.lower() for a in node.allowed(self.p)}
        if node.field != "disease":  # a closed category set settles even an empty cell
            cats = {c.lower() for c in field(node.field).categories}
            if not allowed & cats:
                return F
            if allowed >= cats:
                return T
        v = self.value(node.field)
        if v is None:
            return U
        return T if str(v).lower() in allowed else F

    def param_true(self, node: ParamTrue) -> int:
        return T if self.p[node.param] else F

    def all_of(self, node: AllOf) -> int:
        return min(self.visit(c) for c in node.of)

    def any_of(self, node: AnyOf) -> int:
        return max(self.visit(c) for c in node.of)

    def not_(self, node: Not) -> int:
        return T - self.visit(node.item)

    def implies(self, node: Implies) -> int:
        if isinstance(node.if_, ParamTrue) and not self.p[node.if_.param]:
            return T
        return max(T - self.visit(node.if_), self.visit(node.then))

    def at_least(self, node: AtLeast) -> int:
        k = node.k(self.p)
        vals = [self.visit(c) for c in node.of]
        if sum(v == T for v in vals) >= k:
            return T
        return F if sum(v != F for v in vals) < k else U


def truth(node, row: dict, params: dict, catalog: Catalog) -> int:
    return _Truth(row, params, catalog).visit(node)


@dataclass
class RowResult:
    status: str
    failed: list[str]
    unknown: list[str]


def active_units(catalog: Catalog, params: dict, present: frozenset[str] | set[str],
                 disabled: frozenset[str] | set[str] = frozenset()) -> tuple[list, list[str]]:
    """(units evaluated, IDs not assessed): a unit is not assessed when a column it needs is absent."""
    active, not_assessed = [], []
    for u in catalog.units:
        if u.id in disabled:
            continue
        if catalog.fields_of(u.rule, params) <= set(present):
            active.append(u)
        else:
            not_assessed.append(u.id)
    return active, not_assessed


def screen_row_detail(row: dict[str, Any], params: dict, catalog: Catalog, units: list) -> RowResult:
    """Status with the failing and unknown unit IDs (catalog order) of one patient."""
    disease = row.get("disease")
    failed, unknown = [], []
    for u in units:
        if u.block != "common" and u.block != disease:
            continue
        t = truth(u.rule, row, params, catalog)
        ok = t if u.kind == "incl" else T - t
        if ok == F:
            failed.append(u.id)
        elif ok == U:
            unknown.append(u.id)
    status = "ineligible" if failed else "pending" if unknown else "eligible"
    return RowResult(status, failed, unknown)


def screen_row(row: dict[str, Any], params: dict, catalog: Catalog, present: frozenset[str]) -> str:
    """Status of one patient: 'eligible', 'pending' or 'ineligible'."""
    units, _ = active_units(catalog, params, present)
    return screen_row_detail(row, params, catalog, units).status
