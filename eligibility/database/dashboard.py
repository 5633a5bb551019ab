"""The dashboard's "database" cohort source: an Evaluator whose scenarios run in the database.

The pages read `Evaluation` objects (outcome codes per unit and patient, statuses,
the disease groups). `DatabaseEvaluator` presents that interface: each scenario is
evaluated in DuckDB or Spark (cached per scenario there), and only the compact code
matrix (one byte per unit and patient) comes back to fill the same `Evaluation`.
The typed columns are fetched once so the patient pages (explanations, near misses)
keep working; `DatabaseCohort.evaluate(...).attribution()` is the aggregate-only path.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from ..columns import unreadable_cells
from ..evaluate import ELIGIBLE, INELIGIBLE, PENDING, Evaluation, Evaluator
from ..fields import FIELD_BY_NAME
from ..loader import Cohort
from ..scenario import Resolved, baseline
from .compile import ROW, UNREADABLE
from .engine import DatabaseCohort
from .outcomes import code_column

_STATUS_CODE = {"ineligible": INELIGIBLE, "pending": PENDING, "eligible": ELIGIBLE}


def typed_frame(db: DatabaseCohort) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The typed contract columns in input order as the loader's frame types, and the
    unreadable-cell masks."""
    df = db.typed.order_by(ROW).to_pyarrow().to_pandas()
    out: dict[str, object] = {}
    bad: dict[str, np.ndarray] = {}
    for name in df.columns:
        if name.startswith(UNREADABLE):
            bad[name[len(UNREADABLE):]] = df[name].fillna(False).to_numpy(bool)
            continue
        if name.startswith("__"):
            continue
        f = FIELD_BY_NAME.get(name)
        s = df[name]
        if f is None or f.kind == "number":
            out[name] = pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        elif f.kind == "yesno":
            out[name] = s.astype("boolean")
        elif f.kind == "category":
            out[name] = pd.Categorical(s.astype(object).where(s.notna(), None), categories=list(f.categories))
        elif f.kind == "date":
            out[name] = pd.to_datetime(s).to_numpy("datetime64[ns]")
        else:
            out[name] = s.astype("string")
    return pd.DataFrame(out, index=pd.RangeIndex(len(df))), bad


def load_database_cohort(con, source: str) -> tuple[Cohort, DatabaseEvaluator]:
    """Open a DuckDB file (`duckdb:PATH?table=NAME` or `PATH.duckdb`) or a Parquet folder/file,
    validate it in the engine, and return the loader-shaped cohort and its evaluator."""
    db = DatabaseCohort.open(con, source).materialize()
    frame, bad = typed_frame(db)
    cohort = Cohort(frame=frame, present=db.present, issues=db.issues, source=db.source,
                    extra_columns=db.extra_columns, row_numbers=np.arange(1, len(frame) + 1, dtype=np.int64))
    evaluator = DatabaseEvaluator(db, cohort)
    del bad  # the same masks come back from the report through unreadable_cells(cohort)
    return cohort, evaluator


class DatabaseEvaluator(Evaluator):
    """`Evaluator` for the pages, with every scenario computed in the database."""

    def __init__(self, db: DatabaseCohort, cohort: Cohort):
        super().__init__(cohort.frame, cohort.present, db.catalog, unreadable_cells(cohort))
        self.db = db
        self._db_lock = threading.Lock()  # one engine connection serves every browser session

    def evaluate(self, scenario: Resolved | None = None) -> Evaluation:
        scenario = scenario or baseline(self.catalog)
        with self._db_lock:
            dev = self.db.evaluate(scenario)
            units = dev.plan.active
            cols = [code_column(i) for i in range(len(units))]
            t = dev.codes_table
            df = t.select(ROW, *cols).order_by(ROW).to_pyarrow()
            st = dev.patients_table
            status_col = st.select(ROW, "status").order_by(ROW).to_pyarrow().column("status")
        order = self.columns.order  # evaluation position -> input row
        n = len(order)
        outcomes = np.empty((len(units), n), np.uint8)
        for i, c in enumerate(cols):
            outcomes[i] = df.column(c).to_numpy().astype(np.uint8)[order]
        status = np.array([_STATUS_CODE[s] for s in status_col.to_pylist()], np.uint8)[order]
        return Evaluation(self.catalog, scenario, self.columns, tuple(units), outcomes, status,
                          dev.plan.not_assessed, dev.plan.disabled)

    def status(self, scenario: Resolved) -> np.ndarray:
        return self.evaluate(scenario).status

    def sweep_counts(self, scenarios: list[Resolved], sl: slice) -> np.ndarray:
        """One database evaluation per point (the in-memory shortcut would bypass the engine)."""
        out = np.zeros((len(scenarios), 3), np.int64)
        for i, sc in enumerate(scenarios):
            out[i] = np.bincount(self.status(sc)[sl], minlength=3)
        return out
