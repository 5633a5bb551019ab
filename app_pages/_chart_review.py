"""Sidebar: merge a filled chart-review sheet over the loaded cohort."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from eligibility import export
from eligibility.fields import FIELD_BY_NAME
from eligibility.loader import load_cohort
from eligibility.merge import MergeError, merge, read_table, table_from_cohort
from eligibility.textsafe import markdown_literal as lit


def sidebar(current: S.Loaded) -> S.Loaded:
    sb = st.sidebar
    with sb.expander("Chart review", icon=":material/fact_check:"):
        sheet = st.file_uploader("Merge a filled sheet (CSV or xlsx)", type=["csv", "xlsx", "xlsm"],
                                 key="cr_upload", help="patient_id + contract columns, e.g. the template "
                                 "from the Chart review worklist page. Sheet values fill empty fields.")
        override = st.multiselect("Sheet values win over EHR values for", ["all", *FIELD_BY_NAME],
                                  key="cr_override", help="Default: a differing EHR value is kept and the "
                                  "conflict reported.")
        if sheet is not None and st.session_state.get("cr_done") != (sheet.file_id, current.key, tuple(override)):
            try:
                res = merge(table_from_cohort(current.cohort, current.name), read_table(sheet.getvalue(),
                            filename=sheet.name), override="all" if "all" in override else override)
                data = export.to_csv_bytes(res.frame)
                key = "merge:" + hashlib.sha256(data).hexdigest()[:16]
                merged = S.loaded(key) or S._register(key, f"{current.name} + {sheet.name}",
                                                      load_cohort(data, filename="merged.csv"))
                st.session_state["cr_done"] = (sheet.file_id, merged.key, tuple(override))
                st.session_state["cr_result"] = (res.filled, res.conflicts, res.errors + res.notes)
                st.session_state["cohort_key"] = merged.key
                st.rerun()  # the sidebar above names the merged cohort
            except MergeError as e:
                st.session_state["cr_result"] = None
                st.error(lit(e, 600), icon=":material/error:")  # may quote file values: shown literally
        result = st.session_state.get("cr_result")
        if result and st.session_state.get("cr_done", (None, None))[1] == current.key:
            filled, conflicts, messages = result
            st.caption(f"{filled} value(s) filled from the sheet · {len(conflicts)} conflict(s)")
            if len(conflicts):
                st.dataframe(pd.DataFrame(conflicts), hide_index=True, key="cr_conflicts")
            for m in messages:
                st.text(m)
    return current
