"""Chart review: which fields to collect for pending patients (and those eligible on assessed
criteria only), ranked, and per patient; the xlsx template to fill, for download.
Merge the filled sheet back in the sidebar (Chart review)."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as S
from app_pages._access import download_button
from app_pages._shared import cohort_label, guard
from eligibility.textsafe import markdown_literal as lit
from eligibility.worklist import build_worklist
from eligibility.worklist_template import template_bytes


def worklist(ctx: S.Context):
    return S.memo(ctx, ("page:worklist",),
                  lambda: build_worklist(ctx.cohort, ctx.scenario, ctx.data.evaluator))


ctx = S.context()
st.title("Chart review worklist")
st.caption(f"Cohort **{lit(cohort_label(ctx))}** · "
           + ("protocol as registered" if ctx.is_baseline
              else f"what-if scenario “{lit(ctx.scenario.name or 'What-if')}”"))

if ctx.aggregate_only:  # each pending patient's deciding fields come from their own values
    S.unavailable("the chart-review worklist (it reads each pending patient's values)")
    st.stop()

with guard("the worklist"):
    with st.spinner("Finding the fields that decide each patient's status…"):
        wl = worklist(ctx)
    patients = wl.patients
    if ctx.disease is not None:
        patients = patients[patients["disease"].astype("string") == ctx.disease]
    if patients.empty:
        st.success("No patient is pending or eligible on assessed criteria only: nothing to collect.",
                    icon=":material/check_circle:")
    else:
        m = st.columns(3)
        m[0].metric("Patients to review", f"{len(patients):,}", border=True,
                    help="Pending, or eligible with applicable criteria not assessed.")
        m[1].metric("Fields to collect", f"{int((wl.fields['patients'] > 0).sum()):,}", border=True)
        m[2].metric("Median fields per patient", f"{patients['n_collect'].median():.0f}", border=True)
        download_button(st, "Download the chart-review template (xlsx)", icon=":material/download:", key="wl_download",
            data=lambda: template_bytes(wl, title=f"Cohort {cohort_label(ctx)}"), on_click="ignore",
            file_name="chart_review_template.xlsx",
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            help="One row per patient below; drop-downs for yes/no and categories; unit in each header. "
                 "Fill it, then merge it in the sidebar (Chart review).")
        for note in wl.notes:
            st.caption(note)
        st.subheader("Fields, ranked by the patients they concern")
        st.dataframe(wl.fields, hide_index=True, key="wl_fields", column_config={
            "field": "Field", "label": "Label", "unit": "Unit", "values": "Allowed values",
            "criteria": st.column_config.TextColumn("Criteria served"),
            "patients": st.column_config.NumberColumn("Patients", help="Patients whose deciding list holds it"),
            "settles_alone": st.column_config.NumberColumn("Settles alone", help="Patients for whom this one "
                                                           "field decides the status"),
            "could_exclude": st.column_config.NumberColumn("Could exclude", help="Patients a value of it alone "
                                                           "would make ineligible"),
        })
        st.subheader("Per patient: the shortest list of fields that decides the status")
        st.dataframe(patients, key="wl_patients", column_config={
            "patient_id": "Patient ID", "disease": "Disease", "status": "Status now",
            "open_criteria": st.column_config.TextColumn("Open criteria"),
            "collect": st.column_config.TextColumn("Collect"),
            "n_collect": st.column_config.NumberColumn("Fields"),
            "could_exclude": st.column_config.TextColumn("Could exclude alone"),
        })
