"""State shared by every page: the loaded cohort, the active scenario, the disease filter.

The cohort and its Evaluator are held once per server process (`st.cache_resource`)
and shared by all browser sessions; a session keeps only small things: which
cohort it looks at, its scenario as a plain dict, its filter.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from eligibility.catalog import Catalog, default_catalog
from eligibility.cohort_store import CohortStore, StoreSettings, over_budget, plain_error, token_for
from eligibility.columns import EMPTY_ROW
from eligibility.evaluate import Evaluation, Evaluator
from eligibility.loader import Cohort, CohortError, load_cohort
from eligibility.pageview import AggregateOnly, MemoryView, PageView, aggregate_only_message
from eligibility.quality import missingness
from eligibility.scenario import (
    Resolved,
    Scenario,
    ScenarioError,
    baseline,
    decode_from_url,
    encode_for_url,
    resolve,
)
from eligibility.screen import results_frame
from eligibility.textsafe import markdown_literal

if TYPE_CHECKING:
    from eligibility.database.dashboard import DatabaseSource

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "data" / "cohort.parquet"
BUNDLED_KEY = "bundled"


UPLOAD_PREFIX = "upload:"
UPLOADS_IN_MEMORY = 2  # the active upload and the previous one; older ones reload from disk on demand


@dataclass
class Loaded:
    """A loaded cohort: in memory (`cohort`, `evaluator`), or a database cohort in aggregate
    mode (`database`: only aggregates and pages of patients leave the engine; `cohort` and
    `evaluator` then raise AggregateOnly)."""

    key: str
    name: str
    held_cohort: Cohort | None
    held_evaluator: Evaluator | None
    database: DatabaseSource | None = None

    @property
    def aggregate_only(self) -> bool:
        return self.held_cohort is None

    @property
    def cohort(self) -> Cohort:
        if self.held_cohort is None:
            raise AggregateOnly(aggregate_only_message("this per-patient view"))
        return self.held_cohort

    @property
    def evaluator(self) -> Evaluator:
        if self.held_evaluator is None:
            raise AggregateOnly(aggregate_only_message("this per-patient view"))
        return self.held_evaluator

    @property
    def n_rows(self) -> int:
        """Rows of the input (blank file rows included)."""
        if self.database is not None and self.held_cohort is None:
            return self.database.n_rows
        return len(self.cohort)

    @property
    def n_patients(self) -> int:
        """Rows that are patients (the database engine keeps every row as a patient)."""
        if self.database is not None and self.held_cohort is None:
            return self.database.n_rows
        return self.evaluator.columns.n_patients

    @property
    def present(self) -> frozenset[str]:
        if self.database is not None and self.held_cohort is None:
            return frozenset(self.database.db.present)
        return frozenset(self.cohort.present)

    @property
    def issues(self) -> list:
        if self.database is not None and self.held_cohort is None:
            return self.database.db.issues
        return self.cohort.issues

    @property
    def token(self) -> str | None:
        """The upload's content token (the URL's `c`), None for the bundled cohort."""
        return self.key[len(UPLOAD_PREFIX):] if self.key.startswith(UPLOAD_PREFIX) else None

    @cached_property
    def issue_counts(self) -> dict[str, int]:
        """Problems per severity, counted once per loaded file (not on every rerun)."""
        counts: dict[str, int] = {}
        for issue in self.issues:
            counts[issue.severity] = counts.get(issue.severity, 0) + 1
        return counts

    @cached_property
    def report(self):
        """The validation report as a table, built once per loaded file."""
        import pandas as pd

        from eligibility.loader import ISSUE_COLUMNS

        data = {col: pd.Series([getattr(i, col) for i in self.issues], dtype=object) for col in ISSUE_COLUMNS}
        data["row"] = data["row"].astype("Int64")
        return pd.DataFrame(data, columns=list(ISSUE_COLUMNS))

    def missingness(self, disease: str | None):
        """quality.missingness per disease filter, computed once per loaded file (in the
        engine for a database cohort in aggregate mode)."""
        if self.database is not None and self.held_cohort is None:
            return self.database.missingness(disease)
        cache = self.__dict__.setdefault("_missingness", {})
        if disease not in cache:
            cache[disease] = missingness(self.cohort, disease)
        return cache[disease]


@st.cache_resource(show_spinner=False)
def _store() -> dict:
    """Process-wide registry of loaded cohorts (key → Loaded) and a lock for it."""
    return {"lock": threading.Lock(), "cohorts": {}, "evaluations": {}}


@st.cache_resource(show_spinner=False)
def disk_store() -> CohortStore:
    """Uploaded files on disk by content hash (settings from the environment)."""
    return CohortStore(StoreSettings.from_env())


def _register(key: str, name: str, cohort: Cohort) -> Loaded:
    store = _store()
    with store["lock"]:
        if key not in store["cohorts"]:
            # Keep the bundled cohort and the most recently used uploads in memory.
            uploads = [k for k in store["cohorts"] if k != BUNDLED_KEY]
            for old in uploads[: max(0, len(uploads) - UPLOADS_IN_MEMORY + 1)]:
                del store["cohorts"][old]
                store["evaluations"] = {k: v for k, v in store["evaluations"].items() if k[0] != old}
            store["cohorts"][key] = Loaded(key, name, cohort, Evaluator.for_cohort(cohort))
        return store["cohorts"][key]


def bundled() -> Loaded:
    store = _store()
    if BUNDLED_KEY not in store["cohorts"]:
        _register(BUNDLED_KEY, BUNDLED.name, load_cohort(BUNDLED))
    return store["cohorts"][BUNDLED_KEY]


def loaded(key: str) -> Loaded | None:
    store = _store()
    with store["lock"]:
        hit = store["cohorts"].get(key)
        if hit is not None and key != BUNDLED_KEY:  # most recently used last
            store["cohorts"][key] = store["cohorts"].pop(key)
    return hit


def load_upload(name: str, data: bytes) -> Loaded:
    """Load an uploaded file (progress shown) and keep it on disk by content hash;
    raises CohortError with a plain message (also for a file over the size budget)."""
    key = UPLOAD_PREFIX + token_for(data)
    existing = loaded(key)
    if existing:
        disk_store().put(name, data)  # refreshes its age
        return existing
    problem = over_budget(name, data, disk_store().settings.budget_bytes)
    if problem:
        raise CohortError(problem)
    loaded_now = _read(name, data, key)
    disk_store().put(name, data)
    return loaded_now


def from_token(token: str) -> Loaded | None:
    """The upload a link's `c` token names: from memory, else re-read from the disk store;
    None if the server no longer holds it (never another cohort in its place)."""
    key = UPLOAD_PREFIX + token
    hit = loaded(key)
    if hit is not None:
        return hit
    stored = disk_store().get(token)
    if stored is None:
        return None
    name, data = stored
    try:
        return _read(name, data, key)
    except Exception:  # noqa: BLE001 - a stored file that no longer reads is as good as gone
        return None


def _read(name: str, data: bytes, key: str) -> Loaded:
    bar = st.sidebar.progress(0.0, text=f"Reading {markdown_literal(name)}…")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        cohort = load_cohort(data, filename=name, progress=progress)
    finally:
        bar.empty()
    return _register(key, name, cohort)


def load_database(source: str, spark: dict | None = None) -> Loaded:
    """A cohort that stays in DuckDB (a .duckdb file, `duckdb:PATH?table=NAME`, a Parquet
    folder) or Spark (`spark` settings from secrets): every what-if runs in the engine."""
    key = "database:" + source
    existing = loaded(key)
    if existing:
        return existing
    from eligibility.database.backend import connect
    from eligibility.database.dashboard import open_for_dashboard

    con = connect("spark", **spark) if spark is not None else connect("duckdb")
    opened = open_for_dashboard(con, source)
    name = Path(source.split("?")[0]).name
    if isinstance(opened, tuple):  # small enough: typed values in memory, every page feature
        entry = Loaded(key, name, *opened)
    else:  # aggregate mode: nothing per patient leaves the engine but pages of patients
        entry = Loaded(key, name, None, None, opened)
    store = _store()
    with store["lock"]:
        store["cohorts"][key] = entry
    return store["cohorts"][key]


def catalog() -> Catalog:
    return default_catalog()


def view(current: Loaded, resolved: Resolved) -> PageView:
    """The aggregates of a cohort under a scenario: an in-memory evaluation's, or (aggregate
    mode) the database's, computed there and cached per scenario."""
    if current.database is not None and current.aggregate_only:
        return current.database.view(resolved)
    return MemoryView(evaluation(current, resolved), current.cohort.frame)


def evaluation(current: Loaded, resolved: Resolved) -> Evaluation:
    """Evaluation of a cohort under a scenario, memoised process-wide (with its attribution memo)."""
    store = _store()
    key = (current.key, resolved.key)
    with store["lock"]:
        hit = store["evaluations"].get(key)
    if hit is not None:
        return hit
    ev = current.evaluator.evaluate(resolved)
    with store["lock"]:
        store["evaluations"][key] = ev
        while len(store["evaluations"]) > 24:
            store["evaluations"].pop(next(iter(store["evaluations"])))
    return ev


# -- per-session state -------------------------------------------------------------------

SCENARIO_KEY = "scenario"  # session_state: {"name", "parameters", "disabled"}


def scenario_dict() -> dict:
    if SCENARIO_KEY not in st.session_state:
        st.session_state[SCENARIO_KEY] = {"name": "", "parameters": {}, "disabled": []}
        token = st.query_params.get("s")
        if token:
            try:
                sc = decode_from_url(token)
                resolve(sc)
                set_scenario(sc.model_dump(include={"name", "parameters", "disabled", "readings"}))
            except ScenarioError as e:
                st.session_state["scenario_error"] = f"The scenario in the link was not applied: {e}"
    return st.session_state[SCENARIO_KEY]


def set_scenario(data: dict) -> None:
    st.session_state[SCENARIO_KEY] = {
        "name": data.get("name", ""),
        "parameters": dict(data.get("parameters", {})),
        "disabled": list(data.get("disabled", [])),
    }
    if data.get("readings"):
        st.session_state[SCENARIO_KEY]["readings"] = dict(data["readings"])


def active_scenario() -> Resolved:
    """The session's scenario, validated; falls back to the protocol if it is invalid."""
    data = scenario_dict()
    try:
        return resolve(Scenario.model_validate(data))
    except (ScenarioError, ValueError) as e:
        st.session_state["scenario_error"] = str(e)
        return baseline()


def sync_url() -> None:
    """Encode a non-default scenario in the URL so that a link reproduces the view."""
    data = scenario_dict()
    if data["parameters"] or data["disabled"] or data.get("readings"):
        st.query_params["s"] = encode_for_url(Scenario.model_validate(data))
    elif "s" in st.query_params:
        del st.query_params["s"]


@dataclass
class Context:
    """What a page needs: the cohort, the protocol baseline and the active scenario.

    `base_view` / `view` give the aggregates in either mode; `base` / `current` (the
    per-patient evaluations) raise AggregateOnly for a database cohort in aggregate mode."""

    data: Loaded
    scenario: Resolved
    base_view: PageView
    view: PageView
    disease: str | None  # the sidebar's disease filter; None = all

    @property
    def base(self) -> Evaluation:
        return self.base_view.evaluation

    @property
    def current(self) -> Evaluation:
        return self.view.evaluation

    @property
    def aggregate_only(self) -> bool:
        return self.view.aggregate_only

    @property
    def cohort(self) -> Cohort:
        return self.data.cohort

    @property
    def is_baseline(self) -> bool:
        return self.scenario == self.base_view.scenario

    @property
    def group(self) -> str:
        return self.disease or "All"


CONTEXT_KEY = "_context"


def set_context(ctx: Context) -> None:
    st.session_state[CONTEXT_KEY] = ctx


def context() -> Context:
    """The context app.py built for this run (pages call this first)."""
    return st.session_state[CONTEXT_KEY]


def cohort_error_message(e: Exception) -> str:
    if isinstance(e, CohortError):
        return f"This file cannot be used: {plain_error(str(e))}. The previous cohort is still loaded."
    return ("This file cannot be used: it could not be read as a CSV, Parquet or Excel (xlsx) cohort. "
            "The previous cohort is still loaded.")


# -- helpers every page uses ------------------------------------------------------------

_log = logging.getLogger("eligibility.dashboard")


def unavailable(what: str) -> None:
    """The plain note shown instead of a section that needs per-patient values a database
    cohort in aggregate mode keeps in the engine."""
    st.info(aggregate_only_message(what), icon=":material/database:")


def stop_if_suppressed_aggregate(ctx: Context, title: str) -> None:
    """Small-cell suppression builds its release from per-patient evaluations: for a database
    cohort in aggregate mode the page says so and stops (nothing unsuppressed is drawn)."""
    if ctx.aggregate_only:
        st.title(title)
        unavailable("the small-cell suppressed view of the counts")
        st.stop()


@contextmanager
def guard(what: str):
    """Show a plain message instead of a traceback if one panel fails; the rest still renders.
    A section that needs per-patient values of a database cohort in aggregate mode says so."""
    try:
        yield
    except AggregateOnly:
        unavailable(what)
    except Exception as e:  # noqa: BLE001 - never show users a traceback
        # Server log: where it failed, without the message (it may quote patient values).
        _log.error("%s failed: %s\n%s", what, type(e).__name__, "".join(traceback.format_tb(e.__traceback__)))
        st.error(f"Could not show {what} ({type(e).__name__}). The rest of the page is unaffected.",
                 icon=":material/error:")


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md_escape(text) -> str:
    """User text (file, patient or scenario names) made literal inside markdown: every ASCII
    punctuation character is backslash-escaped, so nothing becomes a link, image or format."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def cohort_label(ctx: Context) -> str:
    """The cohort's name as given (wrap it in textsafe.markdown_literal inside markdown)."""
    return "bundled synthetic cohort" if ctx.data.key == BUNDLED_KEY else ctx.data.name


def memo(ctx: Context, key: tuple, build):
    """Memoise a page aggregate with the (process-wide memoised) evaluation it derives from,
    so a rerun that changes nothing in the scenario recomputes nothing."""
    store = ctx.view.memo
    if key not in store:
        store[key] = build()
    return store[key]


def last_page(name: str, key: tuple, build):
    """A page of patients fetched from the database (aggregate mode), kept for this session
    only — the last one per table — so that pages leafed through do not pile up on the server."""
    slot = f"_last_page_{name}"
    hit = st.session_state.get(slot)
    if hit is not None and hit[0] == key:
        return hit[1]
    page = build()
    st.session_state[slot] = (key, page)
    return page


def results(ctx: Context):
    """Per-patient results of the active scenario in input order."""
    return memo(ctx, ("page:results",), lambda: results_frame(ctx.current, ctx.cohort.frame))


def remember(**defaults) -> None:
    """Keep these widgets' values when the user visits another page and comes back
    (Streamlit forgets a widget's state once it is not drawn). Call before drawing the
    widgets, give them no `value=` (their first value is the default given here) and
    `on_change=keep(key)`. This is Streamlit's documented shadow-key pattern."""
    for k, default in defaults.items():
        shadow = f"_keep_{k}"
        if shadow not in st.session_state:
            st.session_state[shadow] = default
        st.session_state[k] = st.session_state[shadow]


def keep(key: str):
    """on_change callback that records a remembered widget's new value."""

    def _store() -> None:
        st.session_state[f"_keep_{key}"] = st.session_state[key]

    return _store


def status_notes(ctx: Context) -> None:
    """Shown wherever statuses are: criteria not assessed (prominently), blank rows counted
    apart, and — once the sibling EHR issue adds it — the `assessed k/n` summary."""
    from eligibility.assessment import blank_rows_text

    view = ctx.view
    na = memo(ctx, ("na:summary",), view.not_assessed_summary)
    if na:
        st.warning(f"**{na}.** They neither fail nor make anyone pending, so eligible counts are "
                   "optimistic for them (list on the Overview's Not assessed tab).",
                   icon=":material/visibility_off:")
    from eligibility.screen import RESULT_COLUMNS

    # The per-patient `assessed` column comes with the sibling EHR issue; until then, no work here.
    kn = memo(ctx, ("na:kn",), view.eligible_on_assessed_text) if "assessed" in RESULT_COLUMNS else ""
    if kn:
        st.warning(kn + ".", icon=":material/rule:")
    if ctx.aggregate_only:  # the engine keeps every row as a patient: no blank rows apart
        return
    # Blank rows belong to the cohort, not the scenario: kept with the protocol evaluation.
    blank = ctx.base._memo.get("na:blank")
    if blank is None:
        blank = ctx.base._memo["na:blank"] = blank_rows_text(ctx.base)
    if blank:
        st.info(blank[0].upper() + blank[1:] + ".", icon=":material/check_box_outline_blank:")


def dose_plan():
    """The dose plan from the Dose cohorts page, or the default plan; and its description."""
    from eligibility.dose import DoseSettings

    plan = st.session_state.get("dose_plan")
    text = "the plan from the Dose cohorts page" if plan else "default plan"
    plan = plan or DoseSettings()
    levels = ", ".join(f"{lv.label} {lv.dose:g}" for lv in plan.levels)
    return plan, (f"{text}: {plan.design} design, levels {levels} {plan.dose_unit}, "
                  f"escalation {plan.pooling}")


def dose_levels(ctx: Context, plan):
    """Eligible patients per dose level under a dose plan (the CONSORT flow's last step)."""
    from eligibility.dose import assign_cohorts
    from eligibility.dose.tables import consort_dose_step, screening_frame

    def build():
        frame, statuses = ctx.cohort.frame, ctx.current.status_labels()
        mask = ~ctx.current.to_input_order(ctx.current.group == EMPTY_ROW)
        if ctx.disease is not None:
            mask &= (frame["disease"].astype("string") == ctx.disease).fillna(False).to_numpy(bool)
        frame, statuses = frame[mask], statuses[mask]
        step = consort_dose_step(assign_cohorts(screening_frame(frame, statuses), plan), plan.labels)
        return step.rename(columns={"dose_level": "level", "eligible": "n"})

    return memo(ctx, ("dose:levels", ctx.group, plan.model_dump_json()), build)


def scenario_label(ctx: Context) -> str:
    """'protocol as registered' or the scenario's name (escaped for markdown)."""
    return ("protocol as registered" if ctx.is_baseline
            else f"what-if scenario {markdown_literal(ctx.scenario.name or 'What-if')}")


def scope_text(ctx: Context) -> str:
    from eligibility.fields import DISEASE_NAMES

    return "all diseases" if ctx.disease is None else f"{ctx.disease} ({DISEASE_NAMES[ctx.disease]})"


def download_meta(ctx: Context) -> str:
    """Cohort, scenario, date and protocol version: printed on every chart download."""
    from datetime import UTC, datetime

    from eligibility.report import protocol_version

    cohort = cohort_label(ctx)
    scenario = "protocol as registered" if ctx.is_baseline else f"scenario {ctx.scenario.name or 'What-if'}"
    return (f"Cohort: {cohort} · {scenario} · {scope_text(ctx)} · "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} · {protocol_version()}")


HISTORY_KEY = "scenario_history"  # session_state: earlier scenario dicts, for "Undo last change"


def change_scenario(data: dict) -> None:
    """Set the session's scenario, remembering the previous one for undo."""
    from eligibility.whatif import push_history

    before = dict(scenario_dict())
    set_scenario(data)
    if st.session_state[SCENARIO_KEY] != before:
        st.session_state[HISTORY_KEY] = push_history(st.session_state.get(HISTORY_KEY, []), before)


def undo_scenario() -> bool:
    """Go back to the scenario before the last change; False if there is none."""
    history = st.session_state.get(HISTORY_KEY, [])
    if not history:
        return False
    set_scenario(history[-1])
    st.session_state[HISTORY_KEY] = history[:-1]
    return True
