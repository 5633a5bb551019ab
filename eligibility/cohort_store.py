"""Uploaded cohorts kept on the server by content hash, so that a browser reload or a shared
link (`?c=<token>`) finds the same file again; bounded on disk and released by age.

Also: the expanded-size budget an upload must fit (a zip-compressed workbook or a Parquet
file can expand far beyond its upload size), and plain wording for unreadable files.
Settings come from the environment (see `StoreSettings.from_env`). No Streamlit here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
MB = 1024 * 1024


@dataclass(frozen=True)
class StoreSettings:
    root: Path
    max_disk_bytes: int  # all stored uploads together
    max_age_s: float  # an upload not used for this long is released
    budget_bytes: int  # largest expanded size of one upload

    @classmethod
    def from_env(cls, env=os.environ) -> StoreSettings:
        def num(name: str, default: float) -> float:
            try:
                return float(env.get(name, default))
            except ValueError:
                return default

        root = env.get("ELIGIBILITY_COHORT_DIR") or str(Path(tempfile.gettempdir()) / "nct06614270-cohorts")
        return cls(Path(root), int(num("ELIGIBILITY_COHORT_DISK_MB", 2048) * MB),
                   num("ELIGIBILITY_COHORT_MAX_AGE_HOURS", 72) * 3600,
                   int(num("ELIGIBILITY_UPLOAD_BUDGET_MB", 1024) * MB))


def token_for(data: bytes) -> str:
    """The content hash that names an upload (and goes into the URL as `c`)."""
    return hashlib.sha256(data).hexdigest()[:32]


def valid_token(token: str | None) -> bool:
    return bool(token) and TOKEN_RE.fullmatch(str(token)) is not None


class CohortStore:
    """Uploaded files on disk: `<token>.bin` (the bytes as uploaded) and `<token>.json`
    (file name, size, last use). Thread-safe; every write prunes by age and total size."""

    def __init__(self, settings: StoreSettings):
        self.settings = settings
        self._lock = threading.Lock()

    def _paths(self, token: str) -> tuple[Path, Path]:
        if not valid_token(token):
            raise ValueError("not a cohort token")
        return self.settings.root / f"{token}.bin", self.settings.root / f"{token}.json"

    def put(self, name: str, data: bytes, now: float | None = None) -> str:
        token = token_for(data)
        now = time.time() if now is None else now
        with self._lock:
            self.settings.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            blob, meta = self._paths(token)
            if not blob.exists():
                tmp = blob.with_suffix(".part")
                tmp.write_bytes(data)
                tmp.replace(blob)
            meta.write_text(json.dumps({"name": name, "size": len(data), "used": now}), "utf-8")
            self._prune(now, keep=token)
        return token

    def get(self, token: str, now: float | None = None) -> tuple[str, bytes] | None:
        """(file name, bytes) of a stored upload, or None if it is unknown or released."""
        if not valid_token(token):
            return None
        now = time.time() if now is None else now
        with self._lock:
            self._prune(now)
            blob, meta = self._paths(token)
            try:
                info = json.loads(meta.read_text("utf-8"))
                data = blob.read_bytes()
            except (OSError, ValueError):
                return None
            info["used"] = now
            meta.write_text(json.dumps(info), "utf-8")
        return str(info.get("name", "upload")), data

    def tokens(self) -> list[str]:
        root = self.settings.root
        return sorted(p.stem for p in root.glob("*.json") if valid_token(p.stem)) if root.exists() else []

    def _prune(self, now: float, keep: str | None = None) -> None:
        entries = []
        for token in self.tokens():
            blob, meta = self._paths(token)
            try:
                info = json.loads(meta.read_text("utf-8"))
                entries.append((float(info.get("used", 0)), token, blob.stat().st_size))
            except (OSError, ValueError):
                self._remove(token)
        entries.sort()  # least recently used first
        total = sum(size for _, _, size in entries)
        for used, token, size in entries:
            too_old = now - used > self.settings.max_age_s
            if token != keep and (too_old or total > self.settings.max_disk_bytes):
                self._remove(token)
                total -= size

    def _remove(self, token: str) -> None:
        for p in self._paths(token):
            p.unlink(missing_ok=True)


# -- the expanded-size budget -----------------------------------------------------------------


def expanded_size(name: str, data: bytes) -> int:
    """What the file will occupy once decompressed: a workbook's unzipped parts, a Parquet
    file's uncompressed row groups; text files are their own size."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return sum(i.file_size for i in z.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return len(data)
    if data[:4] == b"PAR1":
        try:
            import pyarrow.parquet as pq

            md = pq.ParquetFile(io.BytesIO(data)).metadata
            return max(len(data), sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups)))
        except Exception:  # noqa: BLE001 - an unreadable file is the loader's to report
            return len(data)
    return len(data)


def over_budget(name: str, data: bytes, budget_bytes: int) -> str | None:
    """A plain message if the file would expand beyond the budget, else None."""
    size = expanded_size(name, data)
    if size <= budget_bytes:
        return None
    return (f"{name} would take about {size / MB:,.0f} MB once opened, more than this server's limit of "
            f"{budget_bytes / MB:,.0f} MB per cohort (ELIGIBILITY_UPLOAD_BUDGET_MB). Remove unused sheets, "
            "columns or formatting, or split the file, and upload it again")


_JARGON = re.compile(r"\s*\((?:pyarrow\.)?(?:Arrow\w*|\w*Error|\w*Exception|BadZipFile|InvalidFileException)\)")


def plain_error(message: str) -> str:
    """A loader message without library class names such as '(ArrowInvalid)'."""
    return _JARGON.sub("", str(message)).strip()
