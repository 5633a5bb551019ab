"""Per-patient explanations and near misses.

`explain_patient` lists, for every criterion that applies to one patient, each
condition it tests with the patient's value, the threshold under the scenario,
the result and, for numbers, how far the value is from the threshold.
`near_misses` finds ineligible patients whose only failing cause is a numeric
limit they miss by a small relative margin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .attribution import _cause_index, sole_cause
from .catalog import (
    OP_TEXT,
    AllOf,
    Catalog,
    Compare,
    Flag,
    In,
    Not,
    ParamTrue,
    UlnLimit,
    Within,
    children,
)
from .columns import GROUP_NAMES
from .evaluate import INELIGIBLE, OUTCOME_NAMES, Evaluation, Evaluator
from .fields import field
from .rules import RuleEvaluator, compare, uln_limit
from .scenario import Resolved

TRUTH_NAMES = ("no", "unknown", "yes")


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _threshold(node, params: dict, row_uln: float | None = None):
    if isinstance(node, Compare):
        t = params[node.param] if node.param else node.value
        return -t if node.negate else t
    if isinstance(node, UlnLimit):
        uln = row_uln if row_uln is not None and not np.isnan(row_uln) else params[node.default_param]
        return round(params[node.max_param] * uln, 9)
    if isinstance(node, Within):
        return params[node.param]
    return None


def describe(node, params: dict, row_uln: float | None = None) -> str:
    """A condition in words, with the scenario's thresholds filled in."""
    if isinstance(node, Flag):
        return f"{field(node.field).label or node.field} = yes"
    if isinstance(node, Compare):
        f = field(node.field)
        return f"{f.label or node.field} {OP_TEXT[node.op]} {_fmt(_threshold(node, params))} {f.unit}".strip()
    if isinstance(node, UlnLimit):
        f = field(node.field)
        limit = _threshold(node, params, row_uln)
        return f"{f.label} {OP_TEXT[node.op]} {_fmt(params[node.max_param])} × ULN (= {_fmt(limit)} {f.unit})"
    if isinstance(node, Within):
        f = field(node.field)
        return f"{f.label} < {_fmt(params[node.param])} {f.unit} (empty = never)"
    if isinstance(node, In):
        allowed = params[node.param] if node.param else node.values
        return f"{field(node.field).label} is one of {', '.join(sorted(allowed))}"
    if isinstance(node, ParamTrue):
        return f"setting '{node.param}' is on"
    return type(node).__name__


def _leaves(catalog: Catalog, node, negated: bool = False):
    """(leaf, negated) pairs of a rule, refs expanded; `negated` marks leaves under a NOT."""
    node = catalog.resolve(node)
    if isinstance(node, Not):
        yield from _leaves(catalog, node.item, not negated)
        return
    kids = children(node)
    if not kids:
        yield node, negated
        return
    for c in kids:
        yield from _leaves(catalog, c, negated)


def explain_patient(evaluator: Evaluator, row: int, scenario: Resolved, ev: Evaluation | None = None) -> pd.DataFrame:
    """One row per condition of every criterion that applies to input row `row` (0-based)."""
    catalog = evaluator.catalog
    cols = evaluator.columns
    ev = ev or evaluator.evaluate(scenario)
    pos = int(np.flatnonzero(cols.order == row)[0])
    group = cols.group[pos]
    disease = GROUP_NAMES[group]
    frame = cols.frame
    active = {u.id: i for i, u in enumerate(ev.units)}
    sl = slice(pos, pos + 1)
    rows = []
    for u in catalog.units:
        if u.block not in ("common", disease):
            continue
        if u.id in scenario.disabled:
            outcome = "switched off"
        elif u.id not in active:
            outcome = "not assessed"
        else:
            outcome = OUTCOME_NAMES[ev.outcomes[active[u.id], pos]]
        rule_eval = RuleEvaluator(catalog, cols, sl, scenario.params)
        for leaf, negated in _leaves(catalog, u.rule):
            name = getattr(leaf, "field", None)
            value = None
            row_uln = None
            if name is not None and cols.has(name):
                value = frame[name].iloc[row]
                value = None if pd.isna(value) else value
            if isinstance(leaf, UlnLimit) and cols.has(leaf.uln_field):
                v = frame[leaf.uln_field].iloc[row]
                row_uln = None if pd.isna(v) else float(v)
            assessed = outcome not in ("not assessed", "switched off")
            truth = int(rule_eval(leaf)[0]) if assessed and (name is None or cols.has(name)) else None
            threshold = _threshold(leaf, scenario.params, row_uln)
            distance = None
            if isinstance(value, int | float) and threshold is not None and not isinstance(value, bool):
                distance = float(value) - float(threshold)
            f = field(name) if name else None
            rows.append({
                "criterion": u.id, "kind": "inclusion" if u.kind == "incl" else "exclusion",
                "outcome": outcome, "condition": ("NOT " if negated else "") + describe(leaf, scenario.params, row_uln),
                "field": name or "", "value": "" if value is None else _fmt(value),
                "unit": f.unit if f else "", "threshold": "" if threshold is None else _fmt(threshold),
                "result": "" if truth is None else TRUTH_NAMES[truth],
                "distance": distance,
            })
    return pd.DataFrame(rows)


def _numeric_leaves(catalog: Catalog, rule) -> list | None:
    """The numeric limits of a rule like `x ≥ t`, `NOT (x ≤ k×ULN)` or a range
    `lo ≤ x ≤ hi` (all on one field); None for anything else."""
    node = catalog.resolve(rule)
    if isinstance(node, Not):
        node = catalog.resolve(node.item)
    if isinstance(node, Compare | UlnLimit):
        return [node]
    if isinstance(node, AllOf):
        leaves = [catalog.resolve(c) for c in node.of]
        if all(isinstance(x, Compare) for x in leaves) and len({x.field for x in leaves}) == 1:
            return leaves
    return None


def _limit(leaf, cols, params, pos) -> np.ndarray:
    if isinstance(leaf, UlnLimit):
        row_uln = cols.number(leaf.uln_field)[pos] if cols.has(leaf.uln_field) else None
        return np.broadcast_to(uln_limit(params[leaf.max_param], row_uln, params[leaf.default_param]), pos.shape)
    return np.full(pos.shape, float(_threshold(leaf, params)))


def near_misses(ev: Evaluation, frame: pd.DataFrame, max_relative: float = 0.1) -> pd.DataFrame:
    """Ineligible patients whose only failing cause is a numeric limit missed by at most
    `max_relative` of the threshold (e.g. 0.1 = within 10 %)."""
    catalog, cols, params = ev.catalog, ev.columns, ev.scenario.params
    sole = sole_cause(ev)
    cause_idx, names = _cause_index(ev)
    out = []
    for k, cause in enumerate(names):
        members = [ev.units[i] for i in np.flatnonzero(cause_idx == k)]
        found = [_numeric_leaves(catalog, m.rule) for m in members]
        if any(f is None for f in found):
            continue
        leaves = found[0]  # merged parts test the same limit
        leaf = leaves[0]
        pos = np.flatnonzero((sole == k) & (ev.status == INELIGIBLE))
        if not len(pos):
            continue
        values = cols.number(leaf.field)[pos]
        threshold = _limit(leaf, cols, params, pos).copy()
        for other in leaves[1:]:  # a range: the limit is the bound the value is outside
            ok_first = compare(values, leaf.op, threshold) == 2
            threshold = np.where(ok_first, _limit(other, cols, params, pos), threshold)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.abs(values - threshold) / np.abs(threshold)
        keep = relative <= max_relative
        if not keep.any():
            continue
        rows_in = cols.order[pos[keep]]
        f = field(leaf.field)
        out.append(pd.DataFrame({
            "row": rows_in + 1,
            "patient_id": frame["patient_id"].astype("string").to_numpy()[rows_in],
            "disease": frame["disease"].astype("string").to_numpy()[rows_in],
            "cause": cause, "field": leaf.field, "unit": f.unit,
            "value": values[keep], "threshold": threshold[keep],
            "distance": values[keep] - threshold[keep], "relative": relative[keep],
        }))
    cols_out = ["row", "patient_id", "disease", "cause", "field", "unit", "value", "threshold", "distance", "relative"]
    if not out:
        return pd.DataFrame(columns=cols_out)
    return pd.concat(out, ignore_index=True).sort_values(["relative", "row"], kind="stable").reset_index(drop=True)
