"""What-if page sections for amendments: contested readings, and the smallest relaxation to a target."""

from __future__ import annotations

from app_pages import _shared as S
from app_pages._readings import readings_section
from app_pages._relax import relax_section


def amendment_sections(ctx: S.Context) -> None:
    readings_section(ctx)
    relax_section(ctx)
