"""The dashboard's "database" cohort source: an Evaluator whose scenarios run in the database.

The pages read `Evaluation` objects (outcome codes per unit and patient, statuses,
the disease groups). `DatabaseEvaluator` presents that interface: each scenario is
evaluated in DuckDB or Spark (cached per scenario there), and only the compact code
matrix (one byte per unit and patient) comes back to fill the same `Evaluation`.
The typed columns are fetched once so the patient pages (explanations, near misses)
keep working — for cohorts of at most `PULL_ROWS` rows. Larger cohorts open in aggregate
mode (`DatabaseSource`, `DatabaseView`): nothing per patient is pulled; the pages read
`DatabaseCohort.evaluate(...).attribution()` aggregates and pages of patients.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from ..attribution import ALL
from ..catalog import Catalog
from ..columns import EMPTY_ROW, GROUP_NAMES, unreadable_cells
from ..evaluate import ELIGIBLE, INELIGIBLE, PENDING, Evaluation, Evaluator
from ..fields import FIELD_BY_NAME
from ..loader import Cohort
from ..pageview import (
    PATIENT_COLUMNS,
    AggregateOnly,
    PageView,
    aggregate_only_message,
    pool_from_counts,
    steps_from_counts,
)
from ..scenario import Resolved, baseline
from .compile import GROUP, ROW, UNREADABLE
from .engine import DatabaseCohort, DatabaseEvaluation
from .outcomes import code_column

# Database cohorts with more rows than this open in aggregate mode: no typed frame, no code
# matrix in the dashboard process; only aggregates and pages of patients leave the engine.
PULL_ROWS = int(os.environ.get("ELIGIBILITY_DASHBOARD_PULL_ROWS", 1_000_000))

_STATUS_CODE = {"ineligible": INELIGIBLE, "pending": PENDING, "eligible": ELIGIBLE}


def typed_frame(db: DatabaseCohort) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The typed contract columns in input order as the loader's frame types, and the
    unreadable-cell masks."""
    return loader_frame(db.typed.order_by(ROW).to_pyarrow().to_pandas())


def loader_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Rows of the typed table (as fetched) in the loader's frame types, and the unreadable-cell masks."""
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
    return pull_cohort(DatabaseCohort.open(con, source))


def open_for_dashboard(con, source: str) -> DatabaseSource | tuple[Cohort, DatabaseEvaluator]:
    """Open and validate a database cohort for the dashboard: at most PULL_ROWS rows, the
    loader-shaped cohort and its evaluator (every page feature); more, a `DatabaseSource`
    (aggregate mode: nothing per patient is pulled into this process)."""
    db = DatabaseCohort.open(con, source)
    return pull_cohort(db) if pulls(db) else DatabaseSource(db)


def pulls(db: DatabaseCohort) -> bool:
    """Whether the dashboard brings this cohort's per-patient values into memory."""
    return len(db) <= PULL_ROWS


def pull_cohort(db: DatabaseCohort) -> tuple[Cohort, DatabaseEvaluator]:
    """The loader-shaped cohort (typed values in pandas) and its evaluator (full features)."""
    db = db.materialize()
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


# -- aggregate mode ---------------------------------------------------------------------------


def _page(con, t, order: str, offset: int, limit: int | None) -> pd.DataFrame:
    """Rows offset … offset + limit of `t` in `order`. On Spark, ibis spells an offset as a
    row-number column that comes back with the rows; a window filter is used there instead."""
    if limit is None:
        return t.order_by(order).execute()
    if con.name == "pyspark" and offset:
        import ibis

        t = t.mutate(__rn=ibis.row_number().over(order_by=t[order]))
        t = t.filter((t["__rn"] >= offset) & (t["__rn"] < offset + limit)).drop("__rn")
        return t.order_by(order).execute()
    return t.order_by(order).limit(limit, offset=offset).execute()

_VIEW_MEMOS = 16  # scenarios whose page-level tables are remembered per cohort
NEAR_MISS_ROWS = 200_000  # near-miss candidates read into the dashboard at most (their rows only)
NEAR_MISS_MAX = 0.5  # the widest margin the page offers (50 % of the threshold); narrower ones filter it


class DatabaseSource:
    """A database cohort in aggregate mode: scenarios evaluated (and cached) in the engine,
    one lock for the engine connection that every browser session shares."""

    def __init__(self, db: DatabaseCohort):
        self.db = db
        self.lock = threading.RLock()
        self._memos: OrderedDict = OrderedDict()
        self._missing: dict[str | None, pd.DataFrame] = {}

    @property
    def n_rows(self) -> int:
        return len(self.db)

    @property
    def empty_rows(self) -> int:
        """Blank rows kept between data rows (the loader's 'empty row: kept' reports): not patients."""
        return sum(1 for i in self.db.issues if i.kind == "empty_row" and i.row is not None and i.column is None)

    def view(self, scenario: Resolved | None = None) -> DatabaseView:
        scenario = scenario or baseline(self.db.catalog)
        with self.lock:
            memo = self._memos.get(scenario.key)
            if memo is None:
                memo = self._memos[scenario.key] = {}
                while len(self._memos) > _VIEW_MEMOS:
                    self._memos.popitem(last=False)
            else:
                self._memos.move_to_end(scenario.key)
        return DatabaseView(self, scenario, memo)

    def sweep(self, scenario: Resolved, param: str, values, group: str | None = None) -> pd.DataFrame:
        """`whatif.sweep` with each point a scenario evaluated in the database (its counts kept
        with that scenario, so moving the control to a swept value reuses them)."""
        from ..scenario import resolve, to_scenario

        catalog = self.db.catalog
        p = catalog.parameters[param]
        base = to_scenario(scenario, catalog)
        g = group or ALL
        rows = []
        for v in np.asarray(values, float):
            point = resolve({"name": base.name, "parameters": {**base.parameters,
                                                                param: int(v) if p.type == "count" else float(v)},
                             "disabled": base.disabled, "readings": base.readings}, catalog)
            c = self.view(point).status_counts().loc[g]
            rows.append({"value": float(v), "eligible": int(c["eligible"]), "pending": int(c["pending"]),
                         "ineligible": int(c["ineligible"])})
        df = pd.DataFrame(rows, columns=["value", "eligible", "pending", "ineligible"])
        others = {k for k in base.parameters if k != param}
        df.attrs.update(param=param, label=p.label, unit=p.unit, default=p.default,
                        current=scenario.params[param], held=bool(others or base.disabled))
        return df

    def missingness(self, disease: str | None = None) -> pd.DataFrame:
        """`quality.missingness` as one GROUP BY disease in the engine (empty cells per column)."""
        if disease not in self._missing:
            self._missing[disease] = self._missingness(disease)
        return self._missing[disease]

    def _missingness(self, disease: str | None) -> pd.DataFrame:
        from ..catalog import default_catalog
        from ..fields import FIELDS

        catalog = default_catalog()
        t = self.db.typed
        cols = [f.name for f in FIELDS if f.name in self.db.present and f.name in t.columns]
        with self.lock:
            q = t.group_by(t["disease"].cast("string").name("__d")).aggregate(
                __n=t.count(), **{f"m_{c}": t[c].isnull().cast("int64").sum() for c in cols}).execute()
        q["__d"] = q["__d"].astype(object).where(q["__d"].notna(), None)
        rows = []
        for f in FIELDS:
            if disease is not None and f.block not in ("common", disease):
                continue
            scope = f.block if f.block != "common" else disease
            sub = q if scope is None else q[q["__d"] == scope]
            n = int(sub["__n"].sum())
            present = f.name in cols
            missing = int(sub[f"m_{f.name}"].fillna(0).sum()) if present else n
            rows.append({
                "field": f.name, "label": f.title, "block": f.block, "present": present,
                "applicable": n, "missing": missing, "missing_pct": 100.0 * missing / n if n else 0.0,
                "criteria": ", ".join(catalog.units_reading_field(f.name)),
            })
        return pd.DataFrame(rows)


class DatabaseView(PageView):
    """One scenario of a database cohort in aggregate mode, for the pages: aggregates from
    the engine's GROUP BYs (`DatabaseEvaluation.attribution`), patients a page at a time."""

    aggregate_only = True

    def __init__(self, source: DatabaseSource, scenario: Resolved, memo: dict):
        self.source = source
        self._scenario = scenario
        self.memo = memo

    def _dev(self) -> DatabaseEvaluation:
        """The engine's evaluation of this scenario (cached there; re-run if it was evicted)."""
        with self.source.lock:
            return self.source.db.evaluate(self._scenario)

    def _attr(self):
        with self.source.lock:
            return self._dev().attribution()

    @property
    def scenario(self) -> Resolved:
        return self._scenario

    @property
    def catalog(self) -> Catalog:
        return self.source.db.catalog

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.source.db.present)

    def _plan(self):
        return self._cached("db:plan", lambda: self._dev().plan)

    @property
    def not_assessed(self) -> tuple[str, ...]:
        return tuple(self._plan().not_assessed)

    @property
    def disabled(self) -> tuple[str, ...]:
        return tuple(self._plan().disabled)

    @property
    def unit_ids(self) -> tuple[str, ...]:
        return tuple(self._plan().unit_ids)

    @property
    def evaluation(self) -> Evaluation:
        raise AggregateOnly(aggregate_only_message("this per-patient view"))

    @property
    def empty_rows(self) -> int:
        return self.source.empty_rows

    def status_counts(self) -> pd.DataFrame:
        df = self._cached("db:status_counts", lambda: self._attr().status_counts())
        out = df.copy()
        out.attrs["empty_rows"] = self.empty_rows
        return out

    def criterion_table(self, group: str | None = None) -> pd.DataFrame:
        return self._cached(("db:crit", group), lambda: self._attr().criterion_table(group))

    def cause_impact(self, group: str | None = None) -> pd.DataFrame:
        return self._cached(("db:impact", group), lambda: self._attr().cause_impact(group))

    def attrition(self, group: str | None = None) -> pd.DataFrame:
        return self._cached(("db:attrition", group), lambda: self._attr().attrition(group))

    def combinations(self, group: str | None = None, top: int = 15) -> pd.DataFrame:
        a = self._attr()
        if top > a.top:  # the engine ranked `a.top` per group: ask again for more
            with self.source.lock:
                dev = self._dev()
                from .attribution import Attribution

                a = dev._attr = Attribution(dev.patients_table, dev.plan, top=top)
        return self._cached(("db:combos", group, top), lambda: a.combinations(group, top=top))

    def criterion_totals(self, group: str | None = None) -> pd.DataFrame:
        return self._cached(("db:totals", group), lambda: self._attr().criterion_totals(group))

    def first_reason_counts(self) -> dict[str, np.ndarray]:
        def build():
            a = self._attr()
            n = len(self.unit_ids)
            q = a.q1[a.q1["first_idx"] >= 0]
            out = {}
            for g in a.groups():
                sub = q if g == ALL else q[q[GROUP] == GROUP_NAMES.index(g)]
                out[g] = np.bincount(sub["first_idx"].to_numpy(np.int64), weights=sub["n"].to_numpy(np.int64),
                                     minlength=n).astype(np.int64)
            return out
        return self._cached("db:first", build)

    def eligible_on_assessed(self, group: str | None = None) -> int:
        """`assessed` is constant per disease group (outcomes.assessed_sql): eligible patients of the
        groups where fewer than all applicable units are assessed."""
        pl = self._plan()
        disabled, missing = set(pl.disabled), set(pl.not_assessed)
        counts = self.status_counts()
        total = 0
        for g in counts.index:
            if g == ALL or (group not in (None, ALL) and g != group):
                continue
            units = [u for u in pl.catalog.units if u.id not in disabled and u.block in ("common", g)]
            if any(u.id in missing for u in units):
                total += int(counts.loc[g, "eligible"])
        return total

    # -- demographics: one GROUP BY (group, status, first failing unit, age, sex) -------------
    def _histogram(self) -> pd.DataFrame:
        def build():
            import ibis

            db = self.source.db
            with self.source.lock:
                p = self._dev().patients_table
                p = p.filter(p[GROUP] != EMPTY_ROW).select(ROW, GROUP, "status", "first_idx")  # blank rows
                t = db.typed
                age = (t["age_years"].cast("float64") if "age_years" in db.present and "age_years" in t.columns
                       else ibis.null().cast("float64"))
                if "sex" in db.present and "sex" in t.columns:
                    sx = t["sex"].cast("string")
                    sex = ibis.cases((sx == "F", 0), (sx == "M", 1), else_=2)
                else:
                    sex = ibis.literal(2)
                tt = t.select(__r2=t[ROW], age=age, sex=sex.cast("int8"))
                j = p.join(tt, p[ROW] == tt["__r2"])
                q = j.group_by([GROUP, "status", "first_idx", "age", "sex"]).aggregate(n=j.count()).execute()
            names = np.array(GROUP_NAMES, dtype=object)
            return pd.DataFrame({
                "group": names[q[GROUP].astype(np.int64).to_numpy()],
                "status": q["status"].astype(object).to_numpy(),
                "first_idx": q["first_idx"].astype(np.int64).to_numpy(),
                "age": pd.to_numeric(q["age"], errors="coerce").to_numpy(np.float64, na_value=np.nan),
                "sex": q["sex"].astype(np.int64).to_numpy(),
                "n": q["n"].astype(np.int64).to_numpy(),
            })
        return self._cached("db:histogram", build)

    def pool(self, groups: list[str]) -> pd.DataFrame:
        return self._cached(("db:pool", tuple(groups)), lambda: pool_from_counts(self._histogram(), groups))

    def by_step(self, group: str | None = None) -> pd.DataFrame:
        crits = [self.catalog.unit_by_id[u].criterion for u in self.unit_ids]
        return self._cached(("db:steps", group), lambda: steps_from_counts(
            self._histogram(), group, self.attrition(group), crits))

    # -- one patient ------------------------------------------------------------------------
    def one_patient(self, patient_id: str) -> tuple[pd.Series, Cohort] | None:
        """The patient with this ID (exact, else ignoring case and surrounding spaces; the first
        in input order): their results row (`row` 1-based) and a one-row loader-shaped cohort of
        their typed values and cell reports — a page of one, for the explanation."""
        pid = patient_id.strip()
        with self.source.lock:
            rich = self._dev().rich_table
            cols = ["row", "patient_id", "disease", "status", "first_reason", "failed", "unknown"]

            def first(t):
                q = t.select(row=t[ROW], patient_id=t.patient_id, disease=t.disease, status=t.status,
                             first_reason=t.first_reason, failed=t.failed, unknown=t.unknown)
                return q.order_by("row").limit(1).execute()

            hit = first(rich.filter(rich.patient_id == pid))
            if hit.empty:
                hit = first(rich.filter(rich.patient_id.strip().lower() == pid.lower()))
            if hit.empty:
                return None
            rec = hit.iloc[0][cols].copy()
            row = int(rec["row"])
            typed = self.source.db.typed
            df = typed.filter(typed[ROW] == row).to_pyarrow().to_pandas()
        for c in ("first_reason", "failed", "unknown"):
            rec[c] = "" if pd.isna(rec[c]) else str(rec[c])
        frame, _ = loader_frame(df)
        db = self.source.db
        cohort = Cohort(frame=frame, present=db.present, issues=[i for i in db.issues if i.row == row],
                        source=db.source, extra_columns=db.extra_columns,
                        row_numbers=np.array([row], dtype=np.int64))
        return rec, cohort

    def explain(self, patient_id: str) -> tuple[pd.Series, pd.DataFrame] | None:
        """`explain.explain_patient` for one patient, from their row alone (evaluated in memory:
        each criterion reads only that patient's values)."""
        from ..explain import explain_patient

        found = self.one_patient(patient_id)
        if found is None:
            return None
        rec, cohort = found
        return rec, explain_patient(Evaluator.for_cohort(cohort, self.catalog), 0, self._scenario)

    # -- near misses: the candidates' rows only -------------------------------------------------
    def near_misses(self, max_relative: float, group: str | None = None) -> pd.DataFrame:
        """`explain.near_misses` (in `group`), from the rows of its candidates only: ineligible
        patients whose sole failing cause is a numeric limit (found in the database). Refused
        with AggregateOnly when there are more than NEAR_MISS_ROWS of them."""
        table = self._cached(("db:near", group), lambda: self._near_misses(NEAR_MISS_MAX, group))
        return table[table["relative"] <= max_relative].reset_index(drop=True)

    def _near_misses(self, max_relative: float, group: str | None) -> pd.DataFrame:
        from ..explain import _numeric_leaves, near_misses

        pl = self._plan()
        cause_idx, names = pl.causes()
        numeric = [k for k in range(len(names))
                   if all(_numeric_leaves(pl.catalog, u.rule) is not None
                          for u, c in zip(pl.active, cause_idx, strict=True) if c == k)]
        # A sole cause is the first failing unit's: the units of the numeric causes.
        first_units = [i for i, c in enumerate(cause_idx) if c in numeric]
        db = self.source.db
        with self.source.lock:
            t = self._dev().patients_table
            t = t.filter((t.status == "ineligible") & t.sole & t.first_idx.isin(first_units or [-2]))
            if group not in (None, ALL):
                t = t.filter(t[GROUP] == GROUP_NAMES.index(group))
            n = int(t.count().execute())
            if n > NEAR_MISS_ROWS:
                raise AggregateOnly(aggregate_only_message(
                    f"the list of near misses ({n:,} candidates; at most {NEAR_MISS_ROWS:,} are read into the "
                    "dashboard — choose a disease in the sidebar)"))
            typed = db.typed
            df = typed.filter(typed[ROW].isin(t[ROW])).order_by(ROW).to_pyarrow().to_pandas()
        rows = df[ROW].astype(np.int64).to_numpy()
        frame, _ = loader_frame(df)
        wanted = set(rows.tolist())
        sub = Cohort(frame=frame, present=db.present, issues=[i for i in db.issues if i.row in wanted],
                     source=db.source, extra_columns=db.extra_columns, row_numbers=rows)
        ev = Evaluator.for_cohort(sub, self.catalog).evaluate(self._scenario)
        out = near_misses(ev, frame, max_relative=max_relative)
        out["row"] = rows[out["row"].astype(np.int64).to_numpy() - 1] if len(out) else out["row"]
        return out

    # -- patients, a page at a time ---------------------------------------------------------
    def _filtered(self, status, group, failed, first=None, contains=None):
        t = self._dev().rich_table
        if status:
            t = t.filter(t.status == status)
        if group not in (None, ALL):
            t = t.filter(t[GROUP] == GROUP_NAMES.index(group))
        if failed:
            t = t.filter(t.failed.split(";").contains(failed))
        if first:
            t = t.filter(t.first_reason == first)
        for col, text in (contains or {}).items():
            if col not in ("failed", "unknown", "patient_id"):
                raise ValueError(f"no text filter on {col!r}")
            if text.strip():
                t = t.filter(t[col].cast("string").lower().contains(text.strip().lower()))
        return t

    def patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                 first: str | None = None, contains: dict[str, str] | None = None,
                 offset: int = 0, limit: int = 100) -> pd.DataFrame:
        with self.source.lock:
            t = self._filtered(status, group, failed, first, contains)
            page = _page(self.source.db.con,
                         t.select(row=t[ROW], patient_id=t.patient_id, disease=t.disease, status=t.status,
                                  first_reason=t.first_reason, failed=t.failed, unknown=t.unknown),
                         "row", offset, limit)
        page = page.reindex(columns=PATIENT_COLUMNS)
        page["row"] = page["row"].astype(np.int64)  # the engine's row is the 1-based data row
        page["patient_id"] = page["patient_id"].astype("string")
        page["disease"] = page["disease"].astype("string")
        for c in ("first_reason", "failed", "unknown"):
            page[c] = page[c].fillna("").astype(object)
        return page.reset_index(drop=True)

    def count_patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                       first: str | None = None, contains: dict[str, str] | None = None) -> int:
        texts = tuple(sorted((k, v.strip()) for k, v in (contains or {}).items() if v.strip()))
        if not failed and not first and not texts:  # from the cached status counts, no query
            counts = self.status_counts().loc[group or ALL]
            return int(counts["screened"] if not status else counts[status])
        key = ("db:count", status, group, failed, first, texts)
        with self.source.lock:
            return self._cached(key, lambda: int(self._filtered(status, group, failed, first, contains)
                                                 .count().execute()))

    # -- scenario diff --------------------------------------------------------------------
    def status_change_from(self, before: PageView, *, offset: int = 0, limit: int | None = None,
                           group: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(summary per group, a page of the changed patients in input order, in `group`)."""
        if not isinstance(before, DatabaseView) or before.source is not self.source:
            raise ValueError("a database scenario diff needs two views of the same cohort")
        with self.source.lock:
            b, a = before._dev(), self._dev()
            summary = self._cached(("db:diff", before.scenario.key), lambda: self.source.db.status_change(
                b, a, limit=0)[0])
            patients = self._changed(b, a, group, offset, limit)
        return summary, patients

    def _changed(self, b: DatabaseEvaluation, a: DatabaseEvaluation, group, offset: int, limit: int | None):
        pa_, pb = b.rich_table, a.rich_table
        left = pa_.select(ROW, GROUP, "patient_id", "disease", sa=pa_["status"], fa=pa_["first_reason"])
        right = pb.select(__r=pb[ROW], sb=pb["status"], fb=pb["first_reason"])
        j = left.join(right, left[ROW] == right["__r"])
        j = j.filter(j.sa != j.sb)
        if group not in (None, ALL):
            j = j.filter(j[GROUP] == GROUP_NAMES.index(group))
        p = _page(self.source.db.con, j, ROW, offset, limit)
        return pd.DataFrame({
            "row": p[ROW].astype(np.int64).to_numpy(),
            "patient_id": p["patient_id"].astype("string").to_numpy(),
            "disease": p["disease"].astype("string").to_numpy(),
            "status_before": p["sa"].astype(object).to_numpy(),
            "status_after": p["sb"].astype(object).to_numpy(),
            "first_reason_before": p["fa"].fillna("").astype(object).to_numpy(),
            "first_reason_after": p["fb"].fillna("").astype(object).to_numpy(),
        })

    def change_moves(self, before: PageView, group: str | None = None) -> pd.Series:
        """Patients per status move ('eligible → pending': n), most first, in `group`."""
        if not isinstance(before, DatabaseView) or before.source is not self.source:
            raise ValueError("a database scenario diff needs two views of the same cohort")

        def build():
            with self.source.lock:
                pa_, pb = before._dev().patients_table, self._dev().patients_table
                left = pa_.select(ROW, GROUP, sa=pa_["status"])
                right = pb.select(__r=pb[ROW], sb=pb["status"])
                j = left.join(right, left[ROW] == right["__r"])
                j = j.filter(j.sa != j.sb)
                if group not in (None, ALL):
                    j = j.filter(j[GROUP] == GROUP_NAMES.index(group))
                q = j.group_by(["sa", "sb"]).aggregate(n=j.count()).execute()
            s = pd.Series(q["n"].astype(np.int64).to_numpy(), index=q["sa"].astype(str) + " → " + q["sb"].astype(str))
            return s.sort_values(ascending=False, kind="stable")
        return self._cached(("db:moves", before.scenario.key, group), build)
