"""Importers that turn other data shapes into a contract cohort frame.

Each importer returns an ``ImportResult``: a raw frame in contract column names
(../shared/spec/cohort-fields.md) ready for ``eligibility.loader.validate_frame``,
the provenance of every value, the patients left out (ID and reason), and
plain-text notes and warnings (counts and codes, never patient values).
Codes are resolved through the mapping catalog (``eligibility.mapping``).
"""

from __future__ import annotations

from .events import ImportResult
from .fhir import FhirError, from_fhir
from .synthea import SyntheaError, from_synthea_csv

__all__ = ["FhirError", "ImportResult", "SyntheaError", "from_fhir", "from_synthea_csv"]
