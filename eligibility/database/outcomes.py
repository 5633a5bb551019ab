"""Per-patient outcome codes in the database, and the `screen` contract columns from them.

Each active unit gets one small integer per patient, the memory engine's codes:
0 fail, 1 unknown, 2 pass, 3 not applicable (another disease's block). Status,
first reason, the failed/unknown lists and the attribution keys are plain
expressions over those codes, so only the codes are computed from the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from ..catalog import Catalog, Unit, default_catalog
from ..evaluate import FAIL, NOT_APPLICABLE, PASS, UNKNOWN
from ..fields import DISEASES
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
    active, not_assessed, disabled = [], [], []
    for u in catalog.units:
        if u.id in scenario.disabled:
            disabled.append(u.id)
        elif not all(f in present for f in catalog.fields_of(u.rule, scenario.params)):
            not_assessed.append(u.id)
        else:
            active.append(u)
    return Plan(catalog, scenario, tuple(active), tuple(not_assessed), tuple(disabled))


def truth_code(ok: ir.BooleanValue) -> ir.IntegerValue:
    """PASS (2) / FAIL (0) / UNKNOWN (1) of a Kleene truth value, naming `ok` once: the
    CASE form (WHEN ok … WHEN NOT ok …) doubles every rule tree in the SQL, and Spark's
    planner time grows with the size of the expression."""
    assert (FAIL, UNKNOWN, PASS) == (0, 1, 2)
    return (ok.cast("int8") * 2).fill_null(UNKNOWN)


def outcome_codes(typed: ir.Table, present: frozenset[str], pl: Plan) -> ir.Table:
    """`typed` plus one outcome-code column per active unit (`__o0`, `__o1`, …)."""
    comp = RuleCompiler(pl.catalog, typed, present, pl.scenario.params)
    group = typed[GROUP]
    cols: dict[str, Any] = {}
    for i, u in enumerate(pl.active):
        truth = comp(u.rule)
        ok = truth if u.kind == "incl" else ~truth
        code = truth_code(ok)
        if u.block != "common":
            code = ibis.ifelse(group == DISEASES.index(u.block), code, NOT_APPLICABLE)
        cols[code_column(i)] = code.cast("int8")
    return typed.select(ROW, GROUP, "patient_id", "disease", **cols)


def _or(terms: list[str]) -> str:
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


MASK_BITS = 63  # bits per mask word: BIGINT without the sign bit (Spark has no unsigned type)


def mask_words(n: int) -> int:
    return max(1, -(-n // MASK_BITS))


def summary_sql(pl: Plan) -> dict[str, str]:
    """Per-patient values over the unit codes, as plain SQL (CASE, OR: the same on DuckDB
    and Spark; hundreds of terms compile here in microseconds, not via ibis): status; the
    first failing unit (index); the sole cause (index, -1 when the patient fails more or
    fewer than one cause); the bit mask of failing criteria (circe's inclusion-rule mask);
    the failing and the unknown units as bit masks (`fw0…`, `uw0…`, 63 units a word).
    These few integers are all that is kept per patient; the text columns of the
    contract are spelled from them when written (`text_sql`)."""
    n = len(pl.active)
    fails = [f"({code_column(i)} = {FAIL})" for i in range(n)]
    unknowns = [f"({code_column(i)} = {UNKNOWN})" for i in range(n)]
    out: dict[str, str] = {"assessed": assessed_sql(pl)}
    out["status"] = (f"CASE WHEN {_or(fails)} THEN {_lit(STATUS_INELIGIBLE)} WHEN {_or(unknowns)} "
                     f"THEN {_lit(STATUS_PENDING)} ELSE {_lit(STATUS_ELIGIBLE)} END")
    for w in range(mask_words(n)):
        for prefix, conds in (("fw", fails), ("uw", unknowns)):
            bits = [f"CASE WHEN {conds[i]} THEN CAST({1 << (i - w * MASK_BITS)} AS BIGINT) ELSE CAST(0 AS BIGINT) END"
                    for i in range(w * MASK_BITS, min(n, (w + 1) * MASK_BITS))]
            out[f"{prefix}{w}"] = "(" + " + ".join(bits) + ")" if bits else "CAST(0 AS BIGINT)"
    if not n:
        out.update(first_idx="CAST(-1 AS SMALLINT)", sole_idx="CAST(-1 AS SMALLINT)", crit_mask="CAST(0 AS BIGINT)")
        return out
    out["first_idx"] = ("CAST(CASE " + " ".join(f"WHEN {f} THEN {i}" for i, f in enumerate(fails))
                        + " ELSE -1 END AS SMALLINT)")
    cause_idx, _ = pl.causes()
    members: dict[int, list[int]] = {}
    for i, c in enumerate(cause_idx):
        members.setdefault(c, []).append(i)
    n_causes = " + ".join(f"CASE WHEN {_or([fails[i] for i in m])} THEN 1 ELSE 0 END" for m in members.values())
    sole = "CASE " + " ".join(f"WHEN {f} THEN {cause_idx[i]}" for i, f in enumerate(fails)) + " ELSE -1 END"
    out["sole_idx"] = f"CAST(CASE WHEN ({n_causes}) = 1 THEN {sole} ELSE -1 END AS SMALLINT)"
    crits = pl.criteria
    if len(crits) > 63:  # pragma: no cover - the protocol has 62 criteria
        raise ValueError("more than 63 criteria: the failure mask needs a second word")
    crit_of = [crits.index(u.criterion) for u in pl.active]
    out["crit_mask"] = "(" + " + ".join(
        f"CASE WHEN {_or([fails[i] for i in range(n) if crit_of[i] == q])} THEN CAST({1 << q} AS BIGINT) "
        f"ELSE CAST(0 AS BIGINT) END" for q in range(len(crits))) + ")"
    return out


def bit_sql(prefix: str, i: int) -> str:
    """Whether unit i is set in the mask words `prefix0…`."""
    return f"(({prefix}{i // MASK_BITS} & CAST({1 << (i % MASK_BITS)} AS BIGINT)) <> 0)"


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


def patient_sql(codes_name: str, pl: Plan) -> str:
    """SELECT over the registered code table: the per-patient integers (kept per scenario)."""
    cols = ", ".join(f"{expr} AS {name}" for name, expr in summary_sql(pl).items())
    return f"SELECT c.{ROW}, c.{GROUP}, c.patient_id, c.disease, {cols} FROM {codes_name} AS c"


def rich_sql(patients_name: str, pl: Plan) -> str:
    """The per-patient table with the contract's text columns spelled out."""
    cols = ", ".join(f"{expr} AS {name}" for name, expr in text_sql(pl).items())
    return f"SELECT p.*, {cols} FROM {patients_name} AS p"


def results_table(patients: ir.Table, pl: Plan) -> ir.Table:
    """One row per input row, ordered by the input row number: the `screen` contract
    (`patients`: the table of `rich_sql`)."""
    return patients.select(
        ROW,
        patient_id=patients["patient_id"].cast("string"),
        disease=patients["disease"].cast("string"),
        status=patients["status"],
        first_reason=patients["first_reason"],
        failed=patients["failed"],
        unknown=patients["unknown"],
        not_assessed=ibis.literal(";".join(pl.not_assessed)),
        assessed=patients["assessed"],
    ).order_by(ROW)
