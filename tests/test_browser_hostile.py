"""Hostile input in the browser: user text is shown literally, nothing leaves 127.0.0.1,
and a freshly started server serves 10 simultaneous deep links.

Each test starts its own server (a fresh process), records every request the browser
makes (Playwright's request log) and fails on any whose host is not this machine.
"""

from __future__ import annotations

import base64
import json
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from streamlit_server import streamlit_app
from test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE_TIMEOUT_MS,
    assert_no_exception,
    screenshot,
    wait_idle,
)

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
EVIL_IMG = "![x](http://evil.example/p.png)"
EVIL_LINK = "[re-login](http://evil.example/login)"
EVIL_HTML = '<img src="http://evil.example/h.png">'
EVIL_ICON = ":material/warning: :red[alarm] $x^2$"


@contextmanager
def fresh_server():
    """A new `streamlit run app.py` process with the repository's .streamlit/config.toml
    (so it binds localhost), stopped afterwards."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with streamlit_app("hostile", args=()) as base:
        yield base


@contextmanager
def browser_context():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # ten tabs at once: keep background tabs' timers and rendering running
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            *CHROMIUM_ARGS, "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows"])
        ctx = b.new_context(viewport={"width": 1440, "height": 1000})
        requests: list[str] = []
        ctx.on("request", lambda r: requests.append(r.url))
        try:
            yield ctx, requests
        finally:
            ctx.close()
            b.close()


def outside(requests: list[str]) -> list[str]:
    return [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).hostname not in LOCAL_HOSTS]


def assert_nothing_outside(page, requests: list[str]) -> None:
    assert not outside(requests), outside(requests)[:5]
    icons = page.eval_on_selector_all("link[rel~='icon'], link[rel='shortcut icon']", "els => els.map(e => e.href)")
    for href in icons:  # the favicon is fetched by the browser itself, outside the request log
        assert urlsplit(href).scheme in ("data", "blob") or urlsplit(href).hostname in LOCAL_HOSTS, href
    evil = page.locator("[href*='evil.example'], [src*='evil.example']")
    assert evil.count() == 0, evil.first.evaluate("e => e.outerHTML")


def hostile_csv(path: Path) -> Path:
    rows = [
        ["patient_id", "disease", "age_years", EVIL_LINK],
        [EVIL_IMG, "SSc", "45", "x"],
        ["P-2", EVIL_LINK, "50", "y"],
        [EVIL_HTML, EVIL_ICON, "61", "z"],
    ]
    path.write_text("\n".join(",".join(f'"{c}"' for c in r) for r in rows) + "\n", encoding="utf-8")
    return path


def scenario_token(name: str) -> str:
    raw = json.dumps({"name": name, "parameters": {"age_max": 70}, "disabled": []}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


SLOW_MS = max(IDLE_TIMEOUT_MS, 300_000)  # a shared, loaded machine: generous waits (this is not a speed test)


def test_user_text_is_literal_and_no_request_leaves_the_machine(tmp_path):
    upload = hostile_csv(tmp_path / f"{EVIL_IMG.replace('/', '_')}.csv")
    with fresh_server() as base, browser_context() as (ctx, requests):
        page = ctx.new_page()
        page.set_default_timeout(SLOW_MS)
        page.goto(f"{base}/?s={scenario_token(EVIL_IMG + ' ' + EVIL_LINK)}")
        wait_idle(page, SLOW_MS)
        page.locator(".st-key-cohort_upload input[type='file']").set_input_files(str(upload))
        page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']",
                     has_text="patients").first.wait_for()
        wait_idle(page, SLOW_MS)
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert upload.name[:20] in sidebar, sidebar[:500]  # the file name, as typed
        assert EVIL_IMG in sidebar and EVIL_LINK in sidebar  # the scenario name, as typed
        for title in ["Overview", "Screen failures", "What-if", "Patients", "Dose cohorts", "Protocol", "Chart review"]:
            page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
            wait_idle(page, SLOW_MS)
            page.locator("[data-testid='stMain'] h1").first.wait_for()
            assert_no_exception(page)
            assert_nothing_outside(page, requests)
            if title == "Patients":
                box = page.get_by_label("Patient ID", exact=True)
                box.fill(EVIL_IMG)
                box.press("Enter")
                wait_idle(page, SLOW_MS)
                main = page.locator("[data-testid='stMain']")
                expect(main).to_contain_text(f"{EVIL_IMG} · row 1", timeout=SLOW_MS)  # named literally
                box.fill(EVIL_LINK + "-missing")
                box.press("Enter")
                expect(main).to_contain_text(f"No patient with ID “{EVIL_LINK}-missing”", timeout=SLOW_MS)
                wait_idle(page, SLOW_MS)
                assert_nothing_outside(page, requests)
        screenshot(page, "hostile_text_protocol")
        assert requests, "the request log recorded nothing: the check above would be empty"


# Ten sessions compute their first page at once on a shared 2-core machine: minutes under
# load. This test is about crashes (each tab must render), not speed.
DEEP_LINK_TIMEOUT_MS = 900_000


def test_ten_deep_links_at_once_on_a_fresh_server():
    with fresh_server() as base, browser_context() as (ctx, requests):
        pages = [ctx.new_page() for _ in range(10)]
        for p in pages:
            p.set_default_timeout(DEEP_LINK_TIMEOUT_MS)
        # start all ten navigations before waiting for any of them
        for p in pages:
            p.evaluate(f"() => {{ window.location.href = '{base}/what_if'; }}")
        for p in pages:
            p.bring_to_front()
            p.wait_for_url(f"{base}/what_if*")
            wait_idle(p, DEEP_LINK_TIMEOUT_MS)
            p.get_by_role("heading", name="What-if: protocol amendments").wait_for()
            assert_no_exception(p)
            text = p.locator("[data-testid='stMain']").inner_text()
            assert "_context" not in text and "Page not found" not in text
        assert not outside(requests), outside(requests)[:5]
