"""Importers that turn other data shapes into a contract cohort frame.

Each importer returns ``(frame, notes)``: a raw frame in contract column names
(../shared/spec/cohort-fields.md) ready for ``eligibility.loader.validate_frame``,
and a list of plain-text notes (counts and codes only, never patient values)
saying what was converted, left out or could not be read.
"""

from __future__ import annotations

from .synthea import SyntheaError, from_fhir_bundles, from_synthea_csv

__all__ = ["SyntheaError", "from_fhir_bundles", "from_synthea_csv"]
