"""Screen-failure attribution as GROUP BY over per-patient outcome codes.

Four small queries per scenario over the per-patient integers that
`outcomes.patient_sql` keeps; only aggregates leave the database:
1. GROUP BY (disease group, status, first failing unit, sole cause or not) → counts:
   status counts, first-reason counts, attrition, sole-reason impact;
2. GROUP BY (disease group, failing-unit mask) and 3. (disease group, unknown-unit
   mask) → per unit the fail and unknown counts (the masks' bits, summed here); from
   the failing masks, each group's failing-criteria masks (circe's inclusion-rule
   mask; nonzero exactly for the ineligible) → per criterion the fail counts
   (all-reasons, UpSet set sizes) and the most common failure combinations.
The tables have the columns of `eligibility.attribution`'s, so pages and tests can
use either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..attribution import ALL
from ..columns import EMPTY_ROW, GROUP_NAMES
from ..fields import DISEASES
from .compile import GROUP
from .outcomes import Plan, mask_words, unit_shift, unit_word

STATUSES = ("ineligible", "pending", "eligible")


def _unit_bits(per: pd.DataFrame, prefix: str, n: int) -> np.ndarray:
    """bits[i, r]: whether row r of `per` has unit i (of n) set in its mask words `prefix0…`."""
    words = {w: per[f"{prefix}{w}"].astype(np.int64).to_numpy() for w in range(mask_words(n))}
    out = np.zeros((n, len(per)), bool)
    for i in range(n):
        out[i] = (words[unit_word(i)] >> np.int64(unit_shift(i))) & 1
    return out


def _weighted(per: pd.DataFrame, bits: np.ndarray, index: pd.Index) -> np.ndarray:
    """counts[i, g]: the summed `n` of the rows of `per` in group index[g] with bits[i] set."""
    groups = index.get_indexer(per[GROUP].astype(np.int64).to_numpy())
    weights = per["n"].astype(np.int64).to_numpy()
    out = np.zeros((len(bits), len(index)), np.int64)
    for i, hit in enumerate(bits):
        out[i] = np.bincount(groups, weights=weights * hit, minlength=len(index)).astype(np.int64)
    return out


def _criteria_masks(per: pd.DataFrame, bits: np.ndarray, crit_of: list[int]) -> pd.DataFrame:
    """(GROUP, crit_mask, n) from the failing-unit masks' GROUP BY (`per`, its unit bits):
    the mask of failing criteria (circe's inclusion-rule mask; nonzero exactly for the
    ineligible, the only rows kept), one bit a criterion."""
    if crit_of and max(crit_of) > 62:  # pragma: no cover - the protocol has 62 criteria
        raise ValueError("more than 63 criteria: the failure mask needs a second word")
    crit_mask = np.zeros(len(per), np.int64)
    for i, q in enumerate(crit_of):
        crit_mask |= bits[i].astype(np.int64) << np.int64(q)
    out = (pd.DataFrame({GROUP: per[GROUP].astype(np.int64).to_numpy(), "crit_mask": crit_mask,
                         "n": per["n"].astype(np.int64).to_numpy()})
           .groupby([GROUP, "crit_mask"], as_index=False)["n"].sum())
    return out[out["crit_mask"] != 0]


class Attribution:
    """All attribution aggregates of one scenario, fetched once from the database."""

    def __init__(self, t, pl: Plan, top: int = 15):
        """`t`: the per-patient table of `outcomes.patient_sql` (masks and summary columns).
        Blank rows (the 'empty' group) are not patients: left out of every aggregate."""
        t = t.filter(t[GROUP] != EMPTY_ROW)
        self.plan = pl
        units = pl.active
        q1 = t.group_by([GROUP, "status", "first_idx", "sole"]).aggregate(n=t.count()).execute()
        for c in (GROUP, "first_idx", "n"):
            q1[c] = q1[c].astype(np.int64)
        cause_idx, _ = pl.causes()
        # The sole cause is the first failing unit's: -1 for a patient failing none or several.
        q1["sole_idx"] = np.where(q1["sole"].astype(bool) & (q1["first_idx"] >= 0),
                                  np.array([*cause_idx, -1], np.int64)[q1["first_idx"].to_numpy()], -1)
        self.q1 = q1
        crits = pl.criteria
        crit_of = [crits.index(u.criterion) for u in units]
        words = mask_words(len(units))
        sizes = q1.groupby(GROUP)["n"].sum()
        q2_cols: dict[str, pd.Series] = {"n": sizes}
        failing = None
        for prefix, col in (("fw", "f"), ("uw", "u")):
            keys = [f"{prefix}{w}" for w in range(words)]
            per = t.group_by([GROUP, *keys]).aggregate(n=t.count()).execute()
            bits = _unit_bits(per, prefix, len(units))
            counts = _weighted(per, bits, sizes.index)
            for i in range(len(units)):
                q2_cols[f"{col}{i}"] = pd.Series(counts[i], index=sizes.index)
            if prefix == "fw":
                failing = per, bits
        assert failing is not None
        per = _criteria_masks(*failing, crit_of)
        crit_bits = np.array([(per["crit_mask"].to_numpy() >> np.int64(q)) & 1 for q in range(len(crits))], bool
                             ).reshape(len(crits), len(per))
        crit_counts = _weighted(per, crit_bits, sizes.index)
        for q in range(len(crits)):
            q2_cols[f"c{q}"] = pd.Series(crit_counts[q], index=sizes.index)
        self.q2 = pd.DataFrame(q2_cols).fillna(0).astype(np.int64)
        ranked = per.sort_values([GROUP, "n", "crit_mask"], ascending=[True, False, True], kind="stable")
        ranked["rank"] = ranked.groupby(GROUP).cumcount()
        self.q3 = ranked[ranked["rank"] < top].reset_index(drop=True)
        allk = per.groupby("crit_mask", as_index=False)["n"].sum()
        self.q3_all = allk.sort_values(["n", "crit_mask"], ascending=[False, True], kind="stable").head(top)
        self.n_inel = {int(g): int(k) for g, k in
                       q1[q1.status == "ineligible"].groupby(GROUP)["n"].sum().items()}
        self.crit_of = crit_of
        self.top = top

    # -- groups ------------------------------------------------------------------
    def _sizes(self) -> dict[int, int]:
        return {int(g): int(n) for g, n in self.q2["n"].items()}

    def groups(self, include_empty: bool = False) -> list[str]:
        sizes = self._sizes()
        out = [g for i, g in enumerate(GROUP_NAMES)
               if i != EMPTY_ROW and (include_empty or g in DISEASES or sizes.get(i, 0) > 0)]
        return [*out, ALL]

    def _codes(self, group: str | None) -> list[int] | None:
        return None if group in (None, ALL) else [GROUP_NAMES.index(group)]

    def _q1(self, group):
        codes = self._codes(group)
        return self.q1 if codes is None else self.q1[self.q1[GROUP].isin(codes)]

    def _n(self, group) -> int:
        sizes = self._sizes()
        codes = self._codes(group)
        return sum(sizes.values()) if codes is None else sum(sizes.get(c, 0) for c in codes)

    def _sum(self, col: str, group) -> int:
        codes = self._codes(group)
        if col not in self.q2:
            return 0
        s = self.q2[col]
        return int(s.sum() if codes is None else s[s.index.isin(codes)].sum())

    # -- tables (the columns of eligibility.attribution) ---------------------------
    def counts(self) -> dict[str, int]:
        q = self.q1
        c = {st: int(q.loc[q.status == st, "n"].sum()) for st in STATUSES}
        return {"screened": self._n(None), **c}

    def status_counts(self) -> pd.DataFrame:
        rows = []
        for g in self.groups():
            q = self._q1(g)
            c = {st: int(q.loc[q.status == st, "n"].sum()) for st in STATUSES}
            rows.append({"group": g, "screened": self._n(g), "eligible": c["eligible"], "pending": c["pending"],
                         "ineligible": c["ineligible"], "eligible_low": c["eligible"],
                         "eligible_high": c["eligible"] + c["pending"]})
        df = pd.DataFrame(rows).set_index("group")
        with np.errstate(invalid="ignore", divide="ignore"):
            for col in ("eligible", "pending", "ineligible"):
                df[f"{col}_pct"] = 100.0 * df[col] / df["screened"].where(df["screened"] > 0)
        return df

    def criterion_table(self, group: str | None = None) -> pd.DataFrame:
        units = self.plan.active
        n = self._n(group)
        q = self._q1(group)
        first = np.bincount(q.loc[q.first_idx >= 0, "first_idx"], weights=q.loc[q.first_idx >= 0, "n"],
                            minlength=len(units)).astype(np.int64)
        cause_idx, names = self.plan.causes()
        sole = np.bincount(q.loc[q.sole_idx >= 0, "sole_idx"], weights=q.loc[q.sole_idx >= 0, "n"],
                           minlength=len(names)).astype(np.int64)
        applicable = []
        for u in units:
            if u.block == "common":
                applicable.append(n)
            elif group in (None, ALL):
                applicable.append(self._n(u.block))
            else:
                applicable.append(n if u.block == group else 0)
        df = pd.DataFrame({
            "id": [u.id for u in units],
            "criterion": [u.criterion for u in units],
            "kind": ["inclusion" if u.kind == "incl" else "exclusion" for u in units],
            "block": [u.block for u in units],
            "text": [u.text for u in units],
            "applicable": np.maximum(np.array(applicable, dtype=np.int64), 0),
            "all_reasons": np.array([self._sum(f"f{i}", group) for i in range(len(units))], dtype=np.int64),
            "first_reason": first[: len(units)],
            "sole_reason": sole[cause_idx] if units else np.array([], np.int64),
            "cause": [names[i] for i in cause_idx],
            "unknown": np.array([self._sum(f"u{i}", group) for i in range(len(units))], dtype=np.int64),
        })
        # Percentages are of the patients the criterion applies to (as attribution.criterion_table).
        denom = df["applicable"].where(df["applicable"] > 0).astype(float)
        for col in ("all_reasons", "first_reason", "sole_reason", "unknown"):
            df[f"{col}_pct"] = 100.0 * df[col] / denom
        return df

    def cause_impact(self, group: str | None = None) -> pd.DataFrame:
        _, names = self.plan.causes()
        q = self._q1(group)
        counts = np.bincount(q.loc[q.sole_idx >= 0, "sole_idx"], weights=q.loc[q.sole_idx >= 0, "n"],
                             minlength=len(names)).astype(np.int64)
        return pd.DataFrame({"cause": names, "impact": counts}).sort_values("impact", ascending=False,
                                                                             kind="stable")

    def attrition(self, group: str | None = None) -> pd.DataFrame:
        units = self.plan.active
        crit_order = self.plan.criteria
        q = self._q1(group)
        removed = np.zeros(len(crit_order), np.int64)
        for idx, k in zip(q.loc[q.first_idx >= 0, "first_idx"], q.loc[q.first_idx >= 0, "n"], strict=True):
            removed[self.crit_of[int(idx)]] += int(k)
        blocks = {u.criterion: u.block for u in units}
        n = self._n(group)
        rows, remaining = [], n
        for c, r in zip(crit_order, removed, strict=True):
            if group not in (None, ALL) and blocks[c] not in ("common", group):
                continue
            remaining -= int(r)
            rows.append({"criterion": c, "block": blocks[c], "excluded": int(r), "remaining": remaining,
                         "text": self.plan.catalog.criterion_by_id[c].text})
        df = pd.DataFrame(rows, columns=["criterion", "block", "excluded", "remaining", "text"])
        df.attrs["screened"] = n
        by_status = {st: int(q.loc[q.status == st, "n"].sum()) for st in STATUSES}
        df.attrs["eligible"], df.attrs["pending"] = by_status["eligible"], by_status["pending"]
        return df

    def combinations(self, group: str | None = None, top: int = 15) -> pd.DataFrame:
        names = self.plan.criteria
        codes = self._codes(group)
        n_inel = sum(self.n_inel.values()) if codes is None else sum(self.n_inel.get(c, 0) for c in codes)
        if n_inel == 0 or not names:
            return pd.DataFrame(columns=["criteria", "size", "count", "pct_of_ineligible"])
        if codes is None:
            q = self.q3_all
        else:
            q = self.q3[self.q3[GROUP] == codes[0]].sort_values("rank")
        rows = []
        for mask, k in zip(q["crit_mask"].head(top), q["n"].head(top), strict=True):
            crits = [names[b] for b in range(len(names)) if int(mask) >> b & 1]
            rows.append({"criteria": tuple(crits), "size": len(crits), "count": int(k),
                         "pct_of_ineligible": 100.0 * int(k) / n_inel})
        return pd.DataFrame(rows)

    def criterion_totals(self, group: str | None = None) -> pd.DataFrame:
        names = self.plan.criteria
        return pd.DataFrame({"criterion": names,
                             "failed": np.array([self._sum(f"c{q}", group) for q in range(len(names))],
                                                dtype=np.int64)})
