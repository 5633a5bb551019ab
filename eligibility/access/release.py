"""The counts the dashboard shows about one cohort, as one set of cells and relations, and
their suppression (see suppression.py).

Cells (key = (family, tag, group, item); tag "base" = protocol, "cur" = active scenario):

- status: screened, eligible, pending, ineligible, remaining (= eligible + pending)
- reason: excluded per CONSORT reason group (first failing criterion's group)
- crit_first / first: patients whose first failing criterion / criterion part it is
- all / unknown per part, sole per cause, crit_failed per criterion (no sums among them)
- move: patients per (protocol status → scenario status); gained, lost, changed

Relations: screened = eligible + pending + ineligible; remaining = eligible + pending;
ineligible = Σ reason groups = Σ criteria = Σ parts (nested); every count of "All" = Σ of
the disease groups (also 'other' and 'missing'); protocol status = Σ of its moves, scenario
status = Σ of the moves into it; gained, lost and changed = Σ of their moves.

The protocol release is decided alone and kept fixed, then the scenario's status counts, the
moves and the changes (delta cells: |scenario − protocol| per status, so a change of 1..k−1
is a small count like any other), then the scenario's detail, each around the last: the
protocol's counts look the same whatever scenario is active, and the pair cannot be
subtracted. Counts shown beside these (a scenario B, sweep points, combinations) extend this
release the same way (joint.py). Two scenarios viewed one after the other, each against the
protocol, are separate releases: their difference is not audited (see the report of #15).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..attribution import ALL, criterion_failures, group_slices, sole_cause
from ..evaluate import ELIGIBLE, INELIGIBLE, PENDING, Evaluation
from ..figures.consort import REASON_GROUPS, reason_group
from .suppression import (
    DEFAULT_K,
    HIDDEN_TEXT,
    WITHHELD_TEXT,
    Relation,
    Suppression,
    suppress,
    total_of,
)

STATUSES = ("eligible", "pending", "ineligible")
STATUS_CODE = {"eligible": ELIGIBLE, "pending": PENDING, "ineligible": INELIGIBLE}


def _core(ev: Evaluation, tag: str) -> tuple[dict, list[Relation]]:
    values: dict = {}
    rels: list[Relation] = []
    slices = group_slices(ev)
    parts = [g for g in slices if g != ALL]
    units = ev.units
    first = ev.first_failed_index()
    failed, unknown = ev.failed(), ev.unknown()
    crit_m, crit_names = criterion_failures(ev)
    sole = sole_cause(ev)
    causes = list(dict.fromkeys(ev.catalog.cause_of[u.id] for u in units))
    unit_reason = [reason_group(u) for u in units]
    crit_units: dict[str, list[str]] = {}
    for u in units:
        crit_units.setdefault(u.criterion, []).append(u.id)
    families: dict[tuple, list] = {}  # (family, item) → keys per group, for the All = Σ relations

    def put(family, g, item, v):
        key = (family, tag, g, item)
        values[key] = int(v)
        families.setdefault((family, item), []).append(key)
        return key

    for g, sl in slices.items():
        st = np.bincount(ev.status[sl], minlength=3)
        n = {"screened": sl.stop - sl.start, "eligible": st[ELIGIBLE], "pending": st[PENDING],
             "ineligible": st[INELIGIBLE], "remaining": st[ELIGIBLE] + st[PENDING]}
        k = {s: put("status", g, s, v) for s, v in n.items()}
        rels.append(total_of(k["screened"], [k["eligible"], k["pending"], k["ineligible"]]))
        rels.append(total_of(k["remaining"], [k["eligible"], k["pending"]]))
        f = first[sl]
        uf = np.bincount(f[f >= 0], minlength=len(units)) if len(units) else np.zeros(0, int)
        ukeys = {u.id: put("first", g, u.id, uf[i]) for i, u in enumerate(units)}
        rkeys = {}
        for r in REASON_GROUPS:
            members = [ukeys[u.id] for u, ur in zip(units, unit_reason, strict=True) if ur == r]
            rkeys[r] = put("reason", g, r, sum(values[m] for m in members))
            rels.append(total_of(rkeys[r], members))
        rels.append(total_of(k["ineligible"], list(rkeys.values())))
        for c, uids in crit_units.items():
            ck = put("crit_first", g, c, sum(values[ukeys[u]] for u in uids))
            rels.append(total_of(ck, [ukeys[u] for u in uids]))
        if len(units):
            for i, u in enumerate(units):
                put("all", g, u.id, np.count_nonzero(failed[i, sl]))
                put("unknown", g, u.id, np.count_nonzero(unknown[i, sl]))
            sc = sole[sl]
            counts = np.bincount(sc[sc >= 0], minlength=len(causes))
            for j, c in enumerate(causes):
                put("sole", g, c, counts[j])
            for q, c in enumerate(crit_names):
                put("crit_failed", g, c, np.count_nonzero(crit_m[q, sl]))
    for (family, item), keys in families.items():
        total = (family, tag, ALL, item)
        rels.append(total_of(total, [key for key in keys if key[2] in parts]))
    return values, rels


def _moves(base: Evaluation, cur: Evaluation) -> tuple[dict, list[Relation]]:
    values: dict = {}
    rels: list[Relation] = []
    slices = group_slices(cur)
    parts = [g for g in slices if g != ALL]
    for g, sl in slices.items():
        a, b = base.status[sl], cur.status[sl]
        m = {}
        for s1 in STATUSES:
            for s2 in STATUSES:
                key = ("move", "cur", g, (s1, s2))
                values[key] = int(np.count_nonzero((a == STATUS_CODE[s1]) & (b == STATUS_CODE[s2])))
                m[s1, s2] = key
        for s in STATUSES:
            rels.append(total_of(("status", "base", g, s), [m[s, s2] for s2 in STATUSES]))
            rels.append(total_of(("status", "cur", g, s), [m[s1, s] for s1 in STATUSES]))
        derived = {
            "gained": [m[s1, "eligible"] for s1 in STATUSES if s1 != "eligible"],
            "lost": [m["eligible", s2] for s2 in STATUSES if s2 != "eligible"],
            "changed": [m[s1, s2] for s1 in STATUSES for s2 in STATUSES if s1 != s2],
        }
        for name, members in derived.items():
            total_key: tuple = ("move", "cur", g, name)
            values[total_key] = sum(values[x] for x in members)
            rels.append(total_of(total_key, members))
    items = [*[(s1, s2) for s1 in STATUSES for s2 in STATUSES], "gained", "lost", "changed"]
    for item in items:
        rels.append(total_of(("move", "cur", ALL, item), [("move", "cur", g, item) for g in parts]))
    return values, rels


def move_cells(values: dict) -> set:
    """The cells of the status-change matrices: part of the relations, never displayed
    (only their margins — the statuses, gained, lost, changed — are)."""
    return {key for key in values if key[0] == "move" and isinstance(key[3], tuple)}


DELTA_ITEMS = ("eligible", "pending", "ineligible", "remaining")


def delta_cells(values: dict, a: str, b: str, groups, items=DELTA_ITEMS, family: str = "status"
                ) -> tuple[dict, list[Relation]]:
    """The size of each change b − a of a count shown under both tags, as a cell of its own:
    ("delta", a→b, group, item) = |b − a|, with b = a + delta (or a = b + delta when it fell).
    A change of 1 to k−1 is then a small count like any other (shown "+<k" / "−<k"), and the
    audit makes sure it cannot be had by subtracting two shown counts either. The direction
    is the true one: the attacker is assumed to know it (the safe side)."""
    out: dict = {}
    rels: list[Relation] = []
    for g in groups:
        for item in items:
            ka, kb = (family, a, g, item), (family, b, g, item)
            d = values[kb] - values[ka]
            key = ("delta", f"{a}>{b}", g, item)
            out[key] = abs(d)
            rels.append(total_of(kb, [ka, key]) if d >= 0 else total_of(ka, [kb, key]))
    return out, rels


@dataclass
class Release:
    """Suppressed counts for the protocol ('base') and the active scenario ('cur')."""

    sup: Suppression
    groups: list[str]

    @property
    def k(self) -> int:
        return self.sup.k

    def key(self, family: str, tag: str, group: str | None, item) -> tuple:
        return (family, tag, group or ALL, item)

    def text(self, family: str, tag: str, group: str | None, item) -> str:
        return self.sup.text(self.key(family, tag, group, item))

    def value(self, family: str, tag: str, group: str | None, item) -> int | None:
        return self.sup.value(self.key(family, tag, group, item))

    def pct(self, family: str, tag: str, group: str | None, item, of: tuple | None = None) -> str:
        """item as a % of the group's screened (or of `of`), shown only if both are shown."""
        num = self.key(family, tag, group, item)
        den = of or self.key("status", tag, group, "screened")
        return self.sup.derived([num, den], lambda a, b: 100.0 * a / b if b else float("nan"), "{:.1f}%")

    def diff(self, tag_a: tuple, tag_b: tuple, signed: bool = True) -> str:
        """b − a for two cell keys (e.g. scenario − protocol), only if both are shown."""
        return self.sup.derived([tag_a, tag_b], lambda a, b: b - a, "{:+,}" if signed else "{:,}")

    def change(self, a: str, b: str, group: str | None, item: str) -> str:
        """The change of a status count from tag a to tag b ("+12", "−<5", "0", "*"): its delta
        cell as released (see `delta_cells`), with the direction (an ASCII minus, so that
        st.metric draws the arrow down)."""
        g = group or ALL
        key = ("delta", f"{a}>{b}", g, item)
        if key not in self.sup:
            return self.diff(self.key("status", a, g, item), self.key("status", b, g, item))
        d = self.sup.values[self.key("status", b, g, item)] - self.sup.values[self.key("status", a, g, item)]
        text = self.sup.text(key)
        if text == "0" or text in (HIDDEN_TEXT, WITHHELD_TEXT):
            return text
        return ("+" if d > 0 else "-") + text

    def status_row(self, tag: str, group: str | None) -> dict[str, str]:
        return {s: self.text("status", tag, group, s)
                for s in ("screened", "eligible", "pending", "ineligible", "remaining")}


def build(base: Evaluation, cur: Evaluation, k: int = DEFAULT_K) -> Release:
    """The suppressed release, memoised on the evaluations (the protocol part on `base`)."""
    bkey = ("release:base", k)
    if bkey not in base._memo:
        values, rels = _core(base, "base")
        base._memo[bkey] = suppress(values, rels, k)
    fixed = base._memo[bkey]
    ckey = ("release:cur", base.scenario.key, k)
    if ckey not in cur._memo:
        values, rels = _core(cur, "cur")
        mv, mr = _moves(base, cur)
        both = {**fixed.values, **values, **mv}
        groups = list(group_slices(cur))
        dv, dr = delta_cells(both, "base", "cur", groups)
        # In two layers, as the protocol's counts are decided before the scenario's: first the
        # scenario's status counts with the changes and moves, then its detail (reasons,
        # criteria) around them. Decided all at once, the complements for the detail's many
        # small counts spread through the totals and hide the headline counts.
        status = {key: v for key, v in values.items() if key[0] == "status"}
        srels = [r for r in rels if all(key in status for key in r.keys)]
        same = [total_of(("status", "cur", g, "screened"), [("status", "base", g, "screened")]) for g in groups]
        head = suppress({**status, **mv, **dv}, [*srels, *same, *mr, *dr], k, fixed=fixed,
                        unshown=move_cells(mv))
        detail = {key: v for key, v in values.items() if key not in status}
        cur._memo[ckey] = suppress(detail, [r for r in rels if not all(key in status for key in r.keys)], k,
                                   fixed=head)
    return Release(cur._memo[ckey], [g for g in group_slices(cur)])


# -- tables and figures with suppressed counts --------------------------------------------------

COUNT_COLUMNS = {  # criterion table column → (family, item from the row)
    "all_reasons": ("all", "id"),
    "first_reason": ("first", "id"),
    "unknown": ("unknown", "id"),
}


def criterion_table(rel: Release, shown: pd.DataFrame, group: str | None, tag: str = "cur",
                    cause_of: dict | None = None) -> pd.DataFrame:
    """`figures.failures.criterion_display` output with every count (and every percentage
    of a hidden count) as text from the release. `cause_of`: unit → cause for sole reason."""
    out = shown.copy().astype({c: object for c in shown.columns})
    g = group or ALL
    for col, (family, by) in COUNT_COLUMNS.items():
        if col in out:
            out[col] = [rel.text(family, tag, g, item) for item in shown[by]]
            if f"{col}_pct" in out:
                out[f"{col}_pct"] = [rel.pct(family, tag, g, item) for item in shown[by]]
    if "sole_reason" in out and cause_of is not None:
        out["sole_reason"] = [rel.text("sole", tag, g, cause_of[u]) for u in shown["id"]]
        if "sole_reason_pct" in out:
            out["sole_reason_pct"] = [rel.pct("sole", tag, g, cause_of[u]) for u in shown["id"]]
    if "applicable" in out:
        out["applicable"] = [
            rel.text("status", tag, g if b == "common" or g == b else (b if g == ALL else g), "screened")
            if (b == "common" or g in (ALL, b)) else "0"
            for b in shown["block"]]
    return out


def attrition_table(rel: Release, att: pd.DataFrame, group: str | None, tag: str = "cur") -> pd.DataFrame:
    """`attribution.attrition` with excluded as text; the running remainder is shown only
    while every step before it is shown (a partial sum of hidden steps would give them away)."""
    g = group or ALL
    out = att[["criterion", "block", "text"]].copy()
    out["excluded"] = [rel.text("crit_first", tag, g, c) for c in att["criterion"]]
    screened = rel.value("status", tag, g, "screened")
    remaining, broken = screened or 0, screened is None
    rem_text = []
    for c in att["criterion"]:
        v = rel.value("crit_first", tag, g, c)
        if v is None:
            broken = True
        else:
            remaining -= v
        rem_text.append(HIDDEN_TEXT if broken else f"{remaining:,}")
    out["remaining"] = rem_text
    return out


def consort_counts(rel: Release, tag: str = "cur") -> pd.DataFrame:
    """`figures.consort.consort_data` with every count as text."""
    rows = []
    for g in rel.groups:
        row = {"group": g, "assessed": rel.text("status", tag, g, "screened")}
        row.update({r: rel.text("reason", tag, g, r) for r in REASON_GROUPS})
        row.update(excluded=rel.text("status", tag, g, "ineligible"),
                   eligible=rel.text("status", tag, g, "eligible"),
                   pending=rel.text("status", tag, g, "pending"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


def delta_table(rel: Release, groups: list[str]) -> pd.DataFrame:
    """The What-if table (`figures.whatif.delta_table` columns) with suppressed counts."""
    rows = []
    for g in groups:
        eb, ea = ("status", "base", g, "eligible"), ("status", "cur", g, "eligible")
        gained, lost = ("move", "cur", g, "gained"), ("move", "cur", g, "lost")
        net = rel.change("base", "cur", g, "eligible")
        rows.append({
            "group": g, "screened": rel.text("status", "cur", g, "screened"),
            "eligible_before": rel.sup.text(eb), "eligible_after": rel.sup.text(ea),
            "gained": rel.sup.text(gained), "lost": rel.sup.text(lost), "net": net,
            "pending_before": rel.text("status", "base", g, "pending"),
            "pending_after": rel.text("status", "cur", g, "pending"),
            "changed": rel.text("move", "cur", g, "changed"),
        })
    return pd.DataFrame(rows)


def status_bars(rel: Release, groups: list[str], tag: str = "cur") -> pd.DataFrame:
    """Long table for a bar chart: group, status, height (0 for a hidden count), label."""
    rows = []
    for g in groups:
        for s in STATUSES:
            v = rel.value("status", tag, g, s)
            rows.append({"group": g, "status": s, "height": 0 if v is None else v,
                         "label": rel.text("status", tag, g, s)})
    return pd.DataFrame(rows)
