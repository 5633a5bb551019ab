"""OMOP CDM v5.4 -> a contract cohort, in the database, through ibis.

Codes come from the mapping catalog (eligibility/protocol/mapping.yaml) and are
resolved through the CDM's own vocabulary: `concept` by (vocabulary_id,
concept_code), non-standard codes through 'Maps to' in `concept_relationship`,
descendants through `concept_ancestor`. No concept_id is written in this code,
so the reader works on any CDM. An event matches a field through its standard
concept (`*_concept_id`) when that is in the catalog's resolved sets, else through
its source concept (`*_source_concept_id`; e.g. an ICD-10-CM code the ETL left
unmapped, concept_id 0).

Filtering, joining and the latest-lab-per-person step run in the database;
Python receives only matched events (a few rows per person) and the person list.

Output (`import_omop`): the cohort (contract columns the CDM can fill; a column
is absent when its tables or all of its codes are missing), a provenance table
(eligibility.mapping.provenance) and a report: one row per left-out person
(deceased, born after the as-of date, no trial indication coded) and per value
that could not be used (unknown unit, no number, several indications).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

from ..cli_support import OneLineParser, parse
from ..export import write_arrow
from ..fields import DISEASES, FIELD_NAMES
from ..mapping import LEFT_OUT_COLUMNS, PROVENANCE_COLUMNS, REPORT_COLUMNS, load_mapping
from ..mapping.models import (
    AgeRule,
    CategoryRule,
    ConditionRule,
    DrugListRule,
    DrugRule,
    DrugSpanRule,
    LabRule,
    MalignancyRule,
    Rule,
    SexRule,
)
from ..mapping.provenance import side_paths
from ..memory import release_unused_memory

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25
FAR_APART_DAYS = 365
REQUIRED = ("person", "concept", "concept_relationship", "concept_ancestor")
# event tables: (table, concept column, source concept column, start, end, source value)
EVENT_TABLES = {
    "condition": ("condition_occurrence", "condition_concept_id", "condition_source_concept_id",
                  "condition_start_date", "condition_end_date", "condition_occurrence_id"),
    "procedure": ("procedure_occurrence", "procedure_concept_id", "procedure_source_concept_id",
                  "procedure_date", "procedure_end_date", "procedure_occurrence_id"),
    "observation": ("observation", "observation_concept_id", "observation_source_concept_id",
                    "observation_date", None, "observation_id"),
    "drug": ("drug_exposure", "drug_concept_id", "drug_source_concept_id",
             "drug_exposure_start_date", "drug_exposure_end_date", "drug_exposure_id"),
    "measurement": ("measurement", "measurement_concept_id", "measurement_source_concept_id",
                    "measurement_date", None, "measurement_id"),
}


class OmopError(ValueError):
    """Unreadable OMOP source; str(e) is a one-line message."""


@dataclass
class OmopImport:
    cohort: pd.DataFrame
    provenance_table: pa.Table  # PROVENANCE_COLUMNS, dictionary-encoded (tens of millions of rows)
    left_out: pd.DataFrame  # patient_id, reason
    report: pd.DataFrame  # patient_id, field, kind, detail
    as_of: dt.date
    notes: list[str] = field(default_factory=list)
    filled: dict[str, int] = field(default_factory=dict)  # field -> patients with a value

    @cached_property
    def provenance(self) -> pd.DataFrame:
        """The provenance as pandas (categoricals); the command writes the Arrow table itself."""
        if self.provenance_table.num_rows == 0:
            from ..mapping import empty_provenance

            return empty_provenance()
        import pyarrow as pa

        table = self.provenance_table
        for name in ("value", "original_value"):  # text columns; the others are categoricals
            table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.string()))
        return table.to_pandas()[list(PROVENANCE_COLUMNS)]


# ---------------------------------------------------------------------------
# connection
# ---------------------------------------------------------------------------


def duckdb_compat() -> None:
    """ibis 12.0.0's DuckDB backend calls `fetch_arrow_table` on query results, which
    duckdb 2.0 removed (renamed `to_arrow_table`, ibis-project/ibis#12001): alias it back."""
    import warnings

    import duckdb

    cls = duckdb.DuckDBPyConnection
    if not hasattr(cls, "fetch_arrow_table") and hasattr(cls, "to_arrow_table"):
        cls.fetch_arrow_table = cls.to_arrow_table  # type: ignore[attr-defined]  # duckdb 2 renamed it
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning)


DUCKDB_MEMORY_LIMIT = "1GB"  # DuckDB's own buffers; it spills to disk beyond (peak RSS budget 4 GB)


def connect(source: str, *, memory_limit: str = DUCKDB_MEMORY_LIMIT):
    """A DuckDB file (opened read-only) or an ibis connection URL (postgres://, ...)."""
    import ibis

    duckdb_compat()

    text = str(source)
    if "://" in text:
        try:
            return ibis.connect(text)
        except Exception as e:  # driver errors vary by backend
            raise OmopError(f"cannot connect to {text.split('://')[0]}:// source ({type(e).__name__})") from None
    p = Path(text)
    if not p.is_file():
        raise OmopError(f"{p}: no such file (give a DuckDB CDM file or a connection URL)")
    try:
        return ibis.duckdb.connect(str(p), read_only=True, memory_limit=memory_limit)
    except Exception as e:
        raise OmopError(f"{p.name}: not a readable DuckDB database ({type(e).__name__})") from None


# ---------------------------------------------------------------------------
# vocabulary resolution
# ---------------------------------------------------------------------------


def _catalog_codes() -> pd.DataFrame:
    m = load_mapping()
    rows = []
    for rule in m.fields:
        for cat, codes in rule.code_sets().items():
            role = "excepted" if cat == "excepted" else "code"
            for c in codes:
                rows.append((rule.field, "" if role == "excepted" else cat, role, c.vocabulary, c.code, c.expand))
    for route, codes in m.routes.items():
        for c in codes:
            rows.append(("_route", route, "code", c.vocabulary, c.code, False))
    return pd.DataFrame(rows, columns=["field", "category", "role", "vocabulary_id", "concept_code", "expand"])


def resolve(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(concept map, missing codes). The map has one row per (concept_id, field,
    category, role): the catalog concept itself, its 'Maps to' targets and, for
    codes with descendants, every descendant of those."""
    import ibis

    codes = _catalog_codes()
    concept = con.table("concept")
    mem = ibis.memtable(codes)
    found = mem.join(concept, [mem.vocabulary_id == concept.vocabulary_id,
                               mem.concept_code == concept.concept_code])
    found = found.select("field", "category", "role", "expand", "concept_id").to_pandas()
    # (vocabulary_id, code) pairs of the catalog absent from this CDM's concept table
    got = concept.filter(concept.concept_code.isin(codes["concept_code"].unique().tolist())).select(
        "vocabulary_id", "concept_code").to_pandas()
    pairs = set(zip(got["vocabulary_id"], got["concept_code"], strict=True))
    missing = codes[[(v, c) not in pairs for v, c in zip(codes["vocabulary_id"], codes["concept_code"],
                                                          strict=True)]]
    ids = found["concept_id"].astype("int64").unique().tolist()
    rel = con.table("concept_relationship")
    maps = rel.filter(rel.concept_id_1.isin(ids) & (rel.relationship_id == "Maps to")
                      & rel.invalid_reason.isnull()).select("concept_id_1", "concept_id_2").to_pandas()
    mapped = found.merge(maps, left_on="concept_id", right_on="concept_id_1")
    mapped = mapped.assign(concept_id=mapped["concept_id_2"])[found.columns]
    base = pd.concat([found, mapped], ignore_index=True)
    exp_ids = base.loc[base["expand"], "concept_id"].astype("int64").unique().tolist()
    anc = con.table("concept_ancestor")
    desc = anc.filter(anc.ancestor_concept_id.isin(exp_ids)).select(
        "ancestor_concept_id", "descendant_concept_id").to_pandas()
    down = base[base["expand"]].merge(desc, left_on="concept_id", right_on="ancestor_concept_id")
    down = down.assign(concept_id=down["descendant_concept_id"])[found.columns]
    out = pd.concat([base, down], ignore_index=True)[["concept_id", "field", "category", "role"]]
    out = out[out["concept_id"] != 0].drop_duplicates().reset_index(drop=True)
    out["concept_id"] = out["concept_id"].astype("int64")
    return out, missing.reset_index(drop=True)


# ---------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------


def _events(con, kind: str, cmap: pd.DataFrame, as_of: dt.date, extra: tuple[str, ...] = ()):
    """Matched events of one table as an ibis expression: person_id, field, category,
    role, start, end, record_id, concept ids and `extra` columns; start <= as_of."""
    import ibis

    table, ccol, scol, start, end, rid = EVENT_TABLES[kind]
    t = con.table(table)
    t = t.filter(t[start] <= ibis.literal(as_of))
    mem = ibis.memtable(cmap)
    ids = ibis.memtable(pd.DataFrame({"cid": cmap["concept_id"].drop_duplicates().to_numpy()}))
    # the standard concept decides when it is in the catalog's sets, the source concept otherwise
    std_hit = t[ccol].isin(ids.cid)
    t = t.filter(std_hit | t[scol].isin(ids.cid))
    t = t.mutate(_key=ibis.cases((t[ccol].isin(ids.cid), t[ccol]), else_=t[scol]))
    j = t.join(mem, t._key == mem.concept_id)
    return j.select(
        j.person_id, j.field, j.category, j.role,
        j[start].cast("date").name("start"),
        (j[end].cast("date") if end else ibis.null().cast("date")).name("end"),
        j[rid].cast("int64").name("record_id"),
        j[ccol].cast("int64").name("std_id"),
        ibis.coalesce(j[scol], 0).cast("int64").name("src_id"),
        *[j[c].cast("float64").name(c) if c == "value_as_number" else j[c] for c in extra],
    )


def _with_code(con, events):
    """Add the record's own code: its source concept if it has one, else its standard concept."""
    import ibis

    c = con.table("concept").select("concept_id", "vocabulary_id", "concept_code")
    key = ibis.cases((events.src_id > 0, events.src_id), else_=events.std_id)
    ev = events.mutate(code_id=key)
    j = ev.left_join(c, ev.code_id == c.concept_id)
    return j.drop("concept_id") if "concept_id" in j.columns else j


# ---------------------------------------------------------------------------
# the import
# ---------------------------------------------------------------------------


def import_omop(con, *, as_of: dt.date | None = None, today: dt.date | None = None) -> OmopImport:
    import ibis
    import pyarrow as pa

    m = load_mapping()
    notes: list[str] = []
    tables = set(con.list_tables())
    missing_req = [t for t in REQUIRED if t not in tables]
    if missing_req:
        raise OmopError(f"not an OMOP CDM: table(s) {', '.join(missing_req)} missing")
    present = {k for k, spec in EVENT_TABLES.items() if spec[0] in tables}
    for k, spec in EVENT_TABLES.items():
        if k not in present:
            notes.append(f"table {spec[0]} absent: fields read from it are not filled")

    today = today or dt.date.today()
    if as_of is None:
        as_of = today
        notes.append(f"as_of {as_of.isoformat()}: today (default)")
    else:
        notes.append(f"as_of {as_of.isoformat()}: given")
    last = _last_date(con, present)
    if last is not None:
        notes.append(f"latest event date in the data: {last.isoformat()}")
        if abs((as_of - last).days) > FAR_APART_DAYS:
            notes.append(f"warning: as_of is {abs((as_of - last).days)} days from the data's latest date")

    cmap, missing_codes = resolve(con)
    report: list[tuple[str, str, str, str]] = []
    for r in missing_codes.itertuples():
        if r.field != "_route":
            report.append(("", r.field, "code_not_in_vocabulary", f"{r.vocabulary_id} {r.concept_code}"))
    if len(missing_codes):
        notes.append(f"{len(missing_codes)} catalog code(s) not in this CDM's concept table (listed in the report)")

    # ---- persons ------------------------------------------------------------
    persons = _persons(con, tables, as_of)
    out_reason = pd.Series("", index=persons.index, dtype=object)
    out_reason[persons["death_date"].notna() & (persons["death_date"] <= pd.Timestamp(as_of))] = \
        "deceased on or before the as-of date"
    out_reason[(out_reason == "") & (persons["birth"] > pd.Timestamp(as_of))] = "born after the as-of date"
    observed = persons["observed"].to_numpy(dtype=bool)

    prov: list[pd.DataFrame] = []
    values: dict[str, pd.Series] = {}
    idx = pd.Index(persons["person_id"])
    pid_of = pd.Series(persons["patient_id"].to_numpy(), index=idx)
    people = _People(persons["person_id"], persons["patient_id"])

    def known(rows: pd.DataFrame, table: str) -> pd.DataFrame:
        """Rows of persons in the person table; the others are counted in a note."""
        ok = people.known(rows["person_id"])
        if not ok.all():
            notes.append(f"{int((~ok).sum())} matched {table} row(s) of person_id(s) not in the person table: not used")
            return rows[ok]
        return rows

    def series(person_ids, vals, dtype) -> pd.Series:
        """A per-person column: `vals` at the positions of `person_ids`, empty elsewhere."""
        pos = people.codes(person_ids)
        if dtype == "float64":
            out = np.full(len(idx), np.nan)
            out[pos] = np.asarray(vals, dtype=np.float64)
            return pd.Series(out, index=idx)
        obj = np.full(len(idx), None, dtype=object)
        obj[pos] = np.asarray(vals, dtype=object)
        return pd.Series(pd.array(obj, dtype=dtype), index=idx)

    # ---- labs (latest per person and field, in the database) ----------------
    labs = [r for r in m.fields if isinstance(r, LabRule)]
    rule: Rule  # the loop variable of every rule kind below
    if "measurement" in present:
        lab_rows = known(_latest_labs(con, cmap, labs, as_of), "measurement")
        for rule in labs:
            rows = lab_rows[lab_rows["field"] == rule.field]
            if not _resolved(cmap, rule.field):
                continue
            group = m.unit_groups[rule.unit]
            fac = rows["unit"].astype(object).map(group).astype("float64")
            num = rows["value_as_number"].astype("float64")
            bad_unit = fac.isna() & num.notna()
            no_num = num.isna()
            for p_, u_, c_ in zip(rows["person_id"][bad_unit], rows["unit"][bad_unit], rows["concept_code"][bad_unit],
                                  strict=True):
                report.append((pid_of[p_], rule.field, "unknown_unit", f"{u_!r} ({c_})"))
            for p_, c_, d_ in zip(rows["person_id"][no_num], rows["concept_code"][no_num], rows["start"][no_num],
                                  strict=True):
                report.append((pid_of[p_], rule.field, "no_number", f"{c_} on {d_}"))
            ok = ~bad_unit & ~no_num
            conv = num[ok] * fac[ok]
            conv = conv.where(fac[ok] == 1, conv.round(6))
            values[rule.field] = series(rows["person_id"][ok], conv, "float64")
            prov.append(_prov(people, rows[ok], rule.field, conv.pipe(_num_texts), "measurement",
                              rows["value_as_number"][ok].pipe(_num_texts), rows["unit"][ok]))
        del lab_rows, rows
        release_unused_memory()

    # ---- conditions, procedures, observations (record level) ---------------
    cond_rules = [r for r in m.fields if isinstance(r, ConditionRule | CategoryRule | MalignancyRule)]
    ev_parts = []
    for kind in ("condition", "procedure", "observation"):
        if kind not in present:
            continue
        fields = {r.field for r in cond_rules if kind in getattr(r, "tables", ("condition", "observation"))}
        sub = cmap[cmap["field"].isin(fields)]
        if len(sub):
            e = _with_code(con, _events(con, kind, sub, as_of)).mutate(source_table=ibis.literal(EVENT_TABLES[kind][0]))
            ev_parts.append(known(_fetch(e), EVENT_TABLES[kind][0]))
    ev = pd.concat(ev_parts, ignore_index=True) if ev_parts else pd.DataFrame(
        columns=["person_id", "field", "category", "role", "start", "end", "record_id", "vocabulary_id",
                 "concept_code", "source_table"])
    ev["start"] = pd.to_datetime(ev["start"])
    ev["end"] = pd.to_datetime(ev["end"])
    asof_ts = pd.Timestamp(as_of)
    for rule in cond_rules:
        if not _resolved(cmap, rule.field) or not (set(getattr(rule, "tables", ("condition",))) & present):
            continue
        rows = ev[ev["field"] == rule.field]
        if isinstance(rule, ConditionRule):
            if rule.lookback_years:
                cutoff = asof_ts - pd.Timedelta(days=round(rule.lookback_years * DAYS_PER_YEAR))
                active = rows["end"].isna() | (rows["end"] >= cutoff)
                rows = rows[active & ((rows["start"] >= cutoff) | rows["end"].isna() | (rows["end"] >= cutoff))]
            latest = rows.sort_values(["start", "source_table", "record_id"], kind="stable").drop_duplicates("person_id", keep="last")
            absent = rule.absent or m.defaults.absent
            base = _or_none(observed, False) if absent == "no" else np.full(len(idx), None)
            s = pd.Series(pd.array(base, dtype="boolean"), index=idx)
            s[latest["person_id"].to_numpy()] = True
            values[rule.field] = s
            prov.append(_prov(people, latest, rule.field, "yes", None, "", ""))
        elif isinstance(rule, CategoryRule):
            latest = rows.sort_values(["start", "source_table", "record_id"], kind="stable").drop_duplicates("person_id", keep="last")
            values[rule.field] = series(latest["person_id"], latest["category"].astype(str), "string")
            prov.append(_prov(people, latest, rule.field, latest["category"], None, "", ""))
            if rule.kind == "disease":
                ncat = _joined_categories(rows, sep=", ")
                for p_, cats in ncat[ncat.str.contains(",", regex=False)].items():
                    report.append((pid_of[p_], "disease", "several_indications",
                                   f"{cats} coded; the most recent is used"))
        else:  # malignancy
            exc_ids = set(zip(rows.loc[rows["role"] == "excepted", "source_table"],
                              rows.loc[rows["role"] == "excepted", "record_id"], strict=True))
            is_exc = np.array([(t, r) in exc_ids for t, r in zip(rows["source_table"], rows["record_id"],
                                                                  strict=True)], dtype=bool)
            rows = rows.assign(excepted=is_exc).drop_duplicates(["source_table", "record_id"])
            rows = rows.sort_values(["start", "source_table", "record_id"], kind="stable")
            main = rows[~rows["excepted"]].drop_duplicates("person_id", keep="last")
            only_exc = rows[rows["excepted"] & ~rows["person_id"].isin(main["person_id"])]
            only_exc = only_exc.drop_duplicates("person_id", keep="last")
            chosen = pd.concat([main, only_exc])
            years = ((asof_ts - chosen["start"]).dt.days / DAYS_PER_YEAR).round(1)
            values[rule.field] = series(chosen["person_id"], years, "float64")
            exc = pd.Series(pd.array([None] * len(idx), dtype="boolean"), index=idx)
            exc[chosen["person_id"].to_numpy()] = chosen["excepted"].to_numpy()
            values["malignancy_excepted"] = exc
            prov.append(_prov(people, chosen, rule.field, years.pipe(_num_texts), None, "", ""))
            prov.append(_prov(people, chosen, "malignancy_excepted",
                              chosen["excepted"].map({True: "yes", False: "no"}), None, "", ""))

    del ev
    release_unused_memory()

    # ---- drugs ---------------------------------------------------------------
    drug_rules = [r for r in m.fields if isinstance(r, DrugRule | DrugListRule)]
    if "drug" in present:
        fields = {r.field for r in drug_rules}
        sub = cmap[cmap["field"].isin(fields)]
        dr = _with_code(con, _events(con, "drug", sub, as_of, extra=("route_concept_id",)))
        dr = known(_fetch(dr.mutate(source_table=ibis.literal("drug_exposure"))), "drug_exposure")
        dr["start"] = pd.to_datetime(dr["start"])
        dr["end"] = pd.to_datetime(dr["end"]).fillna(dr["start"])
        routes = cmap[cmap["field"] == "_route"].set_index("concept_id")["category"]
        dr["route"] = dr["route_concept_id"].map(routes)
        for rule in drug_rules:
            if not _resolved(cmap, rule.field):
                continue
            rows = dr[dr["field"] == rule.field]
            if isinstance(rule, DrugRule) and rule.route:
                unknown = rows["route"].isna() & (m.defaults.route_unknown == "any")
                rows = rows[(rows["route"] == rule.route).fillna(False) | unknown]
            rows = rows.sort_values(["end", "record_id"], kind="stable")
            if isinstance(rule, DrugListRule):
                per = _joined_categories(rows)
                base = _or_none(observed, "none")
                s = pd.Series(pd.array(base, dtype="string"), index=idx)
                s[per.index.to_numpy()] = per.to_numpy()
                values[rule.field] = s
                lat = rows.drop_duplicates(["person_id", "category"], keep="last")
                prov.append(_prov(people, lat, rule.field, lat["category"], None, "", ""))
            elif rule.value == "ever":
                latest = rows.drop_duplicates("person_id", keep="last")
                s = pd.Series(pd.array(_or_none(observed, False), dtype="boolean"), index=idx)
                s[latest["person_id"].to_numpy()] = True
                values[rule.field] = s
                prov.append(_prov(people, latest, rule.field, "yes", None, "", ""))
            else:
                latest = rows.drop_duplicates("person_id", keep="last")
                days = (asof_ts - latest["end"].clip(upper=asof_ts)).dt.days.astype("float64")
                values[rule.field] = series(latest["person_id"], days, "float64")
                prov.append(_prov(people, latest.assign(start=latest["end"]), rule.field,
                                  days.pipe(_num_texts), None, "", ""))
        resolved = set(cmap["field"])
        for rule in (r for r in m.fields if isinstance(r, DrugSpanRule)):
            rows = dr[dr["field"].isin([f for f in rule.from_fields if f in resolved])]
            months = _union_months(rows, asof_ts)
            s = pd.Series(np.where(observed, 0.0, np.nan), index=idx)
            s[months.index.to_numpy()] = months.to_numpy()
            values[rule.field] = s
            first = rows.sort_values(["start", "record_id"], kind="stable").drop_duplicates("person_id")
            first = first[first["person_id"].isin(months.index)]
            prov.append(_prov(people, first, rule.field, first["person_id"].map(months).pipe(_num_texts),
                              None, "", ""))

        del dr
        release_unused_memory()

    # ---- demographics and assembly ------------------------------------------
    asof_parts = (as_of.year, as_of.month, as_of.day)
    b = persons["birth"]
    age = as_of.year - b.dt.year - ((b.dt.month * 100 + b.dt.day) > asof_parts[1] * 100 + asof_parts[2])
    values["age_years"] = pd.Series(age.to_numpy(dtype="float64"), index=idx)
    sex_rule = next(r for r in m.fields if isinstance(r, SexRule))
    gmap = cmap[cmap["field"] == sex_rule.field].set_index("concept_id")["category"]
    values["sex"] = pd.Series(persons["gender_concept_id"].map(gmap).to_numpy(), index=idx, dtype="string")
    born = pd.DataFrame({"person_id": persons["person_id"], "start": b, "vocabulary_id": "", "concept_code": ""})
    prov.append(_prov(people, born, "age_years", values["age_years"].pipe(_num_texts), "person",
                      _dates(b).cast(pa.string()), ""))
    assert any(isinstance(r, AgeRule) for r in m.fields)

    disease = values.get("disease", pd.Series(pd.array([None] * len(idx), dtype="string"), index=idx))
    no_dx = (out_reason == "").to_numpy() & disease.isna().to_numpy()
    out_reason[no_dx] = "no condition code of a trial indication (" + ", ".join(DISEASES) + ")"
    keep = (out_reason == "").to_numpy()
    left_out = pd.DataFrame({"patient_id": persons["patient_id"].to_numpy()[~keep],
                             "reason": out_reason.to_numpy()[~keep]}, columns=list(LEFT_OUT_COLUMNS))

    cohort = pd.DataFrame({
        "patient_id": pd.array(persons["patient_id"].to_numpy()[keep], dtype="string"),
        "disease": disease.to_numpy()[keep],
        "screening_date": pd.array([as_of.isoformat()] * int(keep.sum()), dtype="string"),
    })
    filled: dict[str, int] = {}
    values.pop("disease", None)
    for name in FIELD_NAMES:
        if name in ("patient_id", "disease", "screening_date") or name not in values:
            continue
        v = values.pop(name)  # each per-person column is freed once it is in the cohort
        col = v.array[keep]
        cohort[name] = _yesno(col) if v.dtype == "boolean" else col.astype("str") if v.dtype == "string" else col
    for name in cohort.columns:
        if name not in ("patient_id", "screening_date"):
            filled[name] = int(pd.Series(cohort[name]).notna().sum())
    cohort = cohort.reset_index(drop=True)
    provenance = _provenance_table(prov, people, keep)
    del prov
    rep = pd.DataFrame(report, columns=list(REPORT_COLUMNS)).astype("string")
    n_out = int((~keep).sum())
    notes.append(f"{int(keep.sum())} of {len(persons)} person(s) imported; {n_out} left out (listed in the report)")
    for f in load_mapping().not_mapped:
        notes.append(f"{f}: not filled ({load_mapping().not_mapped[f]})")
    return OmopImport(cohort, provenance, left_out.astype("string"), rep, as_of, notes, filled)


def _fetch(expr) -> pd.DataFrame:
    """Run an ibis expression; text columns come back dictionary-encoded (pandas
    categoricals), which keeps millions of repeated codes and units small."""
    import pyarrow as pa

    table = expr.to_pyarrow()
    cols = [c.dictionary_encode() if pa.types.is_string(c.type) or pa.types.is_large_string(c.type) else c
            for c in table.columns]
    return pa.table(cols, names=table.column_names).to_pandas()


def _resolved(cmap: pd.DataFrame, name: str) -> bool:
    return bool((cmap["field"] == name).any())


def _yesno(col) -> np.ndarray:
    s = pd.array(col, dtype="boolean")
    out = np.where(s.fillna(False), "yes", "no").astype(object)
    out[pd.isna(s)] = None
    return out


def _or_none(mask: np.ndarray, value: object) -> np.ndarray:
    """`value` where mask holds, else None (unknown), as an object array."""
    out = np.full(len(mask), None, dtype=object)
    out[np.asarray(mask, dtype=bool)] = value
    return out


def _num_text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(round(v, 6))


def _num_texts(values: pd.Series):
    """Numbers as text (Arrow): whole numbers without a decimal point, others rounded to 6;
    each distinct number is formatted once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    v = pd.to_numeric(pd.Series(values), errors="coerce").astype("float64").round(6).to_numpy()
    uniq, inv = np.unique(v, return_inverse=True)  # NaN sorts last, as one value
    text = pc.fill_null(pa.array(uniq, from_pandas=True).cast(pa.string()), "")
    return pa.DictionaryArray.from_arrays(pa.array(inv.ravel().astype(np.int32)), text)


class _People:
    """Person ids -> positions, and the patient ids as one shared Arrow dictionary, so that
    provenance rows (tens of millions at warehouse size) hold small integer codes."""

    def __init__(self, person_id: pd.Series, patient_id: pd.Series) -> None:
        import pyarrow as pa

        self.sorted = person_id.to_numpy(dtype=np.int64)  # _persons sorts by person_id
        assert (np.diff(self.sorted) > 0).all()
        self.ids = pa.array(patient_id.astype(str).to_numpy(dtype=object), type=pa.string())
        # ETLs mostly number persons densely: then a position is one array lookup away
        lo, hi = (int(self.sorted[0]), int(self.sorted[-1])) if len(self.sorted) else (0, -1)
        self.table: np.ndarray | None = None
        if len(self.sorted) and hi - lo < 4 * len(self.sorted) + 1024:
            self.lo = lo
            self.table = np.full(hi - lo + 1, -1, dtype=np.int32)
            self.table[self.sorted - lo] = np.arange(len(self.sorted), dtype=np.int32)

    def _positions(self, person_id) -> np.ndarray:
        """Positions in the person table, -1 for a person id not in it."""
        ids = np.asarray(person_id, dtype=np.int64)
        if self.table is not None:
            off = ids - self.lo
            inside = (off >= 0) & (off < len(self.table))
            return np.where(inside, self.table[np.where(inside, off, 0)], -1)
        if not len(self.sorted):
            return np.full(len(ids), -1, dtype=np.int32)
        pos = np.minimum(np.searchsorted(self.sorted, ids), len(self.sorted) - 1)
        return np.where(self.sorted[pos] == ids, pos, -1).astype(np.int32)

    def known(self, person_id) -> np.ndarray:
        """Which of these person ids are in the person table."""
        return self._positions(person_id) >= 0

    def codes(self, person_id) -> np.ndarray:
        """Positions of known person ids (events of unknown persons are dropped on fetching)."""
        return self._positions(person_id).astype(np.int32)


def _dict(values, n: int):
    """A dictionary-encoded Arrow string column from a Series/array or one repeated value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        cats = pa.array(values.cat.categories.astype(str).to_numpy(dtype=object), type=pa.string())
        codes = values.cat.codes.to_numpy()
        if (codes < 0).any():  # missing -> ""
            cats = pa.concat_arrays([cats, pa.array([""], type=pa.string())])
            codes = np.where(codes < 0, len(cats) - 1, codes)
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), cats)
    if isinstance(values, pd.Series | np.ndarray):
        arr = pa.array(np.asarray(values, dtype=object), from_pandas=True, type=pa.string())
        return pc.fill_null(arr, "").dictionary_encode()
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)),
                                          pa.array(["" if values is None else str(values)], type=pa.string()))


def _dates(values) -> pa.DictionaryArray:
    """ISO date text, dictionary-encoded (dates repeat a lot): formatted once per distinct day."""
    import pyarrow as pa

    days = pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[D]")
    uniq, inv = np.unique(days, return_inverse=True)
    text = pd.Series(uniq).dt.strftime("%Y-%m-%d").fillna("").to_numpy(dtype=object)
    return pa.DictionaryArray.from_arrays(pa.array(inv.ravel().astype(np.int32)), pa.array(text, type=pa.string()))


def _text(values, n: int):
    """A dictionary-encoded Arrow string column, positionally (never aligned on a pandas index)."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.DictionaryArray):
        return values
    if isinstance(values, pa.Array):
        return values.dictionary_encode()
    return _dict(values, n)


def _prov(people: _People, rows: pd.DataFrame, name: str, value, table, orig_value, orig_unit):
    """Provenance rows of one field as an Arrow table (PROVENANCE_COLUMNS, dictionary-encoded)."""
    import pyarrow as pa

    n = len(rows)
    cols = {
        "patient_id": pa.array(people.codes(rows["person_id"]), pa.int32()),  # positions in people.ids
        "field": _dict(name, n),
        "value": _text(value, n),
        "source_table": _dict(table, n) if table else _dict(rows["source_table"], n),
        "vocabulary_id": _dict(rows["vocabulary_id"], n),
        "concept_code": _dict(rows["concept_code"], n),
        "date": _dates(rows["start"]),
        "original_value": _text(orig_value, n),
        "original_unit": _dict(orig_unit, n),
    }
    return pa.table(cols)


def _provenance_table(parts: list, people: _People, keep: np.ndarray) -> pa.Table:
    """The per-field parts (emptied as they are used) as one table of imported patients'
    rows. Each part keeps its own small dictionaries (Parquet and pandas take chunks with
    different dictionaries); patient_id becomes a dictionary over people.ids, shared by all
    chunks rather than unified (that would hash every patient id once per field)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep_arr = pa.array(keep)
    kept = []
    schema = parts[0].schema
    while parts:
        t = parts.pop(0)
        if t.num_rows:
            t = t.filter(pc.take(keep_arr, t.column("patient_id")))
            kept.append(t.set_column(0, "patient_id", pa.chunked_array(
                [pa.DictionaryArray.from_arrays(c, people.ids) for c in t.column("patient_id").chunks],
                pa.dictionary(pa.int32(), pa.string()))))
    if not kept:
        return schema.set(0, pa.field("patient_id", pa.dictionary(pa.int32(), pa.string()))).empty_table()
    return pa.concat_tables(kept)


def _last_date(con, present: set[str]) -> dt.date | None:
    if "measurement" not in present:
        return None
    t = con.table("measurement")
    v = t.measurement_date.max().to_pandas() if hasattr(t.measurement_date.max(), "to_pandas") else None
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def _persons(con, tables: set[str], as_of: dt.date) -> pd.DataFrame:
    import ibis

    p = con.table("person")
    cols = [p.person_id.cast("int64").name("person_id"), p.gender_concept_id.cast("int64").name("gender_concept_id"),
            p.year_of_birth, p.month_of_birth, p.day_of_birth, p.birth_datetime.cast("date").name("birth_date"),
            p.person_source_value]
    q = p.select(cols)
    if "death" in tables:
        d = con.table("death")
        d = d.group_by("person_id").aggregate(death_date=d.death_date.min())
        q = q.left_join(d, q.person_id == d.person_id).select(q, d.death_date)
    else:
        q = q.mutate(death_date=ibis.null().cast("date"))
    if "observation_period" in tables:
        o = con.table("observation_period")
        o = o.filter(o.observation_period_start_date <= ibis.literal(as_of)).group_by("person_id").aggregate(
            n_op=o.observation_period_id.count())
        q = q.left_join(o, q.person_id == o.person_id).select(q, o.n_op)
    df = q.to_pandas().sort_values("person_id", kind="stable").reset_index(drop=True)
    df["observed"] = df["n_op"].fillna(0).astype(int) > 0 if "n_op" in df else True
    y = df["year_of_birth"].astype("Int64")
    mth = df["month_of_birth"].astype("Int64").fillna(7)
    day = df["day_of_birth"].astype("Int64").fillna(1)
    from_parts = pd.to_datetime(pd.DataFrame({"year": y, "month": mth, "day": day}), errors="coerce")
    df["birth"] = pd.to_datetime(df["birth_date"]).fillna(from_parts)
    df["death_date"] = pd.to_datetime(df["death_date"])
    src = df["person_source_value"]
    usable = src.notna().all() and (src.astype(str).str.strip() != "").all() and src.is_unique
    df["patient_id"] = src.astype(str) if usable else df["person_id"].astype(str)
    return df


def _latest_labs(con, cmap: pd.DataFrame, labs: list[LabRule], as_of: dt.date) -> pd.DataFrame:
    """The latest measurement per person and lab field within the field's window (in the database)."""
    import ibis

    sub = cmap[cmap["field"].isin([r.field for r in labs])]
    cut = ibis.memtable(pd.DataFrame({
        "cfield": [r.field for r in labs],
        "cutoff": [as_of - dt.timedelta(days=r.lookback_days - 1) for r in labs],
    }))
    t = con.table("measurement")
    ev = _events(con, "measurement", sub, as_of,
                 extra=("value_as_number", "unit_concept_id", "unit_source_value", "measurement_datetime"))
    ev = ev.join(cut, ev.field == cut.cfield).filter(lambda e: e.start >= e.cutoff.cast("date"))
    w = ibis.window(group_by=[ev.person_id, ev.field],
                    order_by=[ibis.desc(ev.start), ibis.desc(ev.measurement_datetime), ibis.desc(ev.record_id)])
    ev = ev.mutate(rn=ibis.row_number().over(w)).filter(lambda e: e.rn == 0)
    c = con.table("concept").select(u_id="concept_id", u_code="concept_code")
    ev = ev.left_join(c, ev.unit_concept_id == c.u_id)
    # unit_concept_id 0 ("No matching concept") or unknown to the vocabulary: the source text
    u_code = ibis.cases((ev.unit_concept_id > 0, ev.u_code), else_=ibis.null().cast("string"))
    ev = ev.mutate(unit=ibis.coalesce(u_code, ev.unit_source_value.strip(), ibis.literal("")))
    ev = _with_code(con, ev.select("person_id", "field", "start", "record_id", "std_id", "src_id",
                                   "value_as_number", "unit"))
    del t
    df = _fetch(ev.drop("std_id", "src_id", "code_id"))
    df["value_as_number"] = pd.to_numeric(df["value_as_number"], errors="coerce")
    return df


def _joined_categories(rows: pd.DataFrame, sep: str = ";") -> pd.Series:
    """Per person: its distinct categories, sorted and joined (vectorised through a bit mask)."""
    if not len(rows):
        return pd.Series(dtype=object)
    codes, uniques = pd.factorize(rows["category"].astype("category").cat.remove_unused_categories(), sort=False)
    names = [str(u) for u in uniques]
    order = sorted(range(len(names)), key=names.__getitem__)
    bit = np.zeros(len(names), dtype=np.int64)
    bit[order] = 1 << np.arange(len(names), dtype=np.int64)  # bits in sorted-name order
    cats = [names[i] for i in order]
    pairs = pd.DataFrame({"person_id": rows["person_id"].to_numpy(), "code": codes}).drop_duplicates()
    mask = pd.Series(bit[pairs["code"].to_numpy()]).groupby(pairs["person_id"].to_numpy()).sum()
    text = {mk: sep.join(c for i, c in enumerate(cats) if mk & (1 << i)) for mk in mask.unique().tolist()}
    return mask.map(text)


def _union_months(rows: pd.DataFrame, asof_ts: pd.Timestamp) -> pd.Series:
    """Per person: days covered by the union of [start, min(end, as_of)] spans, in months."""
    if not len(rows):
        return pd.Series(dtype="float64")
    day = np.datetime64("1970-01-01", "D")
    s = (rows["start"].to_numpy(dtype="datetime64[D]") - day).astype(np.int64)
    e = np.maximum((rows["end"].clip(upper=asof_ts).to_numpy(dtype="datetime64[D]") - day).astype(np.int64), s)
    p = rows["person_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((e, s, p))
    p, s, e = p[order], s[order] - s.min(), e[order] - s.min()
    first = np.r_[True, p[1:] != p[:-1]]
    # one running maximum over all rows; each person's days are shifted past the previous
    # person's, so the maximum starts afresh at every person
    shift = (np.cumsum(first) - 1) * (int(e.max()) + 2)
    reach = np.maximum.accumulate(e + shift)
    island = first | (s + shift > np.r_[-1, reach[:-1]])
    starts = np.flatnonzero(island)
    ends = np.r_[starts[1:], len(p)] - 1
    days = (reach[ends] - shift[ends]) - s[starts]
    persons = p[starts]
    per = np.flatnonzero(np.r_[True, persons[1:] != persons[:-1]])
    total = np.add.reduceat(days, per)
    return pd.Series(np.round(total / DAYS_PER_MONTH, 1), index=pd.Index(persons[per], name="p"))


# ---------------------------------------------------------------------------
# Command: python -m eligibility import-omop SOURCE -o OUT [--as-of DATE]
# ---------------------------------------------------------------------------


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def _write(frame: pd.DataFrame, path: Path) -> None:
    from ..export import to_csv_bytes, to_parquet_bytes

    path.write_bytes(to_csv_bytes(frame) if path.suffix.lower() == ".csv" else to_parquet_bytes(frame))


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m eligibility import-omop",
                description="Import candidates from an OMOP CDM v5.4 (DuckDB file or connection URL).")
    p.add_argument("source", help="DuckDB CDM file, or an ibis connection URL (postgres://...)")
    p.add_argument("-o", "--output", required=True, help="cohort file to write: .parquet or .csv")
    p.add_argument("--as-of", type=_iso_date, help="screening date YYYY-MM-DD (default: today)")
    args = parse(p, argv)
    if isinstance(args, int):
        return args
    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        print(f"error: output {out.name} must end in .csv or .parquet", file=sys.stderr)
        return 2
    try:
        con = connect(args.source)
        result = import_omop(con, as_of=args.as_of)
    except OmopError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = side_paths(out)
    try:
        _write(result.cohort, out)
        write_arrow(result.provenance_table, paths["provenance"])
        _write(result.left_out, paths["left-out"])
        _write(result.report, paths["report"])
    except OSError as e:
        print(f"error: cannot write {e.filename or out}: {e.strerror or e}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    filled = ", ".join(f"{k} {v}" for k, v in result.filled.items())
    print(f"note: filled (patients with a value): {filled}", file=sys.stderr)
    print(f"imported {len(result.cohort)} candidate(s) -> {out}; {len(result.left_out)} left out -> "
          f"{paths['left-out'].name}; provenance -> {paths['provenance'].name}; "
          f"report ({len(result.report)} row(s)) -> {paths['report'].name}", file=sys.stderr)
    return 0
