"""Words next to IDs: a criterion's short name ("EXC-3.hbcab · HBcAb positive") and its full text.

Short names live in protocol/short_names.yaml (one per criterion and part); every chart
axis, filter, table and patient summary labels an ID with `label(id)` and puts
`full_text(id)` on hover.
"""

from __future__ import annotations

from functools import cache

import yaml

from .catalog import Catalog, default_catalog
from .protocol_files import read_text

SEP = " · "


@cache
def short_names() -> dict[str, str]:
    text = read_text("short_names.yaml")
    return {str(k): str(v) for k, v in yaml.safe_load(text).items()}


def short_name(uid: str) -> str:
    """The short name of a criterion or part ID ('' for an unknown ID)."""
    names = short_names()
    if uid in names:
        return names[uid]
    parent = uid.split(".", 1)[0]
    return names.get(parent, "")


def label(uid: str) -> str:
    """'EXC-3.hbcab · HBcAb positive'; the ID alone when it has no short name."""
    name = short_name(uid) if uid else ""
    return f"{uid}{SEP}{name}" if name else uid


def labels(ids: str, sep: str = ";") -> str:
    """A ';'-joined list of IDs as labels, one per line-friendly ', ' item."""
    return ", ".join(label(i) for i in ids.split(sep) if i)


def full_text(uid: str, catalog: Catalog | None = None) -> str:
    """The protocol text of a criterion or part (the part's text with its criterion's)."""
    catalog = catalog or default_catalog()
    if uid in catalog.unit_by_id:
        u = catalog.unit_by_id[uid]
        return u.text if u.text == u.criterion_text else f"{u.text} (part of {u.criterion}: {u.criterion_text})"
    if uid in catalog.criterion_by_id:
        return catalog.criterion_by_id[uid].text
    return ""
