"""What-if helpers: parameter groups for controls and threshold sweeps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .catalog import Catalog, Parameter
from .evaluate import ELIGIBLE, INELIGIBLE, PENDING, Evaluator
from .fields import DISEASE_TITLES, DISEASES
from .scenario import Resolved, resolve, to_scenario

GROUP_ORDER = ("common", "refractory", *DISEASES)
GROUP_TITLES = {"common": "Common criteria", "refractory": "Refractory / relapsed definition", **DISEASE_TITLES}


def parameter_groups(catalog: Catalog) -> dict[str, list[Parameter]]:
    """Parameters by control group, in the order a planner reads the protocol."""
    out: dict[str, list[Parameter]] = {g: [] for g in GROUP_ORDER}
    for p in catalog.parameters.values():
        out.setdefault(p.group, []).append(p)
    return {g: ps for g, ps in out.items() if ps}


def sweep_values(p: Parameter, points: int = 21) -> np.ndarray:
    if p.type not in ("number", "count") or p.range is None:
        raise ValueError(f"parameter {p.name!r} has no numeric what-if range")
    lo, hi = p.range
    if p.type == "count":
        return np.arange(int(lo), int(hi) + 1, dtype=float)
    values = np.linspace(lo, hi, points)
    if p.step:
        values = np.unique(np.round(np.round(values / p.step) * p.step, 9))
    default = float(p.default)
    if lo <= default <= hi and not np.isclose(values, default).any():
        values = np.sort(np.append(values, default))
    return values


def sweep(evaluator: Evaluator, scenario: Resolved, param: str, values=None,
          group: str | None = None) -> pd.DataFrame:
    """Eligible/pending/ineligible counts across values of one parameter, all else held."""
    catalog = evaluator.catalog
    if param not in catalog.parameters:
        raise ValueError(f"unknown parameter {param!r}")
    p = catalog.parameters[param]
    values = sweep_values(p) if values is None else np.asarray(values, float)
    base = to_scenario(scenario, catalog)
    points = [resolve({"name": base.name, "parameters": {**base.parameters,
                                                         param: int(v) if p.type == "count" else float(v)},
                       "disabled": base.disabled, "readings": base.readings}, catalog) for v in values]
    sl = evaluator.columns.bounds["patients" if group in (None, "All") else group]
    counts = evaluator.sweep_counts(points, sl)
    df = pd.DataFrame([{"value": float(v), "eligible": int(c[ELIGIBLE]), "pending": int(c[PENDING]),
                        "ineligible": int(c[INELIGIBLE])} for v, c in zip(values, counts, strict=True)])
    others = {k for k in base.parameters if k != param}
    df.attrs.update(param=param, label=p.label, unit=p.unit, default=p.default,
                    current=scenario.params[param], held=bool(others or base.disabled))
    return df


# -- what-if controls <-> scenario values (the page only draws widgets) --------------------------


def offered(p: Parameter) -> bool:
    """Parameters with a what-if control: numbers/counts with a range, every bool and set."""
    return p.type in ("bool", "set") or (p.type in ("number", "count") and p.range is not None)


def control_groups(catalog: Catalog) -> dict[str, list[Parameter]]:
    return {g: [p for p in ps if offered(p)] for g, ps in parameter_groups(catalog).items()}


def decimals(step: float) -> int:
    return 0 if step >= 1 else min(6, math.ceil(-math.log10(step) - 1e-9))


def step_of(p: Parameter) -> float:
    return float(p.step) if p.step else 1.0


def widget_value(p: Parameter, value):
    """A parameter value (as resolved) in the form its widget holds."""
    if p.type == "number":
        return round(float(value), decimals(step_of(p)) + 3)
    if p.type == "count":
        return int(value)
    if p.type == "bool":
        return bool(value)
    return [c for c in p.choices if c in set(value)]


def scenario_value(p: Parameter, value):
    """A widget value in the form stored in the scenario dict (JSON-friendly, minimal)."""
    if p.type == "number":
        v = round(float(value), decimals(step_of(p)) + 3)
        return int(v) if float(v).is_integer() else v
    if p.type == "count":
        return int(value)
    if p.type == "bool":
        return bool(value)
    return sorted(value)


def is_default(p: Parameter, value) -> bool:
    if p.type in ("number", "count"):
        return math.isclose(float(value), float(p.default), abs_tol=1e-9)
    if p.type == "set":
        return set(value) == set(p.default)
    return bool(value) == bool(p.default)


def with_parameter(data: dict, p: Parameter, value) -> dict:
    """The scenario dict with one parameter set (removed when it equals the protocol)."""
    params = dict(data.get("parameters", {}))
    if is_default(p, value):
        params.pop(p.name, None)
    else:
        params[p.name] = scenario_value(p, value)
    return {**data, "parameters": params}


def with_criterion(data: dict, cid: str, on: bool, order: dict[str, float]) -> dict:
    """The scenario dict with a criterion or part switched on or off (catalog order kept)."""
    disabled = [d for d in data.get("disabled", []) if d != cid]
    if not on:
        disabled.append(cid)
    disabled.sort(key=lambda d: order.get(d, 1e9))
    return {**data, "disabled": disabled}


def catalog_order(catalog: Catalog) -> dict[str, float]:
    """Position of every criterion and part ID in the catalog (a criterion just before its parts)."""
    order: dict[str, float] = {u.id: i for i, u in enumerate(catalog.units)}
    for c in catalog.criteria:
        order.setdefault(c.id, min(order[u.id] for u in catalog.units if u.criterion == c.id) - 0.5)
    return order


def sweep_points(p: Parameter, points: int, current=None) -> np.ndarray:
    """sweep_values on the control's step grid (ages without a step sweep whole years), plus
    the scenario's own value when it is inside the range and not on the grid."""
    values = sweep_values(p, points)
    if p.type == "number" and not p.step:
        values = np.unique(np.round(values / step_of(p)) * step_of(p))
    if current is not None and not isinstance(current, bool | frozenset) and p.range is not None:
        c = float(current)
        lo, hi = p.range
        if lo <= c <= hi and not np.isclose(values, c).any():
            values = np.sort(np.append(values, c))
    return values


MAX_HISTORY = 20  # scenario changes that "Undo" can take back


def push_history(history: list[dict], previous: dict) -> list[dict]:
    """The undo stack after a change away from `previous` (bounded, oldest dropped)."""
    return [*history, previous][-MAX_HISTORY:]


# -- scenario files: every problem at once ---------------------------------------------------------


def scenario_problems(data, catalog: Catalog) -> list[str]:
    """Every problem of a scenario read from a file (not only the first): unknown keys,
    unknown parameters, values of the wrong type, unknown criteria, unknown readings or
    alternatives. [] = usable."""
    from .scenario import ScenarioError, coerce_value

    if not isinstance(data, dict):
        return ["the file must hold an object with 'name', 'parameters' and 'disabled'"]
    problems = []
    allowed = {"name", "description", "parameters", "disabled", "readings"}
    problems += [f"unknown key {k!r} (allowed: {', '.join(sorted(allowed))})" for k in data if k not in allowed]
    name = data.get("name", "")
    if not isinstance(name, str):
        problems.append("'name' must be text")
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        problems.append("'parameters' must be an object of name: value")
        params = {}
    for k, v in params.items():
        if k not in catalog.parameters:
            problems.append(f"unknown parameter {k!r}")
            continue
        try:
            coerce_value(catalog.parameters[k], v)
        except ScenarioError as e:
            problems.append(str(e))
    disabled = data.get("disabled", [])
    if not isinstance(disabled, list):
        problems.append("'disabled' must be a list of criterion IDs")
        disabled = []
    for cid in disabled:
        if not isinstance(cid, str) or (cid not in catalog.unit_by_id and cid not in catalog.criterion_by_id):
            problems.append(f"unknown criterion or part {cid!r} in disabled")
    readings = data.get("readings", {})
    if not isinstance(readings, dict):
        problems.append("'readings' must be an object of reading: alternative")
        readings = {}
    for k, v in readings.items():
        if k not in catalog.readings:
            problems.append(f"unknown reading {k!r}")
        elif not isinstance(v, str) or v not in catalog.readings[k].alternatives:
            problems.append(f"unknown alternative {v!r} of reading {k!r} "
                            f"(one of: {', '.join(catalog.readings[k].alternatives)})")
    return problems
