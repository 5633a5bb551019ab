"""Sidebar: import candidates from an OMOP CDM (DuckDB file); provenance in the patient explanation."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from eligibility.export import to_parquet_bytes
from eligibility.importers.omop import OmopError, connect, import_omop
from eligibility.loader import load_cohort
from eligibility.textsafe import markdown_literal as lit

PROVENANCE_LABELS = {
    "field": "Field", "value": "Value", "source_table": "Source table", "vocabulary_id": "Vocabulary",
    "concept_code": "Code", "date": "Date", "original_value": "Original value", "original_unit": "Original unit",
}


def _provenance_store() -> dict:
    return S._store().setdefault("omop_provenance", {})


def summary(result) -> pd.DataFrame:
    """Per filled field: patients with a value and the tables the values came from."""
    tables = result.provenance.groupby("field")["source_table"].agg(lambda t: ", ".join(sorted(set(t))))
    rows = [(f, n, tables.get(f, "person" if f in ("age_years", "sex") else "(absence of records)"))
            for f, n in result.filled.items()]
    return pd.DataFrame(rows, columns=["Field", "Patients with a value", "From"])


def sidebar(current: S.Loaded) -> S.Loaded:
    with st.sidebar.expander("OMOP CDM (warehouse)", icon=":material/database:"):
        path = st.text_input("DuckDB CDM file on this server", key="omop_path",
                             placeholder="/data/cdm.duckdb")
        as_of = st.date_input("Screening date (as-of)", value=dt.date.today(), key="omop_as_of")
        if st.button("Import candidates", key="omop_import", icon=":material/download:", disabled=not path.strip()):
            try:
                with st.spinner("Reading the CDM in the database…"):
                    result = import_omop(connect(path.strip()), as_of=as_of)
                data = to_parquet_bytes(result.cohort)
                key = "omop:" + hashlib.sha256(data).hexdigest()[:16]
                loaded = S.loaded(key) or S._register(key, f"OMOP {Path(path.strip()).name}",
                                                      load_cohort(data, filename="omop.parquet"))
                _provenance_store()[key] = result.provenance
                st.session_state["omop_result"] = (key, summary(result), result.left_out, result.notes)
                st.session_state["cohort_key"] = key
                current = loaded
            except OmopError as e:
                st.session_state["omop_result"] = None
                st.error(lit(e, 600), icon=":material/error:")  # may quote file values: shown literally
        res = st.session_state.get("omop_result")
        if res and res[0] == current.key:
            _key, table, left_out, notes = res
            st.caption(f"{len(current.cohort):,} imported · {len(left_out):,} left out")
            st.dataframe(table, hide_index=True, key="omop_summary")
            if len(left_out):
                st.dataframe(left_out, hide_index=True, key="omop_left_out")
            for note in notes:
                st.text(note)
    return current


def provenance_panel(ctx: S.Context, patient_id: str) -> None:
    """Where each value of this patient came from (OMOP imports only)."""
    prov = _provenance_store().get(ctx.data.key)
    if prov is None:
        return
    rows = prov[prov["patient_id"] == patient_id]
    st.markdown("**Where the values come from** (OMOP CDM)")
    if rows.empty:
        st.caption("No provenance rows: values of this patient come from the absence of records.")
        return
    st.dataframe(rows.drop(columns="patient_id").rename(columns=PROVENANCE_LABELS), hide_index=True,
                 key="pt_provenance")
