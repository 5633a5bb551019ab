"""Vectorised three-valued semantics of the catalog's primitives.

Truth values are uint8 codes ordered FALSE < UNKNOWN < TRUE, so Kleene AND is
the element-wise minimum, OR the maximum and NOT is `2 - x`. No per-row Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
from .columns import Columns

FALSE, UNKNOWN, TRUE = np.uint8(0), np.uint8(1), np.uint8(2)

_CMP = {
    "ge": np.greater_equal,
    "gt": np.greater,
    "le": np.less_equal,
    "lt": np.less,
}


def compare(values: np.ndarray, op: str, threshold) -> np.ndarray:
    """`values op threshold` with NaN → UNKNOWN (threshold may be an array)."""
    with np.errstate(invalid="ignore"):
        hit = _CMP[op](values, threshold)
    out = np.where(hit, TRUE, FALSE)
    out[np.isnan(values)] = UNKNOWN
    if np.ndim(threshold):
        out[np.isnan(threshold)] = UNKNOWN
    return out


def uln_limit(multiple: float, row_uln: np.ndarray | None, default_uln: float) -> np.ndarray | float:
    """Limit = multiple × ULN, rounded to 9 places so 1.5 × 1.2 is exactly 1.8."""
    if row_uln is None:
        return round(multiple * default_uln, 9)
    uln = np.where(np.isnan(row_uln), default_uln, row_uln)
    return np.round(multiple * uln, 9)


def at_least(k: int, items: list[np.ndarray], n: int) -> np.ndarray:
    """Pass once k items are known true; fail once fewer than k could still be true."""
    if k <= 0:
        return np.full(n, TRUE)
    n_true = np.zeros(n, np.int16)
    n_possible = np.zeros(n, np.int16)
    for x in items:
        n_true += x == TRUE
        n_possible += x != FALSE
    out = np.full(n, UNKNOWN)
    out[n_true >= k] = TRUE
    out[n_possible < k] = FALSE
    return out


class RuleEvaluator:
    """Evaluates rule trees on one slice of the columns, under one parameter set."""

    def __init__(self, catalog: Catalog, cols: Columns, sl: slice, params: dict[str, Any]):
        self.catalog = catalog
        self.cols = cols
        self.sl = sl
        self.params = params
        self.n = sl.stop - sl.start

    def num(self, name: str) -> np.ndarray:
        return self.cols.number(name, self.sl)

    def __call__(self, node) -> np.ndarray:
        node = self.catalog.resolve(node)
        p = self.params
        if isinstance(node, Flag):
            return self.cols.kleene(node.field, self.sl)
        if isinstance(node, Compare):
            t = p[node.param] if node.param else node.value
            t = -t if node.negate else t
            if node.lower_bound is not None and node.op == "ge" and t <= node.lower_bound:
                return np.full(self.n, TRUE)
            return compare(self.num(node.field), node.op, t)
        if isinstance(node, UlnLimit):
            row_uln = self.num(node.uln_field) if self.cols.has(node.uln_field) else None
            limit = uln_limit(p[node.max_param], row_uln, p[node.default_param])
            return compare(self.num(node.field), node.op, limit)
        if isinstance(node, Within):
            v = self.num(node.field)
            with np.errstate(invalid="ignore"):
                out = np.where(v < p[node.param], TRUE, FALSE)  # NaN (never) → FALSE
            if node.unreadable and p[node.unreadable]:
                bad = self.cols.unreadable(node.field, self.sl)
                if bad is not None:
                    out[bad] = UNKNOWN
            return out
        if isinstance(node, In):
            allowed = p[node.param] if node.param else node.values
            return self.cols.membership(node.field, allowed, self.sl)
        if isinstance(node, ParamTrue):
            return np.full(self.n, TRUE if p[node.param] else FALSE)
        if isinstance(node, AllOf):
            return np.minimum.reduce([self(c) for c in node.of])
        if isinstance(node, AnyOf):
            return np.maximum.reduce([self(c) for c in node.of])
        if isinstance(node, Not):
            return TRUE - self(node.item)
        if isinstance(node, Implies):
            if isinstance(node.if_, ParamTrue) and not p[node.if_.param]:
                return np.full(self.n, TRUE)  # clause switched off: its fields need not exist
            return np.maximum(TRUE - self(node.if_), self(node.then))
        if isinstance(node, AtLeast):
            k = p[node.param] if node.param else node.value
            return at_least(int(k), [self(c) for c in node.of], self.n)
        if isinstance(node, Ref):  # pragma: no cover - resolve() removed it
            raise AssertionError
        raise TypeError(f"unknown rule node {type(node).__name__}")
