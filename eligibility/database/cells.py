"""Cell validation in the database: raw file columns → typed contract columns + the loader's issues.

The same spelling tables and rules as `eligibility/normalize.py` and the loader,
written as SQL expressions. Offending cells are found in the database; only they
come back to Python, where the loader's own message code words them (the report
is the loader's, row for row). A cell that cannot be read becomes NULL.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from .. import normalize as nz
from ..columns import EMPTY_ROW
from ..fields import DERIVED, DISEASES, FIELD_BY_NAME, FIELDS, Field
from ..loader import (
    REQUIRED,
    YESNO_PROBLEM,
    CohortError,
    Issue,
    _cell_text,
    _clean_label,
    _norm_header,
    absent_column_issues,
    duplicate_ids_message,
)
from .compile import GROUP, ROW, UNREADABLE, group_code

NULL_STR = ibis.literal(None, type="string")
NULL_F64 = ibis.literal(None, type="float64")
NULL_BOOL = ibis.literal(None, type="boolean")
DATE_SQL_PATTERN = re.sub(r"\?P<\w+>", "", nz.DATE_PATTERN)  # plain groups: Java regex has no (?P<…>)


def text_of(col: ir.Value) -> ir.StringValue:
    """Stripped text of a cell, NULL when empty (the loader's `_to_text`)."""
    s = col if col.type().is_string() else col.cast("string")
    s = s.strip()
    return ibis.ifelse(s == "", NULL_STR, s)


def key_of(text: ir.StringValue) -> ir.StringValue:
    """normalize._key: lower case, inner whitespace collapsed, apostrophes straightened."""
    return text.lower().re_replace(r"\s+", " ").re_replace("[’‘`´]", "'")


def _native_number(col: ir.Value) -> bool:
    t = col.type()
    return t.is_numeric() and not t.is_boolean()


def is_native(f: Field, col: ir.Value) -> bool:
    """Whether a file column already has its field's type (read as it is, not as text)."""
    ctype = col.type()
    return (f.kind == "number" and _native_number(col)) or (
        f.kind == "yesno" and (ctype.is_boolean() or _native_number(col))) or (
        f.kind == "date" and (ctype.is_timestamp() or ctype.is_date()))


@dataclass
class Check:
    mask: ir.BooleanValue
    problem: Any  # text, or fn(row index, value, parsed) -> text
    severity: str
    kind: str


@dataclass
class Parsed:
    nonblank: ir.BooleanValue
    value: ir.Value | None = None
    extra: dict[str, ir.Value] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    bad: ir.BooleanValue | None = None  # cell error (the washout decision reads it)
    parsed_number: ir.Value | None = None  # for implausible-value hints


def pre_columns(f: Field, col: ir.Value, finite: bool = False) -> dict[str, ir.Value]:
    """The costly per-cell work of parsing (trim, lower case, regular expressions), done
    once in a first projection: `parse_field` reads these columns by name. Written inline,
    an expression used by both a value and its check is evaluated once per use (the
    engines do not share subexpressions inside CASE), which made parsing ~10× slower.
    `finite`: a native number column known to hold no NaN or infinity (`finite_columns`),
    read as it is."""
    if is_native(f, col):
        if f.kind != "number":
            return {"raw": col}
        x = col.cast("float64")
        if finite:
            return {"raw": col, "num": x, "inf": ibis.literal(False)}
        # named once here: inlined, the value's CASE was repeated inside every check on it
        return {"raw": col, "num": ibis.ifelse(x.isinf() | x.isnan(), NULL_F64, x), "inf": x.isinf().fill_null(False)}
    text = text_of(col)
    out: dict[str, ir.Value] = {"text": text}
    if f.kind == "number":
        ok = text.re_search(nz.NUMBER_PATTERN)
        v = ibis.ifelse(ok, text.try_cast("float64"), NULL_F64)
        out["num"] = ibis.ifelse(v.isinf() | v.isnan(), NULL_F64, v)
    elif f.kind == "yesno":
        out["low"] = text.lower()
    elif f.kind in ("category", "disease"):
        out["key"] = key_of(text)
    elif f.kind == "druglist":
        out["tokens"] = key_of(text).re_replace(nz.DRUG_SEPARATORS, ";").split(";").map(lambda s: s.strip())
    elif f.kind == "date":
        y = text.re_extract(DATE_SQL_PATTERN, 1)
        m = text.re_extract(DATE_SQL_PATTERN, 2).lpad(2, "0")
        d = text.re_extract(DATE_SQL_PATTERN, 3).lpad(2, "0")
        year = y.try_cast("int32")
        iso = ibis.ifelse((year >= 1900) & (year <= 2200), y + "-" + m + "-" + d, NULL_STR)
        out["date"] = iso.try_cast("date")
    return out


def _lookup(key: ir.StringValue, table: dict[str, str]) -> ir.StringValue:
    """`table[key]`, NULL when absent: one map lookup (a CASE would compare every entry)."""
    return ibis.literal(table, type="map<string,string>").get(key)


def parse_field(f: Field, pre: dict[str, ir.Value]) -> Parsed:
    """Value and checks of one field from its `pre_columns` (as columns of a named query)."""
    native = "raw" in pre
    text: Any = pre.get("text")
    if native:
        col = pre["raw"]
        ctype = col.type()
        nonblank = cell_nonblank(f, col)
    else:
        nonblank = text.notnull()
    p = Parsed(nonblank=nonblank)
    if f.kind == "id":
        p.value = text
        p.checks.append(Check(~nonblank, "empty patient_id", "error", "cell_error"))
    elif f.kind == "number":
        v = pre["num"]
        bad = pre["inf"] if native else nonblank & v.isnull()
        p.checks.append(Check(bad, "not a number", "error", "cell_error"))
        p.bad = bad
        whole = ibis.literal(True)
        if f.whole:
            frac = v.notnull() & (v != v.floor().cast("float64"))
            p.checks.append(Check(frac, "not a whole number", "error", "cell_error"))
            whole = ~frac
            p.bad = bad | frac
        if f.plausible is not None:
            lo, hi = f.plausible
            outside = v.notnull() & whole & ((v < lo) | (v > hi))
            unit = f" {f.unit}" if f.unit else ""
            base = f"outside the plausible range {lo:g}–{hi:g}{unit}; kept as given"

            def implausible(_v, parsed, name=f.name, lo=lo, hi=hi, base=base):
                hint = nz.unit_hint(name, float(parsed), lo, hi)
                return f"{base} ({hint})" if hint else base

            p.checks.append(Check(outside, implausible, "warning", "implausible"))
        p.value = v if not f.whole else ibis.ifelse(frac, NULL_F64, v)
        if f.plausible is not None:
            p.parsed_number = p.value
    elif f.kind == "yesno":
        if native and ctype.is_boolean():
            v = col
            bad = ibis.literal(False)
        elif native:
            x = col.cast("float64")
            v = ibis.cases((x == 1, True), (x == 0, False), else_=NULL_BOOL)
            bad = nonblank & v.isnull()
        else:
            low = pre["low"]
            v = ibis.cases((low.isin(list(nz.YES_SPELLINGS)), True), (low.isin(list(nz.NO_SPELLINGS)), False),
                           else_=NULL_BOOL)
            bad = nonblank & v.isnull()
        p.checks.append(Check(bad, YESNO_PROBLEM, "error", "cell_error"))
        p.value, p.bad = v, bad
    elif f.kind == "category":
        table = {c.lower(): c for c in f.categories}
        table.update(nz.CATEGORY_SYNONYMS.get(f.name) or {})
        v = _lookup(pre["key"], table)
        bad = nonblank & v.isnull()
        p.checks.append(Check(bad, f"not one of {', '.join(f.categories)}", "error", "cell_error"))
        p.value, p.bad = v, bad
    elif f.kind == "disease":
        canon = _lookup(pre["key"], nz.DISEASE_SYNONYMS)
        p.value = canon.fill_null(text)
        p.checks.append(Check(nonblank & canon.isnull(),
                              f"not a trial indication ({', '.join(DISEASES)}); kept as given, fails DX-1",
                              "info", "unrecognised_disease"))
    elif f.kind == "date":
        if native:
            p.value = col.cast("date")
        else:
            v = pre["date"]
            bad = nonblank & v.isnull()
            p.checks.append(Check(bad, "not a date (use YYYY-MM-DD)", "error", "cell_error"))
            p.value, p.bad = v, bad
    elif f.kind == "druglist":
        tokens = pre["tokens"]
        # Distinct drugs named: per drug, whether any of its spellings is a token.
        spellings: dict[str, list[str]] = {}
        for spelled, drug in nz.DRUG_SYNONYMS.items():
            spellings.setdefault(drug, []).append(spelled)
        count = sum((ibis.ifelse(tokens.intersect(ibis.literal(sorted(sp), type="array<string>")).length() > 0, 1, 0)
                     for sp in spellings.values()), ibis.literal(0)).cast("float64")
        p.extra["n_prior_immunomodulators"] = ibis.ifelse(nonblank, count, NULL_F64)
        known = [*nz.DRUG_SYNONYMS, *nz.DRUG_NONE_WORDS]
        unrec = tokens.filter(lambda s: (s != "") & ~s.isin(known)).length() > 0
        p.checks.append(Check(nonblank & unrec, _drug_problem, "warning", "unrecognised_drug"))
        p.value = text
    else:  # pragma: no cover - every contract kind is handled above
        raise AssertionError(f.kind)
    return p


def _drug_problem(value, _parsed) -> str:
    return _drug_problems([value])[0]


def cell_nonblank(f: Field | None, col: ir.Value) -> ir.BooleanValue:
    """Whether a raw cell of field `f` (None: a column outside the contract) holds anything:
    a native cell not NULL (nor NaN), else its stripped text not empty."""
    if (f is None and not col.type().is_string()) or (f is not None and is_native(f, col)):
        return col.notnull() & ~col.isnan() if col.type().is_floating() else col.notnull()
    return text_of(col).notnull()


@dataclass
class Validated:
    """A raw table read as contract columns, with the loader's issues."""

    typed: ir.Table  # ROW, GROUP, contract columns (typed), UNREADABLE flags
    present: frozenset[str]
    issues: list[Issue]
    extra_columns: tuple[str, ...]
    n_rows: int
    source: str = ""


def map_headers(labels: list[str]) -> tuple[dict[str, str], list[str], list[str], list[Issue]]:
    """The loader's header rules: contract name per raw label, extras, duplicate labels."""
    issues: list[Issue] = []
    mapping: dict[str, str] = {}  # raw label -> contract name
    extras: list[str] = []
    extra_labels: list[str] = []
    for label in labels:
        clean = _clean_label(label)
        key = _norm_header(clean)
        name = next((f.name for f in FIELDS if f.name == key), None)
        if name is not None and name in mapping.values():
            issues.append(Issue(None, None, clean, None,
                                f"second column named {name!r}; ignored (the first one is used)",
                                "warning", "extra_column"))
            extra_labels.append(label)
            continue
        if name is not None:
            mapping[label] = name
            if clean != name:
                issues.append(Issue(None, None, clean, None, f"column {clean!r} read as {name!r}",
                                    "info", "renamed_column"))
            continue
        shown = clean or "(unnamed column)"
        extras.append(shown)
        extra_labels.append(label)
        why = ("derived column; recomputed from prior_immunomodulators, the file's values are ignored"
               if key in DERIVED else "not a contract column; ignored")
        issues.append(Issue(None, None, shown, None, why, "info", "extra_column"))
    return mapping, extras, extra_labels, issues


@dataclass
class Prepared:
    """A raw table read as contract columns, as lazy queries (no full scan yet): the typed
    values with, per row, whether it is blank (`nb` false) and whether any cell check
    fired (`flagged`), for a first pass that computes them together with a scenario."""

    raw: ir.Table
    source: str
    mapping: dict[str, str]
    order: list[str]
    extras: list[str]
    extra_labels: list[str]
    issues: list[Issue]
    lookups: dict
    values: ir.Table  # ROW, nb, flagged, contract columns (typed), UNREADABLE flags
    register: Any
    finite: frozenset[str] = frozenset()  # labels of native number columns without NaN or infinity

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.mapping.values())


def prepare(raw: ir.Table, source: str = "input", pre: list[Issue] | None = None, register=None) -> Prepared:
    """Read `raw` (file labels as columns, plus ROW) the way `loader._validate` reads a
    frame, up to the first full scan: header rules, distinct-value lookups (small scans),
    and the named queries of `_stage`. `register(expr, materialize) -> table` names a
    query in the engine."""
    labels = [c for c in raw.columns if c != ROW]
    mapping, extras, extra_labels, header_issues = map_headers(labels)
    issues = [*(pre or []), *header_issues]
    missing_req = [r for r in REQUIRED if r not in mapping.values()]
    if missing_req:
        found = ", ".join(repr(_clean_label(x)) for x in labels[:8]) + (" …" if len(labels) > 8 else "")
        raise CohortError(f"{source}: missing required column(s): {', '.join(missing_req)}"
                          f" (columns found: {found or 'none'})")
    order = [lab for lab in labels if lab in mapping]
    from .lookup import distinct_lookups

    con = ibis.get_backend(raw)
    lookups = distinct_lookups(con, raw, {lab: FIELD_BY_NAME[mapping[lab]] for lab in order})
    finite = finite_columns(raw, {lab: FIELD_BY_NAME[mapping[lab]] for lab in order})
    stage, parsed = _stage(raw, order, mapping, lookups, extra_labels, register, finite)
    values_cols: dict[str, ir.Value] = {"nb": stage.nb, "flagged": _any_flag(stage, order, parsed)}
    for pos, lab in enumerate(order):
        name, p = mapping[lab], parsed[lab]
        if p.value is not None:
            values_cols[name] = stage[f"v{pos}"]
        for extra in p.extra:
            values_cols[extra] = stage[f"x{pos}_{extra}"]
        if f"b{pos}" in stage.columns:
            values_cols[UNREADABLE + name] = stage[f"b{pos}"]
    values = stage.select(ROW, **values_cols)
    # A blank row (kept between data rows) is the memory engine's 'empty' group: not a patient.
    values = values.mutate(**{GROUP: ibis.ifelse(values.nb, group_code(values["disease"]), EMPTY_ROW).cast("int8")})
    values = register(values, False) if register else values
    return Prepared(raw, source, mapping, order, extras, extra_labels, issues, lookups, values, register, finite)


def finite_columns(raw: ir.Table, fields: dict[str, Field]) -> frozenset[str]:
    """The native floating-point number columns of `raw` (label -> field) holding no NaN
    and no infinity, from one aggregate (both engines order NaN above +inf, so the maximum
    is NaN when any cell is). Their cells are read without a CASE each: with fifty such
    columns that CASE was a tenth of a screening's time."""
    labels = [lab for lab, f in fields.items()
              if f.kind == "number" and is_native(f, raw[lab]) and raw[lab].type().is_floating()]
    if not labels:
        return frozenset()
    ends = raw.aggregate(**{f"{e}{i}": getattr(raw[lab], op)() for i, lab in enumerate(labels)
                            for e, op in (("lo", "min"), ("hi", "max"))}).to_pyarrow().to_pylist()[0]
    return frozenset(lab for i, lab in enumerate(labels)
                     if all(v is None or math.isfinite(v) for v in (ends[f"lo{i}"], ends[f"hi{i}"])))


def _stage(raw: ir.Table, order, mapping, lookups, extra_labels, register,
           finite: frozenset[str] = frozenset()) -> tuple[ir.Table, dict[str, Parsed]]:
    """Every parsed value and check flag of `raw`'s rows, by position (`v3`, `f3_0`, …), and
    the raw cells (`r3`), as two named queries: the costly per-cell work once (trimmed text,
    lower-case keys, regular expressions, or the lookups of lookup.py), then the values
    and flags over it. Built over the whole file, or over the flagged rows alone."""
    con = ibis.get_backend(raw)
    base = raw
    for pos, lab in enumerate(order):
        if lab in lookups and lookups[lab].table:
            lut = con.table(lookups[lab].table)
            lut = lut.select(**{f"j{pos}_{c}": lut[c] for c in lut.columns})
            base = base.left_join(lut, base[lab] == lut[f"j{pos}_raw"])
    level1_cols: dict[str, ir.Value] = {}
    pre_names: dict[str, dict[str, str]] = {}
    for pos, lab in enumerate(order):
        pre_names[lab] = {}
        if lab in lookups:
            joined = (lambda c, pos=pos: base[f"j{pos}_{c}"]) if lookups[lab].table else None
            level1_cols.update(lookups[lab].columns(base[lab], f"p{pos}_", joined))
        else:
            for what, expr in pre_columns(FIELD_BY_NAME[mapping[lab]], base[lab], lab in finite).items():
                level1_cols[f"p{pos}_{what}"] = expr
                pre_names[lab][what] = f"p{pos}_{what}"
        level1_cols[f"r{pos}"] = base[lab]
    for j, lab in enumerate(extra_labels):
        level1_cols[f"e{j}"] = base[lab]
    level1 = base.select(ROW, **level1_cols)
    level1 = register(level1, False) if register else level1

    def parse(lab: str) -> Parsed:
        pos = order.index(lab)
        if lab in lookups:
            return lookups[lab].parsed(lambda name: level1[f"p{pos}_{name}"],
                                       cell_nonblank(FIELD_BY_NAME[mapping[lab]], level1[f"r{pos}"]))
        return parse_field(FIELD_BY_NAME[mapping[lab]], {k: level1[c] for k, c in pre_names[lab].items()})

    parsed = {lab: parse(lab) for lab in order}
    cols: dict[str, ir.Value] = {"nb": _row_nonblank(level1, order, mapping, parsed, len(extra_labels))}
    for pos, lab in enumerate(order):
        p = parsed[lab]
        if p.value is not None:
            cols[f"v{pos}"] = p.value
        for name, expr in p.extra.items():
            cols[f"x{pos}_{name}"] = expr
        for k, chk in enumerate(p.checks):
            cols[f"f{pos}_{k}"] = chk.mask.fill_null(False)
        if p.bad is not None and FIELD_BY_NAME[mapping[lab]].kind == "number":
            cols[f"b{pos}"] = p.bad.fill_null(False)
    cols.update({f"r{pos}": level1[f"r{pos}"] for pos in range(len(order))})
    stage = level1.select(ROW, **cols)
    stage = register(stage, False) if register else stage
    return stage, parsed


def _row_nonblank(level1: ir.Table, order, mapping, parsed, n_extra: int) -> ir.BooleanValue:
    """Whether any cell of a row holds anything. A row with a patient_id does: the test
    of every cell is written in the CASE's ELSE, which the engines evaluate only for the
    rows without one (computed for every row, they were a tenth of a screening's time)."""
    every = ibis.literal(False)
    for lab in order:
        every = every | parsed[lab].nonblank
    for j in range(n_extra):
        every = every | cell_nonblank(None, level1[f"e{j}"])
    has_id = next((parsed[lab].nonblank for lab in order if mapping[lab] == "patient_id"), None)
    return every if has_id is None else ibis.cases((has_id, True), else_=every)


def _check_index(order, parsed) -> list[tuple[int, str, int, Check]]:
    return [(pos, lab, k, chk) for pos, lab in enumerate(order) for k, chk in enumerate(parsed[lab].checks)]


def _any_flag(stage: ir.Table, order, parsed) -> ir.BooleanValue:
    out = ibis.literal(False)
    for pos, _, k, _ in _check_index(order, parsed):
        out = out | stage[f"f{pos}_{k}"]
    return out


def finish(prep: Prepared, first: ir.Table) -> Validated:
    """The checks that read every row, from `first`: a kept table of the first full pass
    holding ROW, nb, flagged and patient_id per row (any further columns are ignored).
    Blank rows, duplicate ids, absent columns; then the cell report, computed over the
    flagged rows alone (read again from the file, parsed as in the first pass)."""
    source, mapping, order, issues = prep.source, prep.mapping, prep.order, list(prep.issues)
    # One scan for the blank rows (few, as a rule): the last data row and the empty rows before it.
    n_raw = int(first.count().execute())
    blank = first.filter(~first.nb).select(ROW).order_by(ROW).execute()[ROW].astype(np.int64).tolist()
    last = n_raw
    for r in reversed(blank):
        if r != last:
            break
        last -= 1
    if n_raw == 0 or last == 0:
        raise CohortError(f"{source}: no data rows (only a header)")
    if last < n_raw:
        issues.append(Issue(None, None, None, None,
                            f"{n_raw - last} empty row(s) after the last data row ignored", "info", "empty_row"))
    for r in blank:
        if r > last:
            break
        issues.append(Issue(int(r), None, None, None, "empty row: kept, every value is missing",
                            "warning", "empty_row"))
    _check_duplicate_ids(first, source)

    present = prep.present
    issues.extend(absent_column_issues(present))

    rows, done = _flagged_rows(prep.raw, first.filter(first.nb & first.flagged & (first[ROW] <= last)))
    try:
        stage, parsed = _stage(rows, order, mapping, prep.lookups, prep.extra_labels, prep.register, prep.finite)
        id_pos = order.index(next(lab for lab in order if mapping[lab] == "patient_id"))
        issues.extend(_cell_issues(stage, order, mapping, parsed, f"v{id_pos}", last))
    finally:
        done()

    values = prep.values
    typed = values.filter(values[ROW] <= last).drop("nb", "flagged")
    return Validated(typed, present, issues, tuple(prep.extras), last)


def _flagged_rows(raw: ir.Table, flagged: ir.Table):
    """The rows of `raw` whose ROW is in `flagged` (a few percent of them, as a rule), and
    what to call when they have been read. DuckDB: a bit per row in a session variable,
    tested as the file is scanned. A hash semi-join carried every column of every row
    through its probe (~3x a plain scan); the bits as a one-row table joined to every row
    made each later join hold them per row (30M rows: 5.5 GB at peak instead of 1.9)."""
    con = ibis.get_backend(raw)
    if con.name != "duckdb":
        return raw.filter(raw[ROW].isin(flagged.select(__f=flagged[ROW])["__f"])), lambda: None
    at = flagged.select(ROW).to_pyarrow().column(ROW).to_numpy().astype(np.int64)
    n = int(at.max()) if len(at) else 0
    bits = np.full(n + 1, ord("0"), np.uint8)
    bits[at] = ord("1")  # bit r is row r (bit 0 unused: rows count from 1)
    name = f"__elig_bits_{next(_bitmaps)}"
    con.con.execute(f"SET VARIABLE {name} = CAST(? AS BIT)", [bits.tobytes().decode()])
    con.raw_sql(f"CREATE TEMP VIEW {name} AS SELECT r.* FROM {raw.get_name()} AS r "
                f"WHERE r.{ROW} <= {n} AND get_bit(getvariable('{name}'), CAST(r.{ROW} AS INTEGER)) = 1")

    def done() -> None:
        con.raw_sql(f"DROP VIEW IF EXISTS {name}")
        con.raw_sql(f"RESET VARIABLE {name}")

    return con.table(name), done


_bitmaps = itertools.count()


def _check_duplicate_ids(t: ir.Table, source: str) -> None:
    id_col = "patient_id"
    t = t.filter(t[id_col].notnull())
    # Grouped first by a hash of the id (8 bytes a row instead of the text: ten million ids
    # then fit the engine's memory), then exactly, over the rows whose hash repeats.
    hashed = t.select(h=t[id_col].hash())
    repeats = hashed.group_by("h").aggregate(k=hashed.count()).filter(lambda r: r.k > 1)
    t = t.filter(t[id_col].hash().isin(repeats.h))
    per_id = t.group_by(id_col).aggregate(k=t.count(), first=t[ROW].min())
    dup = per_id.filter(per_id.k > 1)
    first_dups = dup.order_by("first").limit(10).execute()
    if len(first_dups):
        dups = first_dups[id_col].tolist()
        n_dup = int(dup.count().execute())
        some = t.filter(t[id_col].isin(dups)).select(id_col, ROW)
        some = some.mutate(k=ibis.row_number().over(group_by=id_col, order_by=ROW))
        rows = some.filter(some.k < 6).order_by(ROW).execute()
        rows_of: dict[str, list[int]] = {d: [] for d in dups}
        for d, r in zip(rows[id_col].tolist(), rows[ROW].tolist(), strict=True):
            rows_of[d].append(int(r))
        raise CohortError(duplicate_ids_message(source, rows_of, n_dup))


def _cell_issues(stage, order, mapping, parsed, id_col, last) -> list[Issue]:
    """Offending cells only: flags computed in the database; the rows holding one come
    back with their flags and raw cells, and the loader's own code words the messages
    (check by check with array operations; per issue only the Issue itself)."""
    index = _check_index(order, parsed)
    if not index:
        return []
    any_flag = _any_flag(stage, order, parsed)
    numbers = sorted({pos for pos, lab, _, _ in index if parsed[lab].parsed_number is not None})
    flags_of: dict[int, ir.BooleanValue] = {}
    for pos, _, k, _ in index:
        flags_of[pos] = flags_of[pos] | stage[f"f{pos}_{k}"] if pos in flags_of else stage[f"f{pos}_{k}"]
    # A flagged row has one or two offending cells, as a rule: its other cells are not
    # fetched (NULL), or the result would carry the text of every cell of the row.
    cell = {f"r{pos}": ibis.ifelse(hit, stage[f"r{pos}"], ibis.null(stage[f"r{pos}"].type()))
            for pos, hit in flags_of.items()}
    cell.update({f"v{pos}": ibis.ifelse(flags_of[pos], stage[f"v{pos}"], ibis.null(stage[f"v{pos}"].type()))
                 for pos in numbers})
    # `stage` holds the first pass's flagged rows alone, all nonblank and up to `last`: testing
    # `nb` again (every cell of the row) came first in the plan and cost a third of the report.
    flagged = stage.filter((stage[ROW] <= last) & any_flag).select(
        ROW, id_col, *[f"f{pos}_{k}" for pos, _, k, _ in index], **cell)

    out: list[Issue] = []
    drug_text: dict[str | None, str] = {}
    # Streamed as the engine produces the rows (an ORDER BY here held every flagged row,
    # with its cells and flags, in a sort before the first came back: ~40 % of the report's
    # time at 10M); sorted by row here when they came out of order, which is stable, so
    # a row's cells keep their check order.
    last_row, in_order = 0, True
    for batch in _report_batches(flagged, 1 << 17):
        rows = batch.column(ROW).to_numpy(zero_copy_only=False).astype(np.int64)
        if len(rows):
            in_order = in_order and rows[0] > last_row and bool(np.all(rows[1:] > rows[:-1]))
            last_row = int(rows[-1])
        out.extend(_batch_issues(batch, index, mapping, id_col, drug_text))
    if not in_order:
        out.sort(key=_issue_row)  # cell issues always name their row
    return out


def _issue_row(issue: Issue) -> int:
    return issue.row or 0


def _report_batches(t: ir.Table, size: int):
    """The rows of `t`, about `size` at a time, in the engine's order."""
    from .engine import arrow_batches

    yield from arrow_batches(ibis.get_backend(t), t, size)


def _batch_issues(hits, index, mapping, id_col, drug_text) -> list[Issue]:
    if hits.num_rows == 0:
        return []
    rows = hits.column(ROW).to_numpy(zero_copy_only=False).astype(np.int64)
    pids = hits.column(id_col)
    # (hit position, check number) of every flagged cell, in the loader's order.
    at, which = [], []
    for j, (pos, _, k, _) in enumerate(index):
        where = np.flatnonzero(hits.column(f"f{pos}_{k}").to_numpy(zero_copy_only=False).astype(bool))
        at.append(where)
        which.append(np.full(len(where), j, np.int64))
    at_all, which_all = np.concatenate(at), np.concatenate(which)
    words: list[list[str]] = []
    values: list[list[str | None]] = []
    for j, (pos, _, _, chk) in enumerate(index):
        if not len(at[j]):
            words.append([])
            values.append([])
            continue
        take = pa.array(at[j], type=pa.int64())
        vals = [_cell_text(v) for v in hits.column(f"r{pos}").take(take).to_pylist()]
        values.append(vals)
        if not callable(chk.problem):
            words.append([chk.problem] * len(vals))
        elif chk.problem is _drug_problem:
            new = [v for v in dict.fromkeys(vals) if v not in drug_text]
            if new:
                drug_text.update(zip(new, _drug_problems(new), strict=True))
            words.append([drug_text[v] for v in vals])
        else:
            nums = hits.column(f"v{pos}").take(take).to_pylist()
            words.append([chk.problem(v, x) for v, x in zip(vals, nums, strict=True)])
    # Plain Python lists: indexing numpy arrays element by element cost ~5 µs an issue.
    nth = [0] * len(index)  # next unread cell per check
    order_ = np.lexsort((which_all, at_all))
    pid_list = pids.take(pa.array(at_all[order_], type=pa.int64())).to_pylist()
    row_list = rows[at_all[order_]].tolist()
    columns = [mapping[lab] for _, lab, _, _ in index]
    out: list[Issue] = []
    for n, j in enumerate(which_all[order_].tolist()):
        chk = index[j][3]
        i = nth[j]
        nth[j] = i + 1
        out.append(Issue(row_list[n], pid_list[n], columns[j], values[j][i], words[j][i], chk.severity, chk.kind))
    return out


def _drug_problems(values: list[str | None]) -> list[str]:
    """The unrecognised-drug message of each value: distinct values parsed in one call."""
    distinct = list(dict.fromkeys(values))
    _, _, unrec = nz.parse_druglist(pa.array(distinct, type=pa.string()))
    text = {v: f"unrecognised drug name(s): {', '.join(unrec.get(i, []))}; not counted"
            for i, v in enumerate(distinct)}
    return [text[v] for v in values]


__all__ = ["Prepared", "Validated", "finish", "prepare", "map_headers", "parse_field", "text_of", "DISEASES", "dt"]
