"""Data-quality summaries of a loaded cohort: missingness per contract field."""

from __future__ import annotations

import pandas as pd

from .catalog import default_catalog
from .fields import FIELDS


def missingness(cohort) -> pd.DataFrame:
    """Per contract field: present in the file, empty cells, and the criteria that read it."""
    catalog = default_catalog()
    n = len(cohort.frame)
    rows = []
    for f in FIELDS:
        present = f.name in cohort.present
        missing = int(cohort.frame[f.name].isna().sum()) if present and f.name in cohort.frame else n
        rows.append({
            "field": f.name, "label": f.title, "block": f.block, "present": present,
            "missing": missing, "missing_pct": 100.0 * missing / n if n else 0.0,
            "criteria": ", ".join(catalog.units_reading_field(f.name)),
        })
    return pd.DataFrame(rows)
