"""Sign-in end to end: a local OIDC provider (oidc-provider-mock) on 127.0.0.1, the app with
an `[auth]` secrets file, and the whole sign-in driven in headless Chromium.

Also: a page opened without signing in shows no data, file name or count, and the audit log
records the session.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from streamlit_server import EXPLICIT, free_port, streamlit_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
IDLE_MS = 60_000


@pytest.fixture(scope="module")
def provider():
    """A mock OIDC provider on 127.0.0.1 (random free port), stopped after the module."""
    werkzeug_serving = pytest.importorskip("werkzeug.serving")
    mock = pytest.importorskip("oidc_provider_mock")
    server = werkzeug_serving.make_server("127.0.0.1", 0, mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def signed_app(provider, tmp_path_factory):
    """The app with sign-in on (secrets in a temporary file); yields (base URL, audit path)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    tmp = tmp_path_factory.mktemp("signin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    audit = tmp / "audit.jsonl"
    secrets = tmp / "secrets.toml"
    secrets.write_text(f"""
[auth]
redirect_uri = "{base}/oauth2callback"
cookie_secret = "test-cookie-secret-0123456789abcdef"
client_id = "dashboard"
client_secret = "dashboard-secret"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[access]
role_claim = ""
audit_path = "{audit}"
idle_minutes = 30

[access.users]
"alice" = "analyst"
"victor" = "viewer"
""", "utf-8")
    with streamlit_app("signin", (*EXPLICIT, "--server.address", "127.0.0.1", "--secrets.files", str(secrets)),
                       host="127.0.0.1", port=port) as base:
        yield base, audit


@pytest.fixture(scope="module")
def browser(signed_app):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _idle(page) -> None:
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=IDLE_MS)


def _sign_in(page, base: str, subject: str) -> None:
    """Open the app, press Sign in, and on the provider's form (127.0.0.1) authorize `subject`."""
    page.goto(base)
    _idle(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(base) is False, timeout=IDLE_MS)
    page.locator("input[name='sub']").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{base}/**", timeout=IDLE_MS)
    _idle(page)


def _no_data(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=IDLE_MS)
    for testid in ("stMetric", "stDataFrame", "stPlotlyChart", "stFileUploader", "stSidebar"):
        expect(page.get_by_test_id(testid)).to_have_count(0)
    text = page.locator("[data-testid='stApp']").inner_text()
    assert "cohort.parquet" not in text and "patients" not in text.lower(), text
    assert not any(ch.isdigit() for ch in text.replace("NCT06614270", "")), text


def test_pages_opened_without_signing_in_show_no_data(signed_app, browser):
    base, _ = signed_app
    ctx = browser.new_context()
    page = ctx.new_page()
    for path in ("", "patients", "screen_failures", "what_if", "dose_cohorts", "protocol"):
        page.goto(f"{base}/{path}")
        _idle(page)
        _no_data(page)
    ctx.close()


def test_sign_in_through_the_provider_then_sign_out(signed_app, browser):
    from playwright.sync_api import expect

    base, audit = signed_app
    ctx = browser.new_context()
    page = ctx.new_page()
    _sign_in(page, base, "alice")
    expect(page.get_by_role("heading", name="Screening overview")).to_be_visible(timeout=IDLE_MS)
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("role analyst")
    # an analyst is not an admin: no cohort upload
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    mine = [e for e in entries if e["user"] == "alice"]  # the provider's e-mail claim for "alice"
    actions = [e["action"] for e in mine]
    assert actions[:2] == ["sign_in", "page_viewed"], entries
    assert mine[1]["page"] == "Overview" and mine[0]["role"] == "analyst"
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    # Streamlit sends the browser to the provider's end-session page; the app itself is
    # signed out: opening it again asks to sign in.
    page.wait_for_url(lambda url: not url.startswith(base), timeout=IDLE_MS)
    page.goto(base)
    _idle(page)
    page.screenshot(path=str(ROOT / "artifacts" / "signin_after_sign_out.png"))
    _no_data(page)
    actions = [json.loads(line)["action"] for line in audit.read_text().splitlines()
               if json.loads(line)["user"] == "alice"]
    assert "sign_out" in actions
    ctx.close()


def test_viewer_sees_suppressed_overview(signed_app, browser):
    """A viewer signs in and gets the Overview with small counts suppressed, no downloads."""
    from playwright.sync_api import expect

    base, _ = signed_app
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    _sign_in(page, base, "victor")
    expect(page.get_by_role("heading", name="Screening overview")).to_be_visible(timeout=IDLE_MS)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("role viewer")
    expect(page.get_by_text("Small-cell suppression is on")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=IDLE_MS)
    _idle(page)
    # the cards are redrawn by a rerun right after sign-in: wait for all six, not a half-drawn page
    expect(page.get_by_test_id("stMetricValue")).to_have_count(6, timeout=IDLE_MS)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("3,000", timeout=IDLE_MS)
    metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
    assert len(metrics) == 6 and metrics[0] == "3,000", metrics  # five counts and the eligible range
    for text in (part for m in metrics for part in m.split("–")):  # "<5", "*", "n/s", 0 or ≥ 5
        assert text in ("<5", "*", "n/s") or int(text.replace(",", "")) == 0 or int(text.replace(",", "")) >= 5
    expect(page.get_by_test_id("stDownloadButton")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar").get_by_role("link", name="Patients")).to_have_count(0)
    # the sections brought back with suppressed counts
    expect(page.get_by_role("heading", name="Demographics of the pool")).to_be_visible()
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "artifacts" / "viewer_overview_suppressed.png"), full_page=False)
    # A what-if scenario (age limit 65 → 70 moves a few patients per disease): its pages, with the
    # changes of 1..4 shown as "+<5" / "-<5" and the sections brought back with released counts.
    token = base64.urlsafe_b64encode(json.dumps({"name": "age 70", "parameters": {"age_max": 70},
                                                 "disabled": []}).encode()).decode().rstrip("=")
    for path, heading, shot, section in (
            ("", "Screening overview", "viewer_overview_scenario_suppressed.png", "Demographics of the pool"),
            ("screen_failures", "Screen failures", "viewer_screen_failures_suppressed.png", None),
            ("what_if", "What-if: protocol amendments", "viewer_what_if_suppressed.png", "Threshold sweep")):
        page.goto(f"{base}/{path}?s={token}")
        _idle(page)
        expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=IDLE_MS)
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=IDLE_MS)
        _idle(page)
        if path == "screen_failures":  # the CONSORT figure, drawn from the released counts
            page.get_by_role("tab", name="CONSORT flow").click()
            expect(page.locator("[data-testid='stPlotlyChart']:visible")).to_have_count(1, timeout=IDLE_MS)
        page.screenshot(path=str(ROOT / "artifacts" / shot))
        if section:  # a section further down the page, as a second picture
            head = page.get_by_role("heading", name=section)
            head.scroll_into_view_if_needed()
            _idle(page)
            page.screenshot(path=str(ROOT / "artifacts" / shot.replace(".png", "_lower.png")))
        expect(page.get_by_test_id("stDownloadButton")).to_have_count(0)
        text = page.locator("[data-testid='stMain']").inner_text()
        assert "<5" in text, path  # the scenario's small changes and counts are there, suppressed
    ctx.close()


def test_analyst_download_is_audited_without_patient_values(signed_app, browser):
    """An analyst (suppression on by default) downloads a suppressed export: the file has no
    count from 1 to 4, and the audit log gets one `export_downloaded` line naming the export,
    the suppression setting and k — no file content, no patient value."""
    import csv
    import io
    import re

    from playwright.sync_api import expect

    base, audit = signed_app
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = ctx.new_page()
    _sign_in(page, base, "alice")
    expect(page.get_by_text("Small-cell suppression is on")).to_be_visible(timeout=IDLE_MS)
    before = audit.read_text().splitlines()
    button = page.get_by_role("button", name="Download this table (CSV, suppressed)")
    expect(button).to_be_visible(timeout=IDLE_MS)
    with page.expect_download(timeout=IDLE_MS) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "status_All_suppressed.csv"
    body = Path(download.path()).read_text("utf-8-sig")
    cells = [c for row in list(csv.reader(io.StringIO(body)))[1:] for c in row]
    assert len(cells) > 30, body
    assert not [c for c in cells if re.fullmatch(r"[1-4]", c)], body
    new = [json.loads(line) for line in audit.read_text().splitlines()[len(before):]]
    downloaded = [e for e in new if e["action"] == "export_downloaded"]
    assert len(downloaded) == 1, new
    entry = downloaded[0]
    assert entry["user"] == "alice" and entry["role"] == "analyst"
    assert entry["export"] == "sup_dl_status" and entry["suppression"] is True and entry["k"] == 5
    assert set(entry) == {"ts", "user", "action", "session", "role", "export", "suppression", "k"}, entry
    line = json.dumps(entry)
    # no count and no patient value of the file in the log line
    assert not [c for c in cells if len(c) > 1 and c in line.replace(entry["ts"], "").replace(entry["session"], "")]
    assert "patient" not in line.lower() and "disease" not in line.lower()
    ctx.close()
