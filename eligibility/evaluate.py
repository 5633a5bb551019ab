"""Evaluate the catalog over a whole cohort, three-valued and vectorised.

An `Evaluator` holds a cohort's columns and a cache of unit results keyed on
the parameter values each unit reads, so a what-if change recomputes only the
units that read the changed parameter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog, Unit, default_catalog
from .columns import Columns, blank_rows, implausible_cells, unreadable_cells
from .rules import IMPLAUSIBLE_UNKNOWN, TRUE, RuleEvaluator
from .scenario import Resolved, baseline

# Outcome codes per unit and patient. Ordered so that a patient's status is the minimum.
FAIL, UNKNOWN, PASS, NOT_APPLICABLE = 0, 1, 2, 3
# Patient status codes.
INELIGIBLE, PENDING, ELIGIBLE = 0, 1, 2
STATUS_NAMES = np.array(["ineligible", "pending", "eligible"], dtype=object)
OUTCOME_NAMES = np.array(["fail", "unknown", "pass", "n/a"], dtype=object)

_CACHE_PER_UNIT = 6  # parameter settings remembered per unit (baseline + recent what-ifs)
PARALLEL_MIN_ROWS = 100_000  # below this, threads cost more than they save


@dataclass
class Evaluation:
    """Outcomes of every active unit for every patient, in evaluation order."""

    catalog: Catalog
    scenario: Resolved
    columns: Columns
    units: tuple[Unit, ...]  # active: assessed and not switched off, catalog order
    outcomes: np.ndarray  # (len(units), n) uint8 outcome codes
    status: np.ndarray  # (n,) status codes
    not_assessed: tuple[str, ...]
    disabled: tuple[str, ...]
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def unit_ids(self) -> tuple[str, ...]:
        return tuple(u.id for u in self.units)

    @property
    def n(self) -> int:
        return self.outcomes.shape[1]

    @property
    def group(self) -> np.ndarray:
        return self.columns.group

    @property
    def bounds(self) -> dict[str, slice]:
        return self.columns.bounds

    def failed(self) -> np.ndarray:
        if "failed" not in self._memo:
            self._memo["failed"] = self.outcomes == FAIL
        return self._memo["failed"]

    def unknown(self) -> np.ndarray:
        if "unknown" not in self._memo:
            self._memo["unknown"] = self.outcomes == UNKNOWN
        return self._memo["unknown"]

    def first_failed_index(self) -> np.ndarray:
        """Index (into units) of the first failing unit per patient, -1 if none."""
        if "first" not in self._memo:
            f = self.failed()
            idx = np.argmax(f, axis=0) if len(self.units) else np.zeros(self.n, np.intp)
            idx = idx.astype(np.int32)
            idx[self.status != INELIGIBLE] = -1
            self._memo["first"] = idx
        return self._memo["first"]

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
            disabled = set(self.disabled)
            missing = set(self.not_assessed)
            k = np.zeros(self.n, np.int32)
            m = np.zeros(self.n, np.int32)
            for u in self.catalog.units:
                if u.id in disabled:
                    continue
                sl = self.bounds[u.block]
                m[sl] += 1
                if u.id not in missing:
                    k[sl] += 1
            self._memo["assessed"] = (k, m)
        return self._memo["assessed"]

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
        self.columns = Columns(frame, present, unreadable, implausible, blank)
        # Every unit that reads a number may read a value to verify: its results depend on the setting.
        self._extra = (IMPLAUSIBLE_UNKNOWN,) if IMPLAUSIBLE_UNKNOWN in self.catalog.parameters else ()
        self._cache: dict[str, OrderedDict] = {u.id: OrderedDict() for u in self.catalog.units}
        self._lock = threading.RLock()

    @classmethod
    def for_cohort(cls, cohort, catalog: Catalog | None = None) -> Evaluator:
        return cls(cohort.frame, cohort.present, catalog, unreadable_cells(cohort),
                   implausible_cells(cohort), blank_rows(cohort))

    def __len__(self) -> int:
        return len(self.columns)

    def assessed(self, unit: Unit, params: dict[str, Any], catalog: Catalog | None = None) -> bool:
        catalog = catalog or self.catalog
        return all(f in self.columns.present for f in catalog.fields_of(unit.rule, params))

    def _key(self, unit: Unit, params: dict[str, Any], catalog: Catalog) -> tuple:
        # The readings that changed this unit's rule, then the values of the parameters it reads.
        return (catalog.rule_key.get(unit.id, ()), *(
            (p, tuple(sorted(params[p])) if isinstance(params[p], frozenset) else params[p])
            for p in sorted({*catalog.unit_params(unit.id), *self._extra})
        ))

    def _cached(self, unit: Unit, params: dict[str, Any], catalog: Catalog | None = None) -> bool:
        return self._key(unit, params, catalog or self.catalog) in self._cache[unit.id]

    def catalog_for(self, scenario: Resolved) -> Catalog:
        """The catalog under the scenario's readings (the protocol's own when there are none)."""
        return self.catalog.variant(scenario.readings)

    def unit_outcome(self, unit: Unit, params: dict[str, Any], catalog: Catalog | None = None) -> np.ndarray:
        """Outcome codes of one unit on its block's slice (cached). `catalog`: a reading variant
        of this evaluator's catalog (its unit of the same ID)."""
        catalog = catalog or self.catalog
        key = self._key(unit, params, catalog)
        cache = self._cache[unit.id]
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        sl = self.columns.bounds[unit.block]
        truth = RuleEvaluator(catalog, self.columns, sl, params)(unit.rule)
        ok = truth if unit.kind == "incl" else TRUE - truth
        with self._lock:  # one Evaluator serves every browser session of the server
            cache[key] = ok  # truth codes FALSE/UNKNOWN/TRUE equal FAIL/UNKNOWN/PASS
            if len(cache) > _CACHE_PER_UNIT:
                cache.popitem(last=False)
        return ok

    def _partition(self, scenario: Resolved, catalog: Catalog) -> tuple[list[Unit], list[str], list[str]]:
        active, not_assessed, disabled = [], [], []
        for u in catalog.units:
            if u.id in scenario.disabled:
                disabled.append(u.id)
            elif not self.assessed(u, scenario.params, catalog):
                not_assessed.append(u.id)
            else:
                active.append(u)
        return active, not_assessed, disabled

    def status(self, scenario: Resolved) -> np.ndarray:
        """Status codes only (evaluation order): what sweeps need, without the outcome matrix."""
        catalog = self.catalog_for(scenario)
        active, _, _ = self._partition(scenario, catalog)
        status = np.full(len(self.columns), ELIGIBLE, np.uint8)
        for u in active:
            sl = self.columns.bounds[u.block]
            np.minimum(status[sl], self.unit_outcome(u, scenario.params, catalog), out=status[sl])
        return status

    def evaluate(self, scenario: Resolved | None = None) -> Evaluation:
        scenario = scenario or baseline(self.catalog)
        params = scenario.params
        catalog = self.catalog_for(scenario)
        active, not_assessed, disabled = self._partition(scenario, catalog)
        n = len(self.columns)
        outcomes = np.full((len(active), n), NOT_APPLICABLE, np.uint8)
        status = np.full(n, ELIGIBLE, np.uint8)
        # Units not yet cached (a freshly loaded cohort) are computed on both cores: numpy
        # releases the GIL in the column gathers and comparisons that dominate this step.
        missing = [u for u in active if not self._cached(u, params, catalog)]
        if len(missing) > 8 and n >= PARALLEL_MIN_ROWS:
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda u: self.unit_outcome(u, params, catalog), missing))
        for i, u in enumerate(active):
            sl = self.columns.bounds[u.block]
            res = self.unit_outcome(u, params, catalog)
            outcomes[i, sl] = res
            np.minimum(status[sl], res, out=status[sl])
        return Evaluation(catalog, scenario, self.columns, tuple(active), outcomes, status,
                          tuple(not_assessed), tuple(disabled))
