"""Build small typed cohorts directly (without the loader) for engine tests.

`eligible_row(disease)` is a patient who passes every criterion of the protocol
defaults (each field's `eligible` value in protocol/fields.yaml); tests change one
field at a time to cross a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eligibility.fields import DERIVED, DISEASES, FIELDS, IMMUNOMODULATORS

# The eligible patient of each disease, from the contract's `eligible` values (fields.yaml):
# a new field with a criterion needs only its `eligible` entry there.
COMMON_OK = {f.name: f.eligible for f in FIELDS if f.block == "common" and f.kind not in ("id", "disease", "date")}
BLOCK_OK = {d: {f.name: f.eligible for f in FIELDS if f.block == d} for d in DISEASES}


def eligible_row(disease: str = "SSc", **changes) -> dict:
    row = {"disease": disease, **COMMON_OK, **BLOCK_OK.get(disease, {})}
    row.update(changes)
    return row


def _drug_count(value) -> float:
    if value is None or pd.isna(value):  # pd.NA from a string column, NaN, None
        return np.nan
    names = [v.strip() for v in str(value).split(";") if v.strip()]
    if names == ["none"]:
        return 0.0
    return float(len({n for n in names if n in IMMUNOMODULATORS}))


@dataclass
class TypedCohort:
    """The parts of the loader's Cohort that the engine reads."""

    frame: pd.DataFrame
    present: frozenset = field(default_factory=frozenset)
    issues: list = field(default_factory=list)
    source: str = "test"

    def __len__(self) -> int:
        return len(self.frame)


def make_cohort(rows: list[dict], present=None) -> TypedCohort:
    """Typed cohort from dicts (None = empty cell). Columns default to every contract
    column; `present` limits the file's columns (others are absent, i.e. not assessed)."""
    names = [f.name for f in FIELDS] if present is None else ["patient_id", "disease", *present]
    data = {}
    for f in FIELDS:
        if f.name not in names:
            continue
        vals = [r.get(f.name) if f.name != "patient_id" else r.get("patient_id", f"P{i + 1}") for i, r in enumerate(rows)]
        if f.kind == "number":
            data[f.name] = np.array([np.nan if v is None else float(v) for v in vals], np.float64)
        elif f.kind == "yesno":
            data[f.name] = pd.array(vals, dtype="boolean")
        elif f.kind == "category":
            data[f.name] = pd.Categorical(vals, categories=f.categories)
        elif f.kind in ("id", "disease", "druglist"):
            data[f.name] = pd.array(vals, dtype="string")
        elif f.kind == "date":
            data[f.name] = pd.to_datetime(pd.Series(vals, dtype="object"))
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    for derived, src in DERIVED.items():
        if src in frame:
            frame[derived] = np.array([_drug_count(v) for v in frame[src].astype(object)], np.float64)
    return TypedCohort(frame, frozenset(c for c in names if c in frame))
