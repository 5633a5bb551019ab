"""Counts shown beside the page's release (release.py), suppressed *together with it* so that
no combination of the two gives a hidden count away: a second scenario B beside the active
one (A/B comparison), the points of a threshold sweep, the most common failure combinations.

Each extension is a `suppress(..., fixed=release)`: the release's counts keep their states,
the new cells are tied to them by the relations a reader can use (the sweep point at the
scenario's own value is the scenario's count; a combination count is part of the ineligible
count), and every change between two counts shown side by side is a cell of its own
(`release.delta_cells`), so a difference of 1 to k−1 is hidden like any small count.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..attribution import ALL, group_slices
from ..evaluate import ELIGIBLE, INELIGIBLE, PENDING, Evaluation
from .release import STATUS_CODE, STATUSES, Release, delta_cells, move_cells
from .suppression import HIDDEN_TEXT, WITHHELD_TEXT, Relation, Suppression, suppress, total_of

SWEEP_STATUSES = ("eligible", "pending", "ineligible")


def _statuses(ev: Evaluation, tag: str) -> tuple[dict, list[Relation]]:
    """Only the status counts of an evaluation (screened = e + p + i, remaining = e + p, All = Σ)."""
    values: dict = {}
    rels: list[Relation] = []
    slices = group_slices(ev)
    for g, sl in slices.items():
        st = np.bincount(ev.status[sl], minlength=3)
        n = {"screened": sl.stop - sl.start, "eligible": st[ELIGIBLE], "pending": st[PENDING],
             "ineligible": st[INELIGIBLE], "remaining": st[ELIGIBLE] + st[PENDING]}
        k = {s: (("status", tag, g, s)) for s in n}
        values.update({k[s]: int(v) for s, v in n.items()})
        rels.append(total_of(k["screened"], [k["eligible"], k["pending"], k["ineligible"]]))
        rels.append(total_of(k["remaining"], [k["eligible"], k["pending"]]))
    parts = [g for g in slices if g != ALL]
    for s in ("screened", "eligible", "pending", "ineligible", "remaining"):
        rels.append(total_of(("status", tag, ALL, s), [("status", tag, g, s) for g in parts]))
    return values, rels


def _moves(a: Evaluation, b: Evaluation, ta: str, tb: str) -> tuple[dict, list[Relation]]:
    """Patients per (status under a → status under b), as unshown cells; gained, lost and
    changed (shown) are their sums."""
    values: dict = {}
    rels: list[Relation] = []
    slices = group_slices(b)
    parts = [g for g in slices if g != ALL]
    tag = f"{ta}>{tb}"
    for g, sl in slices.items():
        sa, sb = a.status[sl], b.status[sl]
        m = {}
        for s1 in STATUSES:
            for s2 in STATUSES:
                key = ("move", tag, g, (s1, s2))
                values[key] = int(np.count_nonzero((sa == STATUS_CODE[s1]) & (sb == STATUS_CODE[s2])))
                m[s1, s2] = key
        for s in STATUSES:
            rels.append(total_of(("status", ta, g, s), [m[s, s2] for s2 in STATUSES]))
            rels.append(total_of(("status", tb, g, s), [m[s1, s] for s1 in STATUSES]))
        sums = {"gained": [m[s1, "eligible"] for s1 in STATUSES if s1 != "eligible"],
                "lost": [m["eligible", s2] for s2 in STATUSES if s2 != "eligible"],
                "changed": [m[s1, s2] for s1 in STATUSES for s2 in STATUSES if s1 != s2]}
        for name, members in sums.items():
            margin = ("move", tag, g, name)
            values[margin] = sum(values[x] for x in members)
            rels.append(total_of(margin, members))
    for item in [*[(s1, s2) for s1 in STATUSES for s2 in STATUSES], "gained", "lost", "changed"]:
        rels.append(total_of(("move", tag, ALL, item), [("move", tag, g, item) for g in parts]))
    return values, rels


def signed(sup: Suppression, key: tuple, d: int) -> str:
    """A delta cell as text with its direction ("+12", "-<5", "0", "*")."""
    text = sup.text(key)
    if text == "0" or text in (HIDDEN_TEXT, WITHHELD_TEXT):
        return text
    return ("+" if d > 0 else "-") + text


# -- A/B comparison ------------------------------------------------------------------------------


def compare(rel: Release, base: Evaluation, cur: Evaluation, b: Evaluation) -> Suppression:
    """Scenario B's status counts, its moves from A and from the protocol, and the changes
    B − A and B − protocol, suppressed around the page's release (memoised on B)."""
    key = ("release:b", base.scenario.key, cur.scenario.key, rel.k)
    if key not in b._memo:
        values, rels = _statuses(b, "b")
        mv, mr = _moves(cur, b, "cur", "b")
        pv, pr = _moves(base, b, "base", "b")
        every = {**rel.sup.values, **values}
        groups = list(group_slices(b))
        d1, r1 = delta_cells(every, "cur", "b", groups, ("eligible", "pending"))
        d2, r2 = delta_cells(every, "base", "b", groups, ("eligible", "pending"))
        b._memo[key] = suppress({**values, **mv, **pv, **d1, **d2}, [*rels, *mr, *pr, *r1, *r2], rel.k,
                                fixed=rel.sup, unshown=move_cells(mv) | move_cells(pv))
    return b._memo[key]


def compare_table(rel: Release, sup: Suppression, groups: list[str]) -> pd.DataFrame:
    """`compare.counts_side_by_side`'s columns, every count and change as released text."""
    rows = []
    for g in groups:
        def t(tag: str, s: str, g: str = g) -> str:
            return sup.text(("status", tag, g, s))

        d = sup.values[("status", "b", g, "eligible")] - sup.values[("status", "cur", g, "eligible")]
        rows.append({"group": g, "screened": t("cur", "screened"), "eligible_protocol": t("base", "eligible"),
                     "eligible_a": t("cur", "eligible"), "eligible_b": t("b", "eligible"),
                     "net_b_vs_a": signed(sup, ("delta", "cur>b", g, "eligible"), d),
                     "gained_b_vs_a": sup.text(("move", "cur>b", g, "gained")),
                     "lost_b_vs_a": sup.text(("move", "cur>b", g, "lost")),
                     "pending_protocol": t("base", "pending"), "pending_a": t("cur", "pending"),
                     "pending_b": t("b", "pending"), "differ": sup.text(("move", "cur>b", g, "changed"))})
    return pd.DataFrame(rows)


# -- threshold sweep -----------------------------------------------------------------------------


def sweep(rel: Release, df: pd.DataFrame, group: str | None, current: float) -> tuple[pd.DataFrame, Suppression]:
    """The sweep's counts per point (`whatif.sweep` frame) suppressed around the release: each
    point's statuses add up to the scope's screened count; the point at the scenario's value
    is the scenario's count; and the change between *any* two points, and between any point
    and the protocol, is a cell (else 120 at one value and 118 at the next would say that 2
    patients sit between them). Returns the table as text (and `height` columns: 0 where
    hidden) and the suppression."""
    g = group or ALL
    screened = ("status", "cur", g, "screened")
    values: dict = {}
    rels: list[Relation] = []
    points = list(range(len(df)))
    for i, r in enumerate(df.itertuples(index=False)):
        keys = [("sweep", f"p{i}", g, s) for s in SWEEP_STATUSES]
        values.update({k: int(getattr(r, k[3])) for k in keys})
        rels.append(total_of(screened, keys))
        if float(r.value) == float(current):
            rels += [total_of(("status", "cur", g, s), [("sweep", f"p{i}", g, s)]) for s in SWEEP_STATUSES]
    every = {**rel.sup.values, **values}
    for s in SWEEP_STATUSES:
        for i, j in combinations(points, 2):
            a, b = ("sweep", f"p{i}", g, s), ("sweep", f"p{j}", g, s)
            key = ("delta", f"p{i}>p{j}", g, s)
            d = every[b] - every[a]
            values[key] = abs(d)
            rels.append(total_of(b, [a, key]) if d >= 0 else total_of(a, [b, key]))
        for i in points:
            a, b = ("status", "base", g, s), ("sweep", f"p{i}", g, s)
            key = ("delta", f"base>p{i}", g, s)
            d = every[b] - every[a]
            values[key] = abs(d)
            rels.append(total_of(b, [a, key]) if d >= 0 else total_of(a, [b, key]))
    sup = suppress(values, rels, rel.k, fixed=rel.sup)
    out = df[["value"]].copy()
    for s in SWEEP_STATUSES:
        keys = [("sweep", f"p{i}", g, s) for i in points]
        out[s] = [sup.text(k) for k in keys]
        out[f"{s}_height"] = [sup.value(k) for k in keys]
    out.attrs = dict(df.attrs)
    return out, sup


# -- failure combinations ------------------------------------------------------------------------


def combos(rel: Release, table: pd.DataFrame, group: str | None, tag: str = "cur") -> tuple[list[str], Suppression]:
    """The most common failure combinations (`attribution.combinations`) suppressed around the
    release: the combinations and an unshown rest make up the ineligible count, and each
    criterion's failures (shown beside them) are the combinations holding it plus an unshown
    rest. Returns each combination's text and the suppression. Showing fewer rows of it
    than it was made for is safe (less is shown)."""
    g = group or ALL
    values: dict = {}
    keys = [("combo", tag, g, tuple(c)) for c in table["criteria"]]
    values.update({k: int(v) for k, v in zip(keys, table["count"], strict=True)})
    inel = ("status", tag, g, "ineligible")
    rest = ("combo_rest", tag, g, "ineligible")
    values[rest] = rel.sup.values[inel] - sum(values[k] for k in keys)
    rels = [total_of(inel, [*keys, rest])]
    unshown = {rest}
    for c in dict.fromkeys(x for crits in table["criteria"] for x in crits):
        total = ("crit_failed", tag, g, c)
        if total not in rel.sup:
            continue
        members = [k for k in keys if c in k[3]]
        r = ("combo_rest", tag, g, c)
        values[r] = rel.sup.values[total] - sum(values[k] for k in members)
        if values[r] < 0:  # not the same population: no relation to use
            del values[r]
            continue
        rels.append(total_of(total, [*members, r]))
        unshown.add(r)
    sup = suppress(values, rels, rel.k, fixed=rel.sup, unshown=unshown)
    return [sup.text(k) for k in keys], sup
