"""Small-cell suppression: no count 1..k−1 is shown, and no hidden count can be recovered.

The engine decides with interval propagation and linear algebra; the tests audit its
output with an independent exact search over every integer table consistent with what is
shown (small tables, so the search is exhaustive).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from eligibility.access.suppression import (
    HIDDEN,
    SMALL,
    WITHHELD,
    WITHHELD_TEXT,
    Relation,
    difference,
    exposed,
    suppress,
    total_of,
)

# -- an exact, independent auditor ------------------------------------------------------------


def feasible_values(leaves: dict, totals: dict, sup, cap: int | None = None) -> dict:
    """For a table given by leaf counts and totals (name → leaf names), every value each
    hidden leaf or total can take in some integer table consistent with what is shown
    ("<k" = 1..k−1, "*" = k or more, "n/s" = anything ≥ 0, shown = exact). Exhaustive
    depth-first search, pruned by the shown totals."""
    k = sup.k
    # An attacker who also knew that no count exceeds the largest one by more than 2: a
    # stronger attacker than the real one, and a finite search.
    cap = cap if cap is not None else max(sup.values.values()) + 2
    names = sorted(leaves)
    shown_total = {t: sup.values[t] for t in totals if t not in sup.hidden}

    def domain(name):
        if name not in sup.hidden:
            return [leaves[name]]
        bound = min([v for t, v in shown_total.items() if name in totals[t]] or [cap])
        state = sup.hidden[name]
        lo, hi = (1, k - 1) if state == SMALL else (k, bound) if state == HIDDEN else (0, bound)
        return list(range(lo, min(hi, bound) + 1))

    def ok_total(t, value):
        state = sup.hidden.get(t)
        if state is None:
            return value == sup.values[t]
        if state == WITHHELD:
            return value >= 0
        return 1 <= value < k if state == SMALL else value >= k

    doms = [domain(n) for n in names]
    seen = {n: set() for n in [*names, *totals] if n in sup.hidden}
    assign = [0] * len(names)

    # Forward checking: with leaves 0..i assigned, every total must still be reachable by the
    # leaves left (their smallest and largest values); prunes the search to the feasible set.
    tot_lo = {t: (sup.values[t], sup.values[t]) if t not in sup.hidden else
              {SMALL: (1, k - 1), HIDDEN: (k, 10**9), WITHHELD: (0, 10**9)}[sup.hidden[t]] for t in totals}
    idx = {t: [names.index(m) for m in totals[t]] for t in totals}

    def partial_ok(i):
        for t, members in idx.items():
            done = sum(assign[m] for m in members if m <= i)
            rest_lo = sum(doms[m][0] for m in members if m > i)
            rest_hi = sum(doms[m][-1] for m in members if m > i)
            lo, hi = tot_lo[t]
            if done + rest_lo > hi or done + rest_hi < lo:
                return False
        return True

    def dfs(i):
        if i == len(names):
            for j, n in enumerate(names):
                if n in seen:
                    seen[n].add(assign[j])
            for t in totals:
                if t in seen:
                    seen[t].add(sum(assign[names.index(m)] for m in totals[t]))
            return
        for v in doms[i]:
            assign[i] = v
            if partial_ok(i):
                dfs(i + 1)

    dfs(0)
    return seen


def relations_of(totals: dict) -> list[Relation]:
    return [total_of(t, members) for t, members in totals.items()]


def grid(cells: list[list[int]]) -> tuple[dict, dict]:
    """A two-way table with row, column and grand totals."""
    leaves = {f"c{i}{j}": v for i, row in enumerate(cells) for j, v in enumerate(row)}
    totals = {}
    for i, row in enumerate(cells):
        totals[f"r{i}"] = [f"c{i}{j}" for j in range(len(row))]
    for j in range(len(cells[0])):
        totals[f"k{j}"] = [f"c{i}{j}" for i in range(len(cells))]
    totals["all"] = list(leaves)
    return leaves, totals


def check_table(leaves: dict, totals: dict, k: int) -> None:
    values = {**leaves, **{t: sum(leaves[m] for m in ms) for t, ms in totals.items()}}
    sup = suppress(values, relations_of(totals), k)
    assert not sup.unprotected
    for key, v in values.items():
        if 1 <= v < k:
            assert sup.hidden.get(key) in (SMALL, WITHHELD), (key, v)
            assert sup.text(key) in (f"<{k}", "n/s")
        if key not in sup.hidden:
            assert sup.text(key) == f"{v:,}"
        elif sup.hidden[key] == HIDDEN:
            assert v >= k  # complements are never zeros or small counts
    seen = feasible_values(leaves, totals, sup)
    for key, vals in seen.items():
        assert values[key] in vals, "the true table must be consistent with what is shown"
        if 1 <= values[key] < k:
            assert len(vals) > 1, f"{key} = {values[key]} is recoverable: {sup.hidden}"


# -- properties ----------------------------------------------------------------------------------

small_counts = st.integers(0, 7) | st.sampled_from([0, 1, 2, 5, 6])


@settings(max_examples=12, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate], deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(st.lists(small_counts, min_size=2, max_size=3), min_size=2, max_size=2).filter(
    lambda rows: len({len(r) for r in rows}) == 1), k=st.integers(3, 5))
def test_two_way_table_hides_small_counts_beyond_recovery(cells, k):
    leaves, totals = grid(cells)
    check_table(leaves, totals, k)


@settings(max_examples=20, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(small_counts, min_size=1, max_size=5), split=st.integers(1, 4), k=st.integers(3, 6))
def test_nested_totals_hide_small_counts_beyond_recovery(parts, split, k):
    # all → (first `split` parts as a subtotal) + the rest: a two-level hierarchy
    leaves = {f"p{i}": v for i, v in enumerate(parts)}
    names = list(leaves)
    totals = {"all": names}
    if 1 < split < len(names):
        totals["sub"] = names[:split]
    check_table(leaves, totals, k)


@pytest.mark.parametrize(("cells", "k"), [
    ([[1, 2, 1], [2, 6, 3]], 3),  # interval propagation + linear algebra let an exact attacker get c02 = 1
    ([[1, 2], [2, 6]], 3),
    ([[0, 4, 1], [3, 0, 2]], 5),
    ([[5, 1], [1, 5]], 5),
])
def test_two_way_counterexamples_are_protected(cells, k):
    leaves, totals = grid(cells)
    check_table(leaves, totals, k)


def test_nested_sums_are_combined():
    # all = p0 + p1 + p2 = 6 and sub = p0 + p1 < 4 give p2 ≥ 3; with k = 4 that fixes p2 = 3
    leaves = {"p0": 1, "p1": 2, "p2": 3}
    totals = {"all": ["p0", "p1", "p2"], "sub": ["p0", "p1"]}
    check_table(leaves, totals, 4)


def test_a_total_and_one_small_part():
    # 10 = 9 + 1: the 1 is hidden, and so must the 9 be (else 10 − 9 gives it away)
    sup = suppress({"t": 10, "a": 9, "b": 1}, [total_of("t", ["a", "b"])], 5)
    assert sup.hidden == {"b": SMALL, "a": HIDDEN}
    assert [sup.text(x) for x in ("t", "a", "b")] == ["10", "*", "<5"]


def test_bounds_alone_can_give_a_count_away():
    # 6 = 5 + 1: with "<5" ∈ 1..4 and "*" ≥ 5, b = 6 − a ≤ 1, so b = 1 unless the total goes too
    sup = suppress({"t": 6, "a": 5, "b": 1}, [total_of("t", ["a", "b"])], 5)
    assert set(sup.hidden) == {"t", "a", "b"}


def test_k_boundaries():
    sup = suppress({"t": 9, "a": 4, "b": 5, "z": 0}, [total_of("t", ["a", "b", "z"])], 5)
    assert sup.hidden["a"] == SMALL  # k − 1 hidden
    assert sup.hidden["b"] == HIDDEN  # k shown unless a complement is needed; here it is
    assert "z" not in sup.hidden and sup.text("z") == "0"  # zero is never hidden
    sup = suppress({"t": 11, "a": 5, "b": 6}, [total_of("t", ["a", "b"])], 5)
    assert sup.hidden == {}


def test_equations_alone_can_give_a_count_away():
    # x + y = 5, y + z = 7, x + z = 6 fix x = 2 whatever the bounds
    r = [Relation((("x", 1), ("y", 1), ("s1", -1))), Relation((("y", 1), ("z", 1), ("s2", -1))),
         Relation((("x", 1), ("z", 1), ("s3", -1)))]
    values = {"x": 2, "y": 3, "z": 4, "s1": 5, "s2": 7, "s3": 6}
    assert "x" in exposed(values, r, {"x": SMALL, "y": SMALL, "z": SMALL}, 5)


def test_differences_are_protected():
    # eligible after = before + gained − lost; gained = 2 must not follow from the others
    values = {"after": 52, "before": 50, "gained": 2, "lost": 0}
    sup = suppress(values, [difference("after", "before", "gained", "lost")], 5)
    assert sup.hidden["gained"] == SMALL
    assert len(sup.hidden) >= 2 and "lost" not in sup.hidden  # zero stays shown


def test_fixed_release_is_kept_and_extensions_only_add():
    base = suppress({"t": 20, "a": 17, "b": 3}, [total_of("t", ["a", "b"])], 5)
    ext = suppress({"a1": 10, "a2": 7}, [total_of("a", ["a1", "a2"])], 5, fixed=base)
    assert ext.hidden["a"] == base.hidden["a"] and ext.hidden["b"] == SMALL
    assert not ext.unprotected
    # a published total split into a small and a large part: the large one is hidden too
    ext = suppress({"t1": 18, "t2": 2}, [total_of("t", ["t1", "t2"])], 5, fixed=base)
    assert ext.hidden == {**base.hidden, "t1": HIDDEN, "t2": SMALL}


def test_no_large_count_left_withholds_the_relation():
    # 6 = 5 + 1 with the 6 fixed by an earlier release: both parts are withheld
    base = suppress({"t": 6}, [], 5)
    ext = suppress({"a": 5, "b": 1}, [total_of("t", ["a", "b"])], 5, fixed=base)
    assert ext.hidden == {"a": WITHHELD, "b": WITHHELD} and not ext.unprotected
    assert ext.text("b") == "n/s"


def test_unprotectable_with_a_fixed_release_is_reported():
    base = suppress({"t": 6, "a": 5}, [], 5)
    ext = suppress({"b": 1}, [total_of("t", ["a", "b"])], 5, fixed=base)
    assert "b" in ext.unprotected


def test_bad_k_and_unknown_keys():
    with pytest.raises(ValueError, match="at least 3"):
        suppress({"a": 1}, [], 2)
    with pytest.raises(KeyError, match="not given"):
        suppress({"a": 1}, [total_of("a", ["b"])], 5)


def test_derived_values_are_hidden_with_their_inputs():
    sup = suppress({"t": 10, "a": 9, "b": 1}, [total_of("t", ["a", "b"])], 5)
    assert sup.derived(["a", "t"], lambda a, t: 100 * a / t, "{:.1f}%") == "*"
    assert sup.derived(["t"], lambda t: t * 2) == "20"


def test_complements_that_protect_nothing_are_not_chosen():
    """t = a + b + c with a small; b is also d + e (both shown), so hiding b alone would not
    protect a (b follows from d and e): the one complement is c, though b is smaller (hiding b
    first, as the smallest, ends with b and d hidden: more cells and more patients)."""
    values = {"t": 27, "a": 2, "b": 12, "c": 13, "d": 6, "e": 6}
    sup = suppress(values, [total_of("t", ["a", "b", "c"]), total_of("b", ["d", "e"])], k=5)
    assert {key for key, s in sup.hidden.items() if s == HIDDEN} == {"c"}
    assert sup.hidden["a"] == SMALL and not sup.unprotected


def test_unshown_counts_are_free_and_not_audited():
    """Cells of a change matrix that are never displayed: the attacker knows nothing of them, so
    the margins can be shown; they are kept out of the audit (not cells of the release)."""
    values = {"before": 20, "after": 23, "stay": 19, "out": 1, "in": 4}
    rels = [total_of("before", ["stay", "out"]), total_of("after", ["stay", "in"])]
    sup = suppress(values, rels, k=5, unshown=["stay", "out", "in"])
    assert sup.shown("before", "after") and sup.unshown == {"stay", "out", "in"}
    assert sup.text("in") == WITHHELD_TEXT
    with pytest.raises(KeyError):
        suppress(values, rels, k=5, unshown=["nowhere"])
