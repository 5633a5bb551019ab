"""Shared helpers for the AppTest (headless Streamlit) tests of the pages."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
BUNDLED = ROOT / "data" / "cohort.parquet"
TIMEOUT = 60


def open_page(page: str, *, query: dict | None = None, scenario: dict | None = None,
              disease: str | None = None) -> AppTest:
    """Run app.py (optionally with URL query, session scenario, sidebar disease), then go to `page`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    if scenario is not None:
        at.session_state["scenario"] = {"name": "", "parameters": {}, "disabled": [], **scenario}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if disease is not None:
        at.sidebar.selectbox(key="disease_filter").select(disease).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    if page.endswith("what_if.py"):
        open_what_if_controls(at)
    return at


def open_what_if_controls(at: AppTest) -> AppTest:
    """Open every expander of the What-if controls (their widgets are drawn only while open),
    as a planner clicking each one would."""
    from eligibility.catalog import default_catalog
    from eligibility.whatif import control_groups

    cat = default_catalog()
    keys = [f"wi_x_{g}" for g in control_groups(cat)]
    keys += [f"wi_xc_{block}" for block in dict.fromkeys(c.block for c in cat.criteria)]
    at.session_state["wi__open"] = dict.fromkeys(keys, True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def as_int(text) -> int:
    """A shown count ('1,234', '+12', '−3') as an int."""
    return int(str(text).replace(",", "").replace("+", "").replace("−", "-").strip())


def unescape(text: str) -> str:
    """Markdown source as the reader sees it: backslash escapes (user text is escaped) removed."""
    import re

    return re.sub(r"\\(.)", r"\1", str(text))


def errors(at: AppTest) -> str:
    return " ".join(unescape(e.value) for e in at.error)
