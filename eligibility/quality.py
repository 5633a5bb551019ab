"""Data-quality summaries of a loaded cohort: missingness per contract field."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import default_catalog
from .fields import FIELDS


def missingness(cohort, disease: str | None = None) -> pd.DataFrame:
    """Per contract field: present in the file, empty cells among the patients it applies
    to (a disease-block field counts only that disease's patients), and the criteria
    reading it. With `disease`, only that disease's patients and its fields."""
    catalog = default_catalog()
    frame = cohort.frame
    diseases = frame["disease"].astype("string") if "disease" in frame else pd.Series(pd.NA, index=frame.index)
    rows = []
    for f in FIELDS:
        if disease is not None and f.block not in ("common", disease):
            continue
        scope = f.block if f.block != "common" else disease
        mask = np.ones(len(frame), bool) if scope is None else (diseases == scope).fillna(False).to_numpy(bool)
        n = int(mask.sum())
        present = f.name in cohort.present and f.name in frame
        missing = int(frame[f.name].isna().to_numpy(bool)[mask].sum()) if present else n
        rows.append({
            "field": f.name, "label": f.title, "block": f.block, "present": present,
            "applicable": n, "missing": missing, "missing_pct": 100.0 * missing / n if n else 0.0,
            "criteria": ", ".join(catalog.units_reading_field(f.name)),
        })
    return pd.DataFrame(rows)
