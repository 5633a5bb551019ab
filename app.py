"""NCT06614270 eligibility dashboard: router and shared sidebar.

Run with `bash scripts/dashboard.sh` (or `streamlit run app.py`).
"""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as S
from eligibility.fields import DISEASE_NAMES, DISEASES

PAGES = [
    ("app_pages/overview.py", "Overview", ":material/dashboard:"),
    ("app_pages/screen_failures.py", "Screen failures", ":material/filter_alt:"),
    ("app_pages/what_if.py", "What-if", ":material/tune:"),
    ("app_pages/patients.py", "Patients", ":material/person_search:"),
    ("app_pages/dose_cohorts.py", "Dose cohorts", ":material/science:"),
    ("app_pages/protocol.py", "Protocol", ":material/menu_book:"),
]


def _cohort_source() -> S.Loaded:
    """Sidebar: bundled cohort by default, or an uploaded file. A bad file keeps the previous one."""
    sb = st.sidebar
    sb.subheader("Cohort")
    upload = sb.file_uploader(
        "Upload a cohort (CSV, Parquet or xlsx)", type=["csv", "txt", "parquet", "xlsx", "xlsm"],
        key="cohort_upload", help="Columns as in the cohort contract (see the Protocol page).",
    )
    current_key = st.session_state.get("cohort_key", S.BUNDLED_KEY)
    if upload is not None and st.session_state.get("cohort_upload_id") != upload.file_id:
        st.session_state["cohort_upload_id"] = upload.file_id
        try:
            data = S.load_upload(upload.name, upload.getvalue())
            current_key = data.key
            st.session_state.pop("cohort_error", None)
        except Exception as e:  # noqa: BLE001 - any unreadable file becomes a message, never a traceback
            st.session_state["cohort_error"] = S.cohort_error_message(e)
    # An emptied uploader (the user removed the file, or is replacing it) keeps the loaded
    # cohort: only a good new file or the button below changes it.
    current = S.loaded(current_key)
    if current is None:
        if current_key != S.BUNDLED_KEY:  # released to make room for newer uploads on this server
            st.session_state["cohort_error"] = ("Your uploaded cohort is no longer held by the server "
                                                "(newer uploads replaced it); upload it again.")
        current = S.bundled()
    st.session_state["cohort_key"] = current.key
    if st.session_state.get("cohort_error"):
        sb.error(st.session_state["cohort_error"], icon=":material/error:")
    n_err, n_warn = current.issue_counts.get("error", 0), current.issue_counts.get("warning", 0)
    label = "bundled synthetic cohort" if current.key == S.BUNDLED_KEY else current.name
    sb.caption(f"**{label}** · {len(current.cohort):,} patients · {n_err} cell errors · {n_warn} warnings")
    if current.key != S.BUNDLED_KEY and sb.button("Use the bundled cohort", key="use_bundled",
                                                  icon=":material/undo:"):
        st.session_state["cohort_key"] = S.BUNDLED_KEY
        st.session_state.pop("cohort_error", None)
        st.rerun()
    return current


def _scenario_status() -> None:
    sb = st.sidebar
    sb.subheader("Scenario")
    data = S.scenario_dict()
    if st.session_state.get("scenario_error"):
        sb.warning(st.session_state.pop("scenario_error"))
    n = len(data["parameters"]) + len(data["disabled"])
    if n == 0:
        sb.caption("Protocol as registered (no what-if changes).")
    else:
        name = data.get("name") or "What-if"
        sb.caption(f"**{name}**: {len(data['parameters'])} parameter change(s), "
                   f"{len(data['disabled'])} criterion/part(s) switched off.")
        if sb.button("Reset to protocol", key="reset_scenario", icon=":material/restart_alt:"):
            S.set_scenario({})
            for k in [k for k in st.session_state if str(k).startswith("wi_")]:
                del st.session_state[k]
            st.rerun()


def _disease_filter() -> str | None:
    """Sidebar disease filter; kept in the URL (`?d=SSc`) so that a shared link opens filtered."""
    options = ["All", *DISEASES]
    if "disease_filter" not in st.session_state and st.query_params.get("d") in DISEASES:
        st.session_state["disease_filter"] = st.query_params["d"]
    choice = st.sidebar.selectbox(
        "Disease", options, key="disease_filter",
        format_func=lambda d: "All diseases" if d == "All" else f"{d} — {DISEASE_NAMES[d]}",
    )
    if choice == "All":
        if "d" in st.query_params:
            del st.query_params["d"]
        return None
    st.query_params["d"] = choice
    return choice


def build_context() -> S.Context:
    current = _cohort_source()
    _scenario_status()
    disease = _disease_filter()
    resolved = S.active_scenario()
    base = S.evaluation(current, S.baseline())
    ev = S.evaluation(current, resolved)
    ctx = S.Context(current, resolved, base, ev, disease)
    S.set_context(ctx)
    S.sync_url()
    return ctx


def main() -> None:
    st.set_page_config(page_title="NCT06614270 eligibility", page_icon=":material/fact_check:", layout="wide")
    nav = st.navigation([st.Page(path, title=title, icon=icon) for path, title, icon in PAGES])
    st.sidebar.title("NCT06614270 screening")
    build_context()
    nav.run()


if __name__ == "__main__":
    main()
