"""Per-patient outcome codes in the database, and the `screen` contract columns from them.

Each active unit gets one small integer per patient, the memory engine's codes:
0 fail, 1 unknown, 2 pass, 3 not applicable (another disease's block). Status,
first reason, the failed/unknown lists and the attribution keys are plain
expressions over those codes, so only the codes are computed from the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir

from ..catalog import Catalog, Unit, default_catalog
from ..evaluate import FAIL, NOT_APPLICABLE, PASS, UNKNOWN
from ..fields import DISEASES
from ..rules import IMPLAUSIBLE_UNKNOWN
from ..scenario import Resolved, baseline
from .compile import GROUP, ROW, RuleCompiler

STATUS_INELIGIBLE, STATUS_PENDING, STATUS_ELIGIBLE = "ineligible", "pending", "eligible"


def code_column(i: int) -> str:
    return f"__o{i}"


@dataclass(frozen=True)
class Plan:
    """Which units a scenario evaluates on a table with these columns (the memory
    engine's partition: switched off, not assessed, active)."""

    catalog: Catalog
    scenario: Resolved
    active: tuple[Unit, ...]
    not_assessed: tuple[str, ...]
    disabled: tuple[str, ...]

    @property
    def unit_ids(self) -> tuple[str, ...]:
        return tuple(u.id for u in self.active)

    @property
    def criteria(self) -> list[str]:
        return list(dict.fromkeys(u.criterion for u in self.active))

    def causes(self) -> tuple[list[int], list[str]]:
        """Per active unit the index of its cause; the cause names (merged causes joined)."""
        names: list[str] = []
        idx = []
        for u in self.active:
            c = self.catalog.cause_of[u.id]
            if c not in names:
                names.append(c)
            idx.append(names.index(c))
        return idx, names


def plan(present: frozenset[str], scenario: Resolved | None = None, catalog: Catalog | None = None) -> Plan:
    catalog = catalog or default_catalog()
    scenario = scenario or baseline(catalog)
    catalog = catalog.variant(scenario.readings)  # the scenario's readings of contested text
    active, not_assessed, disabled = [], [], []
    for u in catalog.units:
        if u.id in scenario.disabled:
            disabled.append(u.id)
        elif not all(f in present for f in catalog.fields_of(u.rule, scenario.params)):
            not_assessed.append(u.id)
        else:
            active.append(u)
    return Plan(catalog, scenario, tuple(active), tuple(not_assessed), tuple(disabled))


def unit_truth(comp: RuleCompiler, u: Unit) -> ir.BooleanValue:
    """Whether a patient passes a unit (Kleene: NULL is unknown)."""
    truth = comp(u.rule)
    return truth if u.kind == "incl" else ~truth


def code_sql(ok: str, u: Unit, group: str, shift: int | None = None) -> str:
    """The outcome code of a unit from the SQL of its truth `ok`: PASS (2) / FAIL (0) /
    UNKNOWN (1), NOT_APPLICABLE (3) outside its block. `ok` is named once: the CASE form
    (WHEN ok … WHEN NOT ok …) doubles every rule tree in the SQL, and Spark's planner time
    grows with the size of the expression. With `shift`, the code already in its place of a
    packed word (`code << shift`, BIGINT): the first pass then packs a word by additions
    alone (`packed_sql(shifted=True)`). Plain SQL, the same on DuckDB and Spark."""
    assert (FAIL, UNKNOWN, PASS) == (0, 1, 2)
    if shift is None:
        kind, code, na = "TINYINT", f"COALESCE(CAST({ok} AS TINYINT) * 2, {UNKNOWN})", str(NOT_APPLICABLE)
    else:
        kind = "BIGINT"
        code = f"COALESCE(CAST({ok} AS BIGINT) * {_bigint(PASS << shift)}, {_bigint(UNKNOWN << shift)})"
        na = _bigint(NOT_APPLICABLE << shift)
    if u.block != "common":
        code = f"CASE WHEN {group} = {DISEASES.index(u.block)} THEN {code} ELSE {na} END"
    return f"CAST({code} AS {kind})"


def _bigint(value: int) -> str:
    return f"CAST({value} AS BIGINT)"


def _frozen(value: Any) -> Any:
    return tuple(sorted(value)) if isinstance(value, (set, frozenset, list, tuple)) else value


def unit_key(pl: Plan, u: Unit) -> tuple:
    """What a unit's outcome codes depend on besides the data: the readings that changed its
    rule, the implausible-values setting and the values of the parameters it reads."""
    params = pl.scenario.params
    return (u.id, pl.catalog.rule_key.get(u.id, ()), bool(params.get(IMPLAUSIBLE_UNKNOWN, False)),
            tuple((name, _frozen(params[name])) for name in pl.catalog.unit_params(u.id)))


def codes_sql(con, typed: ir.Table, present: frozenset[str], pl: Plan, cache: dict,
              carry: tuple[str, ...] = (), only: set[int] | None = None, shifted: bool = False) -> str:
    """One outcome-code column per active unit (`__o0`, `__o1`, …) over the named table
    `typed`, with ROW, GROUP, patient_id, disease and `carry`. Each unit's truth is compiled
    once per value of the parameters it reads (`cache`, kept per cohort): a one-parameter
    what-if recompiles one or two units, not the whole catalog (building and compiling ibis
    expressions was most of a what-if's time on small cohorts).
    `only`: the codes of these units alone (by index; `__o<index>` as in the whole).
    `shifted`: each code in its place of the packed words (for `patient_sql(shifted=True)`)."""
    comp = RuleCompiler(pl.catalog, typed, present, pl.scenario.params)
    alias = select_alias(con)
    keep = (ROW, GROUP, "patient_id", "disease", *carry)
    units = [(i, u) for i, u in enumerate(pl.active) if only is None or i in only]
    truths = []
    for _, u in units:
        key = unit_key(pl, u)
        sql = cache.get(key)
        if sql is None:
            select = con.compiler.to_sqlglot(typed.select(__x=unit_truth(comp, u)))
            if not _plain_projection(select):
                return _codes_over_subquery(con, typed, comp, pl, units, keep, shifted)
            sql = cache[key] = select.expressions[0].this.sql(dialect=con.compiler.dialect)
        truths.append(sql)
    cols = "".join(f", {code_sql(ok, u, f'{alias}.{GROUP}', unit_shift(i) if shifted else None)} AS {code_column(i)}"
                   for (i, u), ok in zip(units, truths, strict=True))
    head = ", ".join(f"{alias}.{c}" for c in keep)
    return f"SELECT {head}{cols} FROM {typed.get_name()} AS {alias}"


def _plain_projection(select) -> bool:
    """Whether a compiled one-column SELECT is `SELECT expr FROM table` and nothing more."""
    return {k for k, v in select.args.items() if v} == {"expressions", "from_"}


def _codes_over_subquery(con, typed: ir.Table, comp: RuleCompiler, pl: Plan, units, keep, shifted: bool) -> str:
    """codes_sql when a unit's truth does not compile to a column expression: every truth a
    column of one compiled SELECT, the codes over it (nothing cached)."""
    inner = con.compile(typed.select(*keep, **{f"__t{i}": unit_truth(comp, u) for i, u in units}))
    alias = select_alias(con)
    cols = "".join(f", {code_sql(f'{alias}.__t{i}', u, f'{alias}.{GROUP}', unit_shift(i) if shifted else None)}"
                   f" AS {code_column(i)}" for i, u in units)
    head = ", ".join(f"{alias}.{c}" for c in keep)
    return f"SELECT {head}{cols} FROM ({inner}) AS {alias}"


def select_alias(con) -> str:
    """The alias ibis gives the table of a one-table SELECT (quoted as the dialect does)."""
    return '"t0"' if con.name != "pyspark" else "`t0`"


def _or(terms: list[str]) -> str:
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


UNITS_PER_WORD = 31  # units a mask word: 2 bits each in a BIGINT, the sign bit unused (Spark has no unsigned type)
_EVEN = sum(1 << (2 * k) for k in range(UNITS_PER_WORD))  # the low bit of every unit's pair


def mask_words(n: int) -> int:
    return max(1, -(-n // UNITS_PER_WORD))


def unit_word(i: int) -> int:
    """The mask word that holds unit i."""
    return i // UNITS_PER_WORD


def unit_shift(i: int) -> int:
    """The bit of unit i in its mask word (`fw`/`uw`): even positions only."""
    return 2 * (i % UNITS_PER_WORD)


def _word_units(n: int, w: int) -> range:
    """The units (of n) held by mask word w."""
    return range(w * UNITS_PER_WORD, min(n, (w + 1) * UNITS_PER_WORD))


def _bits_of(units) -> int:
    """The mask bits of these units (all in one word)."""
    return sum(1 << unit_shift(i) for i in units)


def mask_sql(pl: Plan) -> dict[str, str]:
    """The failing and the unknown units of each patient as bit masks (`fw0…`, `uw0…`:
    circe's inclusion-rule mask extended to three states), plain SQL, the same on DuckDB
    and Spark. The unit codes (0–3) are first packed two bits a unit into words (`cw0…`,
    one multiply-add a unit); a unit fails where its pair is 00 and is unknown where it is
    01, so both masks come from a few whole-word operations instead of a CASE a unit and
    a mask (which took ~7x longer)."""
    out: dict[str, str] = {"assessed": assessed_sql(pl)}
    n = len(pl.active)
    for w in range(mask_words(n)):
        cw, high = f"cw{w}", f"(cw{w} >> 1)"
        units = _bits_of(_word_units(n, w))
        out[f"fw{w}"] = f"(~({cw} | {high}) & CAST({units} AS BIGINT))"  # a word's unused pairs are 00
        out[f"uw{w}"] = f"({cw} & ~{high} & CAST({units} AS BIGINT))"
    return out


def packed_sql(pl: Plan, shifted: bool = False) -> dict[str, str]:
    """The unit codes two bits a unit, `UNITS_PER_WORD` units a word (`cw0…`); `shifted`:
    the code columns hold each code in its place already (`codes_sql(shifted=True)`)."""
    n = len(pl.active)
    out = {}
    for w in range(mask_words(n)):
        terms = [code_column(i) if shifted else f"CAST({code_column(i)} AS BIGINT) * CAST({1 << unit_shift(i)} AS BIGINT)"
                 for i in _word_units(n, w)]
        out[f"cw{w}"] = "(" + " + ".join(terms) + ")" if terms else "CAST(0 AS BIGINT)"
    return out


def _lowest_unit(w: int) -> str:
    """The lowest failing unit of mask word w (which is nonzero): the even positions below
    its lowest set bit, counted."""
    return f"{w * UNITS_PER_WORD} + bit_count(((fw{w} & -fw{w}) - 1) & CAST({_EVEN} AS BIGINT))"


def summary_sql(pl: Plan) -> dict[str, str]:
    """Per-patient values over the masks of `mask_sql`: status; the first failing unit
    (index, -1 none); whether the patient fails exactly one cause (`sole`: then it is the
    first failing unit's). With the masks, these are all that is kept per patient; the
    contract's text columns are spelled from them when written (`text_sql`), and the
    failing criteria come from the masks' GROUP BY (`attribution`)."""
    n = len(pl.active)
    words = range(mask_words(n))
    out = {"status": f"CASE WHEN {_or([f'fw{w} <> 0' for w in words])} THEN {_lit(STATUS_INELIGIBLE)} "
                     f"WHEN {_or([f'uw{w} <> 0' for w in words])} THEN {_lit(STATUS_PENDING)} "
                     f"ELSE {_lit(STATUS_ELIGIBLE)} END"}
    if not n:
        out.update(first_idx="CAST(-1 AS SMALLINT)", sole="FALSE")
        return out
    out["first_idx"] = ("CAST(CASE " + " ".join(f"WHEN fw{w} <> 0 THEN {_lowest_unit(w)}" for w in words)
                        + " ELSE -1 END AS SMALLINT)")
    n_fail = " + ".join(f"bit_count(fw{w})" for w in words)
    cause_idx, _ = pl.causes()
    members: dict[int, list[int]] = {}
    for i, c in enumerate(cause_idx):
        members.setdefault(c, []).append(i)
    # More than one failing unit, all of one merged cause (e.g. INC-2.hb / EXC-2.hb).
    within = []
    for units in members.values():
        if len(units) > 1:
            outside = {w: _EVEN for w in words}
            for i in units:
                outside[unit_word(i)] &= ~(1 << unit_shift(i))
            within.append("(" + " AND ".join(f"(fw{w} & CAST({m} AS BIGINT)) = 0" for w, m in outside.items()) + ")")
    out["sole"] = f"CASE WHEN ({n_fail}) = 1 THEN TRUE WHEN ({n_fail}) > 1 THEN {_or(within)} ELSE FALSE END"
    return out


def bit_sql(prefix: str, i: int) -> str:
    """Whether unit i is set in the mask words `prefix0…`."""
    return f"(({prefix}{unit_word(i)} & CAST({1 << unit_shift(i)} AS BIGINT)) <> 0)"


def text_sql(pl: Plan) -> dict[str, str]:
    """The contract's text columns from the per-patient integers of `summary_sql`."""
    ids = pl.unit_ids
    if not ids:
        return {"first_reason": "''", "failed": "''", "unknown": "''"}

    def joined(prefix: str) -> str:
        return "concat_ws(';', " + ", ".join(
            f"CASE WHEN {bit_sql(prefix, i)} THEN {_lit(u)} END" for i, u in enumerate(ids)) + ")"

    return {"first_reason": "CASE first_idx " + " ".join(f"WHEN {i} THEN {_lit(u)}" for i, u in enumerate(ids))
            + " ELSE '' END",
            "failed": joined("fw"), "unknown": joined("uw")}


def assessed_sql(pl: Plan) -> str:
    """'k/n' per patient: of the n applicable units (common + own block, switched-off ones
    excluded), k are assessed. Constant per disease group, so a CASE on the group."""
    from ..columns import GROUP_NAMES

    disabled, missing = set(pl.disabled), set(pl.not_assessed)
    whens = []
    for g, name in enumerate(GROUP_NAMES):
        units = [u for u in pl.catalog.units if u.id not in disabled and u.block in ("common", name)]
        k = sum(u.id not in missing for u in units)
        whens.append(f"WHEN {GROUP} = {g} THEN {_lit(f'{k}/{len(units)}')}")
    return "CASE " + " ".join(whens) + " END"


def patient_sql(codes_name: str, pl: Plan, carry: tuple[str, ...] = (), shifted: bool = False) -> str:
    """SELECT over the registered code table: the per-patient integers (kept per scenario),
    with the code table's `carry` columns passed through; `shifted` as in `codes_sql`."""
    keep = (ROW, GROUP, "patient_id", "disease", *carry)
    packed = ", ".join(f"{expr} AS {name}" for name, expr in packed_sql(pl, shifted).items())
    masks = ", ".join(f"{expr} AS {name}" for name, expr in mask_sql(pl).items())
    summary = ", ".join(f"{expr} AS {name}" for name, expr in summary_sql(pl).items())
    codes = f"SELECT {''.join(f'c.{c}, ' for c in keep)}{packed} FROM {codes_name} AS c"
    return (f"SELECT m.*, {summary} FROM (SELECT {''.join(f'k.{c}, ' for c in keep)}{masks} "
            f"FROM ({codes}) AS k) AS m")


def update_sql(base_name: str, codes_name: str | None, pl: Plan, changed: list[int]) -> str:
    """The per-patient integers of `pl` from those of a scenario with the same active units
    (the kept table `base_name`) that differs in the units `changed` alone: their bits of
    the masks are replaced by their new codes (`codes_name`, joined on the row), and the
    summary recomputed from the masks. A one-parameter what-if then reads the data of one
    or two units instead of evaluating every unit again."""
    keep = (ROW, GROUP, "patient_id", "disease")
    cols = [f"b.{c}" for c in keep]
    n = len(pl.active)
    for prefix, code in (("fw", FAIL), ("uw", UNKNOWN)):
        for w in range(mask_words(n)):
            mine = [i for i in changed if unit_word(i) == w]
            if not mine:
                cols.append(f"b.{prefix}{w}")
                continue
            cleared = _bits_of(mine)
            terms = [f"CASE WHEN c.{code_column(i)} = {code} THEN CAST({1 << unit_shift(i)} AS BIGINT) "
                     "ELSE CAST(0 AS BIGINT) END" for i in mine]
            cols.append(f"((b.{prefix}{w} & ~CAST({cleared} AS BIGINT)) | {' | '.join(terms)}) AS {prefix}{w}")
    cols.append(f"{assessed_sql(pl)} AS assessed")
    codes = ", ".join([ROW, *(code_column(i) for i in changed)])
    source = f"{base_name} AS b" + (f" JOIN (SELECT {codes} FROM {codes_name}) AS c ON b.{ROW} = c.{ROW}"
                                    if changed else "")
    summary = ", ".join(f"{expr} AS {name}" for name, expr in summary_sql(pl).items())
    return f"SELECT m.*, {summary} FROM (SELECT {', '.join(cols)} FROM {source}) AS m"


def rich_sql(patients_name: str, pl: Plan) -> str:
    """The per-patient table with the contract's text columns spelled out."""
    cols = ", ".join(f"{expr} AS {name}" for name, expr in text_sql(pl).items())
    return f"SELECT p.*, {cols} FROM {patients_name} AS p"
