"""What-if helpers: parameter groups for controls and threshold sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import Catalog, Parameter
from .evaluate import ELIGIBLE, INELIGIBLE, PENDING, Evaluator
from .fields import DISEASES
from .scenario import Resolved, resolve, to_scenario

GROUP_ORDER = ("common", "refractory", *DISEASES)
GROUP_TITLES = {"common": "Common criteria", "refractory": "Refractory / relapsed definition",
                "SSc": "Systemic sclerosis", "IIM": "Inflammatory myopathy", "AAV": "ANCA vasculitis",
                "SjS": "Sjögren's syndrome", "APS": "Antiphospholipid syndrome"}


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
    rows = []
    for v in values:
        params = {**base.parameters, param: int(v) if p.type == "count" else float(v)}
        r = resolve({"name": base.name, "parameters": params, "disabled": base.disabled}, catalog)
        sl = slice(0, len(evaluator)) if group in (None, "All") else evaluator.columns.bounds[group]
        c = np.bincount(evaluator.status(r)[sl], minlength=3)
        rows.append({"value": float(v), "eligible": int(c[ELIGIBLE]), "pending": int(c[PENDING]),
                     "ineligible": int(c[INELIGIBLE])})
    df = pd.DataFrame(rows)
    others = {k for k in base.parameters if k != param}
    df.attrs.update(param=param, label=p.label, unit=p.unit, default=p.default,
                    current=scenario.params[param], held=bool(others or base.disabled))
    return df
