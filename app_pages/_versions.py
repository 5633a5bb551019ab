"""Protocol page section: compare the protocol with another version (its YAML files uploaded)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import _shared as S
from app_pages._shared import guard
from eligibility.versions import PROTOCOL_FILES, VersionError, diff_protocols, load_version_texts

MAX_IDS = 50


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:MAX_IDS]) + (f" … (+{len(ids) - MAX_IDS})" if len(ids) > MAX_IDS else "")


def versions_section(ctx: S.Context) -> None:
    st.subheader("Compare with another protocol version")
    st.caption("A version is a folder with criteria.yaml, parameters.yaml and (optionally) readings.yaml. "
               "Upload the files of the other version to see what changes against the protocol shown here, "
               "and which patients of the loaded cohort it gains or loses. "
               "(CLI: python -m eligibility diff-protocol OLD NEW COHORT.)")
    files = st.file_uploader("Files of the other version", type=["yaml", "yml"], accept_multiple_files=True,
                             key="pr_version_files")
    if not files:
        return
    with guard("the protocol comparison"):
        texts = {}
        for f in files:
            name = f.name if f.name.endswith(".yaml") else f.name[:-4] + ".yaml"
            if name not in PROTOCOL_FILES:
                st.error(f"{f.name} is not one of {', '.join(PROTOCOL_FILES)}; it was ignored.")
                continue
            texts[name] = f.getvalue().decode("utf-8-sig", errors="replace")
        try:
            other = load_version_texts(texts, "uploaded version")
        except VersionError as e:
            st.error("The uploaded version cannot be used:")
            st.text(str(e))  # user text: never rendered as markdown
            return
        # A database cohort in aggregate mode: the catalog differences only (the patients gained
        # and lost would evaluate every patient's values in memory under both versions).
        d = diff_protocols(S.catalog(), other, None if ctx.data.aggregate_only else ctx.cohort)
        if d.empty:
            st.success("The uploaded version has the same criteria, parameters and readings.")
        for title, rows in (("Criteria added", d.added), ("Criteria removed", d.removed),
                            ("Criteria changed", d.changed), ("Shared definitions changed", d.definitions),
                            ("Parameters changed", d.parameters),
                            ("Readings changed", d.readings)):
            if rows:
                st.markdown(f"**{title}** ({len(rows)})")
                st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"pr_diff_{title}")
        if ctx.data.aggregate_only:
            S.unavailable("the patients gained and lost under the uploaded version")
        if d.patients is not None:
            st.markdown("**Patients of the loaded cohort** (eligible under this protocol → the uploaded version)")
            shown = d.patients.assign(gained_ids=d.patients["gained_ids"].map(_ids),
                                      lost_ids=d.patients["lost_ids"].map(_ids))
            st.dataframe(shown, hide_index=True, key="pr_diff_patients")
