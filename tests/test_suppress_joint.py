"""Releases shown together cannot be combined: protocol vs scenario (deltas), A vs B, the points
of a threshold sweep and the failure combinations are suppressed as one system with the page's
release. Checked two ways: no two counts shown side by side differ by 1..k−1 (subtraction),
and the exact audit (every relation at once, HiGHS) recovers no hidden small count."""

from __future__ import annotations

from itertools import combinations

import pandas as pd
import pytest
from apptest_support import BUNDLED

from eligibility.access import joint as J
from eligibility.access import release as R
from eligibility.access.suppression import _nested, exposed
from eligibility.attribution import ALL
from eligibility.attribution import combinations as failure_combinations
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import Scenario, resolve
from eligibility.whatif import sweep

K = 5


@pytest.fixture(scope="module")
def evs():
    ev = Evaluator.for_cohort(load_cohort(BUNDLED))

    def at(data: dict):
        return ev.evaluate(resolve(Scenario.model_validate(data)))

    base = at({})
    return ev, base, at({"parameters": {"age_max": 70}}), at({"parameters": {"age_max": 72}})


def audited(sup) -> set:
    """The exact audit over every relation of the joint system (unshown cells are free)."""
    return exposed(sup.values, [*sup.relations, *_nested(sup.relations)], sup.hidden, sup.k, set(sup.unshown))


def no_small_difference(sup, pairs) -> list:
    """Pairs of shown counts whose difference is 1..k−1 (what subtraction would give away)."""
    return [(a, b) for a, b in pairs if sup.shown(a, b) and 1 <= abs(sup.values[a] - sup.values[b]) < sup.k]


def test_protocol_and_scenario_deltas(evs):
    _, base, cur, _ = evs
    rel = R.build(base, cur, K)
    sup = rel.sup
    assert not sup.unprotected and not audited(sup)
    pairs = [(("status", "base", g, s), ("status", "cur", g, s)) for g in rel.groups for s in R.DELTA_ITEMS]
    assert not no_small_difference(sup, pairs)
    # the bundled cohort has small changes (age 65 → 70 moves a few patients per disease): they are
    # cells, hidden as "<k" (shown with their direction), never a number
    small = [key for key in sup.values if key[0] == "delta" and 1 <= sup.values[key] < K]
    assert small
    for key in small:
        g, s = key[2], key[3]
        assert rel.change("base", "cur", g, s) in (f"+<{K}", f"-<{K}", "n/s")
    # a change of zero (APS: nobody moves) leaves the scenario's counts shown
    assert rel.change("base", "cur", "APS", "eligible") == "0"


def test_scenario_counts_are_not_all_hidden(evs):
    """Complements go where they protect something: a disease nobody moves in keeps its
    scenario counts, and hiding stays a small share of the release."""
    _, base, cur, _ = evs
    sup = R.build(base, cur, K).sup
    assert all(sup.shown(("status", "cur", "APS", s)) for s in R.DELTA_ITEMS)
    complements = [key for key, state in sup.hidden.items() if state == "hidden"]
    assert len(complements) < 0.08 * len(sup.values)


def test_a_versus_b(evs):
    _, base, cur, b = evs
    rel = R.build(base, cur, K)
    sup = J.compare(rel, base, cur, b)
    assert not sup.unprotected and not audited(sup)
    pairs = [(("status", x, g, s), ("status", y, g, s)) for g in rel.groups for s in ("eligible", "pending")
             for x, y in (("cur", "b"), ("base", "b"), ("base", "cur"))]
    assert not no_small_difference(sup, pairs)
    table = J.compare_table(rel, sup, rel.groups)
    for col in table.columns.drop("group"):
        for v in table[col]:
            t = str(v).lstrip("+-").replace(",", "")
            assert not (t.isdigit() and 1 <= int(t) < K), (col, v)


def test_sweep_points_cannot_be_subtracted(evs):
    ev, base, cur, _ = evs
    rel = R.build(base, cur, K)
    df = sweep(ev, cur.scenario, "age_max", values=[60, 64, 65, 66, 68, 70, 72, 75])
    shown, sup = J.sweep(rel, df, None, 70.0)
    assert not sup.unprotected and not audited(sup)
    for s in J.SWEEP_STATUSES:
        keys = [("sweep", f"p{i}", ALL, s) for i in range(len(df))] + [("status", "base", ALL, s)]
        assert not no_small_difference(sup, combinations(keys, 2)), s
    # the point at the scenario's value is the scenario's count, shown the same way
    i = list(df["value"]).index(70.0)
    assert shown["eligible"].iloc[i] == rel.text("status", "cur", ALL, "eligible")
    # a hidden point has no height (the chart draws it on the axis with its text)
    assert all(pd.isna(h) == (t in (f"<{K}", "*", "n/s")) for h, t in zip(shown["eligible_height"], shown["eligible"],
                                                                           strict=True))


def test_failure_combinations(evs):
    _, base, cur, _ = evs
    rel = R.build(base, cur, K)
    table = failure_combinations(cur, "APS", top=30)
    texts, sup = J.combos(rel, table, "APS")
    assert not sup.unprotected and not audited(sup)
    assert any(1 <= v < K for v in table["count"])  # the test meets small combinations
    for t, v in zip(texts, table["count"], strict=True):
        assert t == (f"<{K}" if 1 <= v < K else t)
        assert not (t.replace(",", "").isdigit() and 1 <= int(t.replace(",", "")) < K)
