"""The mapping catalog: which coded EHR data fills which cohort contract field.

One catalog (``eligibility/protocol/mapping.yaml``, validated by
:mod:`eligibility.mapping.models`) serves every importer: OMOP CDM
(``import-omop``), FHIR R4 and Synthea CSV. Stable API for importers::

    from eligibility.mapping import load_mapping, convert, field_for_code

    m = load_mapping()                    # MappingCatalog (cached, immutable)
    m.fields                              # the rules, one per contract field
    rule_for("hemoglobin_g_l")            # LabRule(unit="g/L", lookback_days=90, codes=...)
    field_for_code("http://loinc.org", "718-7")
        # -> (CodeUse(field="hemoglobin_g_l", category="", role="code", code=Code(...)),)
    field_for_code("SNOMED", "195353004")  # a FHIR system URI or an OMOP vocabulary_id
        # -> disease=AAV and aav_subtype=GPA (a code can fill several fields)
    convert(6.1, "g/dL", "hemoglobin_g_l")  # -> 61.0; None when the unit is not
                                          #    listed for that field (report it, never guess)
    vocabulary_of("http://snomed.info/sct")  # -> "SNOMED"; system_of("SNOMED") the reverse
    route_of("http://snomed.info/sct", "26643006")  # -> "oral" (drug rules with `route`)

Matching rules every importer applies (the catalog's comments give the why):

- lab (``LabRule``): the latest value on or before the as-of date and within
  ``lookback_days``; if that latest value has an unknown unit or no number the
  cell stays empty and is reported (an older value is not substituted);
- condition (``ConditionRule``): yes when a code is recorded on or before the
  as-of date and, with ``lookback_years``, its end (or, with no end, its start
  when the source says it resolved) is within that window; an ongoing record
  (no end) counts. Absent: ``absent`` (``no`` / ``empty``; default in
  ``defaults.absent``) for a person with data; FHIR: clinicalStatus
  inactive/resolved ends the condition at abatement, verificationStatus
  refuted/entered-in-error ignores it;
- category/disease: the most recently recorded category; several are reported;
- malignancy: years since the latest non-excepted diagnosis (else the latest
  excepted one, with ``malignancy_excepted`` yes);
- drug: ``ever`` (yes/no) or ``days_since`` the end of the latest exposure (0 while
  ongoing), optionally restricted by ``route``; ``drug_list`` gives the
  ``;``-joined contract categories (``none`` when a person with data has none);
  ``drug_span`` the months covered by the union of the listed fields' exposures.
  An exposure without a route counts for every ``route`` rule when
  ``defaults.route_unknown`` is ``any``.

FHIR has no code hierarchy: it matches the listed codes exactly (the catalog
lists common descendants); OMOP also expands ``Code.expand`` codes through
``concept_ancestor`` and maps non-standard codes through 'Maps to'.
Provenance rows follow :data:`eligibility.mapping.provenance.PROVENANCE_COLUMNS`; the
files beside a cohort (provenance, left-out, report) are named by
:func:`eligibility.mapping.provenance.side_paths`.
"""

from __future__ import annotations

from .catalog import (
    CodeUse,
    field_for_code,
    load_mapping,
    route_of,
    rule_for,
    system_of,
    vocabulary_of,
)
from .models import Code, MappingCatalog
from .provenance import (
    LEFT_OUT_COLUMNS,
    PROVENANCE_COLUMNS,
    REPORT_COLUMNS,
    empty_provenance,
    side_paths,
)
from .units import convert, factor

__all__ = [
    "LEFT_OUT_COLUMNS",
    "PROVENANCE_COLUMNS",
    "REPORT_COLUMNS",
    "side_paths",
    "Code",
    "CodeUse",
    "MappingCatalog",
    "convert",
    "empty_provenance",
    "factor",
    "field_for_code",
    "load_mapping",
    "route_of",
    "rule_for",
    "system_of",
    "vocabulary_of",
]
