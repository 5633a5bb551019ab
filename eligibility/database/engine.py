"""A cohort that stays in the database: evaluate scenarios, attribute, page through patients.

`DatabaseCohort` is what the batch command and the dashboard hold instead of a
pandas frame. Per scenario it keeps the (lazy) outcome-code table and, once asked,
the attribution aggregates; what-if reruns are new queries, cached per scenario.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from ..catalog import Catalog, default_catalog
from ..columns import EMPTY_ROW, GROUP_NAMES
from ..loader import Issue
from ..mixing import MIX64
from ..scenario import Resolved, baseline
from ..screen import join_set_ids
from .attribution import Attribution
from .cells import finish, prepare
from .compile import GROUP, ROW
from .outcomes import (
    Plan,
    codes_sql,
    mask_words,
    patient_sql,
    plan,
    rich_sql,
    unit_key,
    unit_shift,
    unit_word,
    update_sql,
)
from .source import Input, parse_input, raw_table, register, typed_from_frame

_CACHED_SCENARIOS = 8
# A scenario whose active units differ from a kept one's in at most 1/UPDATE_SHARE of them
# is computed by updating that one's masks (outcomes.update_sql).
UPDATE_SHARE = 4
# At or below this many rows, a second scenario first keeps the parsed cohort in the engine
# (a DuckDB temp table, ~0.7 kB a row; Spark cache), so that what-ifs skip parsing; above
# it, every scenario parses the file again as it evaluates (one scan) and only its
# per-patient integers are kept. A single scenario (the batch command) never keeps it.
KEEP_TYPED_ROWS = int(os.environ.get("ELIGIBILITY_KEEP_TYPED_ROWS", 2_000_000))


@dataclass
class DatabaseEvaluation:
    """One scenario over a database cohort: the plan, the lazy per-patient tables, aggregates."""

    cohort: DatabaseCohort
    plan: Plan
    patients_table: ir.Table  # per-patient integers (outcomes.patient_sql), kept in the engine
    codes_table: ir.Table  # the per-unit outcome codes they come from (a view over the typed table)
    rich_table: ir.Table  # patients_table with the contract's text columns (a view)
    _attr: Attribution | None = field(default=None, repr=False)

    @property
    def not_assessed(self) -> tuple[str, ...]:
        return self.plan.not_assessed

    @property
    def disabled(self) -> tuple[str, ...]:
        return self.plan.disabled

    @property
    def catalog(self) -> Catalog:
        return self.plan.catalog

    @property
    def scenario(self) -> Resolved:
        return self.plan.scenario

    @property
    def units(self):
        return self.plan.active

    @property
    def unit_ids(self) -> tuple[str, ...]:
        return self.plan.unit_ids

    def attribution(self) -> Attribution:
        if self._attr is None:
            self._attr = Attribution(self.patients_table, self.plan)
        return self._attr

    def counts(self) -> dict[str, int]:
        return self.attribution().counts()

    def patients(self, *, status: str | None = None, group: str | None = None, failed: str | None = None,
                 offset: int = 0, limit: int = 100) -> pd.DataFrame:
        """One page of patients in input order, with their contract columns."""
        t = self.rich_table
        if status:
            t = t.filter(t.status == status)
        if group not in (None, "All"):
            t = t.filter(t[GROUP] == GROUP_NAMES.index(group))
        if failed:
            t = t.filter(t.failed.split(";").contains(failed))
        page = (t.select(row=t[ROW], patient_id=t.patient_id, disease=t.disease, status=t.status,
                         first_reason=t.first_reason, failed=t.failed, unknown=t.unknown)
                .order_by("row").limit(limit, offset=offset))
        return page.execute()


class DatabaseCohort:
    """A cohort in a database (DuckDB or Spark): typed lazily, validated in the engine."""

    def __init__(self, con, typed: ir.Table, present: frozenset[str], issues: list[Issue] | None = None,
                 n_rows: int | None = None, source: str = "", catalog: Catalog | None = None,
                 extra_columns: tuple[str, ...] = ()):
        self.con = con
        self.typed = typed
        self.present = present
        self.issues = list(issues or [])
        self.source = source
        self.catalog = catalog or default_catalog()
        self.extra_columns = extra_columns
        self._n = n_rows
        self._cache: OrderedDict = OrderedDict()
        self._sql_cache: dict = {}  # compiled unit expressions (outcomes.codes_sql)
        self._lock = threading.RLock()
        self.materialized = False

    # -- constructors -------------------------------------------------------------
    @classmethod
    def open(cls, con, src: str | Input, scenario: Resolved | None = None) -> DatabaseCohort:
        """Read and validate an input in the engine (raises loader.CohortError), and evaluate
        `scenario` (default: the baseline) in the same pass over the file.

        One full pass computes, per row, the scenario's per-patient integers together with
        whether the row is blank and whether any cell check fired; the row-wide checks
        (blank rows, duplicate ids) then read that kept table, and the cell report parses
        again only the flagged rows. Parsing every cell was the costliest work: it used to
        happen once for the report and once more for the first scenario."""
        src = parse_input(src) if isinstance(src, str) else src
        pre: list[Issue] = []
        raw = raw_table(con, src, pre)

        def reg(e, m):
            return register(con, e, materialize=m)

        prep = prepare(raw, src.name, pre, register=reg)
        catalog = default_catalog()
        pl = plan(prep.present, scenario or baseline(catalog), catalog)
        every_row = prep.values
        sql_cache: dict = {}
        carry = ("nb", "flagged")
        codes_all = register(con, codes_sql(con, every_row, prep.present, pl, sql_cache, carry, shifted=True))
        patients = register(con, patient_sql(codes_all.get_name(), pl, carry, shifted=True), materialize=True)
        v = finish(prep, patients)
        if v.n_rows < int(patients.count().execute()):  # empty rows after the last data row
            patients = _rows_up_to(con, patients, v.n_rows)
        out = cls(con, register(con, v.typed), v.present, v.issues, v.n_rows, src.name, catalog,
                  extra_columns=v.extra_columns)
        out._sql_cache = sql_cache
        codes = register(con, codes_sql(con, out.typed, out.present, pl, sql_cache))
        ev = DatabaseEvaluation(out, pl, patients, codes, register(con, rich_sql(patients.get_name(), pl)))
        out._cache[pl.scenario.key] = ev
        return out

    @classmethod
    def from_cohort(cls, con, cohort) -> DatabaseCohort:
        """A cohort the loader (or a test) already typed, pushed into the engine."""
        from ..columns import blank_rows, unreadable_cells

        typed = register(con, typed_from_frame(con, cohort.frame, unreadable_cells(cohort), blank_rows(cohort)))
        return cls(con, typed, frozenset(cohort.present), list(getattr(cohort, "issues", [])), len(cohort.frame),
                   getattr(cohort, "source", ""))

    def materialize(self) -> DatabaseCohort:
        """Keep the typed table in the engine (a temp table): what-ifs then skip parsing."""
        if self.materialized:
            return self
        name = f"__elig_typed_{id(self)}"
        if self.con.name == "pyspark":
            self.con._session.table(self._spark_view()).cache().createOrReplaceTempView(name)
        else:
            self.con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {self.con.compile(self.typed)}')
        self.typed = self.con.table(name)
        self.materialized = True
        self._sql_cache.clear()
        return self

    def _spark_view(self) -> str:  # pragma: no cover - only for materialize on Spark
        name = f"__elig_typed_src_{id(self)}"
        self.con.create_view(name, self.typed, overwrite=True)
        return name

    def _drop(self, *tables: ir.Table) -> None:
        """Free an evicted scenario's tables (DuckDB temp tables; Spark cached views), so that
        what-ifs do not accumulate one code table each."""
        for t in tables:
            name = t.get_name()
            if self.con.name == "pyspark":
                self.con._session.catalog.dropTempView(name)
            else:
                kind = self.con.raw_sql("SELECT table_type FROM information_schema.tables "
                                        f"WHERE table_name = '{name}'").fetchall()
                if kind:
                    self.con.raw_sql(f'DROP {"VIEW" if kind[0][0] == "VIEW" else "TABLE"} "{name}"')

    def __len__(self) -> int:
        if self._n is None:
            self._n = int(self.typed.count().execute())
        return self._n

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self, scenario: Resolved | None = None) -> DatabaseEvaluation:
        scenario = scenario or baseline(self.catalog)
        key = scenario.key
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if not self.materialized and len(self) <= KEEP_TYPED_ROWS:
            self.materialize()  # a second scenario: parse once more, then never again
        pl = plan(self.present, scenario, self.catalog)
        codes = register(self.con, codes_sql(self.con, self.typed, self.present, pl, self._sql_cache))
        patients = self._patients(pl, codes)
        ev = DatabaseEvaluation(self, pl, patients, codes, register(self.con, rich_sql(patients.get_name(), pl)))
        with self._lock:
            self._cache[key] = ev
            if len(self._cache) > _CACHED_SCENARIOS:
                _, old = self._cache.popitem(last=False)
                self._drop(old.rich_table, old.patients_table, old.codes_table)
        return ev

    def _patients(self, pl: Plan, codes: ir.Table) -> ir.Table:
        """The kept per-patient integers of `pl`: from a kept scenario with the same active
        units when few of them differ (what-ifs: the changed units' data alone is read), else
        from every unit's codes."""
        with self._lock:
            kept = [ev for ev in self._cache.values() if ev.plan.unit_ids == pl.unit_ids]
        best, best_changed = None, None
        for ev in kept:
            changed = [i for i, u in enumerate(pl.active) if unit_key(pl, u) != unit_key(ev.plan, ev.plan.active[i])]
            if best_changed is None or len(changed) < len(best_changed):
                best, best_changed = ev, changed
        if best is None or best_changed is None or len(best_changed) > max(1, len(pl.active) // UPDATE_SHARE):
            return register(self.con, patient_sql(codes.get_name(), pl), materialize=True)
        part = None
        if best_changed:
            part = register(self.con, codes_sql(self.con, self.typed, self.present, pl, self._sql_cache,
                                                only=set(best_changed)))
        sql = update_sql(best.patients_table.get_name(), part.get_name() if part is not None else None, pl,
                         best_changed)
        out = register(self.con, sql, materialize=True)
        if part is not None:
            self._drop(part)
        return out

    def status_change(self, before: DatabaseEvaluation, after: DatabaseEvaluation,
                      offset: int = 0, limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Scenario diff (the columns of `screen.status_change`), computed in one GROUP BY;
        changed patients come back a page at a time (`limit` None: all of them)."""
        pa_, pb = before.rich_table, after.rich_table
        left = pa_.select(ROW, GROUP, "patient_id", "disease", sa=pa_["status"], fa=pa_["first_reason"])
        right = pb.select(__r=pb[ROW], sb=pb["status"], fb=pb["first_reason"])
        j = left.join(right, left[ROW] == right["__r"])
        agg = j.group_by([GROUP, "sa", "sb"]).aggregate(n=j.count()).execute()
        agg[GROUP] = agg[GROUP].astype(np.int64)
        sizes = agg.groupby(GROUP)["n"].sum()
        rows = []
        for gi, g in enumerate(GROUP_NAMES):
            if gi == EMPTY_ROW or (g not in GROUP_NAMES[:5] and sizes.get(gi, 0) == 0):
                continue
            rows.append(self._diff_row(g, agg[agg[GROUP] == gi]))
        rows.append(self._diff_row("All", agg[agg[GROUP] != EMPTY_ROW]))  # blank rows are not patients
        summary = pd.DataFrame(rows).set_index("group")
        summary["net"] = summary["eligible_after"] - summary["eligible_before"]
        changed = j.filter(j.sa != j.sb).order_by(ROW)
        if limit is not None:
            changed = changed.limit(limit, offset=offset)
        p = changed.execute()
        patients = pd.DataFrame({
            "row": p[ROW].astype(np.int64).to_numpy(),
            "patient_id": p["patient_id"].astype("string").to_numpy(),
            "disease": p["disease"].astype("string").to_numpy(),
            "status_before": p["sa"].astype(object).to_numpy(),
            "status_after": p["sb"].astype(object).to_numpy(),
            "first_reason_before": p["fa"].astype(object).to_numpy(),
            "first_reason_after": p["fb"].astype(object).to_numpy(),
        })
        return summary, patients

    @staticmethod
    def _diff_row(g: str, q: pd.DataFrame) -> dict:
        e = "eligible"
        return {
            "group": g,
            "eligible_before": int(q.loc[q.sa == e, "n"].sum()),
            "eligible_after": int(q.loc[q.sb == e, "n"].sum()),
            "gained": int(q.loc[(q.sb == e) & (q.sa != e), "n"].sum()),
            "lost": int(q.loc[(q.sa == e) & (q.sb != e), "n"].sum()),
            "changed": int(q.loc[q.sa != q.sb, "n"].sum()),
        }


def _rows_up_to(con, t: ir.Table, last: int) -> ir.Table:
    """A kept per-patient table without the rows after `last`."""
    if con.name == "pyspark":
        return register(con, t.filter(t[ROW] <= last), materialize=True)
    con.raw_sql(f"DELETE FROM {t.get_name()} WHERE {ROW} > {int(last)}")
    return t


def result_batches(ev: DatabaseEvaluation, rows_per_batch: int = 1 << 20):
    """The `screen` contract as Arrow tables of text columns in input order, a batch at a
    time (bounded memory).

    Only the per-patient integers leave the database; the text columns are spelled here once
    per distinct failure (unknown) mask, as `outcomes.text_sql` spells them, instead of ~170
    CASEs a row in SQL, and stay Arrow (dictionary-decoded), never Python strings a row.
    Sorted by the engine: DuckDB fills a kept table in parallel, and reading it as stored
    was tried and dropped (at 1M rows, row 131,073 onwards came after row 1,000,000)."""
    pl = ev.plan
    words = mask_words(len(pl.active))
    t = ev.patients_table
    masks = [f"{p}{w}" for p in ("fw", "uw") for w in range(words)]
    q = t.select(ROW, "patient_id", "disease", "status", "first_idx", "assessed", *masks).order_by(ROW)
    spell = _MaskText(pl.unit_ids)
    not_assessed = pa.array([";".join(pl.not_assessed)], pa.string())
    first = pa.array([*pl.unit_ids, ""], pa.string())  # first_idx -1 picks the trailing ""
    for batch in arrow_batches(ev.cohort.con, q, rows_per_batch):
        n = batch.num_rows

        def ints(c: str, batch=batch) -> np.ndarray:
            return batch.column(c).to_numpy(zero_copy_only=False).astype(np.int64)

        first_at = ints("first_idx")
        yield pa.table({
            "patient_id": _text(batch.column("patient_id")),
            "disease": _text(batch.column("disease")),
            "status": _text(batch.column("status")),
            "first_reason": first.take(pa.array(np.where(first_at >= 0, first_at, len(first) - 1))),
            "failed": spell([ints(f"fw{w}") for w in range(words)]),
            "unknown": spell([ints(f"uw{w}") for w in range(words)]),
            "not_assessed": not_assessed.take(pa.array(np.zeros(n, np.int64))),
            "assessed": _text(batch.column("assessed")),
        })


def _text(col) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col if col.type == pa.string() else col.cast(pa.string())


def batch_frame(table: pa.Table) -> pd.DataFrame:
    """A result batch as the pandas frame `screen.results_frame` builds (text columns)."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        if name in ("patient_id", "disease"):
            out[name] = col.to_pandas().astype("string").to_numpy()
        else:
            out[name] = col.to_numpy(zero_copy_only=False).astype(object)
    return pd.DataFrame(out)


class _MaskText:
    """The ';'-joined unit ids of bit-mask words (`outcomes.unit_word`/`unit_shift`), spelled once per
    distinct mask (hash-factorised: a sort of millions of multi-word keys took seconds)."""

    def __init__(self, ids: tuple[str, ...]):
        self.ids = ids
        self._word = np.array([unit_word(i) for i in range(len(ids))], np.intp)
        self._shift = np.array([unit_shift(i) for i in range(len(ids))], np.int64)

    def __call__(self, cols: list[np.ndarray]) -> pa.Array:
        n = len(cols[0]) if cols else 0
        key, first_at = self._hashed(cols, n)
        if key is None:  # two masks with one hash: word by word, exactly
            key = np.zeros(n, np.int64)
            for c in cols:  # (codes so far) x (codes of this word), re-factorised
                codes, uniques = pd.factorize(c)
                key, _ = pd.factorize(key * len(uniques) + codes)
            first_at = _first_appearances(key)
        if cols:
            distinct = np.stack([np.asarray(c, np.int64)[first_at] for c in cols], axis=1)
            bits = (distinct[:, self._word] >> self._shift) & 1
        else:
            bits = np.zeros((len(first_at), len(self.ids)), np.int64)
        texts = pa.array(join_set_ids(bits, self.ids), pa.string())
        return texts.take(pa.array(key))

    @staticmethod
    def _hashed(cols: list[np.ndarray], n: int) -> tuple[np.ndarray | None, np.ndarray]:
        """Distinct masks numbered by first appearance through one 64-bit hash of their
        words (one factorisation instead of two a word), checked: None when two distinct
        masks share a hash."""
        if not cols:
            return np.zeros(n, np.int64), _first_appearances(np.zeros(n, np.int64))
        if len(cols) > len(MIX64):  # pragma: no cover - more words than mixing constants
            return None, np.zeros(0, np.int64)
        h = np.zeros(n, np.uint64)
        for c, mix in zip(cols, MIX64, strict=False):
            h ^= np.ascontiguousarray(c, np.int64).view(np.uint64) * mix  # wraps modulo 2**64
            h ^= h >> np.uint64(31)
        key, _ = pd.factorize(h)
        first_at = _first_appearances(key)
        for c in cols:
            if not np.array_equal(c, c[first_at][key]):
                return None, first_at
        return key, first_at




def _first_appearances(key: np.ndarray) -> np.ndarray:
    """Where each key first occurs, keys being numbered by first appearance (factorize's
    order): where the running maximum rises."""
    new = np.ones(len(key), bool)
    if len(key):
        new[1:] = key[1:] > np.maximum.accumulate(key)[:-1]
    return np.flatnonzero(new)


def arrow_batches(con, expr: ir.Table, rows_per_batch: int):
    """Record batches of a query. DuckDB 2 renamed the cursor's batch reader, which
    ibis 12's `to_pyarrow_batches` still calls; ask DuckDB directly."""
    if con.name == "duckdb":
        yield from con.con.sql(con.compile(expr)).to_arrow_reader(rows_per_batch)
    else:
        yield from expr.to_pyarrow_batches(chunk_size=rows_per_batch)


def results_frame(ev: DatabaseEvaluation) -> pd.DataFrame:
    frames = [batch_frame(t) for t in result_batches(ev)]
    if not frames:
        return pd.DataFrame(columns=["patient_id", "disease", "status", "first_reason", "failed", "unknown",
                                     "not_assessed"])
    return pd.concat(frames, ignore_index=True)


__all__ = ["DatabaseCohort", "DatabaseEvaluation", "result_batches", "results_frame", "ibis"]
