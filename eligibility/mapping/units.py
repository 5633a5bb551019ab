"""UCUM unit conversions to the contract's units (data in mapping.yaml `unit_groups`)."""

from __future__ import annotations

import math

from .catalog import load_mapping, rule_for
from .models import LabRule


def factor(field: str, unit: str | None) -> float | None:
    """Multiplier from `unit` to `field`'s contract unit; None when the unit is not
    listed for that field (report it, never guess). Matched on the exact UCUM code,
    after trimming spaces; a missing unit is the empty string."""
    rule = rule_for(field)
    if not isinstance(rule, LabRule):
        raise ValueError(f"{field} is not a lab field")
    group = load_mapping().unit_groups[rule.unit]
    return group.get("" if unit is None else str(unit).strip())


def convert(value: float, unit: str | None, field: str) -> float | None:
    """`value` in `unit` expressed in `field`'s contract unit, or None (unknown unit).
    Values multiplied by a factor other than 1 are rounded to 6 decimals (float noise)."""
    f = factor(field, unit)
    if f is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) if f == 1 else round(float(value) * f, 6)
