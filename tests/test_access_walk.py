"""Small-cell suppression on every page a viewer (and an analyst with suppression on) is
served: no count from 1 to k−1 is shown, and no hidden count can be recovered (AppTest with a
faked signed-in user; the bundled cohort has many small groups)."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
from apptest_support import APP, BUNDLED, TIMEOUT
from streamlit.runtime.media_file_manager import MediaFileManager
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
NOT_COHORT = {"true_dlt", "mean_patients", "quantity", "measure", "decision", "parameter", "Reading", "plausible",
              "dlt_window_closes", "needed"}
DESIGN_FILES = ("dose_operating_characteristics", "dose_decision_table", "protocol")  # not the cohort's numbers
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


HIDDEN = (f"<{K}", "*", "n/s")


def _parts(text) -> list[str]:
    """The counts in a metric value or delta: "504–735", "+<5 / -12"."""
    return [p.strip() for p in re.split(r"–| / ", str(text or "")) if p.strip()]


def _array(v) -> list:
    """A plotly data array: a list, or numpy's typed array ({"dtype", "bdata"}) in the JSON."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        import numpy as np
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v) if isinstance(v, list | tuple) else []


def _check_figures(at: AppTest, page: str) -> int:
    """Every cohort chart (the suppressed pages' charts and the sweep): no small count as a
    label, and a bar or point whose label is hidden has no height."""
    seen = 0
    for el in at.get("plotly_chart"):
        if not any(k in el.proto.id for k in ("sup_", "whatif_sweep")):
            continue
        spec = json.loads(el.proto.spec)
        for trace in spec.get("data", []):
            texts = _array(trace.get("text"))
            if not texts:
                continue
            horizontal = trace.get("orientation") == "h"
            heights = _array(trace.get("x" if horizontal else "y")) or [None] * len(texts)
            for t, h in zip(texts, heights, strict=False):
                assert not _small(t), (page, el.proto.id, t)
                if str(t) in HIDDEN and trace.get("type") == "bar":
                    assert h in (0, None), (page, el.proto.id, t, h)
                seen += 1
        for ann in spec.get("layout", {}).get("annotations", []):
            for m in re.finditer(r"n = ([^<\s]+)|: ([\d,]+)\b", ann.get("text", "")):
                assert not _small(m.group(1) or m.group(2)), (page, ann.get("text"))
    return seen


def _check_page(at: AppTest, page: str) -> int:
    """Every metric, cohort table and chart: no small count. Returns how many cells were read."""
    seen = 0
    for m in at.metric:
        for part in [*_parts(m.value), *_parts(m.delta)]:
            assert not _small(part), (page, m.label, m.value, m.delta)
            seen += 1
    for df_el in at.dataframe:
        frame = df_el.value
        if NOT_COHORT & set(frame.columns):
            continue
        key = list(frame.columns)
        for col in frame.columns:
            if str(col).endswith("_pct") or "%" in str(col) or col in ("value", "eligible_fraction"):
                continue  # derived: shown only when all their counts are shown (release.py)
            for v in frame[col]:
                assert not _small(v), (page, key, col, v)
                seen += 1
    return seen + _check_figures(at, page)


def _check_export(name: str, data: bytes) -> int:
    """A downloaded file: CSV cells, HTML table cells, and the counts in a flow diagram's boxes
    ("n = …", "• reason: …")."""
    text = data.decode("utf-8-sig")
    seen = 0
    if name.endswith(".csv"):
        back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        for col in back.columns:
            if "pct" in col or "%" in col:
                continue
            for v in back[col]:
                assert not _small(v), (name, col, v)
                seen += 1
        return seen
    for m in re.finditer(r"<td>([^<]*)</td>", text):
        assert not _small(m.group(1)), (name, m.group(1))
        seen += 1
    for m in re.finditer(r"n = ([^<\s\\\"]+)|• [^<:\\]+: ([^<\s\\\"]+)", text):
        assert not _small(m.group(1) or m.group(2)), (name, m.group(0))
        seen += 1
    return seen


@pytest.fixture
def releases(monkeypatch):
    """Every suppression behind what the pages show (the release, the joint releases, the
    display tables), new or memoised from an earlier test, for the exact audit after the walk."""
    from app_pages import _shared, _suppressed
    from eligibility.access import joint, tables
    from eligibility.access import release as rel_module
    from eligibility.access.suppression import Suppression

    made: dict[int, Suppression] = {}

    def keep(value):
        for v in (value if isinstance(value, tuple) else (value,)):
            if isinstance(v, Suppression):
                made[id(v)] = v
            elif isinstance(v, rel_module.Release):
                made[id(v.sup)] = v.sup
        return value

    def wrap(module, name):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **kw: keep(original(*a, **kw)))

    wrap(_shared, "memo")
    wrap(rel_module, "build")
    wrap(joint, "compare")
    wrap(tables, "suppress")
    wrap(_suppressed, "suppress")
    return made


@pytest.fixture
def exports(monkeypatch):
    """Every download the pages offer, by file name → the callable Streamlit runs when the
    browser asks for the file (AppTest cannot click a download)."""
    made: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        made[file_name or coordinates] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return made


@pytest.fixture(scope="module")
def release():
    cohort = load_cohort(BUNDLED)
    ev = Evaluator.for_cohort(cohort)
    base = ev.evaluate(resolve(Scenario.model_validate({})))
    cur = ev.evaluate(resolve(Scenario.model_validate({"parameters": {"age_max": 70}, "disabled": []})))
    return R.build(base, cur, K)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_every_page_shows_no_small_count(tmp_path, role, exports, releases):
    at = _app(tmp_path, role)  # suppression is on by default for analysts when sign-in is on
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if role == "viewer":
        assert not at.sidebar.toggle  # always on: no setting to turn it off
    read = 0
    sections = set()
    scenarios = [None, {"name": "", "parameters": {"age_max": 70}, "disabled": []}]
    for scenario in scenarios:  # the protocol, then a scenario: deltas and moves are suppressed too
        if scenario is not None:
            at.session_state["scenario"] = scenario
            at.session_state["scenario_b"] = {"name": "B", "parameters": {"age_max": 72}, "disabled": []}
        for page in PAGES:
            at.switch_page(page).run()
            assert not at.exception, (page, [e.value for e in at.exception])
            assert not at.error, (page, [e.value for e in at.error])  # no section failed (guard)
            read += _check_page(at, page)
            sections |= {el.proto.id.rsplit("-", 1)[-1] for el in at.get("plotly_chart")}
            sections |= {c for df_el in at.dataframe for c in df_el.value.columns}
            assert not [b for b in at.get("download_button")] or role != "viewer"
    assert read > 1000  # the walk read real tables and charts, not empty pages
    # the sections brought back with suppressed counts (not left out)
    assert {"sup_missing_chart", "sup_demo_chart", "sup_attrition_chart", "sup_upset", "sup_consort_chart",
            "whatif_sweep_chart", "sup_dose_assign_chart", "dose_timeline_chart",  # charts
            "missing", "Population", "eligible_b", "net_b_vs_a", "needed"} <= sections, sections  # tables
    if role == "analyst":  # every export, as the browser would fetch it
        files = {name: fetch() for name, fetch in exports.items()}
        assert {n for n in files if n.endswith(".csv")} and {n for n in files if n.endswith((".html", ".svg"))}
        checked = sum(_check_export(name, data if isinstance(data, bytes) else str(data).encode())
                      for name, data in files.items()
                      if str(name).endswith((".csv", ".html", ".svg")) and not str(name).startswith(DESIGN_FILES))
        assert checked > 200
        assert any(n.startswith("screening_report") for n in files) and any(n.endswith(".svg") for n in files)
    for page in ("app_pages/patients.py", "app_pages/worklist.py"):  # patient level: not served
        with pytest.raises(Exception):  # noqa: B017, PT011
            at.switch_page(page).run()
    # no recoverable cell: every suppression behind what was shown, audited exactly over all its
    # relations (the release's and the extension's together; unshown cells are free)
    from eligibility.access.suppression import _nested
    assert len(releases) >= 8, len(releases)
    for sup in releases.values():
        assert not sup.unprotected
        assert not exposed(sup.values, [*sup.relations, *_nested(sup.relations)], sup.hidden, sup.k,
                           set(sup.unshown))
    log = AuditLog(tmp_path / "audit.jsonl").entries()
    refused = [e for e in log if e["action"] == "role_refused"]
    if role == "viewer":
        assert refused and all(e["permission"] == "download" and e.get("export") for e in refused)
    else:
        assert not refused
        downloaded = [e for e in log if e["action"] == "export_downloaded"]
        assert downloaded and all(e["suppression"] is True and e["k"] == K for e in downloaded)


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


def test_the_walk_checks_can_fail():
    """The checks above see a small count in each kind of export and value they read."""
    for name, data in [("t.csv", b"group,n\r\nSSc,3\r\n"), ("r.html", b"<table><td>2</td></table>"),
                       ("f.svg", b"<text>n = 4</text>"), ("f.svg", "<text>• diagnosis: 1</text>".encode())]:
        with pytest.raises(AssertionError):
            _check_export(name, data)
    assert _check_export("t.csv", b"group,n\r\nSSc,<5\r\nIIM,12\r\n") == 4
    assert [p for p in _parts("+<5 / -12") if _small(p)] == [] and _small(_parts("504–3")[1])
