"""Protocol versions: a version is a folder with criteria.yaml, parameters.yaml and readings.yaml.

`diff_protocols` compares two versions: criteria added, removed or changed (with the
rule of each in words), parameters added, removed or changed, and, on a cohort, per
disease the patients who become eligible (gained) or stop being eligible (lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from .catalog import (
    AllOf,
    AnyOf,
    AtLeast,
    Catalog,
    Implies,
    Not,
    Ref,
    default_catalog,
    load_catalog,
)
from .columns import GROUP_NAMES
from .evaluate import ELIGIBLE, Evaluator
from .rule_text import render

PROTOCOL_FILES = ("criteria.yaml", "parameters.yaml", "readings.yaml")


class VersionError(ValueError):
    """A protocol folder that cannot be read; the message names the file and the problem."""


def load_version(folder: str | Path) -> Catalog:
    """A protocol version from a folder (readings.yaml optional: no readings)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VersionError(f"{folder} is not a folder holding criteria.yaml and parameters.yaml")
    texts: dict[str, str] = {}
    for name in PROTOCOL_FILES:
        path = folder / name
        if path.exists():
            try:
                texts[name] = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise VersionError(f"{folder.name}/{name}: cannot be read ({e})") from None
    return load_version_texts(texts, folder.name)


def load_version_texts(texts: dict[str, str], label: str = "version") -> Catalog:
    """A protocol version from the text of its files (file name → YAML text), e.g. uploads."""
    data: dict[str, Any] = {}
    for name in PROTOCOL_FILES:
        if name not in texts:
            if name == "readings.yaml":
                data[name] = []
                continue
            raise VersionError(f"{label}: {name} is missing")
        try:
            data[name] = yaml.safe_load(texts[name])
        except yaml.YAMLError as e:
            raise VersionError(f"{label}/{name}: not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        return load_catalog(data["criteria.yaml"], data["parameters.yaml"], data["readings.yaml"] or [])
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise VersionError(f"{label}: {where}: {first['msg']}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise VersionError(f"{label}: {e}") from None


def current_version() -> Catalog:
    return default_catalog()


def expanded(catalog: Catalog, node) -> dict[str, Any]:
    """A rule with its named definitions written out (for comparing versions)."""
    while isinstance(node, Ref):
        node = catalog.definitions[node.name]
    out = node.model_dump(by_alias=True, exclude_none=True, exclude={"of", "item", "if_", "then"})
    if isinstance(node, AllOf | AnyOf | AtLeast):
        out["of"] = [expanded(catalog, c) for c in node.of]
    elif isinstance(node, Not):
        out["item"] = expanded(catalog, node.item)
    elif isinstance(node, Implies):
        out["if"] = expanded(catalog, node.if_)
        out["then"] = expanded(catalog, node.then)
    return out


@dataclass
class ProtocolDiff:
    added: list[dict[str, str]] = field(default_factory=list)  # id, kind, block, text, rule
    removed: list[dict[str, str]] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)  # id, what, old, new
    parameters: list[dict[str, str]] = field(default_factory=list)  # name, change, old, new
    readings: list[dict[str, str]] = field(default_factory=list)  # name, change, old, new
    definitions: list[dict[str, str]] = field(default_factory=list)  # name, change, old, new (in words)
    patients: pd.DataFrame | None = None  # per group: eligible old/new, gained, lost, IDs

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.parameters or self.readings
                    or self.definitions)


def _unit_rules(catalog: Catalog) -> dict[str, Any]:
    return {u.id: u for u in catalog.units}


def _text(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return "{" + ", ".join(sorted(str(v) for v in value)) + "}"
    return str(value)


def diff_catalogs(old: Catalog, new: Catalog) -> ProtocolDiff:
    out = ProtocolDiff()
    p_old, p_new = old.defaults(), new.defaults()
    old_units, new_units = _unit_rules(old), _unit_rules(new)
    for uid, u in new_units.items():
        if uid not in old_units:
            out.added.append({"id": uid, "kind": u.kind, "block": u.block, "text": u.text,
                              "rule": render(new, u.rule, p_new)})
    for uid, u in old_units.items():
        if uid not in new_units:
            out.removed.append({"id": uid, "kind": u.kind, "block": u.block, "text": u.text,
                                "rule": render(old, u.rule, p_old)})
    for uid, u in new_units.items():
        if uid not in old_units:
            continue
        o = old_units[uid]
        for what, a, b in (("kind", o.kind, u.kind), ("block", o.block, u.block), ("text", o.text, u.text)):
            if a != b:
                out.changed.append({"id": uid, "what": what, "old": a, "new": b})
        if expanded(old, o.rule) != expanded(new, u.rule):
            out.changed.append({"id": uid, "what": "rule", "old": render(old, o.rule, p_old, inline=True),
                                "new": render(new, u.rule, p_new, inline=True)})
        if o.kind == u.kind and getattr(old.criterion_by_id[o.criterion], "locked", False) != \
                getattr(new.criterion_by_id[u.criterion], "locked", False):
            out.changed.append({"id": uid, "what": "locked", "old": str(old.criterion_by_id[o.criterion].locked),
                                "new": str(new.criterion_by_id[u.criterion].locked)})
    for name in sorted(set(old.parameters) | set(new.parameters)):
        a, b = old.parameters.get(name), new.parameters.get(name)
        if a is None and b is not None:
            out.parameters.append({"name": name, "change": "added", "old": "", "new": _text(b.default)})
        elif b is None and a is not None:
            out.parameters.append({"name": name, "change": "removed", "old": _text(a.default), "new": ""})
        elif a is not None and b is not None:
            for attr in ("default", "range", "type", "unit"):
                va, vb = getattr(a, attr), getattr(b, attr)
                if (sorted(va) if a.type == "set" and attr == "default" else va) != \
                        (sorted(vb) if b.type == "set" and attr == "default" else vb):
                    out.parameters.append({"name": name, "change": attr, "old": _text(va), "new": _text(vb)})
    for name in sorted(set(old.definitions) | set(new.definitions)):
        da, db = old.definitions.get(name), new.definitions.get(name)
        wa = render(old, da, p_old) if da is not None else ""
        wb = render(new, db, p_new) if db is not None else ""
        if da != db:  # the definition itself (the criteria that reach it are listed above)
            change = "added" if da is None else "removed" if db is None else "rule"
            out.definitions.append({"name": name, "change": change, "old": wa, "new": wb})
    for name in sorted(set(old.readings) | set(new.readings)):
        a, b = old.readings.get(name), new.readings.get(name)
        if a is None or b is None:
            out.readings.append({"name": name, "change": "added" if a is None else "removed",
                                 "old": "" if a is None else a.default, "new": "" if b is None else b.default})
        elif a.model_dump() != b.model_dump():
            change = "default" if a.default != b.default else "alternatives"
            out.readings.append({"name": name, "change": change, "old": a.default, "new": b.default})
    return out


def patients_diff(old_ev: Evaluator, new_ev: Evaluator, frame: pd.DataFrame) -> pd.DataFrame:
    """Per disease group (and all): eligible under each version, gained and lost, with patient IDs."""
    a = _input_order(old_ev, old_ev.status(_protocol(old_ev.catalog)))
    b = _input_order(new_ev, new_ev.status(_protocol(new_ev.catalog)))
    ids = frame["patient_id"].astype("string").to_numpy()
    group = np.asarray(GROUP_NAMES, dtype=object)[_input_order(old_ev, old_ev.columns.group)]
    rows = []
    for g in (*GROUP_NAMES, "All"):
        m = np.ones(len(a), bool) if g == "All" else group == g
        if g != "All" and not m.any():
            continue
        gained = m & (b == ELIGIBLE) & (a != ELIGIBLE)
        lost = m & (a == ELIGIBLE) & (b != ELIGIBLE)
        rows.append({"group": g, "eligible_old": int((m & (a == ELIGIBLE)).sum()),
                     "eligible_new": int((m & (b == ELIGIBLE)).sum()),
                     "gained": int(gained.sum()), "lost": int(lost.sum()),
                     "gained_ids": [str(x) for x in ids[gained]], "lost_ids": [str(x) for x in ids[lost]]})
    return pd.DataFrame(rows)


def _input_order(ev: Evaluator, values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[ev.columns.order] = values
    return out


def _protocol(catalog: Catalog):
    from .scenario import baseline

    return baseline(catalog)


def diff_protocols(old: Catalog, new: Catalog, cohort=None) -> ProtocolDiff:
    """Catalog differences, and on a cohort (a loaded Cohort) the patients gained and lost."""
    out = diff_catalogs(old, new)
    if cohort is not None:
        out.patients = patients_diff(Evaluator.for_cohort(cohort, old), Evaluator.for_cohort(cohort, new),
                                     cohort.frame)
    return out
