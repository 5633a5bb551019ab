"""Compatibility imports for pages written before the split (app_pages/screen_failures.py).

The engine functions live in :mod:`eligibility.dose.tables` (next to planning.py) and the
presentation tables in :mod:`eligibility.figures.dose_tables`; import from there.
"""

from eligibility.dose.tables import consort_dose_step, screening_frame

__all__ = ["consort_dose_step", "screening_frame"]
