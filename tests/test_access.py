"""Roles, the audit log and the access settings; roles enforced on the server (AppTest with a
faked signed-in user)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from apptest_support import APP, TIMEOUT
from streamlit.testing.v1 import AppTest

from eligibility.access.audit import Action, AuditError, AuditLog
from eligibility.access.roles import Permission, Role, allowed, role_from_claims, user_id
from eligibility.access.settings import AccessError, load_settings

# -- roles ------------------------------------------------------------------------------------


def test_role_from_claim_string_list_and_highest_wins():
    assert role_from_claims({"roles": "Analyst"}) is Role.ANALYST
    assert role_from_claims({"roles": ["viewer", "admin", "nurse"]}) is Role.ADMIN
    assert role_from_claims({"groups": ["analyst"]}, claim="groups") is Role.ANALYST


def test_role_from_mapping_by_email_then_subject_then_default():
    mapping = {"Alice@Hospital.org": "analyst", "sub-7": "viewer"}
    assert role_from_claims({"email": "alice@hospital.org"}, mapping=mapping) is Role.ANALYST
    assert role_from_claims({"sub": "sub-7"}, mapping=mapping) is Role.VIEWER
    assert role_from_claims({"sub": "x"}, mapping=mapping) is None
    assert role_from_claims({"sub": "x"}, mapping=mapping, default=Role.VIEWER) is Role.VIEWER
    # an unknown role in the claim falls through to the mapping
    assert role_from_claims({"roles": ["nurse"], "sub": "sub-7"}, mapping=mapping) is Role.VIEWER


def test_permission_table():
    assert allowed(Role.VIEWER, Permission.AGGREGATES)
    for p in (Permission.PATIENT_LEVEL, Permission.DOWNLOAD, Permission.UPLOAD, Permission.SUPPRESSION_OFF):
        assert not allowed(Role.VIEWER, p)
    assert allowed(Role.ANALYST, Permission.PATIENT_LEVEL) and allowed(Role.ANALYST, Permission.DOWNLOAD)
    assert not allowed(Role.ANALYST, Permission.UPLOAD) and not allowed(Role.ANALYST, Permission.DATA_SOURCES)
    assert all(allowed(Role.ADMIN, p) for p in Permission)
    assert not allowed(None, Permission.AGGREGATES)


def test_user_id():
    assert user_id({"email": "a@b.org", "sub": "1"}) == "a@b.org"
    assert user_id({"sub": "1", "iss": "https://idp"}) == "https://idp#1"


# -- audit log --------------------------------------------------------------------------------


def test_audit_entries_are_json_lines_with_who_when_what(tmp_path):
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    log.record(Action.SIGN_IN, "alice@hospital.org", role="analyst")
    log.record(Action.COHORT_LOADED, "alice@hospital.org", source="upload", sha256="ab" * 32, rows=12)
    lines = (tmp_path / "a" / "audit.jsonl").read_text().splitlines()
    first, second = (json.loads(x) for x in lines)
    assert first["action"] == "sign_in" and first["user"] == "alice@hospital.org"
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["rows"] == 12 and second["sha256"] == "ab" * 32
    assert (tmp_path / "a" / "audit.jsonl").stat().st_mode & 0o077 == 0  # owner only


@pytest.mark.parametrize("details", [
    {"patient_id": "P001"},  # not an allowed field
    {"page": "Overview\nforged"},  # not a short identifier
    {"page": "x" * 200},
    {"rows": "12"},
    {"rows": True},
    {"export": "=cmd()"},
])
def test_audit_refuses_anything_but_safe_details(tmp_path, details):
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(AuditError):
        log.record(Action.PAGE_VIEWED, "alice", **details)
    with pytest.raises(AuditError):
        log.record("looked_at_patient", "alice")
    assert not (tmp_path / "audit.jsonl").exists()


def test_audit_rotation_by_size_keeps_every_entry_within_the_backups(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", max_bytes=1_000, backups=3)
    for i in range(60):
        log.record(Action.PAGE_VIEWED, "alice", page=f"Page {i}")
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("audit.jsonl") and
                   not p.name.endswith(".lock"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"]
    assert all((tmp_path / f).stat().st_size <= 1_000 for f in files)
    pages = [e["page"] for e in log.entries()]
    assert pages == sorted(pages, key=lambda p: int(p.split()[1]))  # oldest first, in order
    assert pages[-1] == "Page 59" and len(pages) < 60  # the oldest file was dropped


def test_audit_lines_never_interleave_across_threads(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", max_bytes=10_000_000)

    def work(n):
        for i in range(50):
            log.record(Action.PAGE_VIEWED, f"user{n}", page=f"P{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = log.entries()
    assert len(entries) == 200
    for n in range(4):
        assert [e["page"] for e in entries if e["user"] == f"user{n}"] == [f"P{i}" for i in range(50)]


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults_and_errors(tmp_path):
    s = load_settings(None)
    assert s.min_cell_count == 5 and s.idle_minutes == 30 and s.cookie_hours == 8
    with pytest.raises(AccessError, match="min_cell_count"):
        load_settings({"min_cell_count": 2})
    with pytest.raises(AccessError, match="unknown role"):
        load_settings({"users": {"a@b": "superuser"}})
    with pytest.raises(AccessError, match="idle_minutes"):
        load_settings({"idle_minutes": 0})
    roles = tmp_path / "roles.toml"
    roles.write_text('[users]\n"Bob@X.org" = "admin"\n')
    s = load_settings({"users": {"a@x.org": "viewer"}, "roles_file": str(roles)})
    assert s.user_roles() == {"a@x.org": "viewer", "bob@x.org": "admin"}
    roles.write_text('[users]\n"bob@x.org" = "root"\n')
    with pytest.raises(AccessError, match="unknown role"):
        load_settings({"roles_file": str(roles)}).user_roles()


# -- roles on the server (AppTest, faked signed-in user) ---------------------------------------


def _app(tmp_path, user: dict | None, **access) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:1/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "c", "client_secret": "s",
                          "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}
    at.secrets["access"] = {"role_claim": "roles", "audit_path": str(tmp_path / "audit.jsonl"), **access}
    at.user = {"is_logged_in": False} if user is None else {"is_logged_in": True, **user}
    return at


def _audit(tmp_path) -> list[dict]:
    return AuditLog(tmp_path / "audit.jsonl").entries()


def _all_text(at: AppTest) -> str:
    parts = [e.value for e in [*at.title, *at.markdown, *at.caption, *at.text, *at.info, *at.error]]
    return "\n".join(str(p) for p in parts)


def test_signed_out_user_gets_no_data(tmp_path):
    at = _app(tmp_path, None)
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe and not at.sidebar
    text = _all_text(at)
    assert "cohort" not in text.lower() and "patients" not in text.lower()
    assert _audit(tmp_path) == []


def test_viewer_is_served_aggregate_pages_only(tmp_path):
    at = _app(tmp_path, {"email": "v@h.org", "roles": ["viewer"]})
    at.run()
    assert not at.exception
    # aggregate pages with suppression on; the patient-level pages are not registered
    assert at.title[0].value == "Screening overview"
    assert not at.sidebar.get("file_uploader") and not at.sidebar.toggle
    assert not at.get("download_button")
    for page in ("app_pages/patients.py", "app_pages/worklist.py"):
        with pytest.raises(Exception):  # noqa: B017, PT011 - not registered for this role
            at.switch_page(page).run()
    log = _audit(tmp_path)
    assert [e["action"] for e in log][:2] == ["sign_in", "page_viewed"]
    assert log[0]["user"] == "v@h.org" and log[0]["role"] == "viewer" and log[1]["page"] == "Overview"
    # the download the page would offer is refused on the server and audited (once per export)
    refused = [e for e in log if e["action"] == "role_refused"]
    assert [(e["permission"], e["export"]) for e in refused] == [("download", "sup_dl_status"),
                                                                 ("download", "sup_dl_report_html")]
    at.run()
    assert len([e for e in _audit(tmp_path) if e["action"] == "role_refused"]) == 2


def test_analyst_sees_patients_with_suppression_off_but_cannot_upload_admin_can(tmp_path):
    at = _app(tmp_path, {"email": "a@h.org", "roles": "analyst"})
    at.run()
    assert not at.exception and at.title[0].value == "Screening overview"
    assert at.sidebar.toggle(key="access_suppress").value is True  # default from [access]
    assert not at.get("file_uploader")
    with pytest.raises(Exception):  # noqa: B017, PT011 - patient level: not while suppression is on
        at.switch_page("app_pages/patients.py").run()
    at.sidebar.toggle(key="access_suppress").set_value(False).run()
    at.switch_page("app_pages/patients.py").run()
    assert not at.exception and at.title[0].value == "Patients"
    changed = [e for e in _audit(tmp_path) if e["action"] == "setting_changed"]
    assert changed and changed[-1]["suppression"] is False and changed[-1]["k"] == 5
    at = _app(tmp_path, {"email": "root@h.org", "roles": ["admin"]}, suppress_by_default=False)
    at.run()
    assert [u.label for u in at.get("file_uploader")] == ["Upload a cohort (CSV, Parquet or xlsx)",
                                                          "Merge a filled sheet (CSV or xlsx)"]


def test_user_without_role_is_refused_and_audited(tmp_path):
    at = _app(tmp_path, {"email": "x@h.org"})
    at.run()
    assert not at.exception
    assert not at.metric and not at.dataframe
    assert "no role" in at.error[0].value
    assert [e["action"] for e in _audit(tmp_path)] == ["role_refused"]


def test_inactivity_signs_out(tmp_path):
    at = _app(tmp_path, {"email": "a@h.org", "roles": "analyst"}, idle_minutes=1)
    at.run()
    assert at.title[0].value == "Screening overview"
    at.session_state["_last_activity"] = time.time() - 61
    at.run()
    actions = [e["action"] for e in _audit(tmp_path)]
    assert actions[-1] == "idle_sign_out"
    assert not at.metric


def test_scripted_session_audit_trail(tmp_path):
    at = _app(tmp_path, {"email": "a@h.org", "roles": "analyst"})
    at.run()
    at.switch_page("app_pages/screen_failures.py").run()
    at.session_state["scenario"] = {"name": "", "parameters": {"age_max": 70}, "disabled": []}
    at.run()
    at.switch_page("app_pages/what_if.py").run()
    at.sidebar.button(key="access_sign_out").click().run()
    log = _audit(tmp_path)
    assert [e["action"] for e in log] == ["sign_in", "page_viewed", "page_viewed", "scenario_applied",
                                          "page_viewed", "sign_out"]
    assert [e.get("page") for e in log if e["action"] == "page_viewed"] == \
        ["Overview", "Screen failures", "What-if"]
    applied = log[3]
    assert applied["changes"] == 1 and len(applied["scenario"]) == 16
    assert all(e["user"] == "a@h.org" and e["session"] == log[0]["session"] for e in log)
    raw = (tmp_path / "audit.jsonl").read_text()
    assert "age_max" not in raw  # no scenario content: only its hash and the number of changes
    values = [v for e in log for k, v in e.items() if k not in ("ts", "session", "scenario")]
    assert not [v for v in values if v == 70 or (isinstance(v, str) and "70" in v)]
