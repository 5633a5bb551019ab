"""Parse each distinct value of a text column once, then look the results up per row.

A yes/no column of ten million cells holds a handful of spellings, a date column a
few thousand dates. Parsing every cell with trims, lower-casing and regular
expressions made reading a cohort in the engine ~40x slower than scanning it. So
the distinct values of each such column are parsed once, by the very expressions
`cells.parse_field` builds (in the same engine, so the results are the engine's
own), and every row takes its value, extras and check flags from them:

- few distinct values: a CASE over the raw spellings per output, grouped by result
  (a check flag is one `IN` over the few spellings that raise it);
- more (DuckDB): a lookup table of distinct value -> outputs, joined on the raw cell.

Literal maps and lists were tried first: DuckDB builds them per vector, ~30 ns a row
per output, slower than the trims they replace.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from ..fields import Field
from .cells import Check, Parsed, is_native, parse_field, pre_columns

SPELLED_OUT = 64  # up to this many distinct values: CASE over the spellings
# Past this many distinct values a column is parsed cell by cell (free text, ids).
MAX_DISTINCT = {"duckdb": 50_000, "pyspark": SPELLED_OUT}
_KINDS = ("number", "yesno", "category", "disease", "date", "druglist")
_UNBOUNDED = ("number", "date", "druglist")  # kinds whose distinct values can be many
_names = itertools.count()


@dataclass(frozen=True)
class Lookup:
    """A column's distinct values and what parsing each gives (`outputs[name][i]`)."""

    distinct: list[str]  # raw values; position len(distinct) stands for a NULL cell
    outputs: dict[str, tuple[list, str]]  # name -> (value per position, ibis type)
    template: Parsed  # which outputs exist; the checks' wording, severity and kind
    table: str | None = None  # the joined lookup table's name (many values), else None

    def columns(self, raw: ir.Value, prefix: str, joined=None) -> dict[str, ir.Value]:
        """The per-row outputs, named `prefix + output`: CASE over spellings, or read from
        the joined lookup table (`joined(column)`; NULL cells, which no join matches, take
        NULL's results)."""
        out = {}
        for name, (values, typ) in self.outputs.items():
            if name == "nonblank":  # tested on the raw cell, and only where needed (cells._row_nonblank)
                continue
            if joined is None:
                out[prefix + name] = _spelled(raw, self.distinct, values, typ)
            else:
                at_null = ibis.literal(values[-1], type=typ)
                out[prefix + name] = ibis.ifelse(raw.isnull(), at_null, joined(f"o_{name}"))
        return out

    def parsed(self, col, nonblank: ir.BooleanValue) -> Parsed:
        """`Parsed` over the columns `columns` made (`col(output name)` reads one), with
        the cell's `nonblank` test."""
        t = self.template
        return Parsed(
            nonblank=nonblank,
            value=col("value") if t.value is not None else None,
            extra={k: col(f"x_{k}") for k in t.extra},
            checks=[replace(chk, mask=col(f"check{k}")) for k, chk in enumerate(t.checks)],
            bad=col("bad") if t.bad is not None else None,
            parsed_number=col("value") if t.parsed_number is not None else None,
        )


def _key(v):
    return ("nan",) if isinstance(v, float) and math.isnan(v) else v


def _spelled(raw: ir.Value, distinct: list[str], values: list, typ: str) -> ir.Value:
    """CASE over the raw spellings, one branch per result; the commonest result is the ELSE."""
    groups: dict = {}
    for spelling, v in zip(distinct, values, strict=False):
        groups.setdefault(_key(v), (v, []))[1].append(spelling)
    at_null = values[-1]
    default = max(groups, key=lambda k: len(groups[k][1])) if groups else _key(at_null)
    cases = [(_one_of(raw, spellings), ibis.literal(v, type=typ)) for k, (v, spellings) in groups.items() if k != default]
    if _key(at_null) != default:
        cases.insert(0, (raw.isnull(), ibis.literal(at_null, type=typ)))
    fallback = ibis.literal(groups[default][0] if default in groups else at_null, type=typ)
    return ibis.cases(*cases, else_=fallback) if cases else fallback


def _one_of(raw: ir.Value, spellings: list[str]) -> ir.BooleanValue:
    """`raw IN (spellings)` written as equalities: DuckDB turns a constant list of more than
    a few values into a join, which no later projection can drop, so every query over the
    typed values (a what-if reading one column) paid ~30 of them."""
    if len(spellings) > SPELLED_OUT:
        return raw.isin(spellings)
    out = raw == spellings[0]
    for s in spellings[1:]:
        out = out | (raw == s)
    return out


def candidates(f: Field, col: ir.Value) -> bool:
    return f.kind in _KINDS and col.type().is_string() and not is_native(f, col)


def distinct_lookups(con, raw: ir.Table, fields: dict[str, Field]) -> dict[str, Lookup]:
    """Lookups for the text columns of `raw` (label -> field) with few distinct values.
    Two scans (approximate distinct counts of the kinds that can have many values; the
    distinct values of the few-valued), then one query over a small table that parses
    every column's distinct values."""
    labels = [lab for lab, f in fields.items() if candidates(f, raw[lab])]
    limit = MAX_DISTINCT.get(con.name, 0)
    if not labels or not limit:
        return {}
    # yes/no, category and disease cells are spellings of a few values: no need to count them
    unbounded = [lab for lab in labels if fields[lab].kind in _UNBOUNDED]
    few = [lab for lab in labels if lab not in unbounded]
    if unbounded:
        counts = raw.aggregate(**{f"n{i}": raw[lab].approx_nunique() for i, lab in enumerate(unbounded)}).execute()
        few += [lab for i, lab in enumerate(unbounded) if int(counts[f"n{i}"].iloc[0] or 0) <= limit]
    if not few:
        return {}
    values = con.to_pyarrow(raw.aggregate(**{f"d{i}": raw[lab].collect(distinct=True) for i, lab in enumerate(few)}))
    distinct = {lab: sorted(values.column(f"d{i}")[0].as_py() or []) for i, lab in enumerate(few)}
    # the approximate count can be far off: such a column is parsed cell by cell
    distinct = {lab: d for lab, d in distinct.items() if len(d) <= limit}
    return _parse_distinct(con, {lab: fields[lab] for lab in distinct}, distinct) if distinct else {}


def _parse_distinct(con, fields: dict[str, Field], distinct: dict[str, list[str]]) -> dict[str, Lookup]:
    """Every column's distinct values (then NULL) parsed in one query: column j of a small
    table holds column j's values, padded with NULLs to the longest list."""
    labs = list(fields)
    height = max(len(distinct[lab]) for lab in labs) + 1
    body = {"i": pa.array(range(height), pa.int32())}
    for j, lab in enumerate(labs):
        d = distinct[lab]
        body[f"c{j}"] = pa.array(d + [""] * (height - len(d)), pa.string())
        body[f"z{j}"] = pa.array([False] * len(d) + [True] * (height - len(d)), pa.bool_())
    t = ibis.memtable(pa.table(body))
    pre_cols: dict[str, ir.Value] = {}
    for j, lab in enumerate(labs):
        # NULL written in SQL: a memtable's nulls reach Spark through pandas, not always as NULL
        cell = ibis.ifelse(t[f"z{j}"], ibis.literal(None, type="string"), t[f"c{j}"])
        pre_cols.update({f"a{j}_{k}": e for k, e in pre_columns(fields[lab], cell).items()})
    level1 = t.select("i", **pre_cols)
    parsed: dict[str, Parsed] = {}
    cols: dict[str, ir.Value] = {}
    names: dict[str, list[str]] = {}
    for j, lab in enumerate(labs):
        pre = {c.split("_", 1)[1]: level1[c] for c in pre_cols if c.startswith(f"a{j}_")}
        p = parsed[lab] = parse_field(fields[lab], pre)
        mine: dict[str, ir.Value] = {"nonblank": p.nonblank.fill_null(False)}
        if p.value is not None:
            mine["value"] = p.value
        mine.update({f"x_{k}": e for k, e in p.extra.items()})
        mine.update({f"check{k}": chk.mask.fill_null(False) for k, chk in enumerate(p.checks)})
        if p.bad is not None:
            mine["bad"] = p.bad.fill_null(False)
        names[lab] = list(mine)
        cols.update({f"o{j}_{k}": e for k, e in mine.items()})
    expr = level1.select("i", **cols).order_by("i")
    result = con.to_pyarrow(expr)
    schema = expr.schema()
    out = {}
    for j, lab in enumerate(labs):
        n = len(distinct[lab])
        outputs = {k: (result.column(f"o{j}_{k}").slice(0, n + 1).to_pylist(),
                       str(schema[f"o{j}_{k}"].copy(nullable=True))) for k in names[lab]}
        table = None
        if n > SPELLED_OUT:  # DuckDB only (MAX_DISTINCT)
            table = f"__elig_lut_{next(_names)}"
            lut = {"raw": pa.array(distinct[lab], pa.string())}
            lut.update({f"o_{k}": result.column(f"o{j}_{k}").slice(0, n) for k in names[lab]})
            con.con.register(f"{table}_arrow", pa.table(lut))
            con.raw_sql(f"CREATE TEMP TABLE {table} AS SELECT * FROM {table}_arrow")
            con.con.unregister(f"{table}_arrow")
        p = parsed[lab]
        template = Parsed(nonblank=p.nonblank, value=p.value, extra=dict(p.extra),
                          checks=[Check(chk.mask, chk.problem, chk.severity, chk.kind) for chk in p.checks],
                          bad=p.bad, parsed_number=p.parsed_number)
        out[lab] = Lookup(distinct[lab], outputs, template, table)
    return out


__all__ = ["Lookup", "distinct_lookups", "MAX_DISTINCT", "SPELLED_OUT"]
