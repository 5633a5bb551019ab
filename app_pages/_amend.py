"""What-if page sections for amendments: contested readings, and the smallest relaxation to a target."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as S
from app_pages._readings import readings_section
from app_pages._relax import relax_section


def amendment_sections(ctx: S.Context) -> None:
    if ctx.aggregate_only:  # both run one evaluation per alternative over every patient's outcomes
        readings_section(ctx, counts=False, left_out="for a database cohort in aggregate mode")
        st.subheader("Smallest relaxation that reaches a target")
        S.unavailable("the search for the smallest relaxation (it evaluates many scenarios per patient)")
        return
    readings_section(ctx)
    relax_section(ctx)
