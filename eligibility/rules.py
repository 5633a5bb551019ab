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
from .columns import Columns, InputOrder
from .rule_visit import RuleVisitor

FALSE, UNKNOWN, TRUE = np.uint8(0), np.uint8(1), np.uint8(2)
# Parameter: a value outside its field's plausible range is "to verify" (unknown), not decisive.
IMPLAUSIBLE_UNKNOWN = "implausible_values_unknown"

_CMP = {
    "ge": np.greater_equal,
    "gt": np.greater,
    "le": np.less_equal,
    "lt": np.less,
}


def compare(values: np.ndarray, op: str, threshold) -> np.ndarray:
    """`values op threshold` with NaN → UNKNOWN (threshold may be an array)."""
    with np.errstate(invalid="ignore"):
        out = _CMP[op](values, threshold).view(np.uint8)  # a comparison with NaN is False: 0
    out <<= 1  # TRUE = 2
    unknown = np.isnan(values)
    if np.ndim(threshold):
        unknown |= np.isnan(threshold)
    out += unknown.view(np.uint8)  # FALSE + 1 = UNKNOWN
    return out


def uln_limit(multiple: float, row_uln: np.ndarray | None, default_uln: float) -> np.ndarray | float:
    """Limit = multiple × ULN, rounded to 9 places so 1.5 × 1.2 is exactly 1.8."""
    if row_uln is None:
        return round(multiple * default_uln, 9)
    uln = np.where(np.isnan(row_uln), default_uln, row_uln)
    return np.round(multiple * uln, 9)


def compare_row_uln(values: np.ndarray, op: str, multiple: float, row_uln: np.ndarray,
                    default_uln: float) -> np.ndarray:
    """compare(values, op, uln_limit(multiple, row_uln, default_uln)), in a third of the time:
    the limit is rounded in one buffer, and the rows without a ULN take the comparison with the
    default's limit by a branch-free select (np.where over a half-empty column mispredicts)."""
    limit = np.multiply(row_uln, multiple)  # what np.round(x, 9) does, in place
    np.multiply(limit, 1e9, out=limit)
    np.rint(limit, out=limit)
    np.divide(limit, 1e9, out=limit)
    out = compare(values, op, limit)
    no_uln = np.isnan(row_uln).view(np.uint8)
    if no_uln.any():
        # The default's limit rounded as the array path rounds it (numpy, not Python's round).
        fallback = compare(values, op, np.round(np.multiply(multiple, np.float64(default_uln)), 9))
        np.negative(no_uln, out=no_uln)  # 0 or 0xFF
        fallback ^= out
        fallback &= no_uln
        out ^= fallback
    return out


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


class RuleEvaluator(RuleVisitor[np.ndarray]):
    """Evaluates rule trees on one slice of the columns, under one parameter set."""

    def __init__(self, catalog: Catalog, cols: Columns | InputOrder, sl: slice, params: dict[str, Any],
                 verified: dict[tuple, np.ndarray] | None = None):
        self.catalog = catalog
        self.cols = cols
        self.sl = sl
        self.params = params
        self.n = sl.stop - sl.start
        # Numbers with the values to verify blanked, shared across units (the caller's dict).
        self._verified = {} if verified is None else verified

    def num(self, name: str) -> np.ndarray:
        values = self.cols.number(name, self.sl)
        if self.params.get(IMPLAUSIBLE_UNKNOWN, False):
            key = (name, self.sl.start, self.sl.stop, self.cols.in_input_order)
            blanked = self._verified.get(key)
            if blanked is None:
                odd = self.cols.implausible(name, self.sl)
                blanked = values if odd is None or not odd.any() else np.where(odd, np.nan, values)
                self._verified[key] = blanked
            values = blanked
        return values

    def __call__(self, node) -> np.ndarray:
        return self.visit(node)

    def ref(self, node: Ref) -> np.ndarray:
        return self.visit(self.catalog.definitions[node.name])

    def flag(self, node: Flag) -> np.ndarray:
        return self.cols.kleene(node.field, self.sl)

    def compare(self, node: Compare) -> np.ndarray:
        if node.always_holds(self.params):
            return np.full(self.n, TRUE)
        return compare(self.num(node.field), node.op, node.threshold(self.params))

    def uln(self, node: UlnLimit) -> np.ndarray:
        p = self.params
        values = self.num(node.field)
        if not self.cols.has(node.uln_field):
            return compare(values, node.op, uln_limit(p[node.max_param], None, p[node.default_param]))
        return compare_row_uln(values, node.op, p[node.max_param], self.num(node.uln_field), p[node.default_param])

    def within(self, node: Within) -> np.ndarray:
        p = self.params
        v = self.num(node.field)
        if node.offset_param:
            v = v + node.offset(p)
        with np.errstate(invalid="ignore"):
            out = np.where(v < p[node.param], TRUE, FALSE)  # NaN (never) → FALSE
        if node.unreadable and p[node.unreadable]:
            bad = self.cols.unreadable(node.field, self.sl)
            if bad is not None:
                out[bad] = UNKNOWN
        return out

    def in_(self, node: In) -> np.ndarray:
        return self.cols.membership(node.field, node.allowed(self.params), self.sl)

    def param_true(self, node: ParamTrue) -> np.ndarray:
        return np.full(self.n, TRUE if self.params[node.param] else FALSE)

    def all_of(self, node: AllOf) -> np.ndarray:
        return np.minimum.reduce([self.visit(c) for c in node.of])

    def any_of(self, node: AnyOf) -> np.ndarray:
        return np.maximum.reduce([self.visit(c) for c in node.of])

    def not_(self, node: Not) -> np.ndarray:
        return TRUE - self.visit(node.item)

    def implies(self, node: Implies) -> np.ndarray:
        if isinstance(node.if_, ParamTrue) and not self.params[node.if_.param]:
            return np.full(self.n, TRUE)  # clause switched off: its fields need not exist
        return np.maximum(TRUE - self.visit(node.if_), self.visit(node.then))

    def at_least(self, node: AtLeast) -> np.ndarray:
        return at_least(node.k(self.params), [self.visit(c) for c in node.of], self.n)
