"""End-to-end tests in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Run with `pytest -m browser`. A module-scoped `server` fixture starts
`streamlit run app.py` on a free port; `page` gives a fresh browser tab per test.
Helpers for new tests (e.g. the what-if slider, the URL scenario):

    open_page(page, server, "What-if")          # navigate by nav title, wait until idle
    open_page(page, server, "What-if", query="s=...")   # with a query string
    wait_idle(page)                             # after any interaction that reruns the script
    assert_no_exception(page)                   # no traceback box on the page
    screenshot(page, "what_if_slider")          # artifacts/screenshots/<name>.png
    upload_cohort(page, path)                   # through the sidebar file uploader
    metric_value(page, "Eligible")              # a st.metric's value as shown
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from streamlit_server import streamlit_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
IDLE_TIMEOUT_MS = 180_000  # a loaded 2-core CI machine can take minutes for a first page

# Navigation title → URL path, in app.py's order. st.Page derives the path from the file
# name; the first (default) page is served at "/" only ("/overview" is "page not found").
PAGES = {
    "Overview": "",
    "Screen failures": "screen_failures",
    "What-if": "what_if",
    "Patients": "patients",
    "Dose cohorts": "dose_cohorts",
    "Protocol": "protocol",
}


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI (where the browser must be installed)."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    """Base URL of a Streamlit server running app.py (stopped after the module)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    if not (ROOT / "data" / "cohort.parquet").exists():
        _unavailable("data/cohort.parquet (the bundled cohort) is missing")
    with streamlit_app("main") as base:
        yield base


@pytest.fixture(scope="module")
def browser(server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh tab (own session) per test, wide enough for the dashboard layout."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(IDLE_TIMEOUT_MS)
    yield tab
    context.close()


# -- helpers ------------------------------------------------------------------------------

def wait_idle(page, timeout_ms: int = IDLE_TIMEOUT_MS) -> None:
    """Wait until the script run triggered by the last action has finished."""
    app = page.locator("[data-testid='stApp']")
    app.wait_for(state="attached", timeout=timeout_ms)
    # A rerun may start a moment after the action: give it the chance to begin.
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           state="attached", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stSpinner']\")"
        " && !document.querySelector(\"[data-testid='stSkeleton']\")",
        timeout=timeout_ms,
    )


def open_page(page, server: str, name: str, query: str = "") -> None:
    """Open a page by its navigation title (see PAGES) and wait until it has rendered.

    The first call (or one with a query string) loads the URL, which starts a new session;
    later calls click the sidebar link, which keeps the session (uploaded cohort, scenario)."""
    if query or not page.url.startswith(server):
        page.goto(f"{server}/{PAGES[name]}" + (f"?{query}" if query else ""))
    else:
        page.locator("[data-testid='stSidebarNav'] a", has_text=name).first.click()
        page.wait_for_url(re.compile(rf"/{re.escape(PAGES[name])}(\?.*)?$"), timeout=IDLE_TIMEOUT_MS)
    wait_idle(page)
    page.locator("[data-testid='stMain'] h1").first.wait_for(timeout=IDLE_TIMEOUT_MS)


def assert_no_exception(page) -> None:
    boxes = page.locator("[data-testid='stException']")
    assert boxes.count() == 0, boxes.first.inner_text()[:2000]


def screenshot(page, name: str, max_height: int = 6000) -> Path:
    """Save the whole page to artifacts/screenshots/<name>.png. Streamlit scrolls inside its
    main container, so the viewport is stretched to the content's height for the shot."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll("
        "\"[data-testid='stMain'], [data-testid='stAppViewContainer'], [data-testid='stSidebarContent']\"),"
        " e => e.scrollHeight), document.body.scrollHeight)")
    try:
        page.set_viewport_size({"width": size["width"], "height": min(max(int(height), size["height"]), max_height)})
        page.wait_for_timeout(400)  # charts reflow to the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return path


def upload_cohort(page, path: Path) -> None:
    """Upload a cohort file through the sidebar uploader and wait for the rerun."""
    uploader = page.locator(".st-key-cohort_upload_box input[type='file']")
    uploader.set_input_files(str(path))
    # the sidebar names the loaded cohort once the rerun has read the file
    page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']",
                 has_text=f"{Path(path).name} ·").first.wait_for(timeout=IDLE_TIMEOUT_MS)
    wait_idle(page)


def metric_value(page, label: str) -> str:
    """The displayed value of the st.metric with this label."""
    metric = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    return metric.first.locator("[data-testid='stMetricValue']").inner_text().strip()


def as_int(text: str) -> int:
    return int(text.replace(",", "").strip())


# -- tests --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_opens_without_exception(page, server, name):
    open_page(page, server, name)
    assert_no_exception(page)
    assert page.locator("[data-testid='stSidebar']").is_visible()
    assert page.locator("[data-testid='stDialog']").count() == 0  # e.g. "page not found"
    screenshot(page, f"page_{PAGES[name] or 'overview'}")


def test_navigation_by_sidebar_links(page, server):
    """Clicking through the sidebar navigation reaches every page without an exception."""
    open_page(page, server, "Overview")
    for name in PAGES:
        page.locator("[data-testid='stSidebarNav'] a", has_text=name).first.click()
        wait_idle(page)
        assert_no_exception(page)
        assert page.url.rstrip("/").endswith(PAGES[name] or str(server.rsplit(":", 1)[1]))
        assert page.locator("[data-testid='stDialog']").count() == 0  # e.g. "page not found"


def _bad_cohort(tmp_path: Path) -> tuple[Path, int, str]:
    """A small CSV cut from the bundled sample with unreadable cells; returns path, rows, an ID."""
    sample = ROOT / "data" / "cohort_sample.csv"
    rows = list(csv.DictReader(io.StringIO(sample.read_text("utf-8-sig"))))[:40]
    rows[2]["consent_signed"] = "maybe"
    rows[4]["hemoglobin_g_l"] = "abc"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "bad_cells.csv"
    path.write_text(out.getvalue(), "utf-8")
    return path, len(rows), rows[4]["patient_id"]


def test_upload_with_bad_cells_keeps_rows_and_reports_them(page, server, tmp_path):
    path, n_rows, bad_id = _bad_cohort(tmp_path)
    open_page(page, server, "Overview")
    upload_cohort(page, path)
    assert_no_exception(page)
    assert as_int(metric_value(page, "Screened")) == n_rows
    # the validation report names row and column of each bad cell
    report = page.locator("[data-testid='stDataFrame']").first
    report.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    body = page.locator("[data-testid='stTabs']").first.inner_text()
    assert "of" in body and "reported problems shown" in body
    screenshot(page, "upload_bad_cells_overview")
    # Narrow the report to errors: exactly the two bad cells remain; check them through the
    # grid's CSV-free text (glide data grid draws on canvas, so read the accessible table).
    text = _grid_text(page, report)
    assert "consent_signed" in text and "hemoglobin_g_l" in text
    assert "maybe" in text and "abc" in text
    assert bad_id in text
    # rows 3 and 5 (1-based data rows) are named
    assert re.search(r"\b3\b", text) and re.search(r"\b5\b", text)
    # The Patients page screens every row of the file.
    open_page(page, server, "Patients")
    assert_no_exception(page)
    match = page.locator("[data-testid='stMarkdown']", has_text="patients match").first.inner_text()
    assert as_int(match.split(" of ")[1].split()[0]) == n_rows
    screenshot(page, "upload_bad_cells_patients")


def _grid_text(page, grid) -> str:
    """Text of a st.dataframe: the data grid keeps an accessible HTML table alongside its canvas."""
    grid.hover()
    cells = grid.locator("table [role='gridcell'], table td, table th")
    if cells.count():
        return " ".join(cells.all_inner_texts())
    return grid.inner_text()


# -- Dose cohorts (appended by the dose engineer) ---------------------------------------------

def test_dose_cohorts_page_renders_and_recomputes(page, server):
    """Dose cohorts: opens without an exception, draws the assignment and timeline charts,
    and switching the design to BOIN reruns cleanly with new numbers."""
    open_page(page, server, "Dose cohorts")
    assert_no_exception(page)
    page.locator("[data-testid='stPlotlyChart']").nth(1).wait_for()
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 2  # assignment + timeline
    before = metric_value(page, "Expected patients")
    screenshot(page, "dose_cohorts")
    page.locator(".st-key-dose_design").click()
    page.get_by_role("option", name="BOIN", exact=True).click()
    wait_idle(page)
    assert_no_exception(page)
    after = metric_value(page, "Expected patients")
    assert after != before
    assert page.locator(".st-key-dose_cohort_size input").is_enabled()
    screenshot(page, "dose_cohorts_boin")


# -- Screen failures and What-if (appended by the what-if engineer) ---------------------------

_ENGINE: dict = {}


def _engine_eligible(scenario: dict | None = None) -> int:
    """Eligible patients (all diseases) of the bundled cohort under a scenario, from the engine."""
    from eligibility.evaluate import Evaluator
    from eligibility.loader import load_cohort
    from eligibility.scenario import resolve

    if "evaluator" not in _ENGINE:
        _ENGINE["evaluator"] = Evaluator.for_cohort(load_cohort(ROOT / "data" / "cohort.parquet"))
    return _ENGINE["evaluator"].evaluate(resolve(scenario or {})).counts()["eligible"]


def _slider(page, key: str):
    """The range input of a st.slider (react-aria keeps it visually hidden inside the thumb)."""
    return page.locator(f".st-key-{key} input[type='range']").first


def _slider_value(page, key: str) -> float:
    return float(_slider(page, key).input_value())


def test_what_if_slider_changes_eligible_to_the_engine_count(page, server):
    """Move the maximum-age slider with the keyboard: the eligible count shown is the engine's
    for that scenario, and the URL carries it."""
    open_page(page, server, "What-if")
    assert_no_exception(page)
    assert as_int(metric_value(page, "All")) == _engine_eligible()
    thumb = _slider(page, "wi_p_age_max")
    page.locator(".st-key-wi_p_age_max").scroll_into_view_if_needed()
    # One key at a time, each rerun finished before the next: under load a key pressed during
    # a rerun can be lost, and the test is about the count, not about key repeat.
    for _ in range(10):
        if _slider_value(page, "wi_p_age_max") >= 70:
            break
        thumb.focus()
        thumb.press("ArrowRight")
        page.wait_for_timeout(300)
        wait_idle(page)
    assert_no_exception(page)
    value = _slider_value(page, "wi_p_age_max")
    assert value == 70
    expected = _engine_eligible({"parameters": {"age_max": value}})
    page.wait_for_function(
        "(n) => [...document.querySelectorAll(\"[data-testid='stMetric']\")].some(m =>"
        " /^All\\s/.test(m.innerText) && m.innerText.includes(n))",
        arg=f"{expected:,}", timeout=IDLE_TIMEOUT_MS)
    assert as_int(metric_value(page, "All")) == expected
    assert "s=" in page.url
    screenshot(page, "what_if_slider_age_70")


def test_what_if_group_draws_its_controls_when_opened_and_stays_open_when_changed(page, server):
    """The disease groups' controls are drawn only while their expander is open: a click opens
    it (a rerun), a value typed there changes its title, and it stays open."""
    from playwright.sync_api import expect

    open_page(page, server, "What-if")
    header = page.locator(".st-key-wi_x_SSc summary").first
    assert page.locator(".st-key-wi_p_mrss_min").count() == 0
    header.click()
    wait_idle(page)
    expect(page.locator(".st-key-wi_p_mrss_min")).to_be_visible(timeout=IDLE_TIMEOUT_MS)
    box = page.locator(".st-key-wi_n_mrss_min input").first
    box.fill("12")
    box.press("Enter")
    wait_idle(page)
    expect(header).to_contain_text("(1 changed)", timeout=IDLE_TIMEOUT_MS)
    assert_no_exception(page)
    assert _slider_value(page, "wi_p_mrss_min") == 12
    assert as_int(metric_value(page, "All")) == _engine_eligible({"parameters": {"mrss_min": 12}})
    screenshot(page, "what_if_group_opened")
    header.click()
    wait_idle(page)
    expect(page.locator(".st-key-wi_p_mrss_min")).to_have_count(0, timeout=IDLE_TIMEOUT_MS)


def test_what_if_url_reproduces_a_scenario(page, server):
    """Opening a link with ?s=<token> shows that scenario's controls and eligible count."""
    from eligibility.scenario import Scenario, encode_for_url

    sc = Scenario(name="link", parameters={"age_max": 72, "hb_min_g_l": 80}, disabled=["EXC-4"])
    open_page(page, server, "What-if", query=f"s={encode_for_url(sc)}")
    assert_no_exception(page)
    assert as_int(metric_value(page, "All")) == _engine_eligible(sc.model_dump())
    assert _slider_value(page, "wi_p_age_max") == 72
    assert _slider_value(page, "wi_p_hb_min_g_l") == 80
    assert not page.locator(".st-key-wi_on_EXC-4 input[type='checkbox']").first.is_checked()
    screenshot(page, "what_if_from_url")
    # the sidebar's "Reset to protocol" brings back the protocol (controls and counts)
    page.locator(".st-key-reset_scenario button").click()
    wait_idle(page)
    page.wait_for_timeout(500)
    wait_idle(page)
    assert_no_exception(page)
    assert as_int(metric_value(page, "All")) == _engine_eligible()
    assert _slider_value(page, "wi_p_age_max") == 65


def test_screen_failures_tabs_render(page, server):
    open_page(page, server, "Screen failures")
    assert_no_exception(page)
    for tab in ("Attrition", "Per criterion", "Combinations", "CONSORT flow"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(500)
        assert_no_exception(page)
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 3
    screenshot(page, "screen_failures_consort")


def choose_option(page, key: str, name) -> None:
    """Choose an option of the selectbox with widget key `key` (`name`: text or regex)."""
    wait_idle(page)
    box = page.locator(f".st-key-{key}").get_by_role("combobox")
    option = page.get_by_role("option", name=name, exact=True) if isinstance(name, str) \
        else page.get_by_role("option", name=name)
    for _ in range(3):  # a click that lands while the page reruns only focuses the box
        box.click()
        try:
            option.wait_for(timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - retried, then the last click below fails loudly
            page.keyboard.press("Escape")
    option.click()
    wait_idle(page)


def select_disease(page, code: str) -> None:
    """Choose a disease in the sidebar filter (options read 'SSc — Systemic sclerosis')."""
    choose_option(page, "disease_filter", re.compile(rf"^{re.escape(code)} — "))


def test_overview_disease_filter_and_quality_tabs(page, server):
    from eligibility.attribution import status_counts
    from eligibility.evaluate import Evaluator
    from eligibility.loader import load_cohort

    ev = Evaluator.for_cohort(load_cohort(ROOT / "data" / "cohort.parquet")).evaluate()
    counts = status_counts(ev)
    open_page(page, server, "Overview")
    assert as_int(metric_value(page, "Screened")) == counts.loc["All", "screened"]
    select_disease(page, "SSc")
    assert_no_exception(page)
    for label, key in (("Screened", "screened"), ("Eligible", "eligible"), ("Pending", "pending"),
                       ("Ineligible", "ineligible")):
        assert as_int(metric_value(page, label)) == counts.loc["SSc", key]
    screenshot(page, "overview_ssc")
    for tab in ("Missing data", "Not assessed"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(500)
        assert_no_exception(page)
        screenshot(page, "overview_ssc_" + tab.lower().replace(" ", "_"))


def test_patients_explanation_and_near_misses(page, server):
    open_page(page, server, "Patients")
    box = page.locator(".st-key-pt_explain_id input")
    box.fill("ZJU2-000003")
    box.press("Enter")
    wait_idle(page)
    assert_no_exception(page)
    page.get_by_text("This patient's criteria by outcome").first.wait_for()
    assert page.locator("[data-testid='stMarkdown']", has_text="ZJU2-000003").count() >= 1
    screenshot(page, "patients_explanation")
    page.get_by_role("tab", name="Near misses").click()
    page.wait_for_timeout(500)
    assert_no_exception(page)
    screenshot(page, "patients_near_misses")


def test_overview_shows_deltas_under_a_linked_scenario(page, server):
    from eligibility.attribution import status_counts
    from eligibility.evaluate import Evaluator
    from eligibility.loader import load_cohort
    from eligibility.scenario import Scenario, encode_for_url, resolve

    scenario = {"name": "older and anaemic", "parameters": {"age_max": 75, "hb_min_g_l": 50}}
    evaluator = Evaluator.for_cohort(load_cohort(ROOT / "data" / "cohort.parquet"))
    base = status_counts(evaluator.evaluate()).loc["All"]
    what_if = status_counts(evaluator.evaluate(resolve(scenario))).loc["All"]
    open_page(page, server, "Overview", query="s=" + encode_for_url(Scenario.model_validate(scenario)))
    assert_no_exception(page)
    assert as_int(metric_value(page, "Eligible")) == what_if["eligible"]
    delta = page.locator("[data-testid='stMetric']", has_text="Eligible").first.locator(
        "[data-testid='stMetricDelta']").inner_text()
    assert as_int(delta.replace("+", "").split()[0]) == what_if["eligible"] - base["eligible"]
    screenshot(page, "overview_what_if")


def test_a_bad_second_upload_keeps_the_good_first_one(page, server, tmp_path):
    """Replacing a loaded upload with an unusable file shows a plain message and keeps the
    loaded cohort (not the bundled one)."""
    good, n_rows, _ = _bad_cohort(tmp_path)
    open_page(page, server, "Overview")
    upload_cohort(page, good)
    assert as_int(metric_value(page, "Screened")) == n_rows
    dup = tmp_path / "duplicate_ids.csv"
    dup.write_text("patient_id,disease\nX1,SSc\nX1,IIM\n", "utf-8")
    page.locator(".st-key-cohort_upload_box input[type='file']").set_input_files(str(dup))
    page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']").first.wait_for(
        timeout=IDLE_TIMEOUT_MS)
    wait_idle(page)
    message = page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']").first.inner_text()
    assert "duplicate patient_id" in message and "X1" in message
    assert_no_exception(page)
    assert as_int(metric_value(page, "Screened")) == n_rows
    assert page.locator("[data-testid='stSidebar']", has_text=f"{good.name} ·").count() == 1
    screenshot(page, "upload_bad_second_file")
