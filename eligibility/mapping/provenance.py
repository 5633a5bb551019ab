"""The provenance table every importer writes beside the cohort: one row per filled value."""

from __future__ import annotations

import pandas as pd

# column -> pandas dtype. `value` is the contract value as written to the cohort
# (text); `original_value`/`original_unit` what the source held; `date` the
# source record's date (ISO); source_table the OMOP table or FHIR resource type.
PROVENANCE_COLUMNS: dict[str, str] = {
    "patient_id": "string",
    "field": "string",
    "value": "string",
    "source_table": "string",
    "vocabulary_id": "string",
    "concept_code": "string",
    "date": "string",
    "original_value": "string",
    "original_unit": "string",
}


def empty_provenance() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in PROVENANCE_COLUMNS.items()})
