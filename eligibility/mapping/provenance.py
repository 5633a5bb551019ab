"""Files every importer writes beside the cohort COHORT.EXT (EXT = .csv or .parquet):

- COHORT.provenance.EXT: one row per filled value (PROVENANCE_COLUMNS). A value derived
  from the *absence* of a record (`no`, `none`, `0` months) may have a row whose
  source_table starts with "no matching" and no code (FHIR/Synthea), or no row (OMOP,
  where it would double the table's size);
- COHORT.left-out.EXT: one row per source patient not imported (LEFT_OUT_COLUMNS);
- COHORT.report.EXT: values that could not be used and catalog codes a source lacks
  (REPORT_COLUMNS; kind e.g. unknown_unit, no_number, several_indications,
  code_not_in_vocabulary; patient_id empty for source-wide rows).
"""

from __future__ import annotations

from pathlib import Path

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


LEFT_OUT_COLUMNS: tuple[str, ...] = ("patient_id", "reason")
REPORT_COLUMNS: tuple[str, ...] = ("patient_id", "field", "kind", "detail")


def side_paths(cohort_path) -> dict[str, Path]:
    """provenance / left-out / report paths beside the cohort file, with its extension."""
    out = Path(cohort_path)
    return {k: out.with_name(f"{out.stem}.{k}{out.suffix}") for k in ("provenance", "left-out", "report")}
