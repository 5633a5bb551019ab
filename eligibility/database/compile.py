"""The catalog's rule trees compiled to ibis boolean expressions, SQL NULL meaning *unknown*.

SQL's AND/OR/NOT on booleans with NULL are Kleene's tables (checked per backend by
`conformance`), so `all`/`any`/`not` map straight onto `&`/`|`/`~`. Everything that
is not plain Kleene (washouts, at-least-k, closed category sets, ×ULN rounding) is
spelled out below with the same decisions as `eligibility/rules.py`, which stays the
reference: these functions read the same catalog nodes and the same parameters.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from ..catalog import (
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
    UlnLimit,
    Within,
)
from ..columns import GROUP_NAMES
from ..fields import DISEASES, FIELD_BY_NAME
from ..rules import IMPLAUSIBLE_UNKNOWN, uln_limit

TRUE = ibis.literal(True)
FALSE = ibis.literal(False)
NULL_BOOL = ibis.literal(None, type="boolean")

# Columns the typed table carries besides the contract columns.
ROW = "__row"  # 1-based data-row number in the input: output order and messages
GROUP = "__group"  # disease group code: index into columns.GROUP_NAMES
UNREADABLE = "__bad_"  # prefix: the cell held text that could not be read (washout decision)

_OPS = {
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def f64(x: float) -> ir.Value:
    """A double literal (a bare 1.5 may become DECIMAL and change the arithmetic)."""
    return ibis.literal(float(x), type="float64")


def group_code(disease: ir.StringValue) -> ir.IntegerValue:
    """The disease group as `columns.disease_groups` numbers it: the five, other, missing."""
    return ibis.cases(
        *[(disease == d, i) for i, d in enumerate(DISEASES)],
        (disease.isnull(), GROUP_NAMES.index("missing")),  # "empty" (last) is a blank file row
        else_=len(DISEASES),
    ).cast("int8")


def round9_half_even(x: ir.FloatingValue) -> ir.FloatingValue:
    """numpy's `np.round(x, 9)` exactly: rint(x × 1e9) / 1e9 with ties to even.

    Spelled out because SQL ROUND rounds ties away from zero on some engines."""
    y = x * f64(1e9)
    fl = y.floor().cast("float64")
    frac = y - fl
    # Each name is inlined wherever it is used (SQL has no let): few uses keep the plan small.
    up = ibis.cases((frac > f64(0.5), f64(1.0)), (frac < f64(0.5), f64(0.0)), else_=(fl % f64(2.0)).abs())
    r = fl + up
    return r / f64(1e9)


class RuleCompiler:
    """Compiles rule trees over one typed ibis table under one parameter set."""

    def __init__(self, catalog: Catalog, table: ir.Table, present: frozenset[str], params: dict[str, Any]):
        self.catalog = catalog
        self.t = table
        self.present = present
        self.params = params

    def has(self, name: str) -> bool:
        from ..fields import source_field

        return source_field(name) in self.present and name in self.t.columns

    def num(self, name: str) -> ir.FloatingValue:
        """A number column; outside its plausible range it is unknown while the
        `implausible_values_unknown` parameter is on (as `rules.RuleEvaluator.num`)."""
        v = self.t[name]
        field = FIELD_BY_NAME.get(name)
        if self.params.get(IMPLAUSIBLE_UNKNOWN, False) and field is not None and field.plausible:
            lo, hi = field.plausible
            v = ibis.ifelse((v < f64(lo)) | (v > f64(hi)), ibis.literal(None, type="float64"), v)
        return v

    def __call__(self, node) -> ir.BooleanValue:
        node = self.catalog.resolve(node)
        p, t = self.params, self.t
        if isinstance(node, Flag):
            return t[node.field]
        if isinstance(node, Compare):
            thr = node.threshold(p)
            if node.lower_bound is not None and node.op == "ge" and thr <= node.lower_bound:
                return TRUE
            return _OPS[node.op](self.num(node.field), f64(thr))
        if isinstance(node, UlnLimit):
            if self.has(node.uln_field):
                uln = self.num(node.uln_field).fill_null(f64(p[node.default_param]))
                limit = round9_half_even(f64(p[node.max_param]) * uln)
            else:  # the memory engine's scalar path: Python's round() of the default
                limit = f64(float(uln_limit(p[node.max_param], None, p[node.default_param])))
            return _OPS[node.op](self.num(node.field), limit)
        if isinstance(node, Within):
            v = self.num(node.field)
            if node.offset_param:
                v = v + f64(node.offset(p))
            never = FALSE
            bad = UNREADABLE + node.field
            if node.unreadable and p[node.unreadable] and bad in t.columns:
                never = ibis.ifelse(t[bad], NULL_BOOL, FALSE)
            return ibis.ifelse(v.isnull(), never, v < f64(p[node.param]))
        if isinstance(node, In):
            allowed = p[node.param] if node.param else node.values
            return self.membership(node.field, allowed)
        if isinstance(node, ParamTrue):
            return TRUE if p[node.param] else FALSE
        if isinstance(node, AllOf):
            out = self(node.of[0])
            for c in node.of[1:]:
                out = out & self(c)
            return out
        if isinstance(node, AnyOf):
            out = self(node.of[0])
            for c in node.of[1:]:
                out = out | self(c)
            return out
        if isinstance(node, Not):
            return ~self(node.item)
        if isinstance(node, Implies):
            if isinstance(node.if_, ParamTrue) and not p[node.if_.param]:
                return TRUE  # clause switched off: its fields need not exist
            return ~self(node.if_) | self(node.then)
        if isinstance(node, AtLeast):
            k = node.k(p)
            return self.at_least(k, [self(c) for c in node.of])
        raise TypeError(f"unknown rule node {type(node).__name__}")

    def membership(self, name: str, allowed) -> ir.BooleanValue:
        """`value ∈ allowed`, case-insensitive; an empty cell is unknown unless the set
        settles it (nothing is in {}, everything is in all categories). Never `NOT IN`
        with a NULL in the list: the list holds only canonical category names."""
        wanted = {a.lower() for a in allowed}
        col = self.t[name]
        if name == "disease":  # groups: the five indications and 'other'; empty = unknown
            hits = [d for d in DISEASES if d.lower() in wanted]
            if not hits and "other" not in wanted:
                return FALSE
            known = col.isin(list(DISEASES))
            inside = col.isin(hits) if hits else FALSE
            if "other" in wanted:
                inside = inside | ~known
            return ibis.ifelse(col.isnull(), NULL_BOOL, inside)
        cats = FIELD_BY_NAME[name].categories
        lower = {c.lower() for c in cats}
        if not wanted & lower:
            return FALSE
        if wanted >= lower:
            return TRUE
        return ibis.ifelse(col.isnull(), NULL_BOOL, col.isin([c for c in cats if c.lower() in wanted]))

    @staticmethod
    def at_least(k: int, items: list[ir.BooleanValue]) -> ir.BooleanValue:
        """Pass once k items are known true; fail once fewer than k could still be true."""
        if k <= 0:
            return TRUE
        n_true = sum((ibis.ifelse(x, 1, 0) for x in items), ibis.literal(0))
        # `x IS NOT FALSE`: true or unknown (CASE WHEN NULL takes the ELSE branch)
        n_possible = sum((ibis.ifelse(~x, 0, 1) for x in items), ibis.literal(0))
        return ibis.cases((n_true >= k, TRUE), (n_possible < k, FALSE), else_=NULL_BOOL)
