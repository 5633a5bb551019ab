"""A straightforward per-patient evaluator: plain Python, one row at a time.

Used as the baseline in the benchmark (how fast a naive implementation is) and
as a second opinion on the vectorised engine in tests.
"""

from __future__ import annotations

import math
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
    UlnLimit,
    Within,
)
from .fields import field

F, U, T = 0, 1, 2
_OPS = {"ge": lambda a, b: a >= b, "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def truth(node, row: dict, params: dict, catalog: Catalog) -> int:
    node = catalog.resolve(node)
    if isinstance(node, Flag):
        v = row.get(node.field)
        return U if _missing(v) else (T if v else F)
    if isinstance(node, Compare):
        t = params[node.param] if node.param else node.value
        t = -t if node.negate else t
        if node.lower_bound is not None and node.op == "ge" and t <= node.lower_bound:
            return T
        v = row.get(node.field)
        return U if _missing(v) else (T if _OPS[node.op](v, t) else F)
    if isinstance(node, UlnLimit):
        v = row.get(node.field)
        if _missing(v):
            return U
        uln = row.get(node.uln_field)
        uln = params[node.default_param] if _missing(uln) else uln
        return T if _OPS[node.op](v, round(params[node.max_param] * uln, 9)) else F
    if isinstance(node, Within):
        v = row.get(node.field)
        if _missing(v):
            unreadable = node.unreadable and params[node.unreadable] and node.field in row.get("_unreadable", ())
            return U if unreadable else F
        return T if v < params[node.param] else F
    if isinstance(node, In):
        v = row.get(node.field)
        allowed = {a.lower() for a in (params[node.param] if node.param else node.values)}
        cats = {c.lower() for c in field(node.field).categories} if node.field != "disease" else None
        if cats is not None and not allowed & cats:
            return F
        if cats is not None and allowed >= cats:
            return T
        if _missing(v):
            return U
        return T if str(v).lower() in allowed else F
    if isinstance(node, ParamTrue):
        return T if params[node.param] else F
    if isinstance(node, AllOf):
        return min(truth(c, row, params, catalog) for c in node.of)
    if isinstance(node, AnyOf):
        return max(truth(c, row, params, catalog) for c in node.of)
    if isinstance(node, Not):
        return T - truth(node.item, row, params, catalog)
    if isinstance(node, Implies):
        if isinstance(node.if_, ParamTrue) and not params[node.if_.param]:
            return T
        return max(T - truth(node.if_, row, params, catalog), truth(node.then, row, params, catalog))
    if isinstance(node, AtLeast):
        k = params[node.param] if node.param else node.value
        vals = [truth(c, row, params, catalog) for c in node.of]
        if sum(v == T for v in vals) >= k:
            return T
        return F if sum(v != F for v in vals) < k else U
    raise TypeError(type(node).__name__)


def screen_row(row: dict[str, Any], params: dict, catalog: Catalog, present: frozenset[str]) -> str:
    """Status of one patient: 'eligible', 'pending' or 'ineligible'."""
    status = T
    disease = row.get("disease")
    for u in catalog.units:
        if u.block != "common" and u.block != disease:
            continue
        if not catalog.fields_of(u.rule, params) <= present:
            continue
        t = truth(u.rule, row, params, catalog)
        status = min(status, t if u.kind == "incl" else T - t)
    return ("ineligible", "pending", "eligible")[status]
