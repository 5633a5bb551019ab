"""Roles and what each may see or do (enforced on the server by app_pages/_access.py).

A user's role comes from a claim of the ID token (e.g. `roles` or `groups`: a string or a
list; the highest known role wins) or, failing that, from a mapping of e-mail / subject to
role (the secrets file or a separate TOML file). A user with no role is refused unless a
default role is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"


RANK = {Role.VIEWER: 0, Role.ANALYST: 1, Role.ADMIN: 2}


class Permission(StrEnum):
    AGGREGATES = "aggregates"  # counts, charts, CONSORT flow, what-if deltas (suppressed for viewers)
    PATIENT_LEVEL = "patient_level"  # patient tables, explanations, near misses, validation report values
    DOWNLOAD = "download"  # every file download (results, tables, figures, scenarios)
    SUPPRESSION_OFF = "suppression_off"  # may turn small-cell suppression off
    UPLOAD = "upload"  # load a cohort file
    DATA_SOURCES = "data_sources"  # database and EHR sources


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.AGGREGATES}),
    Role.ANALYST: frozenset({Permission.AGGREGATES, Permission.PATIENT_LEVEL, Permission.DOWNLOAD,
                             Permission.SUPPRESSION_OFF}),
    Role.ADMIN: frozenset(Permission),
}

DESCRIPTIONS = {
    Role.VIEWER: "aggregate counts only, small counts always suppressed; no patient-level tables, "
                 "explanations or downloads",
    Role.ANALYST: "patient-level tables, explanations and downloads; suppression is a setting",
    Role.ADMIN: "as analyst, plus cohort uploads and database / EHR sources",
}


def allowed(role: Role | None, permission: Permission) -> bool:
    return role is not None and permission in PERMISSIONS[role]


def parse_role(text: object) -> Role | None:
    """A role name as given in a claim or a mapping ('Analyst', ' admin '); None if unknown."""
    if not isinstance(text, str):
        return None
    try:
        return Role(text.strip().lower())
    except ValueError:
        return None


def highest(roles: Iterable[Role | None]) -> Role | None:
    known = [r for r in roles if r is not None]
    return max(known, key=RANK.__getitem__) if known else None


def role_from_claims(claims: Mapping[str, object], claim: str = "roles",
                     mapping: Mapping[str, str] | None = None,
                     default: Role | None = None) -> Role | None:
    """The user's role: from the claim (string or list; the highest known role), else from
    the mapping by e-mail (case-insensitive) or subject, else the default."""
    value = claims.get(claim) if claim else None
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        found = highest(parse_role(v) for v in value)
        if found is not None:
            return found
    if mapping:
        lowered = {str(k).strip().lower(): v for k, v in mapping.items()}
        for ident in (claims.get("email"), claims.get("sub")):
            if isinstance(ident, str) and ident.strip().lower() in lowered:
                found = parse_role(lowered[ident.strip().lower()])
                if found is not None:
                    return found
    return default


def user_id(claims: Mapping[str, object]) -> str:
    """Who the user is, for the audit log: e-mail if given, else issuer-qualified subject."""
    email = claims.get("email")
    if isinstance(email, str) and email:
        return email
    sub = claims.get("sub")
    return f"{claims.get('iss', '')}#{sub}" if sub else "unknown"
