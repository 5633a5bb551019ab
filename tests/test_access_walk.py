"""Small-cell suppression on every page a viewer (and an analyst with suppression on) is
served: no count from 1 to k−1 is shown, and no hidden count can be recovered (AppTest with a
faked signed-in user; the bundled cohort has many small groups)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from apptest_support import APP, BUNDLED, TIMEOUT
from streamlit.testing.v1 import AppTest

from eligibility.access import release as R
from eligibility.access.audit import AuditLog
from eligibility.access.suppression import exposed
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import Scenario, resolve

K = 5
PAGES = ["app_pages/overview.py", "app_pages/screen_failures.py", "app_pages/what_if.py",
         "app_pages/dose_cohorts.py", "app_pages/protocol.py"]
# Tables of the design (dose levels, simulated trials, decision rules) and of the protocol
# (parameters, readings, the cohort contract), not of the cohort: told apart by a column.
NOT_COHORT = {"true_dlt", "mean_patients", "quantity", "measure", "decision", "parameter", "Reading", "plausible"}
NUMBER = re.compile(r"^[+\-−]?\d[\d,]*$")


def _app(tmp_path, role: str, **access) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:1/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "c", "client_secret": "s",
                          "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}
    at.secrets["access"] = {"role_claim": "roles", "audit_path": str(tmp_path / "audit.jsonl"),
                            "min_cell_count": K, **access}
    at.user = {"is_logged_in": True, "email": f"{role}@h.org", "roles": [role]}
    return at


def _small(value) -> bool:
    """A count from 1 to k−1 (numbers in text too: "3", "1,234" is not small)."""
    if isinstance(value, str):
        text = value.strip()
        if not NUMBER.match(text):
            return False
        value = int(text.replace(",", "").replace("−", "-"))
    if isinstance(value, bool) or not isinstance(value, int | float) or pd.isna(value):
        return False
    return float(value).is_integer() and 1 <= abs(value) < K


def _check_page(at: AppTest, page: str) -> int:
    """Every metric and every cohort table: no small count. Returns how many cells were read."""
    seen = 0
    for m in at.metric:
        assert not _small(m.value), (page, m.label, m.value)
        seen += 1
    for df_el in at.dataframe:
        frame = df_el.value
        if NOT_COHORT & set(frame.columns):
            continue
        key = list(frame.columns)
        for col in frame.columns:
            if str(col).endswith("_pct") or col in ("net",):
                continue  # derived: shown only when all their counts are shown (release.py)
            for v in frame[col]:
                assert not _small(v), (page, key, col, v)
                seen += 1
    return seen


@pytest.fixture(scope="module")
def release():
    cohort = load_cohort(BUNDLED)
    ev = Evaluator.for_cohort(cohort)
    base = ev.evaluate(resolve(Scenario.model_validate({})))
    cur = ev.evaluate(resolve(Scenario.model_validate({"parameters": {"age_max": 70}, "disabled": []})))
    return R.build(base, cur, K)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_every_page_shows_no_small_count(tmp_path, role):
    at = _app(tmp_path, role)  # suppression is on by default for analysts when sign-in is on
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if role == "viewer":
        assert not at.sidebar.toggle  # always on: no setting to turn it off
    read = 0
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        read += _check_page(at, page)
        assert not [b for b in at.get("download_button")] or role != "viewer"
    # a scenario: the deltas and the moves between statuses are suppressed too
    at.session_state["scenario"] = {"name": "", "parameters": {"age_max": 70}, "disabled": []}
    at.switch_page("app_pages/what_if.py").run()
    assert not at.exception
    read += _check_page(at, "what-if scenario")
    assert read > 200  # the walk read real tables, not empty pages
    for page in ("app_pages/patients.py", "app_pages/worklist.py"):  # patient level: not served
        with pytest.raises(Exception):  # noqa: B017, PT011
            at.switch_page(page).run()
    log = AuditLog(tmp_path / "audit.jsonl").entries()
    refused = [e for e in log if e["action"] == "role_refused"]
    if role == "viewer":
        assert refused and all(e["permission"] == "download" and e.get("export") for e in refused)
    else:
        assert not refused


def test_the_release_is_audited_exactly(release):
    """No hidden count of the pages' release can be recovered by an exact integer attacker."""
    sup = release.sup
    assert not sup.unprotected
    from eligibility.access.suppression import _nested
    assert not exposed(sup.values, [*sup.relations, *_nested(sup.relations)], sup.hidden, sup.k)
    small = [key for key, v in sup.values.items() if 1 <= v < K]
    assert small and all(key in sup.hidden and sup.text(key) in (f"<{K}", "n/s") for key in small)


def test_exports_are_the_suppressed_tables(release):
    """The CSV exports of the suppressed pages are the shown tables: no small count in them."""
    from eligibility import export

    groups = release.groups
    for table in (R.consort_counts(release).reset_index(), R.delta_table(release, groups)):
        back = pd.read_csv(io.BytesIO(export.to_csv_bytes(table)), dtype=str, keep_default_na=False)
        cells = [c for col in back.columns if col not in ("group", "net") for c in back[col]]
        assert cells and not [c for c in cells if _small(c)]
