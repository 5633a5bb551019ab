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
    AnyOf,
    AtLeast,
    Catalog,
    Compare,
    Flag,
    Implies,
    In,
    Not,
    ParamTrue,
    Ref,
    UlnLimit,
    Within,
    children,
)
from .columns import GROUP_NAMES
from .evaluate import INELIGIBLE, OUTCOME_NAMES, Evaluation, Evaluator
from .fields import field
from .rule_visit import RuleVisitor
from .rules import IMPLAUSIBLE_UNKNOWN, RuleEvaluator, compare, uln_limit
from .scenario import Resolved

TRUTH_NAMES = ("no", "unknown", "yes")


def _fmt(x) -> str:
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _threshold(node, params: dict, row_uln: float | None = None):
    if isinstance(node, Compare):
        return node.threshold(params)
    if isinstance(node, UlnLimit):
        uln = row_uln if row_uln is not None and not np.isnan(row_uln) else params[node.default_param]
        return round(params[node.max_param] * uln, 9)
    if isinstance(node, Within):  # the value is compared after adding the offset
        return params[node.param] - node.offset(params)
    return None


class Describe(RuleVisitor[str]):
    """A condition in words, with the scenario's thresholds filled in (leaves; a composite
    gives its class name: the renderer in eligibility/rule_text.py writes those out)."""

    def __init__(self, params: dict, row_uln: float | None = None):
        self.params = params
        self.row_uln = row_uln

    def flag(self, node: Flag) -> str:
        return f"{field(node.field).label or node.field} = yes"

    def compare(self, node: Compare) -> str:
        f = field(node.field)
        return f"{f.label or node.field} {OP_TEXT[node.op]} {_fmt(node.threshold(self.params))} {f.unit}".strip()

    def uln(self, node: UlnLimit) -> str:
        f = field(node.field)
        limit = _threshold(node, self.params, self.row_uln)
        return f"{f.label} {OP_TEXT[node.op]} {_fmt(self.params[node.max_param])} × ULN (= {_fmt(limit)} {f.unit})"

    def within(self, node: Within) -> str:
        f = field(node.field)
        p = self.params
        if node.offset_param:
            return (f"{f.label} + {_fmt(p[node.offset_param])} {f.unit} < {_fmt(p[node.param])} "
                    f"{f.unit} (empty = never)")
        return f"{f.label} < {_fmt(p[node.param])} {f.unit} (empty = never)"

    def in_(self, node: In) -> str:
        return f"{field(node.field).label} is one of {', '.join(sorted(node.allowed(self.params)))}"

    def param_true(self, node: ParamTrue) -> str:
        return f"setting '{node.param}' is on"

    def _composite(self, node) -> str:
        return type(node).__name__

    def ref(self, node: Ref) -> str:
        return self._composite(node)

    def all_of(self, node: AllOf) -> str:
        return self._composite(node)

    def any_of(self, node: AnyOf) -> str:
        return self._composite(node)

    def not_(self, node: Not) -> str:
        return self._composite(node)

    def at_least(self, node: AtLeast) -> str:
        return self._composite(node)

    def implies(self, node: Implies) -> str:
        return self._composite(node)


def describe(node, params: dict, row_uln: float | None = None) -> str:
    """A condition in words, with the scenario's thresholds filled in."""
    return Describe(params, row_uln).visit(node)


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
    ev = ev or evaluator.evaluate(scenario)
    catalog = ev.catalog  # under the scenario's readings
    cols = evaluator.columns
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
            if isinstance(leaf, ParamTrue):  # an internal switch, not something about the patient
                continue
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
            to_verify = bool(
                name is not None and value is not None and scenario.params.get(IMPLAUSIBLE_UNKNOWN, False)
                and cols.has(name) and (odd := cols.implausible(name, sl)) is not None and odd[0])
            rows.append({
                "criterion": u.id, "kind": "inclusion" if u.kind == "incl" else "exclusion",
                "outcome": outcome, "condition": ("NOT " if negated else "") + describe(leaf, scenario.params, row_uln),
                "field": name or "", "value": "" if value is None else _fmt(value),
                "unit": f.unit if f else "", "threshold": "" if threshold is None else _fmt(threshold),
                "result": "" if truth is None else TRUTH_NAMES[truth],
                "distance": distance,
                "note": (f"value to verify: outside the plausible range "
                         f"{f.plausible[0]:g}–{f.plausible[1]:g} {f.unit}".rstrip()
                         if to_verify and f is not None and f.plausible
                         else ""),
            })
    return pd.DataFrame(rows)


def to_settle(expl: pd.DataFrame) -> list[str]:
    """For a pending patient: what would settle each undecided criterion, one line per field
    ("measure FVC (% predicted) — for EXC-2.fvc, SSC-INC-3"), from `explain_patient`'s rows."""
    undecided = expl[(expl["outcome"] == "unknown") & (expl["result"] == "unknown") & (expl["field"] != "")]
    out: list[str] = []
    for name, rows in undecided.groupby("field", sort=False):
        f = field(name)
        crits = ", ".join(dict.fromkeys(rows["criterion"]))
        if (rows["note"] != "").any():
            value = rows["value"].iloc[0]
            action = f"verify {f.label or name} ({value} {f.unit}".rstrip() + " is outside the plausible range)"
        elif f.kind == "number":
            action = f"measure {f.label or name}" + (f" ({f.unit})" if f.unit else "")
        else:
            action = f"record {f.label or name}"
        out.append(f"{action} — for {crits}")
    return out


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
        row_uln = cols.number_at(leaf.uln_field, pos) if cols.has(leaf.uln_field) else None
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
        leaves = found[0] if found else None  # merged parts test the same limit
        if leaves is None or any(f is None for f in found):
            continue
        leaf = leaves[0]
        pos = np.flatnonzero((sole == k) & (ev.status == INELIGIBLE))
        if not len(pos):
            continue
        values = cols.number_at(leaf.field, pos)
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


def explanation_view(expl: pd.DataFrame, only_problems: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """`explain_patient` as the table a planner reads: failing first, then unknown, then the
    rest (catalog order within each); criterion with its short name; outcome and
    value − threshold next to it; yes/no words. Returns (table, raw outcome per row)."""
    from .labels import label

    order = ("fail", "unknown", "pass", "not assessed", "switched off", "n/a")
    words = {"pass": "✓ passes", "fail": "✗ fails", "unknown": "? undecided", "not assessed": "– not assessed",
             "switched off": "○ switched off", "n/a": "– not applicable"}
    show = expl[expl["outcome"].isin(["fail", "unknown"])] if only_problems else expl
    rank = show["outcome"].map({o: i for i, o in enumerate(order)}).fillna(len(order))
    show = show.assign(_rank=rank).sort_values("_rank", kind="stable")
    has_value = show["value"] != ""
    distance = [("" if pd.isna(d) else f"{d:+.4g} {u}".strip())
                for d, u in zip(show["distance"], show["unit"], strict=True)]
    view = pd.DataFrame({
        "Criterion": show["criterion"].map(label),
        "Outcome": show["outcome"].map(lambda o: words.get(o, o)),
        "Value − threshold": distance,
        "Patient value": (show["value"] + " " + show["unit"]).str.strip().where(has_value, "— (empty)"),
        "Threshold": (show["threshold"] + " " + show["unit"].where(show["threshold"] != "", "")).str.strip(),
        "Condition tested": show["condition"],
        "Holds": show["result"].replace("", "—"),
        "Note": show["note"] if "note" in show else "",
    }).reset_index(drop=True)
    return view, show["outcome"].reset_index(drop=True)
