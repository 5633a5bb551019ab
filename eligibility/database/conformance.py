"""Kleene conformance suite: what the compiler relies on, asked of a live backend.

Every case is an ibis expression over a nine-row table holding every pair of
TRUE/FALSE/NULL, with the answer Kleene logic gives. A backend that answers one
case differently is refused, naming the case (through ibis, SQL Server turns
NOT(unknown) into true, i.e. an unknown exclusion into a pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

import ibis
import pandas as pd

from .backend import BackendError
from .compile import RuleCompiler, f64, round9_half_even

_T = (True, False, None)
A = [a for a, _ in product(_T, _T)]
B = [b for _, b in product(_T, _T)]
# An integer column with NULLs, derived in the query from a and b (no driver conversion
# of nullable integers involved): NULL when a is NULL, 1 when a, else 2 if b else 3.
X = [None if a is None else 1 if a else 2 if b is True else 3 for a, b in zip(A, B, strict=True)]


def k_and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def k_or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def k_not(a):
    return None if a is None else not a


def k_at_least(k, items):
    n_true = sum(x is True for x in items)
    n_possible = sum(x is not False for x in items)
    return True if n_true >= k else False if n_possible < k else None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Any], Any]  # table -> column expression (or scalar for aggregates)
    expected: list | Any
    aggregate: bool = False


def _null_str():
    return ibis.literal(None, type="string")


CASES: tuple[Case, ...] = (
    Case("a AND b (Kleene)", lambda t: t.a & t.b, [k_and(a, b) for a, b in zip(A, B, strict=True)]),
    Case("a OR b (Kleene)", lambda t: t.a | t.b, [k_or(a, b) for a, b in zip(A, B, strict=True)]),
    Case("NOT a (Kleene)", lambda t: ~t.a, [k_not(a) for a in A]),
    Case("NOT (a AND b)", lambda t: ~(t.a & t.b), [k_not(k_and(a, b)) for a, b in zip(A, B, strict=True)]),
    Case("NOT a OR b (implication)", lambda t: ~t.a | t.b, [k_or(k_not(a), b) for a, b in zip(A, B, strict=True)]),
    Case("x IN (1, 2) with NULL x", lambda t: t.x.isin([1, 2]), [None if x is None else x in (1, 2) for x in X]),
    Case("x NOT IN (1, 2) with NULL x", lambda t: ~t.x.isin([1, 2]),
         [None if x is None else x not in (1, 2) for x in X]),
    Case("x < 2 with NULL x", lambda t: t.x < 2, [None if x is None else x < 2 for x in X]),
    Case("x >= 2 with NULL x", lambda t: t.x >= 2, [None if x is None else x >= 2 for x in X]),
    Case("a IS NULL", lambda t: t.a.isnull(), [a is None for a in A]),
    Case("CASE WHEN a THEN 2 WHEN NOT a THEN 0 ELSE 1",
         lambda t: ibis.cases((t.a, 2), (~t.a, 0), else_=1), [1 if a is None else 2 if a else 0 for a in A]),
    Case("IF(a IS NULL, NULL, FALSE) then OR", lambda t: ibis.ifelse(t.a.isnull(), ibis.literal(None, "boolean"),
                                                                     ibis.literal(False)) | t.b,
         [k_or(None if a is None else False, b) for a, b in zip(A, B, strict=True)]),
    Case("COUNT of TRUE over a boolean (not FALSE)", lambda t: ibis.ifelse(t.a, 1, 0).sum(),
         sum(a is True for a in A), aggregate=True),
    Case("at least 2 of (a, b, NOT a) with unknowns",
         lambda t: RuleCompiler.at_least(2, [t.a, t.b, ~t.a]),
         [k_at_least(2, [a, b, k_not(a)]) for a, b in zip(A, B, strict=True)]),
    Case("at least 1 of (a, b)", lambda t: RuleCompiler.at_least(1, [t.a, t.b]),
         [k_at_least(1, [a, b]) for a, b in zip(A, B, strict=True)]),
    Case("concat_ws skips NULL", lambda t: ibis.literal(";").join(
        [ibis.ifelse(t.a, "A", _null_str()), ibis.ifelse(t.b, "B", _null_str())]),
         [";".join(s for s, v in (("A", a), ("B", b)) if v is True) for a, b in zip(A, B, strict=True)]),
    Case("coalesce of NULL", lambda t: t.x.fill_null(0), [0 if x is None else x for x in X]),
    Case("double arithmetic (1.5 × 1.2 rounded to 9 places = 1.8)",
         lambda t: round9_half_even(f64(1.5) * f64(1.2)) == f64(1.8), [True] * 9),
)


def _table():
    t = ibis.memtable(pd.DataFrame({
        "i": range(9),
        "a": pd.array(A, dtype="boolean"),
        "b": pd.array(B, dtype="boolean"),
    }))
    null = ibis.literal(None, type="int64")
    one, two, three = (ibis.literal(v, type="int64") for v in (1, 2, 3))
    return t.mutate(x=ibis.ifelse(t.a.isnull(), null, ibis.ifelse(t.a, one, ibis.ifelse(t.b.fill_null(False), two,
                                                                                         three))))


def _plain(v):
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def run(con, execute: Callable | None = None) -> list[tuple[str, Any, Any]]:
    """Every failing case as (name, expected, got); empty when the backend conforms.

    All row cases go in one query and the aggregates in another (on Spark each query
    costs seconds of planning); only when that combined query cannot run at all is each
    case asked alone, so that the one the backend cannot compile is named."""
    execute = execute or con.execute
    t = _table()
    rows = [c for c in CASES if not c.aggregate]
    aggs = [c for c in CASES if c.aggregate]
    try:
        df = execute(t.select("i", **{f"v{k}": c.build(t) for k, c in enumerate(rows)}).order_by("i"))
        got = {c.name: [_plain(v) for v in df[f"v{k}"].tolist()] for k, c in enumerate(rows)}
        if aggs:
            one = execute(t.aggregate(**{f"v{k}": c.build(t) for k, c in enumerate(aggs)}))
            got.update({c.name: _plain(one[f"v{k}"].iloc[0]) for k, c in enumerate(aggs)})
    except Exception:  # noqa: BLE001 - find the case that breaks the combined query
        got = {c.name: _one(t, c, execute) for c in CASES}
    return [(c.name, c.expected, got[c.name]) for c in CASES if got[c.name] != c.expected]


def _one(t, case: Case, execute: Callable):
    try:
        if case.aggregate:
            return _plain(execute(case.build(t)))
        df = execute(t.select("i", v0=case.build(t)).order_by("i"))
        return [_plain(v) for v in df["v0"].tolist()]
    except Exception as e:  # noqa: BLE001 - a case the backend cannot even compile fails
        return f"error: {type(e).__name__}"


def check(con, execute: Callable | None = None) -> None:
    """Refuse a backend that fails a case, naming it."""
    failures = run(con, execute)
    if failures:
        name, want, got = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise BackendError(
            f"backend {getattr(con, 'name', con)!s} refused: Kleene conformance case {name!r} "
            f"gave {got!r}, expected {want!r}{more}"
        )
