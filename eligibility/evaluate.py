"""Evaluate the catalog over a whole cohort, three-valued and vectorised.

An `Evaluator` holds a cohort's columns and a cache of unit results keyed on
the parameter values each unit reads, so a what-if change recomputes only the
units that read the changed parameter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog, Unit, default_catalog
from .columns import Columns, issue_masks
from .rules import IMPLAUSIBLE_UNKNOWN, TRUE, RuleEvaluator
from .scenario import Resolved, baseline

# Outcome codes per unit and patient. Ordered so that a patient's status is the minimum.
FAIL, UNKNOWN, PASS, NOT_APPLICABLE = 0, 1, 2, 3
# Patient status codes.
INELIGIBLE, PENDING, ELIGIBLE = 0, 1, 2
STATUS_NAMES = np.array(["ineligible", "pending", "eligible"], dtype=object)
OUTCOME_NAMES = np.array(["fail", "unknown", "pass", "n/a"], dtype=object)

_CACHE_PER_UNIT = 6  # parameter settings remembered per unit (baseline + recent what-ifs)
SWEEP_CACHE_BYTES = 48 * 2**20  # outcome rows of the swept units, kept apart from the per-unit cache
PARALLEL_MIN_ROWS = 100_000  # below this, threads cost more than they save
# The first failing unit's index per patient (-1: none): a catalog has ~100 units, and each
# what-if copies this array (2 bytes a patient, not 4: fewer fresh pages touched per move).
FIRST_DTYPE = np.int16
_OUTLINES = 4  # recent evaluations a what-if can be derived from
DERIVE_MAX_SHARE = 8  # derive when at most 1/8 of the rows can change status (else recompute)


def on_row_halves(fn, n: int) -> None:
    """fn(lo, hi) over rows 0:n: in two halves on two threads from PARALLEL_MIN_ROWS rows up
    (numpy releases the GIL in each pass over a half), else in one call. A fresh pool each
    time: a shared one could deadlock when called from one of its own workers."""
    if n < max(PARALLEL_MIN_ROWS, 2):
        fn(0, n)
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(fn, 0, n // 2), pool.submit(fn, n // 2, n)]:
            f.result()


def clip(sl: slice, lo: int, hi: int) -> tuple[int, int]:
    """The part of `sl` inside rows lo:hi, as (start, stop), empty when start >= stop."""
    return max(sl.start, lo), min(sl.stop, hi)


@dataclass
class _Outline:
    """What a later evaluation can be derived from: per unit ID its block slice and outcome
    row (the cached array itself), the status, and the first failing unit once computed."""

    rows: dict[str, tuple[slice, np.ndarray]]
    ids: tuple[str, ...]
    status: np.ndarray
    first: np.ndarray | None = None


def _status_at(units, rows, bounds, pos: np.ndarray) -> np.ndarray:
    """Status codes at sorted evaluation positions `pos` (the minimum over the units).
    Positions already ineligible (the minimum) are dropped from the walk now and then."""
    out = np.full(len(pos), ELIGIBLE, np.uint8)
    idx, at, vals = np.arange(len(pos)), pos, out.copy()
    for i, (u, r) in enumerate(zip(units, rows, strict=True)):
        sl = bounds[u.block]
        lo, hi = np.searchsorted(at, (sl.start, sl.stop))
        if hi > lo:
            np.minimum(vals[lo:hi], r[at[lo:hi] - sl.start], out=vals[lo:hi])
        if i % 16 == 15:
            done = vals == INELIGIBLE
            if np.count_nonzero(done) * 4 > len(vals):
                out[idx[done]] = INELIGIBLE
                keep = ~done
                idx, at, vals = idx[keep], at[keep], vals[keep]
    out[idx] = vals
    return out


def _first_at(units, rows, bounds, pos: np.ndarray, status: np.ndarray) -> np.ndarray:
    """First failing unit at sorted evaluation positions `pos` (-1 unless ineligible).
    Only the ineligible positions are looked up, each until its first failing unit: the units
    are walked in order over the positions still open, which shrink as they are found."""
    out = np.full(len(pos), -1, FIRST_DTYPE)
    open_ = np.flatnonzero(status == INELIGIBLE)  # indexes into pos still without a unit
    at = pos[open_]
    for i, (u, r) in enumerate(zip(units, rows, strict=True)):
        if not len(open_):
            break
        sl = bounds[u.block]
        lo, hi = np.searchsorted(at, (sl.start, sl.stop))
        if hi <= lo:
            continue
        hit = np.flatnonzero(r[at[lo:hi] - sl.start] == FAIL) + lo
        if len(hit):
            out[open_[hit]] = i
            keep = np.ones(len(open_), bool)
            keep[hit] = False
            open_, at = open_[keep], at[keep]
    return out



class Evaluation:
    """Outcomes of every active unit for every patient, in evaluation order.

    `rows` holds each active unit's outcome codes on its block's slice (the evaluator's
    cached arrays, read-only); the (units × patients) `outcomes` matrix is built from them
    on first use, so a what-if that needs only statuses and a few first reasons never
    pays for it."""

    def __init__(self, catalog: Catalog, scenario: Resolved, columns: Columns, units: tuple[Unit, ...],
                 outcomes: np.ndarray | None, status: np.ndarray, not_assessed: tuple[str, ...],
                 disabled: tuple[str, ...], rows: tuple[np.ndarray, ...] | None = None,
                 first: np.ndarray | None = None, outline: _Outline | None = None):
        if outcomes is None and rows is None:
            raise ValueError("an evaluation needs its outcome matrix or its per-unit rows")
        self.catalog = catalog
        self.scenario = scenario
        self.columns = columns
        self.units = units  # active: assessed and not switched off, catalog order
        self._outcomes = outcomes  # (len(units), n) uint8 outcome codes, built on demand
        self.status = status  # (n,) status codes
        self.not_assessed = not_assessed
        self.disabled = disabled
        self._rows = rows
        self._outline = outline  # where a later what-if can derive from (gets `first` when computed)
        self._memo: dict = {}
        if first is not None:
            self._memo["first"] = first

    def __repr__(self) -> str:
        return f"Evaluation({len(self.units)} units, {self.n} rows, scenario={self.scenario.name!r})"

    @property
    def outcomes(self) -> np.ndarray:
        if self._outcomes is None:
            assert self._rows is not None
            m = np.full((len(self.units), self.n), NOT_APPLICABLE, np.uint8)
            for i, (u, r) in enumerate(zip(self.units, self._rows, strict=True)):
                m[i, self.bounds[u.block]] = r
            self._outcomes = m
        return self._outcomes

    def rows(self) -> tuple[np.ndarray, ...]:
        """Per active unit, its outcome codes on its block's slice."""
        if self._rows is None:
            m = self.outcomes
            self._rows = tuple(m[i, self.bounds[u.block]] for i, u in enumerate(self.units))
        return self._rows

    @property
    def unit_ids(self) -> tuple[str, ...]:
        return tuple(u.id for u in self.units)

    @property
    def n(self) -> int:
        return len(self.status)

    @property
    def group(self) -> np.ndarray:
        return self.columns.group

    @property
    def bounds(self) -> dict[str, slice]:
        return self.columns.bounds

    def failed(self) -> np.ndarray:
        if "failed" not in self._memo:
            self._memo["failed"] = self._coded(FAIL)
        return self._memo["failed"]

    def unknown(self) -> np.ndarray:
        if "unknown" not in self._memo:
            self._memo["unknown"] = self._coded(UNKNOWN)
        return self._memo["unknown"]

    def _coded(self, code: int) -> np.ndarray:
        """(units × patients) bool: the outcome is `code` (from the rows: no matrix needed)."""
        if self._outcomes is not None:
            return self._outcomes == code
        out = np.zeros((len(self.units), self.n), bool)
        for i, (u, r) in enumerate(zip(self.units, self.rows(), strict=True)):
            np.equal(r, code, out=out[i, self.bounds[u.block]])
        return out

    def first_failed_index(self) -> np.ndarray:
        """Index (into units) of the first failing unit per patient, -1 if none."""
        if "first" not in self._memo:
            first = np.empty(self.n, FIRST_DTYPE)
            rows = self.rows()
            slices = [self.bounds[u.block] for u in self.units]

            def fill(lo: int, hi: int) -> None:
                first[lo:hi] = -1
                # Last unit first, so that earlier units overwrite: one pass per unit over its
                # own slice (an argmax down the matrix's columns strides through memory).
                for i in range(len(rows) - 1, -1, -1):
                    a, b = clip(slices[i], lo, hi)
                    if b > a:
                        off = slices[i].start
                        np.copyto(first[a:b], FIRST_DTYPE(i), where=rows[i][a - off:b - off] == FAIL)
                # -1 (every bit set) unless ineligible, by an OR: a masked store mispredicts.
                keep = (self.status[lo:hi] != INELIGIBLE).view(np.int8).astype(FIRST_DTYPE)
                np.negative(keep, out=keep)
                first[lo:hi] |= keep

            on_row_halves(fill, self.n)
            self._memo["first"] = first
            if self._outline is not None:
                self._outline.first = first
        return self._memo["first"]

    def first_failed_at(self, pos: np.ndarray) -> np.ndarray:
        """first_failed_index() at evaluation positions `pos` only (what a diff of a few
        changed patients needs); equal to first_failed_index()[pos]."""
        pos = np.asarray(pos, np.intp)
        if "first" in self._memo:
            return self._memo["first"][pos]
        order = np.argsort(pos, kind="stable")
        out = np.empty(len(pos), FIRST_DTYPE)
        out[order] = _first_at(self.units, self.rows(), self.bounds, pos[order], self.status[pos[order]])
        return out

    # -- input-order views ----------------------------------------------------------
    def to_input_order(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.columns.order] = values
        return out

    def status_labels(self) -> np.ndarray:
        """Status names in input row order."""
        return self.to_input_order(STATUS_NAMES[self.status])

    @property
    def n_patients(self) -> int:
        """Rows that are patients: every row but blank ones (which sort last)."""
        return self.columns.n_patients

    @property
    def empty_rows(self) -> int:
        return self.n - self.columns.n_patients


    def assessed_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per patient (evaluation order): (k, n) = applicable criteria assessed, applicable.

        Applicable = the common block (with DX-1) plus the patient's own disease block;
        switched-off units are not applicable. Counted per unit (most specific ID), the
        granularity of ``not_assessed``."""
        if "assessed" not in self._memo:
            k = np.zeros(self.n, np.int32)
            m = np.zeros(self.n, np.int32)
            for block, (a, b) in self._assessed_per_block().items():
                sl = self.bounds[block]
                k[sl] += a
                m[sl] += b
            self._memo["assessed"] = (k, m)
        return self._memo["assessed"]

    def _assessed_per_block(self) -> dict[str, list[int]]:
        """Per block: [units assessed, units applicable] (switched-off units left out)."""
        disabled = set(self.disabled)
        missing = set(self.not_assessed)
        per_block: dict[str, list[int]] = {}
        for u in self.catalog.units:
            if u.id in disabled:
                continue
            km = per_block.setdefault(u.block, [0, 0])
            km[1] += 1
            km[0] += u.id not in missing
        return per_block

    def eligible_on_assessed(self) -> int:
        """Eligible patients with an applicable criterion not assessed: the count of
        status == ELIGIBLE and k < m (assessed_counts), taken stretch by stretch of rows that
        lie in the same blocks (k and m are constant there), without per-patient arrays."""
        per_block = self._assessed_per_block()
        edges = sorted({0, self.n, *(x for b in per_block for x in (self.bounds[b].start, self.bounds[b].stop))})
        total = 0
        for lo, hi in zip(edges, edges[1:], strict=False):
            if hi <= lo:
                continue
            inside = [km for b, km in per_block.items() if self.bounds[b].start <= lo and hi <= self.bounds[b].stop]
            if sum(km[0] for km in inside) < sum(km[1] for km in inside):
                total += int(np.count_nonzero(self.status[lo:hi] == ELIGIBLE))
        return total

    def not_assessed_applicable(self) -> tuple[str, ...]:
        """Not-assessed units that apply to at least one patient of this cohort."""
        return tuple(
            uid for uid in self.not_assessed
            if (sl := self.bounds[self.catalog.unit_by_id[uid].block]).stop > sl.start
        )

    def fully_assessed(self) -> np.ndarray:
        """Per patient (evaluation order): every applicable criterion is assessed."""
        k, m = self.assessed_counts()
        return k == m

    def status_display(self) -> np.ndarray:
        """Status wording for people (input order): an eligible patient with unassessed
        applicable criteria reads "eligible on assessed criteria (k of n)"."""
        k, m = self.assessed_counts()
        names = STATUS_NAMES[self.status].astype(object)
        partial = (self.status == ELIGIBLE) & (k < m)
        if partial.any():
            names[partial] = [f"eligible on assessed criteria ({a} of {b})" for a, b in zip(k[partial], m[partial], strict=True)]
        return self.to_input_order(names)

    def counts(self) -> dict[str, int]:
        n = self.n_patients  # blank rows (sorted last) are not patients
        c = np.bincount(self.status[:n], minlength=3)
        partial = int(((self.status[:n] == ELIGIBLE) & ~self.fully_assessed()[:n]).sum())
        return {"screened": n, "eligible": int(c[ELIGIBLE]), "pending": int(c[PENDING]),
                "ineligible": int(c[INELIGIBLE]), "eligible_on_assessed": partial, "empty_rows": self.empty_rows}


class Evaluator:
    """Evaluates scenarios over one cohort, reusing unit results that a change does not touch."""

    def __init__(self, frame: pd.DataFrame, present, catalog: Catalog | None = None,
                 unreadable: dict[str, np.ndarray] | None = None,
                 implausible: dict[str, np.ndarray] | None = None,
                 blank: np.ndarray | None = None):
        self.catalog = catalog or default_catalog()
        if len(self.catalog.units) > np.iinfo(FIRST_DTYPE).max:
            raise ValueError(f"{len(self.catalog.units)} criteria units: at most {np.iinfo(FIRST_DTYPE).max}")
        self.columns = Columns(frame, present, unreadable, implausible, blank)
        # Every unit that reads a number may read a value to verify: its results depend on the setting.
        self._extra = (IMPLAUSIBLE_UNKNOWN,) if IMPLAUSIBLE_UNKNOWN in self.catalog.parameters else ()
        self._cache: dict[str, OrderedDict] = {u.id: OrderedDict() for u in self.catalog.units}
        self._lock = threading.RLock()
        self._outlines: list[_Outline] = []  # most recent last
        self._assessed: dict[tuple, bool] = {}  # (unit, its parameter key) → all its fields present
        self._numbers: dict[tuple, np.ndarray] = {}  # numbers with values to verify blanked (RuleEvaluator)
        # Outcome rows computed for threshold sweeps, (unit, its parameter key) → rows: the swept
        # units' rows at every point of the grid, kept (within SWEEP_CACHE_BYTES) apart from the
        # per-unit cache, which a sweep would otherwise flush of the scenarios in use.
        self._sweep_rows: OrderedDict[tuple, np.ndarray] = OrderedDict()

    @classmethod
    def for_cohort(cls, cohort, catalog: Catalog | None = None) -> Evaluator:
        masks, blank = issue_masks(cohort, ("cell_error", "implausible"))
        return cls(cohort.frame, cohort.present, catalog, masks["cell_error"], masks["implausible"], blank)

    def __len__(self) -> int:
        return len(self.columns)

    def assessed(self, unit: Unit, params: dict[str, Any], catalog: Catalog | None = None,
                 _key: tuple | None = None) -> bool:
        catalog = catalog or self.catalog
        key = (unit.id, self._key(unit, params, catalog) if _key is None else _key)
        hit = self._assessed.get(key)
        if hit is None:
            hit = all(f in self.columns.present for f in catalog.fields_of(unit.rule, params))
            self._assessed[key] = hit
        return hit

    def _key(self, unit: Unit, params: dict[str, Any], catalog: Catalog) -> tuple:
        # The readings that changed this unit's rule, then the values of the parameters it reads.
        return (catalog.rule_key.get(unit.id, ()), *(
            (p, tuple(sorted(params[p])) if isinstance(params[p], frozenset) else params[p])
            for p in sorted({*catalog.unit_params(unit.id), *self._extra})
        ))

    def _cached(self, unit: Unit, params: dict[str, Any], catalog: Catalog | None = None,
                _key: tuple | None = None) -> bool:
        return (self._key(unit, params, catalog or self.catalog) if _key is None else _key) in self._cache[unit.id]

    def catalog_for(self, scenario: Resolved) -> Catalog:
        """The catalog under the scenario's readings (the protocol's own when there are none)."""
        return self.catalog.variant(scenario.readings)

    def unit_outcome(self, unit: Unit, params: dict[str, Any], catalog: Catalog | None = None,
                     _key: tuple | None = None) -> np.ndarray:
        """Outcome codes of one unit on its block's slice (cached). `catalog`: a reading variant
        of this evaluator's catalog (its unit of the same ID). `_key`: its _key(), if known."""
        catalog = catalog or self.catalog
        key = self._key(unit, params, catalog) if _key is None else _key
        cache = self._cache[unit.id]
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        ok = self._compute(unit, params, catalog)
        with self._lock:  # one Evaluator serves every browser session of the server
            cache[key] = ok  # truth codes FALSE/UNKNOWN/TRUE equal FAIL/UNKNOWN/PASS
            if len(cache) > _CACHE_PER_UNIT:
                cache.popitem(last=False)
        return ok

    def _compute(self, unit: Unit, params: dict[str, Any], catalog: Catalog) -> np.ndarray:
        """Outcome codes of one unit on its block's slice (read-only: shared by every evaluation
        and outline that uses it). A unit of the whole cohort (the common block) is computed in
        input order, on the frame's own columns, and its outcomes (a byte a row) are put in
        evaluation order: no gathered copy of its columns is made or kept, unless computed again."""
        sl = self.columns.bounds[unit.block]
        # Computed again (a what-if moved one of its parameters): on columns in evaluation
        # order, gathered once and kept, so that each further move skips gathering the
        # outcomes (a what-if's unit in ~half the time; only the moved units' columns are kept).
        again = bool(self._cache[unit.id])
        whole = not again and not self.columns.identity and (sl.start, sl.stop) == (0, len(self.columns))
        cols = self.columns.input_order() if whole else self.columns
        truth = RuleEvaluator(catalog, cols, sl, params, self._numbers)(unit.rule)
        if whole:  # a new array: made an exclusion's outcomes in place
            ok = truth[self.columns.order]
            if unit.kind != "incl":
                np.subtract(TRUE, ok, out=ok)
        else:
            ok = truth if unit.kind == "incl" else TRUE - truth
        ok.flags.writeable = False
        return ok

    def _partition(self, scenario: Resolved, catalog: Catalog) -> tuple[list[Unit], list[str], list[str]]:
        return self._partition_keyed(scenario, catalog)[:3]

    def _partition_keyed(self, scenario: Resolved, catalog: Catalog
                         ) -> tuple[list[Unit], list[str], list[str], dict[str, tuple]]:
        """_partition, with the cache key of every unit not switched off (computed once)."""
        active, not_assessed, disabled = [], [], []
        keys: dict[str, tuple] = {}
        for u in catalog.units:
            if u.id in scenario.disabled:
                disabled.append(u.id)
                continue
            keys[u.id] = key = self._key(u, scenario.params, catalog)
            if not self.assessed(u, scenario.params, catalog, key):
                not_assessed.append(u.id)
            else:
                active.append(u)
        return active, not_assessed, disabled, keys

    def status(self, scenario: Resolved) -> np.ndarray:
        """Status codes only (evaluation order): what sweeps need, without the outcome matrix."""
        catalog = self.catalog_for(scenario)
        active, _, _ = self._partition(scenario, catalog)
        rows = [self.unit_outcome(u, scenario.params, catalog) for u in active]
        derived = self._derive(active, rows, first=False)
        return derived[0] if derived is not None else self._full_status(active, rows)

    def sweep_counts(self, scenarios: list[Resolved], sl: slice) -> np.ndarray:
        """Status counts on rows `sl` per scenario, (len(scenarios), 3) indexed by status code,
        for scenarios that differ in a few parameters (a threshold sweep). Equal to
        np.bincount(self.status(sc)[sl], minlength=3) for each; the units whose results are the
        same in every scenario are combined once, and per scenario only the others are applied."""
        out = np.zeros((len(scenarios), 3), np.int64)
        if not scenarios:
            return out
        plans = []
        for sc in scenarios:
            catalog = self.catalog_for(sc)
            active, _, _ = self._partition(sc, catalog)
            plans.append((catalog, active, [self._key(u, sc.params, catalog) for u in active]))
        catalog0, active0, keys0 = plans[0]
        ids0 = [u.id for u in active0]
        if any(c is not catalog0 or [u.id for u in a] != ids0 for c, a, _ in plans[1:]):
            for i, sc in enumerate(scenarios):  # the active units differ: one whole status each
                out[i] = np.bincount(self.status(sc)[sl], minlength=3)
            return out
        varying = [j for j in range(len(ids0)) if any(k[j] != keys0[j] for _, _, k in plans[1:])]
        fixed = sorted(set(range(len(ids0))) - set(varying))
        params0 = scenarios[0].params
        rest = self._full_status([active0[j] for j in fixed],
                                 [self.unit_outcome(active0[j], params0, catalog0) for j in fixed])[sl]
        bounds = self.columns.bounds
        status = np.empty_like(rest)
        for i, (sc, (catalog, active, keys)) in enumerate(zip(scenarios, plans, strict=True)):
            np.copyto(status, rest)
            for j in varying:
                u = active[j]
                b = bounds[u.block]
                lo, hi = max(b.start, sl.start), min(b.stop, sl.stop)
                if hi > lo:
                    r = self._sweep_outcome(u, sc.params, catalog, keys[j])
                    seg = status[lo - sl.start:hi - sl.start]
                    np.minimum(seg, r[lo - b.start:hi - b.start], out=seg)
            # Two comparisons count a status array faster than np.bincount (which widens it to intp).
            out[i, ELIGIBLE] = np.count_nonzero(status == ELIGIBLE)
            out[i, PENDING] = np.count_nonzero(status == PENDING)
            out[i, INELIGIBLE] = len(status) - out[i, ELIGIBLE] - out[i, PENDING]
        return out

    def _sweep_outcome(self, unit: Unit, params: dict[str, Any], catalog: Catalog, key: tuple) -> np.ndarray:
        """unit_outcome for a sweep point: from the per-unit cache if there, else from (and into)
        the sweep cache, leaving the per-unit cache as it was."""
        with self._lock:
            hit = self._cache[unit.id].get(key)
            if hit is None:
                hit = self._sweep_rows.get((unit.id, key))
                if hit is not None:
                    self._sweep_rows.move_to_end((unit.id, key))
        if hit is not None:
            return hit
        ok = self._compute(unit, params, catalog)
        with self._lock:
            self._sweep_rows[(unit.id, key)] = ok
            total = sum(a.nbytes for a in self._sweep_rows.values())
            while total > SWEEP_CACHE_BYTES and len(self._sweep_rows) > 1:
                total -= self._sweep_rows.popitem(last=False)[1].nbytes
        return ok

    def _full_status(self, active: list[Unit], rows: list[np.ndarray]) -> np.ndarray:
        status = np.full(len(self.columns), ELIGIBLE, np.uint8)
        for u, r in zip(active, rows, strict=True):
            sl = self.columns.bounds[u.block]
            np.minimum(status[sl], r, out=status[sl])
        return status

    def _derive(self, active: list[Unit], rows: list[np.ndarray], first: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None, _Outline] | None:
        """Status (and first failing unit) from a recent evaluation that differs in a few units:
        only the rows where one of those units changed are recomputed. None: recompute all."""
        with self._lock:
            outlines = list(self._outlines)
        ids = [u.id for u in active]
        id_set = set(ids)
        best, best_changed = None, None
        # Most recent first: of two outlines as many units away, the last position of a
        # slider differs from this one in the fewest patients (the baseline, in the most).
        for o in reversed(outlines):
            changed = [i for i, (uid, r) in enumerate(zip(ids, rows, strict=True))
                       if (prev := o.rows.get(uid)) is None or prev[1] is not r]
            removed = [uid for uid in o.ids if uid not in id_set]
            if best_changed is None or len(changed) + len(removed) < best_changed[0]:
                best, best_changed = o, (len(changed) + len(removed), changed, removed)
        if best is None or best_changed is None:
            return None
        _, changed, removed = best_changed
        bounds, n = self.columns.bounds, len(self.columns)
        pieces = []
        for i in changed:
            sl = bounds[active[i].block]
            hit = rows[i] < TRUE if ids[i] not in best.rows else rows[i] != best.rows[ids[i]][1]
            pieces.append(np.flatnonzero(hit) + sl.start)
            if sum(len(x) for x in pieces) > n // DERIVE_MAX_SHARE:
                return None
        for uid in removed:
            gone_sl, gone = best.rows[uid]
            pieces.append(np.flatnonzero(gone < TRUE) + gone_sl.start)
        # One piece (a single unit changed: the slider case) is sorted and unique already.
        pos = (pieces[0] if len(pieces) == 1 else np.unique(np.concatenate(pieces))) if pieces \
            else np.zeros(0, np.intp)
        if len(pos) > n // DERIVE_MAX_SHARE:
            return None
        status = best.status.copy()
        status[pos] = _status_at(active, rows, bounds, pos)
        first_idx = None
        kept = [uid for uid in best.ids if uid in id_set]
        if first and best.first is not None and kept == [uid for uid in ids if uid in best.rows]:
            where = {uid: i for i, uid in enumerate(ids)}
            remap = np.array([where.get(uid, -1) for uid in best.ids] + [-1], FIRST_DTYPE)
            first_idx = best.first.copy() if list(best.ids) == ids else remap[best.first]
            first_idx[pos] = _first_at(active, rows, bounds, pos, status[pos])
        return status, first_idx, best

    def _remember(self, active: list[Unit], rows: list[np.ndarray], status: np.ndarray,
                  first: np.ndarray | None) -> _Outline:
        bounds = self.columns.bounds
        outline = _Outline({u.id: (bounds[u.block], r) for u, r in zip(active, rows, strict=True)},
                           tuple(u.id for u in active), status, first)
        with self._lock:
            self._outlines = [*self._outlines, outline][-_OUTLINES:]
        return outline

    def evaluate(self, scenario: Resolved | None = None) -> Evaluation:
        scenario = scenario or baseline(self.catalog)
        params = scenario.params
        catalog = self.catalog_for(scenario)
        active, not_assessed, disabled, keys = self._partition_keyed(scenario, catalog)
        n = len(self.columns)
        # Units not yet cached (a freshly loaded cohort) are computed on both cores: numpy
        # releases the GIL in the column gathers and comparisons that dominate this step.
        missing = [u for u in active if not self._cached(u, params, catalog, keys[u.id])]
        if len(missing) > 8 and n >= PARALLEL_MIN_ROWS:
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda u: self.unit_outcome(u, params, catalog, keys[u.id]), missing))
        rows = [self.unit_outcome(u, params, catalog, keys[u.id]) for u in active]
        derived = self._derive(active, rows)
        if derived is None:
            status, first = self._full_status(active, rows), None
        else:
            status, first, _ = derived
        outline = self._remember(active, rows, status, first)
        return Evaluation(catalog, scenario, self.columns, tuple(active), None, status,
                          tuple(not_assessed), tuple(disabled), rows=tuple(rows), first=first,
                          outline=outline)
