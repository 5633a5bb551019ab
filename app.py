"""NCT06614270 eligibility dashboard: router and shared sidebar.

Run with `bash scripts/dashboard.sh` (or `streamlit run app.py`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import _access as A
from app_pages import _shared as S
from app_pages._chart_review import sidebar as chart_review_sidebar
from app_pages._omop_import import sidebar as omop_sidebar
from eligibility.access.roles import Permission
from eligibility.cohort_store import valid_token
from eligibility.fields import DISEASE_NAMES, DISEASES
from eligibility.textsafe import markdown_literal as lit

PAGE_ICON = Path(__file__).resolve().parent / "assets" / "page_icon.png"
PAGES = [
    ("app_pages/overview.py", "Overview", ":material/dashboard:"),
    ("app_pages/screen_failures.py", "Screen failures", ":material/filter_alt:"),
    ("app_pages/what_if.py", "What-if", ":material/tune:"),
    ("app_pages/patients.py", "Patients", ":material/person_search:"),
    ("app_pages/dose_cohorts.py", "Dose cohorts", ":material/science:"),
    ("app_pages/protocol.py", "Protocol", ":material/menu_book:"),
    ("app_pages/worklist.py", "Chart review", ":material/checklist:"),
]
# What a role needs to be served a page (checked on the server: a page the role lacks is not
# registered, so its URL cannot be opened). The count pages draw suppressed aggregates when
# small-cell suppression is on (always for viewers); the patient-level pages are not served then.
PAGE_PERMISSION = {path: Permission.AGGREGATES for path, _, _ in PAGES}
PAGE_PERMISSION["app_pages/patients.py"] = Permission.PATIENT_LEVEL
PAGE_PERMISSION["app_pages/worklist.py"] = Permission.PATIENT_LEVEL


def page_served(path: str) -> bool:
    need = PAGE_PERMISSION[path]
    return A.can(need) and not (need is Permission.PATIENT_LEVEL and A.suppression_on())


def _spark_secrets() -> dict | None:
    """[spark] master = "spark://host:7077" or remote = "sc://host:15002" in secrets.toml."""
    try:
        return dict(st.secrets["spark"]) if "spark" in st.secrets else None
    except Exception:  # noqa: BLE001 - no secrets file: DuckDB
        return None


COHORT_PARAM = "c"  # URL: the uploaded cohort's content token, next to the scenario's `s`


def _cohort_source() -> S.Loaded | None:
    """Sidebar: bundled cohort by default, or an uploaded file. A bad file keeps the previous one.
    None: the link or reload names an uploaded cohort this server no longer holds."""
    sb = st.sidebar
    sb.subheader("Cohort")
    # A rejected file must not stay in the uploader as if loaded: each rejection gets a fresh widget.
    generation = st.session_state.get("cohort_upload_gen", 0)
    upload = None
    if A.can(Permission.UPLOAD):  # uploads (and database/EHR sources) are for admins when sign-in is on
        with sb.container(key="cohort_upload_box"):
            upload = st.file_uploader(
                "Upload a cohort (CSV, Parquet or xlsx)", type=["csv", "txt", "parquet", "xlsx", "xlsm"],
                key="cohort_upload" if generation == 0 else f"cohort_upload_{generation}",
                help="Columns as in the cohort contract (see the Protocol page).",
            )
    if "cohort_key" not in st.session_state:  # a new session: a reload or an opened link
        token = st.query_params.get(COHORT_PARAM)
        if token:
            st.session_state["cohort_key"] = S.UPLOAD_PREFIX + (token if valid_token(token) else "invalid")
    current_key = st.session_state.get("cohort_key", S.BUNDLED_KEY)
    if upload is not None and st.session_state.get("cohort_upload_id") != upload.file_id:
        st.session_state["cohort_upload_id"] = upload.file_id
        try:
            data = S.load_upload(upload.name, upload.getvalue())
            current_key = data.key
            A.cohort_loaded("upload", upload.getvalue(), len(data.cohort))
            st.session_state.pop("cohort_error", None)
        except Exception as e:  # noqa: BLE001 - any unreadable file becomes a message, never a traceback
            st.session_state["cohort_error"] = S.cohort_error_message(e)
            st.session_state["cohort_upload_gen"] = generation + 1
            st.rerun()
    db_source = sb.text_input("…or a database cohort (DuckDB file, Parquet folder)", key="cohort_database",
                              help="Screened where it lives (DuckDB; Spark when [spark] is in secrets.toml).",
                              ) if A.can(Permission.UPLOAD) else None
    if db_source and st.session_state.get("cohort_database_done") != db_source:
        st.session_state["cohort_database_done"] = db_source
        try:
            current_key = S.load_database(db_source.strip(), _spark_secrets()).key
            st.session_state.pop("cohort_error", None)
        except Exception as e:  # noqa: BLE001 - an unusable source becomes a message, never a traceback
            st.session_state["cohort_error"] = S.cohort_error_message(e)
    # An emptied uploader (the user removed the file, or is replacing it) keeps the loaded
    # cohort: only a good new file or the button below changes it.
    current: S.Loaded | None
    if current_key == S.BUNDLED_KEY:
        current = S.bundled()
    elif current_key.startswith(S.UPLOAD_PREFIX):
        current = S.from_token(current_key[len(S.UPLOAD_PREFIX):])
    else:  # an OMOP import or a chart-review merge, held in memory only
        current = S.loaded(current_key)
    st.session_state["cohort_key"] = current_key
    if st.session_state.get("cohort_error"):
        sb.error(lit(st.session_state["cohort_error"], 600), icon=":material/error:")
    if current is None:
        if COHORT_PARAM not in st.query_params and current_key.startswith(S.UPLOAD_PREFIX):
            st.query_params[COHORT_PARAM] = current_key[len(S.UPLOAD_PREFIX):]
        return None
    if current.token:
        st.query_params[COHORT_PARAM] = current.token
    elif COHORT_PARAM in st.query_params:
        del st.query_params[COHORT_PARAM]
    n_err, n_warn = current.issue_counts.get("error", 0), current.issue_counts.get("warning", 0)
    n_empty = current.n_rows - current.n_patients
    if A.suppression_on():  # the cohort's size is shown on the pages, suppressed; no issue counts
        sb.caption(f"**{'bundled synthetic cohort' if current.key == S.BUNDLED_KEY else lit(current.name)}**")
    else:
        sb.caption(f"**{'bundled synthetic cohort' if current.key == S.BUNDLED_KEY else lit(current.name)}** · "
                   f"{current.n_rows - n_empty:,} patients"
                   + (f" · {n_empty:,} empty row{'s, not patients' if n_empty != 1 else ', not a patient'}"
                      if n_empty else "")
                   + f" · {n_err} cell errors · {n_warn} warnings")
    if current.aggregate_only:
        sb.caption("Database cohort in aggregate mode: counts are computed in the database and patients "
                   "come a page at a time; views that need every patient's values say so on their page.")
    if current.key != S.BUNDLED_KEY:
        _use_bundled_button(sb)
    return current


def _use_bundled_button(where) -> None:
    if where.button("Use the bundled cohort", key="use_bundled", icon=":material/undo:"):
        st.session_state["cohort_key"] = S.BUNDLED_KEY
        st.session_state.pop("cohort_error", None)
        if COHORT_PARAM in st.query_params:
            del st.query_params[COHORT_PARAM]
        st.rerun()


def _cohort_unavailable() -> None:
    """A link or reload names an upload the server no longer holds: say so, show nothing else."""
    token = str(st.query_params.get(COHORT_PARAM, ""))
    st.title("This cohort is no longer available")
    st.error("The link names an uploaded cohort "
             + (f"(c={token[:8]}…) " if token else "")
             + "that this server no longer holds: uploads are kept for a limited time and within a disk "
             "limit, and the server may have been restarted elsewhere. No other cohort is shown in its "
             "place. Upload the same file again (the sidebar) to get its numbers back — the link then works "
             "again — or switch to the bundled synthetic cohort.", icon=":material/cloud_off:")
    _use_bundled_button(st)


def _scenario_status() -> None:
    sb = st.sidebar
    sb.subheader("Scenario")
    data = S.scenario_dict()
    if st.session_state.get("scenario_error"):
        sb.warning(lit(st.session_state.pop("scenario_error"), 600))
    n = len(data["parameters"]) + len(data["disabled"]) + len(data.get("readings", {}))
    if n == 0:
        sb.caption("Protocol as registered (no what-if changes).")
    else:
        name = data.get("name") or "What-if"
        sb.caption(f"**{lit(name)}**: {len(data['parameters'])} parameter change(s), "
                   f"{len(data['disabled'])} criterion/part(s) switched off"
                   + (f", {len(data['readings'])} reading(s) switched." if data.get("readings") else "."))
        if sb.button("Reset to protocol", key="reset_scenario", icon=":material/restart_alt:"):
            S.change_scenario({})
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


def build_context() -> S.Context | None:
    current = _cohort_source()
    if current is None:
        return None
    if A.can(Permission.DATA_SOURCES):
        current = omop_sidebar(current)
    if A.can(Permission.UPLOAD) and not current.aggregate_only:  # merging needs the cohort's values
        current = chart_review_sidebar(current)
    _scenario_status()
    A.scenario_applied(S.scenario_dict())
    disease = _disease_filter()
    resolved = S.active_scenario()
    base = S.view(current, S.baseline())
    ev = S.view(current, resolved)
    ctx = S.Context(current, resolved, base, ev, disease)
    S.set_context(ctx)
    S.sync_url()
    return ctx


def main() -> None:
    # A bundled image: a :material/...: page icon makes every browser fetch it from a font CDN.
    st.set_page_config(page_title="NCT06614270 eligibility", page_icon=str(PAGE_ICON), layout="wide")
    A.gate()  # stops here until signed in with a role (when sign-in is configured)
    nav = st.navigation([st.Page(path, title=title, icon=icon) for path, title, icon in PAGES
                         if page_served(path)])
    st.sidebar.title("NCT06614270 screening")
    A.sidebar_identity()
    A.suppression_sidebar()
    if build_context() is None:
        _cohort_unavailable()
        return
    A.page_viewed(nav.title)
    nav.run()


if __name__ == "__main__":
    main()
