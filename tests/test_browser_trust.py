"""Issue 12 in headless Chromium at 1280×800: uploaded cohorts survive a reload and a shared
link (or are refused plainly), blank rows and values to verify, nothing cut off, the offline
report, exact what-if values with undo, a rejected upload leaves the uploader empty.

Run with `pytest -m browser`. Screenshots go to artifacts/screenshots/trust_*.png.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from streamlit_server import EXPLICIT, streamlit_app
from test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE_TIMEOUT_MS,
    PAGES,
    ROOT,
    _unavailable,
    as_int,
    assert_no_exception,
    metric_value,
    open_page,
    screenshot,
    wait_idle,
)

pytestmark = pytest.mark.browser

SAMPLE = ROOT / "data" / "cohort_sample.csv"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cohort_store")


@pytest.fixture(scope="module")
def server(store_dir):
    """A Streamlit server whose upload store is a temporary folder the tests can empty."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed")
    with streamlit_app("trust", (*EXPLICIT, "--server.address", "127.0.0.1"),
                       env={"ELIGIBILITY_COHORT_DIR": str(store_dir)}, host="127.0.0.1") as base:
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


# The page icon is still fetched from a font CDN until issue 8 (item 7) bundles it; that one
# request is blocked like every other but not counted here.
KNOWN_ICON = re.compile(r"^https://fonts\.gstatic\.com/.*/materialsymbolsrounded/")


def _context(browser):
    """A 1280×800 browser context that blocks and records every request leaving 127.0.0.1."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    outside: list[str] = []

    def block(route):
        if not KNOWN_ICON.match(route.request.url):
            outside.append(route.request.url)
        route.abort()

    ctx.route(re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"), block)
    ctx.set_default_timeout(IDLE_TIMEOUT_MS)
    ctx.outside = outside  # requests that tried to leave 127.0.0.1 (must stay empty)
    return ctx


@pytest.fixture
def page(browser):
    ctx = _context(browser)
    tab = ctx.new_page()
    tab.set_default_timeout(IDLE_TIMEOUT_MS)
    ctx.set_default_timeout(IDLE_TIMEOUT_MS)
    yield tab
    assert ctx.outside == [], ctx.outside
    ctx.close()


def _rows(n: int) -> list[dict]:
    return list(csv.DictReader(io.StringIO(SAMPLE.read_text("utf-8-sig"))))[:n]


def _write(path: Path, rows: list[dict], blank_after: int | None = None) -> Path:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    lines = out.getvalue().splitlines(keepends=True)
    if blank_after is not None:
        lines.insert(blank_after + 1, "," * (len(rows[0]) - 1) + "\n")
    path.write_text("".join(lines), "utf-8")
    return path


def upload(page, path: Path) -> None:
    page.locator(".st-key-cohort_upload_box input[type='file']").set_input_files(str(path))
    page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']",
                 has_text=f"{path.name} ·").first.wait_for(timeout=IDLE_TIMEOUT_MS)
    wait_idle(page)


# -- item 1: uploads survive a reload and a shared link, or are refused plainly ------------------

def test_reload_and_shared_link_keep_the_uploaded_cohort_or_refuse_it(browser, page, server, store_dir,
                                                                      tmp_path):
    path = _write(tmp_path / "site_a.csv", _rows(35))
    open_page(page, server, "Overview")
    bundled_n = as_int(metric_value(page, "Screened"))
    upload(page, path)
    assert as_int(metric_value(page, "Screened")) == 35
    assert "c=" in page.url
    page.reload()
    wait_idle(page)
    page.locator("[data-testid='stMetric']").first.wait_for()
    assert as_int(metric_value(page, "Screened")) == 35  # not the bundled cohort
    link = page.url
    other = _context(browser)
    tab = other.new_page()
    tab.goto(link)
    wait_idle(tab)
    tab.locator("[data-testid='stMetric']").first.wait_for()
    assert as_int(metric_value(tab, "Screened")) == 35
    other.close()
    # the server releases it (age or disk limit; here: the store folder emptied, memory cleared by
    # two newer uploads) -> the link says so and shows no other cohort's numbers
    for f in store_dir.iterdir():
        f.unlink() if f.is_file() else shutil.rmtree(f)
    for k in (1, 2):
        upload(page, _write(tmp_path / f"other_{k}.csv", _rows(10 + k)))
    gone = _context(browser)
    tab = gone.new_page()
    tab.goto(link)
    wait_idle(tab)
    tab.get_by_text("This cohort is no longer available").first.wait_for()
    assert tab.locator("[data-testid='stMetric']").count() == 0
    assert str(bundled_n) not in tab.locator("[data-testid='stMain']").inner_text().replace(",", "")
    screenshot(tab, "trust_link_cohort_gone")
    tab.get_by_role("button", name="Use the bundled cohort").click()
    wait_idle(tab)
    tab.locator("[data-testid='stMetric']").first.wait_for()
    assert as_int(metric_value(tab, "Screened")) == bundled_n
    assert "c=" not in tab.url
    assert gone.outside == []
    gone.close()


# -- items 2, 3: a blank row counted apart, an implausible value pending ---------------------------

def test_blank_row_counted_apart_and_implausible_value_pending(page, server, tmp_path):
    from eligibility.evaluate import Evaluator
    from eligibility.loader import load_cohort
    from eligibility.screen import results_frame

    rows = _rows(60)
    cohort = load_cohort(_write(tmp_path / "probe.csv", rows))
    res = results_frame(Evaluator.for_cohort(cohort).evaluate(), cohort.frame)
    target = int(res.index[res["status"] == "eligible"][0])
    pid = rows[target]["patient_id"]
    rows[target]["hemoglobin_g_l"] = "12.1"  # a g/dL slip
    path = _write(tmp_path / "blank_and_slip.csv", rows, blank_after=5)
    open_page(page, server, "Overview")
    upload(page, path)
    assert_no_exception(page)
    assert as_int(metric_value(page, "Screened")) == 60
    main = page.locator("[data-testid='stMain']")
    main.get_by_text(re.compile(r"1 empty row, not a patient \(row 6\)")).first.wait_for()
    assert "1 empty row, not a patient" in page.locator("[data-testid='stSidebar']").inner_text()
    screenshot(page, "trust_blank_row_overview")
    open_page(page, server, "Screen failures")
    page.get_by_role("tab", name="CONSORT flow").click()
    page.wait_for_timeout(800)
    flow = page.locator(".st-key-sf_consort")
    assert "1 empty file row, not patients" in flow.inner_text() and "n = 60" in flow.inner_text()
    open_page(page, server, "Patients")
    box = page.locator(".st-key-pt_explain_id input")
    box.fill(pid)
    box.press("Enter")
    wait_idle(page)
    summary = page.locator("[data-testid='stMain']").inner_text()
    assert "◐ pending" in summary and "verify Haemoglobin" in summary
    screenshot(page, "trust_value_to_verify")


# -- item 7: nothing cut off at 1280×800 -------------------------------------------------------------

OVERFLOW_JS = """() => {
  const bad = [];
  const sel = "[data-testid='stMetricValue'], [data-testid='stMetricLabel'], [data-testid='stMetricDelta']";
  for (const el of document.querySelectorAll(sel)) {
    const inner = el.querySelector('div, p') || el;
    for (const e of [el, inner]) {
      if (e.scrollWidth > e.clientWidth + 1) bad.push(el.getAttribute('data-testid') + ': ' + el.innerText);
    }
  }
  for (const chart of document.querySelectorAll("[data-testid='stPlotlyChart']")) {
    const box = chart.getBoundingClientRect();
    for (const t of chart.querySelectorAll('.main-svg text')) {
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) bad.push('chart text: ' + t.textContent);
    }
  }
  return bad;
}"""


@pytest.mark.parametrize("name", list(PAGES))
def test_nothing_cut_off_at_1280(page, server, name):
    query = "s=" + _scenario_token() if name in ("Overview", "What-if") else ""
    open_page(page, server, name, query=query)
    assert_no_exception(page)
    if name == "Screen failures":
        for tab in ("Per criterion", "CONSORT flow"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(600)
            assert page.evaluate(OVERFLOW_JS) == []
            if tab == "Per criterion":  # every column of the table visible without scrolling sideways
                grid = page.locator(".st-key-sf_criterion_table [data-testid='stDataFrameResizable']")
                assert grid.evaluate("e => e.getBoundingClientRect().right") <= 1280
                scroller = page.locator(".st-key-sf_criterion_table .dvn-scroller").first
                assert scroller.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
                screenshot(page, "trust_1280_criterion_table", max_height=1400)
    assert page.evaluate(OVERFLOW_JS) == []
    screenshot(page, f"trust_1280_{PAGES[name] or 'overview'}")


def _scenario_token() -> str:
    from eligibility.scenario import Scenario, encode_for_url

    return encode_for_url(Scenario(name="older", parameters={"age_max": 75, "hb_min_g_l": 50}))


# -- item 14: the report opens offline and holds the numbers -------------------------------------------

def test_report_downloads_and_opens_offline(browser, page, server, tmp_path):
    open_page(page, server, "Overview")
    screened = metric_value(page, "Screened")
    eligible = metric_value(page, "Eligible")
    with page.expect_download() as dl:
        page.locator(".st-key-ov_dl_report_html button").click()
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    offline = browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    offline.set_default_timeout(IDLE_TIMEOUT_MS)  # a 4 MB page (plotly.js inline) on a loaded machine
    requests: list[str] = []
    offline.on("request", lambda r: requests.append(r.url))
    tab = offline.new_page()
    tab.goto(path.as_uri())
    tab.wait_for_function("() => window.Plotly && document.querySelectorAll('.js-plotly-plot').length >= 2")
    text = tab.locator("body").inner_text()
    assert screened in text and eligible in text
    for heading in ("Per disease", "Attrition", "Screening flow", "Demographics of the pool", "Dose plan"):
        assert heading in text
    assert [u for u in requests if not u.startswith("file:")] == []
    screenshot(tab, "trust_report")
    offline.close()


# -- item 8: exact values and undo ------------------------------------------------------------------

def test_exact_value_and_undo(page, server):
    from test_browser import _engine_eligible

    open_page(page, server, "What-if")
    box = page.locator(".st-key-wi_n_age_max input")
    box.fill("71")
    box.press("Enter")
    wait_idle(page)
    expected = _engine_eligible({"parameters": {"age_max": 71}})
    page.wait_for_function(
        "(n) => [...document.querySelectorAll(\"[data-testid='stMetric']\")].some(m =>"
        " /^All\\s/.test(m.innerText) && m.innerText.includes(n))", arg=f"{expected:,}")
    assert float(page.locator(".st-key-wi_p_age_max input[type='range']").first.input_value()) == 71
    screenshot(page, "trust_what_if_exact")
    page.locator(".st-key-wi_undo button").first.click()
    wait_idle(page)
    page.wait_for_timeout(400)
    wait_idle(page)
    assert as_int(metric_value(page, "All")) == _engine_eligible()
    assert float(page.locator(".st-key-wi_p_age_max input[type='range']").first.input_value()) == 65


# -- item 11: a rejected upload leaves the uploader empty, in plain words ---------------------------

def test_rejected_upload_is_not_shown_as_loaded(page, server, tmp_path):
    dup = tmp_path / "dups.csv"
    dup.write_text("patient_id,disease\nX1,SSc\nX2,IIM\nX1,IIM\n", "utf-8")
    open_page(page, server, "Overview")
    page.locator(".st-key-cohort_upload_box input[type='file']").set_input_files(str(dup))
    err = page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']").first
    err.wait_for()
    wait_idle(page)
    message = err.inner_text()
    assert "X1 (rows 1, 3)" in message and "Arrow" not in message
    # the uploader shows no file (nothing looks loaded)
    assert page.locator(".st-key-cohort_upload_box [data-testid='stFileUploaderFile']").count() == 0
    assert "dups.csv" not in page.locator(".st-key-cohort_upload_box").inner_text()
    screenshot(page, "trust_rejected_upload")
