"""Cell validation in the database: raw file columns → typed contract columns + the loader's issues.

The same spelling tables and rules as `eligibility/normalize.py` and the loader,
written as SQL expressions. Offending cells are found in the database; only they
come back to Python, where the loader's own message code words them (the report
is the loader's, row for row). A cell that cannot be read becomes NULL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from .. import normalize as nz
from ..catalog import parts_reading_field
from ..fields import DERIVED, DISEASES, FIELD_BY_NAME, FIELDS, Field
from ..loader import (
    REQUIRED,
    YESNO_PROBLEM,
    CohortError,
    Issue,
    _cell_text,
    _clean_label,
    _norm_header,
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


def parse_field(f: Field, col: ir.Value) -> Parsed:
    ctype = col.type()
    native = (f.kind == "number" and _native_number(col)) or (
        f.kind == "yesno" and (ctype.is_boolean() or _native_number(col))) or (
        f.kind == "date" and (ctype.is_timestamp() or ctype.is_date()))
    # Native columns are read as they are; every other column through its text (`text` is
    # used only when not native: typed as always present to keep the branches below plain).
    text: Any = None if native else text_of(col)
    if native:
        nonblank = col.notnull()
        if ctype.is_floating():
            nonblank = nonblank & ~col.isnan()
    else:
        nonblank = text.notnull()
    p = Parsed(nonblank=nonblank)
    if f.kind == "id":
        p.value = text
        p.checks.append(Check(~nonblank, "empty patient_id", "error", "cell_error"))
    elif f.kind == "number":
        if native:
            v = col.cast("float64")
            bad = nonblank & v.isinf()
            v = ibis.ifelse(nonblank & ~bad, v, NULL_F64)
        else:
            ok = text.re_search(nz.NUMBER_PATTERN)
            v = ibis.ifelse(ok, text.try_cast("float64"), NULL_F64)
            v = ibis.ifelse(v.isinf() | v.isnan(), NULL_F64, v)
            bad = nonblank & v.isnull()
        p.checks.append(Check(bad, "not a number", "error", "cell_error"))
        p.bad = bad
        if f.whole:
            frac = v.notnull() & (v != v.floor().cast("float64"))
            p.checks.append(Check(frac, "not a whole number", "error", "cell_error"))
            v = ibis.ifelse(frac, NULL_F64, v)
            p.bad = bad | frac
        if f.plausible is not None:
            lo, hi = f.plausible
            outside = v.notnull() & ((v < lo) | (v > hi))
            unit = f" {f.unit}" if f.unit else ""
            base = f"outside the plausible range {lo:g}–{hi:g}{unit}; kept as given"

            def implausible(_v, parsed, name=f.name, lo=lo, hi=hi, base=base):
                hint = nz.unit_hint(name, float(parsed), lo, hi)
                return f"{base} ({hint})" if hint else base

            p.checks.append(Check(outside, implausible, "warning", "implausible"))
            p.parsed_number = v
        p.value = v
    elif f.kind == "yesno":
        if native and ctype.is_boolean():
            v = col
            bad = ibis.literal(False)
        elif native:
            x = col.cast("float64")
            v = ibis.cases((x == 1, True), (x == 0, False), else_=NULL_BOOL)
            bad = nonblank & v.isnull()
        else:
            low = text.lower()
            v = ibis.cases((low.isin(list(nz.YES_SPELLINGS)), True), (low.isin(list(nz.NO_SPELLINGS)), False),
                           else_=NULL_BOOL)
            bad = nonblank & v.isnull()
        p.checks.append(Check(bad, YESNO_PROBLEM, "error", "cell_error"))
        p.value, p.bad = v, bad
    elif f.kind == "category":
        table = {c.lower(): c for c in f.categories}
        table.update(nz.CATEGORY_SYNONYMS.get(f.name) or {})
        v = key_of(text).substitute(table, else_=NULL_STR)
        bad = nonblank & v.isnull()
        p.checks.append(Check(bad, f"not one of {', '.join(f.categories)}", "error", "cell_error"))
        p.value, p.bad = v, bad
    elif f.kind == "disease":
        canon = key_of(text).substitute(nz.DISEASE_SYNONYMS, else_=NULL_STR)
        p.value = canon.fill_null(text)
        p.checks.append(Check(nonblank & canon.isnull(),
                              f"not a trial indication ({', '.join(DISEASES)}); kept as given, fails DX-1",
                              "info", "unrecognised_disease"))
    elif f.kind == "date":
        if native:
            p.value = col.cast("date")
        else:
            y = text.re_extract(DATE_SQL_PATTERN, 1)
            m = text.re_extract(DATE_SQL_PATTERN, 2).lpad(2, "0")
            d = text.re_extract(DATE_SQL_PATTERN, 3).lpad(2, "0")
            year = y.try_cast("int32")
            iso = ibis.ifelse((year >= 1900) & (year <= 2200), y + "-" + m + "-" + d, NULL_STR)
            v = iso.try_cast("date")
            bad = nonblank & v.isnull()
            p.checks.append(Check(bad, "not a date (use YYYY-MM-DD)", "error", "cell_error"))
            p.value, p.bad = v, bad
    elif f.kind == "druglist":
        tokens = key_of(text).re_replace(nz.DRUG_SEPARATORS, ";").split(";").map(lambda s: s.strip())
        canon = tokens.map(lambda s: s.substitute(nz.DRUG_SYNONYMS, else_=NULL_STR))
        count = canon.filter(lambda s: s.notnull()).unique().length().cast("float64")
        p.extra["n_prior_immunomodulators"] = ibis.ifelse(nonblank, count, NULL_F64)
        known = [*nz.DRUG_SYNONYMS, *nz.DRUG_NONE_WORDS]
        unrec = tokens.filter(lambda s: (s != "") & ~s.isin(known)).length() > 0
        p.checks.append(Check(nonblank & unrec, _drug_problem, "warning", "unrecognised_drug"))
        p.value = text
    else:  # pragma: no cover - every contract kind is handled above
        raise AssertionError(f.kind)
    return p


def _drug_problem(value, _parsed) -> str:
    return _drug_problem_text(value)


@lru_cache(maxsize=1 << 16)
def _drug_problem_text(value: str) -> str:
    """Cached: the same few drug lists recur in millions of rows, and parsing one
    value at a time costs ~2 ms (it was most of a 1M-row screen)."""
    _, _, unrec = nz.parse_druglist(pa.array([value], type=pa.string()))
    return f"unrecognised drug name(s): {', '.join(unrec[0])}; not counted"


def _extra_nonblank(col: ir.Value) -> ir.BooleanValue:
    if col.type().is_string():
        return text_of(col).notnull()
    nonblank = col.notnull()
    return nonblank & ~col.isnan() if col.type().is_floating() else nonblank


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


def validate(raw: ir.Table, source: str = "input", pre: list[Issue] | None = None, register=None) -> Validated:
    """Read `raw` (file labels as columns, plus ROW) the way `loader._validate` reads a frame.

    `register(expr) -> table` names a query in the engine (a view): the parsed columns are
    computed in one named query that the checks, the report and the typed table then
    read by column name, so no query repeats the parsing expressions."""
    labels = [c for c in raw.columns if c != ROW]
    mapping, extras, extra_labels, header_issues = map_headers(labels)
    issues = [*(pre or []), *header_issues]
    missing_req = [r for r in REQUIRED if r not in mapping.values()]
    if missing_req:
        found = ", ".join(repr(_clean_label(x)) for x in labels[:8]) + (" …" if len(labels) > 8 else "")
        raise CohortError(f"{source}: missing required column(s): {', '.join(missing_req)}"
                          f" (columns found: {found or 'none'})")
    order = [lab for lab in labels if lab in mapping]
    parsed = {lab: parse_field(FIELD_BY_NAME[mapping[lab]], raw[lab]) for lab in order}

    # Stage 1: every parsed value, check flag and the raw text of checked cells, by position.
    nonblank = ibis.literal(False)
    for lab in order:
        nonblank = nonblank | parsed[lab].nonblank
    for lab in extra_labels:
        nonblank = nonblank | _extra_nonblank(raw[lab])
    cols: dict[str, ir.Value] = {"nb": nonblank}
    for pos, lab in enumerate(order):
        p = parsed[lab]
        if p.value is not None:
            cols[f"v{pos}"] = p.value
        for name, expr in p.extra.items():
            cols[f"x{pos}_{name}"] = expr
        for k, chk in enumerate(p.checks):
            cols[f"f{pos}_{k}"] = chk.mask.fill_null(False)
        if p.checks:
            cols[f"r{pos}"] = raw[lab]
        if p.parsed_number is not None:
            cols[f"n{pos}"] = p.parsed_number
        if p.bad is not None and FIELD_BY_NAME[mapping[lab]].kind == "number":
            cols[f"b{pos}"] = p.bad.fill_null(False)
    stage = raw.select(ROW, **cols)
    stage = register(stage) if register else stage

    stats = stage.aggregate(n=stage.count(), last=stage[ROW].max(where=stage.nb)).execute()
    n_raw = int(stats["n"].iloc[0])
    last = stats["last"].iloc[0]
    if n_raw == 0 or last is None or (isinstance(last, float) and np.isnan(last)):
        raise CohortError(f"{source}: no data rows (only a header)")
    last = int(last)
    if last < n_raw:
        issues.append(Issue(None, None, None, None,
                            f"{n_raw - last} empty row(s) after the last data row ignored", "info", "empty_row"))
    empty = stage.filter(~stage.nb & (stage[ROW] <= last)).select(ROW).order_by(ROW).execute()
    for r in empty[ROW].tolist():
        issues.append(Issue(int(r), None, None, None, "empty row: kept, every value is missing",
                            "warning", "empty_row"))

    id_col = f"v{order.index(next(lab for lab in order if mapping[lab] == 'patient_id'))}"
    t = stage.filter(stage[id_col].notnull())
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

    present = frozenset(mapping.values())
    for f in FIELDS:
        if f.name in present or f.optional:
            continue
        parts = parts_reading_field(f.name)
        if parts:
            what, severity = f"{', '.join(parts)} not assessed for everyone", "warning"
        elif f.name == "screening_date":
            what, severity = "dose-cohort assignment and enrolment projection cannot use dates", "warning"
        else:
            what, severity = "no criterion reads it", "info"
        issues.append(Issue(None, None, f.name, None, f"column absent from the file: {what}", severity,
                            "missing_column"))

    issues.extend(_cell_issues(stage, order, mapping, parsed, id_col, last))

    typed_cols: dict[str, ir.Value] = {}
    for pos, lab in enumerate(order):
        name, p = mapping[lab], parsed[lab]
        if p.value is not None:
            typed_cols[name] = stage[f"v{pos}"]
        for extra in p.extra:
            typed_cols[extra] = stage[f"x{pos}_{extra}"]
        if f"b{pos}" in stage.columns:
            typed_cols[UNREADABLE + name] = stage[f"b{pos}"]
    typed = stage.filter(stage[ROW] <= last).select(ROW, **typed_cols)
    typed = typed.mutate(**{GROUP: group_code(typed["disease"])})
    return Validated(typed, present, issues, tuple(extras), last)


def _cell_issues(stage, order, mapping, parsed, id_col, last) -> list[Issue]:
    """Offending cells only: flags computed in the database, words from the loader's code."""
    index = [(pos, lab, k, chk) for pos, lab in enumerate(order) for k, chk in enumerate(parsed[lab].checks)]
    if not index:
        return []
    any_flag = ibis.literal(False)
    for pos, _, k, _ in index:
        any_flag = any_flag | stage[f"f{pos}_{k}"]
    keep = [ROW, id_col, *[f"f{pos}_{k}" for pos, _, k, _ in index],
            *sorted({f"r{pos}" for pos, _, _, _ in index}),
            *[c for c in stage.columns if c.startswith("n") and c[1:].isdigit()]]
    hits = (stage.filter(stage.nb & (stage[ROW] <= last) & any_flag).select(*keep).order_by(ROW)
            .to_pyarrow().to_pylist())
    out: list[Issue] = []
    for rec in hits:
        row, pid = int(rec[ROW]), rec[id_col]
        for pos, lab, k, chk in index:
            if not rec[f"f{pos}_{k}"]:
                continue
            value = _cell_text(rec[f"r{pos}"])
            text = chk.problem(value, rec.get(f"n{pos}")) if callable(chk.problem) else chk.problem
            out.append(Issue(row, pid, mapping[lab], value, text, chk.severity, chk.kind))
    return out


def disease_groups_of(typed: ir.Table) -> ir.Table:  # pragma: no cover - convenience
    return typed.mutate(**{GROUP: group_code(typed["disease"])})


__all__ = ["Validated", "validate", "map_headers", "parse_field", "text_of", "DISEASES", "dt"]
