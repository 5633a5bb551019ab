"""State shared by every page: the loaded cohort, the active scenario, the disease filter.

The cohort and its Evaluator are held once per server process (`st.cache_resource`)
and shared by all browser sessions; a session keeps only small things: which
cohort it looks at, its scenario as a plain dict, its filter.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import streamlit as st

from eligibility.catalog import Catalog, default_catalog
from eligibility.evaluate import Evaluation, Evaluator
from eligibility.loader import Cohort, CohortError, load_cohort
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

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "data" / "cohort.parquet"
BUNDLED_KEY = "bundled"


@dataclass
class Loaded:
    key: str
    name: str
    cohort: Cohort
    evaluator: Evaluator

    @cached_property
    def issue_counts(self) -> dict[str, int]:
        """Problems per severity, counted once per loaded file (not on every rerun)."""
        counts: dict[str, int] = {}
        for issue in self.cohort.issues:
            counts[issue.severity] = counts.get(issue.severity, 0) + 1
        return counts

    @cached_property
    def report(self):
        """The validation report as a table, built once per loaded file."""
        return self.cohort.report_frame()

    def missingness(self, disease: str | None):
        """quality.missingness per disease filter, computed once per loaded file."""
        cache = self.__dict__.setdefault("_missingness", {})
        if disease not in cache:
            cache[disease] = missingness(self.cohort, disease)
        return cache[disease]


@st.cache_resource(show_spinner=False)
def _store() -> dict:
    """Process-wide registry of loaded cohorts (key → Loaded) and a lock for it."""
    return {"lock": threading.Lock(), "cohorts": {}, "evaluations": {}}


def _register(key: str, name: str, cohort: Cohort) -> Loaded:
    store = _store()
    with store["lock"]:
        if key not in store["cohorts"]:
            # Keep the bundled cohort and the two most recent uploads.
            uploads = [k for k in store["cohorts"] if k != BUNDLED_KEY]
            for old in uploads[:-2]:
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
    return _store()["cohorts"].get(key)


def load_upload(name: str, data: bytes) -> Loaded:
    """Load an uploaded file (progress shown); raises CohortError with a plain message."""
    key = "upload:" + hashlib.sha256(data).hexdigest()[:16]
    existing = loaded(key)
    if existing:
        return existing
    bar = st.sidebar.progress(0.0, text=f"Reading {name}…")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        cohort = load_cohort(data, filename=name, progress=progress)
    finally:
        bar.empty()
    return _register(key, name, cohort)


def catalog() -> Catalog:
    return default_catalog()


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
                st.session_state[SCENARIO_KEY] = sc.model_dump(include={"name", "parameters", "disabled"})
            except ScenarioError as e:
                st.session_state["scenario_error"] = f"The scenario in the link was not applied: {e}"
    return st.session_state[SCENARIO_KEY]


def set_scenario(data: dict) -> None:
    st.session_state[SCENARIO_KEY] = {
        "name": data.get("name", ""),
        "parameters": dict(data.get("parameters", {})),
        "disabled": list(data.get("disabled", [])),
    }


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
    if data["parameters"] or data["disabled"]:
        st.query_params["s"] = encode_for_url(Scenario.model_validate(data))
    elif "s" in st.query_params:
        del st.query_params["s"]


@dataclass
class Context:
    """What a page needs: the cohort, the protocol baseline and the active scenario."""

    data: Loaded
    scenario: Resolved
    base: Evaluation
    current: Evaluation
    disease: str | None  # the sidebar's disease filter; None = all

    @property
    def cohort(self) -> Cohort:
        return self.data.cohort

    @property
    def is_baseline(self) -> bool:
        return self.scenario == self.base.scenario

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
        return f"This file cannot be used: {e}. The previous cohort is still loaded."
    return f"This file cannot be used ({type(e).__name__}). The previous cohort is still loaded."


# -- helpers every page uses ------------------------------------------------------------

_log = logging.getLogger("eligibility.dashboard")


@contextmanager
def guard(what: str):
    """Show a plain message instead of a traceback if one panel fails; the rest still renders."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - never show users a traceback
        # Server log: where it failed, without the message (it may quote patient values).
        _log.error("%s failed: %s\n%s", what, type(e).__name__, "".join(traceback.format_tb(e.__traceback__)))
        st.error(f"Could not show {what} ({type(e).__name__}). The rest of the page is unaffected.",
                 icon=":material/error:")


def cohort_label(ctx: Context) -> str:
    return "bundled synthetic cohort" if ctx.data.key == BUNDLED_KEY else ctx.data.name


def memo(ctx: Context, key: tuple, build):
    """Memoise a page aggregate with the (process-wide memoised) evaluation it derives from,
    so a rerun that changes nothing in the scenario recomputes nothing."""
    store = ctx.current._memo
    if key not in store:
        store[key] = build()
    return store[key]


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
