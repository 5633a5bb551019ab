"""Append-only audit log: one JSON object per line (who, when, action, a few safe details).

Never patient values: every detail is checked against a fixed list of fields, and text
details must be short identifiers (page names, roles, hashes, file kinds), so a cohort
cell, a patient ID or a file name cannot end up in the log by mistake.

Lines are written with a single `write` on a file opened for appending (O_APPEND) under a
process lock and an advisory file lock, so lines from several threads or processes never
interleave. When the file reaches `max_bytes` it is renamed `<name>.1` (older copies
shift to `.2` … `.<backups>`; the oldest is deleted) and a new file begins.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import threading
from pathlib import Path


class Action:
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    IDLE_SIGN_OUT = "idle_sign_out"
    COHORT_LOADED = "cohort_loaded"
    PAGE_VIEWED = "page_viewed"
    SCENARIO_APPLIED = "scenario_applied"
    EXPORT_DOWNLOADED = "export_downloaded"
    ROLE_REFUSED = "role_refused"
    SETTING_CHANGED = "setting_changed"


ACTIONS = frozenset(v for k, v in vars(Action).items() if not k.startswith("_"))

# Detail fields and what they may hold. Text must match SAFE_TEXT.
FIELDS: dict[str, type | tuple[type, ...]] = {
    "role": str,  # viewer / analyst / admin / none
    "page": str,  # page title
    "source": str,  # bundled / upload / database / ehr
    "sha256": str,  # content hash of a loaded cohort file
    "rows": int,  # rows of a loaded cohort
    "scenario": str,  # hash of a scenario's parameters and switched-off criteria
    "changes": int,  # number of changes from the protocol in a scenario
    "export": str,  # export identifier (widget key), never the file name
    "permission": str,  # the permission that was missing
    "setting": str,
    "value": (str, int, bool),
    "idle_minutes": int,
    "suppression": bool,
    "k": int,
    "session": str,  # a random per-browser-session identifier
}
SAFE_TEXT = re.compile(r"^[A-Za-z0-9 _.:+\-/()#@]{0,120}$")


class AuditError(ValueError):
    pass


def _check(details: dict) -> dict:
    for key, value in details.items():
        want = FIELDS.get(key)
        if want is None:
            raise AuditError(f"audit detail {key!r} is not an allowed field")
        if isinstance(value, bool) and want is int:
            raise AuditError(f"audit detail {key!r} must be a number")
        if not isinstance(value, want):
            raise AuditError(f"audit detail {key!r} has the wrong type ({type(value).__name__})")
        if isinstance(value, str) and not SAFE_TEXT.match(value):
            raise AuditError(f"audit detail {key!r} is not a short identifier")
    return details


class AuditLog:
    """Append JSON lines to `path`, rotating by size."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = 10_000_000, backups: int = 20):
        if max_bytes < 1_000:
            raise ValueError("max_bytes must be at least 1000")
        if backups < 1:
            raise ValueError("backups must be at least 1")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    def record(self, action: str, user: str | None, **details) -> dict:
        """Append one entry and return it. `user` is the signed-in identity (None: anonymous)."""
        if action not in ACTIONS:
            raise AuditError(f"unknown audit action {action!r}")
        if user is not None and (not isinstance(user, str) or not SAFE_TEXT.match(user)):
            raise AuditError("audit user must be a short identifier")
        entry = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "user": user, "action": action, **_check(dict(details))}
        line = (json.dumps(entry, ensure_ascii=True, sort_keys=False) + "\n").encode("ascii")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".lock")
            with open(lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._rotate_if_needed(len(line))
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    try:
                        os.write(fd, line)
                    finally:
                        os.close(fd)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        return entry

    def _rotate_if_needed(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        for i in range(self.backups, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            dst = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, dst)

    def entries(self) -> list[dict]:
        """Every entry, oldest first, across the rotated files (for tests and review)."""
        files = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.backups, 0, -1)]
        out: list[dict] = []
        for f in [*files, self.path]:
            if f.exists():
                out.extend(json.loads(line) for line in f.read_text("ascii").splitlines() if line)
        return out
