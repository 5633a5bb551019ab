"""The aggregates a dashboard page draws, from one interface for both cohort sources.

`MemoryView` wraps an in-memory `Evaluation` (the functions of `eligibility.attribution`);
`eligibility.database.dashboard.DatabaseView` wraps a scenario evaluated in the database,
where only aggregates and pages of patients leave the engine. Pages call these methods and
never look at which source they hold; sections that need per-patient values ask
`view.evaluation`, which a database view in aggregate mode refuses with `AggregateOnly`
(the pages show its message instead of the section).

No Streamlit here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import attribution as A
from .catalog import Catalog
from .evaluate import Evaluation
from .labels import label, short_name
from .scenario import Resolved

PATIENT_COLUMNS = ["row", "patient_id", "disease", "status", "first_reason", "failed", "unknown"]


class AggregateOnly(RuntimeError):  # noqa: N818 - a refusal, not a failure
    """Raised where a page section needs per-patient values a database cohort in aggregate
    mode does not bring into the dashboard; the message says what and why, for people."""


def aggregate_only_message(what: str) -> str:
    return (f"{what[0].upper() + what[1:]} is not available for this database cohort: it is larger than "
            "the dashboard brings into memory, so only counts computed in the database and pages of "
            "patients are shown. (Set ELIGIBILITY_DASHBOARD_PULL_ROWS above its row count to load it "
            "whole, or use `python -m eligibility screen --engine duckdb` for per-patient results.)")


def not_assessed_rows(catalog: Catalog, scenario: Resolved, present, not_assessed) -> pd.DataFrame:
    """`assessment.not_assessed_table` from its parts (either source)."""
    rows = []
    for uid in not_assessed:
        u = catalog.unit_by_id[uid]
        absent = sorted(catalog.fields_of(u.rule, scenario.params) - set(present))
        rows.append({"criterion": uid, "name": short_name(uid), "text": u.text,
                     "absent_columns": ", ".join(absent)})
    return pd.DataFrame(rows, columns=["criterion", "name", "text", "absent_columns"])


def not_assessed_summary(ids, limit: int = 6) -> str:
    """`assessment.not_assessed_summary` from the ids (either source)."""
    ids = list(ids)
    if not ids:
        return ""
    shown = ", ".join(label(u) for u in ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
    return f"{len(ids)} criteria not assessed (columns absent from the file): {shown}"


class PageView:
    """What the pages read. Subclasses fill in the aggregates; `memo` keeps page-level
    derived tables with the scenario they derive from."""

    aggregate_only = False
    memo: dict

    # -- identity --------------------------------------------------------------------
    @property
    def scenario(self) -> Resolved:
        raise NotImplementedError

    @property
    def catalog(self) -> Catalog:
        raise NotImplementedError

    @property
    def present(self) -> frozenset[str]:
        raise NotImplementedError

    @property
    def not_assessed(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def disabled(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def unit_ids(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def evaluation(self) -> Evaluation:
        """The per-patient evaluation (raises AggregateOnly for a database cohort in aggregate mode)."""
        raise NotImplementedError

    def _cached(self, key, build):
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]

    # -- counts ------------------------------------------------------------------------
    @property
    def n_patients(self) -> int:
        return int(self.status_counts().loc[A.ALL, "screened"])

    @property
    def empty_rows(self) -> int:
        return 0

    def status_counts(self) -> pd.DataFrame:
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        c = self.status_counts().loc[A.ALL]
        return {k: int(c[k]) for k in ("screened", "eligible", "pending", "ineligible")}

    def criterion_table(self, group: str | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def cause_impact(self, group: str | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def attrition(self, group: str | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def combinations(self, group: str | None = None, top: int = 15) -> pd.DataFrame:
        raise NotImplementedError

    def criterion_totals(self, group: str | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def first_reason_counts(self) -> dict[str, np.ndarray]:
        """Per group (and All): patients per active unit for whom it is the first failing one."""
        raise NotImplementedError

    def eligible_on_assessed(self, group: str | None = None) -> int:
        """Eligible patients (in the group) with an applicable criterion not assessed."""
        raise NotImplementedError

    def not_assessed_applicable(self) -> tuple[str, ...]:
        sizes = self.status_counts()["screened"]
        return tuple(uid for uid in self.not_assessed
                     if (b := self.catalog.unit_by_id[uid].block) == "common" or int(sizes.get(b, 0)) > 0)

    # -- derived (either source) -----------------------------------------------------------
    def not_assessed_table(self) -> pd.DataFrame:
        return self._cached("view:na_table", lambda: not_assessed_rows(
            self.catalog, self.scenario, self.present, self.not_assessed))

    def not_assessed_summary(self) -> str:
        return not_assessed_summary(self.not_assessed)

    def eligible_on_assessed_text(self) -> str:
        from .assessment import _partial_text

        return _partial_text(self.eligible_on_assessed())

    def consort_data(self) -> pd.DataFrame:
        """`figures.consort.consort_data` from the first-reason counts."""
        from .figures.consort import GROUP_LABELS, REASON_GROUPS, reason_group

        units = [self.catalog.unit_by_id[u] for u in self.unit_ids]
        of = np.array([REASON_GROUPS.index(reason_group(u)) for u in units], np.int64)
        counts = self.status_counts()
        firsts = self.first_reason_counts()
        rows = []
        for g, first in firsts.items():
            by = (np.bincount(of, weights=first, minlength=len(REASON_GROUPS)).astype(np.int64) if len(of)
                  else np.zeros(len(REASON_GROUPS), np.int64))
            row: dict[str, Any] = {"group": g, "label": GROUP_LABELS.get(g, g),
                                   "assessed": int(counts.loc[g, "screened"])}
            row.update({r: int(by[i]) for i, r in enumerate(REASON_GROUPS)})
            row.update(excluded=int(by.sum()), eligible=int(counts.loc[g, "eligible"]),
                       pending=int(counts.loc[g, "pending"]))
            rows.append(row)
        return pd.DataFrame(rows).set_index("group")

    def top_reasons(self, k: int = 4) -> dict[str, list[tuple[str, int]]]:
        """`figures.consort.top_reasons` from the first-reason counts."""
        from .figures.consort import ranked_reasons

        crits = [self.catalog.unit_by_id[u].criterion for u in self.unit_ids]
        order = list(dict.fromkeys(crits))
        of = np.array([order.index(c) for c in crits], np.int64)
        out: dict[str, list[tuple[str, int]]] = {}
        for g, first in self.first_reason_counts().items():
            counts = (np.bincount(of, weights=first, minlength=len(order)).astype(np.int64) if len(order)
                      else np.zeros(0, np.int64))
            out[g] = ranked_reasons(counts, order, k)
        return out

    # -- patients ------------------------------------------------------------------------
    def patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                 first: str | None = None, contains: dict[str, str] | None = None,
                 offset: int = 0, limit: int = 100) -> pd.DataFrame:
        """One page of patients in input order (PATIENT_COLUMNS; `row` 1-based). Filters: status,
        disease group, a failing unit (exact id), the first failing unit, and `contains`
        ({column: text} for failed / unknown / patient_id: the text, ignoring case)."""
        raise NotImplementedError

    def count_patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                       first: str | None = None, contains: dict[str, str] | None = None) -> int:
        raise NotImplementedError

    # -- demographics (demographics.pool / by_step) -------------------------------------------
    def scope_groups(self, disease: str | None) -> list[str]:
        return [disease] if disease else [g for g in self.status_counts().index if g != A.ALL] + [A.ALL]

    def pool(self, groups: list[str]) -> pd.DataFrame:
        raise NotImplementedError

    def by_step(self, group: str | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def near_misses(self, max_relative: float, group: str | None = None) -> pd.DataFrame:
        """`explain.near_misses` within `max_relative` of the threshold, in `group`."""
        raise NotImplementedError

    def explain(self, patient_id: str) -> tuple[pd.Series, pd.DataFrame] | None:
        """(results row with `row` 1-based, explain.explain_patient table) of the patient with this
        ID, None if there is none (database views; the memory page explains from its results)."""
        raise NotImplementedError

    # -- scenario diff (database views; memory pages use screen.status_change) ---------------
    def status_change_from(self, before: PageView, *, offset: int = 0, limit: int | None = None,
                           group: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(diff summary per group, a page of the patients whose status differs, in `group`)."""
        raise NotImplementedError

    def change_moves(self, before: PageView, group: str | None = None) -> pd.Series:
        """Patients per status move ('eligible → pending': n), most first, in `group`."""
        raise NotImplementedError


# -- demographics from a histogram (group, status, first failing unit, age, sex) → n -------------

def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """np.percentile(np.repeat(values, weights), q) (linear) without repeating: values sorted."""
    n = int(weights.sum())
    pos = q / 100.0 * (n - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    cum = np.cumsum(weights)
    a, b = values[np.searchsorted(cum, lo, side="right")], values[np.searchsorted(cum, hi, side="right")]
    return float(np.percentile(np.array([a, b], dtype=np.float64), 100.0 * (pos - lo))) if hi > lo else float(a)


def summary_from_counts(age: np.ndarray, sex: np.ndarray, n: np.ndarray) -> dict:
    """`demographics._summary` of the patients these (age, sex, count) rows stand for."""
    from .demographics import AGE_BANDS, SEXES, age_band_codes

    n = n.astype(np.int64)
    known = ~np.isnan(age)
    row: dict[str, Any] = {"n": int(n.sum())}
    if n[known].sum():
        order = np.argsort(age[known], kind="stable")
        v, w = age[known][order], n[known][order]
        row.update(median_age=_weighted_percentile(v, w, 50), age_q1=_weighted_percentile(v, w, 25),
                   age_q3=_weighted_percentile(v, w, 75))
    else:
        row.update(median_age=np.nan, age_q1=np.nan, age_q3=np.nan)
    sc = np.bincount(sex.astype(np.int64), weights=n, minlength=3).astype(np.int64)
    for i, s_ in enumerate(SEXES):
        row[s_] = int(sc[i])
    row["female_pct"] = 100.0 * sc[0] / (sc[0] + sc[1]) if sc[0] + sc[1] else np.nan
    bc = np.bincount(age_band_codes(age.astype(np.float64)), weights=n, minlength=len(AGE_BANDS)).astype(np.int64)
    for i, b in enumerate(AGE_BANDS):
        row[b] = int(bc[i])
    return row


def pool_from_counts(hist: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """`demographics.pool` from a histogram with columns group, status, age, sex (0 F, 1 M, 2
    missing), n."""
    rows = []
    for g in groups:
        sub = hist if g == A.ALL else hist[hist["group"] == g]
        for pop in ("screened", "eligible", "pending"):
            part = sub if pop == "screened" else sub[sub["status"] == pop]
            rows.append({"group": g, "population": pop, **summary_from_counts(
                part["age"].to_numpy(np.float64), part["sex"].to_numpy(np.int64), part["n"].to_numpy(np.int64))})
    return pd.DataFrame(rows)


def steps_from_counts(hist: pd.DataFrame, group: str | None, att: pd.DataFrame, unit_criteria: list[str]) -> pd.DataFrame:
    """`demographics.by_step` from the histogram (with first_idx: the first failing active unit, −1 none)."""
    sub = hist if group in (None, A.ALL) else hist[hist["group"] == group]
    order = list(dict.fromkeys(unit_criteria))
    step_of_unit = np.array([order.index(c) for c in unit_criteria] + [len(order)], np.int64)
    first = sub["first_idx"].to_numpy(np.int64)
    leaves = step_of_unit[np.where(first >= 0, first, len(unit_criteria))]
    age, sex, n = sub["age"].to_numpy(np.float64), sub["sex"].to_numpy(np.int64), sub["n"].to_numpy(np.int64)
    rows = [{"step": "Screened", "excluded": 0, **summary_from_counts(age, sex, n)}]
    for r in att.itertuples(index=False):
        if r.excluded == 0:
            continue
        stay = leaves > order.index(r.criterion)
        rows.append({"step": r.criterion, "excluded": int(r.excluded),
                     **summary_from_counts(age[stay], sex[stay], n[stay])})
    return pd.DataFrame(rows)


class MemoryView(PageView):
    """An in-memory evaluation (the per-patient results table needs the cohort's frame)."""

    def __init__(self, ev: Evaluation, frame: pd.DataFrame | None = None):
        self.ev = ev
        self.frame = frame
        self.memo = ev._memo

    @property
    def scenario(self) -> Resolved:
        return self.ev.scenario

    @property
    def catalog(self) -> Catalog:
        return self.ev.catalog

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.ev.columns.present)

    @property
    def not_assessed(self) -> tuple[str, ...]:
        return tuple(self.ev.not_assessed)

    @property
    def disabled(self) -> tuple[str, ...]:
        return tuple(self.ev.disabled)

    @property
    def unit_ids(self) -> tuple[str, ...]:
        return tuple(self.ev.unit_ids)

    @property
    def evaluation(self) -> Evaluation:
        return self.ev

    @property
    def n_patients(self) -> int:
        return self.ev.n_patients

    @property
    def empty_rows(self) -> int:
        return self.ev.empty_rows

    def status_counts(self) -> pd.DataFrame:
        return A.status_counts(self.ev)

    def criterion_table(self, group: str | None = None) -> pd.DataFrame:
        return A.criterion_table(self.ev, group)

    def cause_impact(self, group: str | None = None) -> pd.DataFrame:
        return A.cause_impact(self.ev, group)

    def attrition(self, group: str | None = None) -> pd.DataFrame:
        return A.attrition(self.ev, group)

    def combinations(self, group: str | None = None, top: int = 15) -> pd.DataFrame:
        return A.combinations(self.ev, group, top=top)

    def criterion_totals(self, group: str | None = None) -> pd.DataFrame:
        return A.criterion_totals(self.ev, group)

    def first_reason_counts(self) -> dict[str, np.ndarray]:
        def build():
            first = self.ev.first_failed_index()
            n = len(self.ev.unit_ids)
            out = {}
            for g, sl in A.group_slices(self.ev).items():
                f = first[sl]
                out[g] = np.bincount(f[f >= 0], minlength=n).astype(np.int64)
            return out
        return self._cached("view:first", build)

    def eligible_on_assessed(self, group: str | None = None) -> int:
        from .evaluate import ELIGIBLE

        ev = self.ev
        if group in (None, A.ALL):
            return ev.eligible_on_assessed()
        sl = A.group_slice(ev, group)
        return int(((ev.status[sl] == ELIGIBLE) & ~ev.fully_assessed()[sl]).sum())

    def not_assessed_applicable(self) -> tuple[str, ...]:
        return tuple(self.ev.not_assessed_applicable())

    def near_misses(self, max_relative: float, group: str | None = None) -> pd.DataFrame:
        from .explain import near_misses

        if self.frame is None:
            raise ValueError("MemoryView.near_misses needs the cohort's frame")
        near = near_misses(self.ev, self.frame, max_relative=max_relative)
        return near if group in (None, A.ALL) else near[near["disease"] == group].reset_index(drop=True)

    def scope_groups(self, disease: str | None) -> list[str]:
        from .demographics import scope_groups

        return scope_groups(self.ev, disease)

    def pool(self, groups: list[str]) -> pd.DataFrame:
        from .demographics import pool

        return pool(self.ev, groups)

    def by_step(self, group: str | None = None) -> pd.DataFrame:
        from .demographics import by_step

        return by_step(self.ev, group)

    def not_assessed_table(self) -> pd.DataFrame:
        from .assessment import not_assessed_table

        return self._cached("na:table", lambda: not_assessed_table(self.ev))

    def _results(self) -> pd.DataFrame:
        if self.frame is None:
            raise ValueError("MemoryView.patients needs the cohort's frame")
        from .assessment import blank_rows_input_order
        from .screen import results_frame

        def build():
            res = results_frame(self.ev, self.frame)
            res.insert(0, "row", np.arange(1, len(res) + 1, dtype=np.int64))
            blank = blank_rows_input_order(self.ev)
            return res[~blank] if blank.any() else res
        return self._cached("view:results", build)

    def _match(self, status, group, failed, first=None, contains=None) -> pd.DataFrame:
        res = self._results()
        mask = np.ones(len(res), bool)
        if status:
            mask &= (res["status"] == status).to_numpy(bool)
        if group not in (None, A.ALL):
            sl = A.group_slice(self.ev, group)
            rows = self.ev.columns.order[sl.start:sl.stop] + 1
            mask &= res["row"].isin(rows).to_numpy(bool)
        if failed:
            mask &= res["failed"].map(lambda s: failed in str(s).split(";")).to_numpy(bool)
        if first:
            mask &= (res["first_reason"] == first).to_numpy(bool)
        for col, text in (contains or {}).items():
            if text.strip():
                mask &= res[col].astype("string").str.contains(text.strip(), case=False, regex=False
                                                              ).fillna(False).to_numpy(bool)
        return res[mask]

    def patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                 first: str | None = None, contains: dict[str, str] | None = None,
                 offset: int = 0, limit: int = 100) -> pd.DataFrame:
        hit = self._match(status, group, failed, first, contains)
        return hit[PATIENT_COLUMNS].iloc[offset:offset + limit].reset_index(drop=True)

    def count_patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                       first: str | None = None, contains: dict[str, str] | None = None) -> int:
        return len(self._match(status, group, failed, first, contains))


def status_change(before: PageView, after: PageView, *, offset: int = 0,
                  limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scenario diff (`screen.status_change`'s columns) and the changed patients (a page
    of them for a database view; `limit` None: all)."""
    if isinstance(before, MemoryView) and isinstance(after, MemoryView):
        from .screen import status_change as memory_change

        if before.frame is None:
            raise ValueError("status_change of memory views needs the cohort's frame")
        summary, patients = memory_change(before.ev, after.ev, before.frame)
        return summary, (patients if limit is None else patients.iloc[offset:offset + limit])
    return after.status_change_from(before, offset=offset, limit=limit)


def counts_side_by_side(protocol: PageView, a: PageView, b: PageView, diff: pd.DataFrame) -> pd.DataFrame:
    """`compare.counts_side_by_side` from three views' status counts and the A → B diff summary."""
    cp, ca, cb = protocol.status_counts(), a.status_counts(), b.status_counts()
    rows = []
    for g in ca.index:
        d = diff.loc[g] if g in diff.index else None
        rows.append({
            "group": g, "screened": int(ca.loc[g, "screened"]),
            "eligible_protocol": int(cp.loc[g, "eligible"]), "eligible_a": int(ca.loc[g, "eligible"]),
            "eligible_b": int(cb.loc[g, "eligible"]), "pending_protocol": int(cp.loc[g, "pending"]),
            "pending_a": int(ca.loc[g, "pending"]), "pending_b": int(cb.loc[g, "pending"]),
            "gained_b_vs_a": 0 if d is None else int(d["gained"]), "lost_b_vs_a": 0 if d is None else int(d["lost"]),
            "differ": 0 if d is None else int(d["changed"]),
        })
    df = pd.DataFrame(rows)
    df["net_b_vs_a"] = df["eligible_b"] - df["eligible_a"]
    return df
