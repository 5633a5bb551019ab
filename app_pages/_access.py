"""Sign-in gate, roles, inactivity sign-out and the audit log, for app.py and the pages.

Sign-in is on exactly when `.streamlit/secrets.toml` has an `[auth]` table (Streamlit's
`st.login`, OIDC). Without it the app runs as before: one local user with every
permission, no audit log. With it, `gate()` runs before anything else in app.py and
stops the script until the user is signed in and has a role, so no page shows any data,
file name or count before that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets as _secrets
import time
from dataclasses import dataclass

import streamlit as st

from eligibility.access.audit import Action, AuditLog
from eligibility.access.roles import (
    DESCRIPTIONS,
    Permission,
    Role,
    allowed,
    role_from_claims,
    user_id,
)
from eligibility.access.settings import AccessError, AccessSettings, load_settings
from eligibility.access.suppression import DEFAULT_K

_log = logging.getLogger("eligibility.access")


@dataclass(frozen=True)
class Identity:
    user: str | None  # None when sign-in is off (one local user)
    role: Role
    signed_in: bool


LOCAL = Identity(None, Role.ADMIN, False)


def _secret_table(name: str):
    try:
        return st.secrets.get(name) if name in st.secrets else None
    except Exception:  # noqa: BLE001 - no secrets file at all: sign-in off
        return None


def auth_enabled() -> bool:
    return _secret_table("auth") is not None


def settings() -> AccessSettings:
    table = _secret_table("access")
    return load_settings(dict(table) if table is not None else None)


@st.cache_resource(show_spinner=False)
def _audit_log(path: str, max_bytes: int, backups: int) -> AuditLog:
    return AuditLog(path, max_bytes=max_bytes, backups=backups)


def audit_log() -> AuditLog | None:
    """The audit log when sign-in is on (local use writes none)."""
    if not auth_enabled():
        return None
    cfg = settings()
    return _audit_log(str(cfg.audit_file()), int(cfg.audit_max_mb * 1_000_000), cfg.audit_backups)


def _session_id() -> str:
    if "_audit_session" not in st.session_state:
        st.session_state["_audit_session"] = _secrets.token_hex(8)
    return st.session_state["_audit_session"]


def audit(action: str, **details) -> None:
    log = audit_log()
    if log is None:
        return
    who = identity()
    try:
        log.record(action, who.user, session=_session_id(), role=who.role.value, **details)
    except Exception as e:  # noqa: BLE001 - a failing audit write is logged, never shown with a traceback
        _log.error("audit write failed: %s", type(e).__name__)
        st.error("The audit log cannot be written; ask the administrator.", icon=":material/error:")
        st.stop()


def identity() -> Identity:
    return st.session_state.get("_identity", LOCAL)


def _claims() -> dict:
    try:
        return {k: v for k, v in st.user.to_dict().items()}
    except Exception:  # noqa: BLE001
        return {}


def _sign_in_screen() -> None:
    st.title("NCT06614270 screening")
    st.write("Sign in with your hospital account to see the screening dashboard.")
    if st.button("Sign in", key="access_sign_in", icon=":material/login:", type="primary"):
        st.login()
    st.stop()


def _shorten_cookie(hours: float) -> None:
    """Streamlit 1.67 sets the identity cookie for 30 days (a constant read when the cookie is
    written, `starlette_auth_routes.AUTH_COOKIE_MAX_AGE_SECONDS`); lower it for this process.
    The age check in `gate` enforces the same limit on the server either way."""
    try:
        from streamlit.web.server.starlette import starlette_auth_routes as routes
        routes.AUTH_COOKIE_MAX_AGE_SECONDS = int(hours * 3600)  # type: ignore[misc]  # Final by design upstream; patched on purpose
    except Exception:  # noqa: BLE001 - another server implementation: the server-side check remains
        pass


def gate() -> Identity:
    """Stop the script unless the user may see the app; returns who it is."""
    if not auth_enabled():
        st.session_state["_identity"] = LOCAL
        return LOCAL
    try:
        cfg = settings()
        mapping = cfg.user_roles()
    except AccessError as e:
        st.error(f"Sign-in is misconfigured: {e}", icon=":material/error:")
        st.stop()
    _shorten_cookie(cfg.cookie_hours)
    if not st.user.is_logged_in:
        st.session_state.pop("_identity", None)
        _sign_in_screen()
    claims = _claims()
    who = user_id(claims)
    now = time.time()
    issued = claims.get("iat")
    started = st.session_state.setdefault("_signed_in_at", now)
    since = float(issued) if isinstance(issued, int | float) else started
    last = st.session_state.get("_last_activity", now)
    idle = now - last > cfg.idle_minutes * 60
    too_old = now - since > cfg.cookie_hours * 3600
    role = role_from_claims(claims, cfg.role_claim, mapping, cfg.default_role)
    st.session_state["_identity"] = Identity(who, role or Role.VIEWER, True)
    if idle or too_old:
        audit(Action.IDLE_SIGN_OUT if idle else Action.SIGN_OUT, idle_minutes=int(cfg.idle_minutes))
        for k in ("_identity", "_signed_in_at", "_last_activity", "_audit_signed_in"):
            st.session_state.pop(k, None)
        st.logout()
        st.stop()
    st.session_state["_last_activity"] = now
    if role is None:
        audit(Action.ROLE_REFUSED, permission="any")
        st.session_state.pop("_identity", None)
        st.title("NCT06614270 screening")
        st.error("Your account has no role for this dashboard. Ask the administrator for access.",
                 icon=":material/block:")
        if st.button("Sign out", key="access_sign_out_norole"):
            st.logout()
        st.stop()
    if not st.session_state.get("_audit_signed_in"):
        st.session_state["_audit_signed_in"] = True
        audit(Action.SIGN_IN)
    return identity()


def can(permission: Permission) -> bool:
    return allowed(identity().role, permission)


def require(permission: Permission, what: str) -> bool:
    """Server-side check before drawing or serving something; a refusal is audited."""
    if can(permission):
        return True
    audit(Action.ROLE_REFUSED, permission=permission.value)
    st.info(f"Your role ({identity().role.value}) does not include {what}.", icon=":material/lock:")
    return False


def sidebar_identity() -> None:
    who = identity()
    if not who.signed_in:
        return
    sb = st.sidebar
    sb.caption(f"Signed in as **{who.user}** · role **{who.role.value}** ({DESCRIPTIONS[who.role]})")
    if sb.button("Sign out", key="access_sign_out", icon=":material/logout:"):
        audit(Action.SIGN_OUT)
        st.session_state.pop("_audit_signed_in", None)
        st.logout()


def page_viewed(title: str) -> None:
    if st.session_state.get("_audit_last_page") != title:
        st.session_state["_audit_last_page"] = title
        audit(Action.PAGE_VIEWED, page=title)


def cohort_loaded(source: str, data: bytes | None, rows: int) -> None:
    digest = hashlib.sha256(data).hexdigest() if data is not None else "bundled"
    audit(Action.COHORT_LOADED, source=source, sha256=digest, rows=int(rows))


def scenario_applied(data: dict) -> None:
    """Audit a change of the session's scenario (its hash, not its content)."""
    body = json.dumps({"p": data.get("parameters", {}), "d": data.get("disabled", [])}, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    if st.session_state.get("_audit_scenario") != digest:
        first = "_audit_scenario" not in st.session_state
        st.session_state["_audit_scenario"] = digest
        n = len(data.get("parameters", {})) + len(data.get("disabled", []))
        if not (first and n == 0):
            audit(Action.SCENARIO_APPLIED, scenario=digest, changes=n)


# -- small-cell suppression ---------------------------------------------------------------------

SUPPRESS_KEY = "access_suppress"


def min_cell() -> int:
    """k: counts 1..k−1 are shown as "<k"."""
    try:
        return settings().min_cell_count
    except AccessError:
        return DEFAULT_K


def suppression_on() -> bool:
    """Always for viewers; otherwise the session's setting (default from [access] when sign-in
    is on, off for the one local user)."""
    if not can(Permission.SUPPRESSION_OFF):
        return True
    if SUPPRESS_KEY not in st.session_state:
        try:
            default = auth_enabled() and settings().suppress_by_default
        except AccessError:
            default = True
        st.session_state[SUPPRESS_KEY] = bool(default)
    return bool(st.session_state[SUPPRESS_KEY])


def suppression_sidebar() -> None:
    """The setting for analysts and admins; a note for viewers (for whom it is always on)."""
    sb = st.sidebar
    k = min_cell()
    if not can(Permission.SUPPRESSION_OFF):
        sb.caption(f"Small counts (1–{k - 1}) are shown as “<{k}”.")
        return
    suppression_on()  # sets the default before the widget exists
    on = sb.toggle(f"Suppress small counts (<{k})", key=SUPPRESS_KEY,
                   help=f"Show counts from 1 to {k - 1} as “<{k}”, hide enough other counts that they "
                        "cannot be worked out, and leave out patient-level tables and downloads.")
    # The widget has already changed the state when the script runs: compare with the last seen.
    last = st.session_state.setdefault("_audit_suppression", on)
    if on != last:
        st.session_state["_audit_suppression"] = on
        audit(Action.SETTING_CHANGED, setting="suppression", suppression=bool(on), k=k)


# -- downloads ----------------------------------------------------------------------------------


def download_button(where, label: str, data, *, key: str, **kwargs):
    """A download served only to a role with the download permission, checked again on the
    server when the file is asked for; each download is audited (which export, never its
    content). A role without it gets no button, and one "role refused" entry per export."""
    if not can(Permission.DOWNLOAD):
        refused = st.session_state.setdefault("_audit_refused_exports", set())
        if key not in refused:
            refused.add(key)
            audit(Action.ROLE_REFUSED, permission=Permission.DOWNLOAD.value, export=key)
        return False
    # The file is built when it is asked for, outside the script run: capture who asks now.
    who, log, session = identity(), audit_log(), _session_id()
    on, k = suppression_on(), min_cell()

    def serve():
        if not allowed(who.role, Permission.DOWNLOAD):
            raise PermissionError("this role may not download")
        if log is not None:
            log.record(Action.EXPORT_DOWNLOADED, who.user, session=session, role=who.role.value,
                       export=key, suppression=on, k=k)
        return data() if callable(data) else data

    return where.download_button(label, data=serve, key=key, **kwargs)
