"""Deployment settings for sign-in, roles, suppression and the audit log.

Read from the `[access]` table of `.streamlit/secrets.toml` (see
`.streamlit/secrets.example.toml`); every field has a default, so an empty table works.
Sign-in itself is on exactly when the secrets file has an `[auth]` table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .roles import Role, parse_role
from .suppression import DEFAULT_K

ROOT = Path(__file__).resolve().parent.parent.parent


class AccessError(ValueError):
    pass


class AccessSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role_claim: str = "roles"  # ID-token claim holding the role(s); "" = mapping only
    default_role: Role | None = None  # a signed-in user with no role: None = refused
    users: dict[str, Role] = Field(default_factory=dict)  # e-mail or subject → role
    roles_file: str | None = None  # TOML with a [users] table, merged over `users`
    min_cell_count: int = Field(DEFAULT_K, ge=3, le=100)  # k: counts 1..k−1 are shown as "<k"
    suppress_by_default: bool = True  # for analysts and admins when sign-in is on
    idle_minutes: float = Field(30, gt=0, le=24 * 60)  # sign out after this long without activity
    cookie_hours: float = Field(8, gt=0, le=24 * 7)  # lifetime of Streamlit's identity cookie
    audit_path: str = "artifacts/audit/audit.jsonl"  # relative paths are from the project folder
    audit_max_mb: float = Field(10, gt=0)
    audit_backups: int = Field(20, ge=1, le=1000)

    @field_validator("default_role", mode="before")
    @classmethod
    def _empty_is_none(cls, v):
        return None if v in ("", None) else v

    @field_validator("users", mode="before")
    @classmethod
    def _roles(cls, v):
        if not isinstance(v, Mapping):
            return v
        out = {}
        for who, role in v.items():
            parsed = parse_role(role)
            if parsed is None:
                raise ValueError(f"user {who!r}: unknown role {role!r} (viewer, analyst or admin)")
            out[str(who).strip().lower()] = parsed
        return out

    def audit_file(self) -> Path:
        p = Path(self.audit_path)
        return p if p.is_absolute() else ROOT / p

    def user_roles(self) -> dict[str, str]:
        """The mapping of users to roles: `users`, then the roles file over it."""
        out = {k: v.value for k, v in self.users.items()}
        if self.roles_file:
            path = Path(self.roles_file)
            path = path if path.is_absolute() else ROOT / path
            try:
                data = tomllib.loads(path.read_text("utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise AccessError(f"the roles file {path} cannot be read ({type(e).__name__})") from e
            table = data.get("users", {})
            for who, role in table.items():
                if parse_role(role) is None:
                    raise AccessError(f"roles file {path}: user {who!r} has an unknown role {role!r}")
                out[str(who).strip().lower()] = str(role).strip().lower()
        return out


def load_settings(table: Mapping | None) -> AccessSettings:
    """Validate the `[access]` table; a bad value becomes one plain message."""
    try:
        return AccessSettings.model_validate(dict(table or {}))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise AccessError(f"[access] {where}: {first['msg']}") from None
