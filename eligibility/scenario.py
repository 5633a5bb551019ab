"""What-if scenarios: parameter overrides and switched-off criteria, validated once.

A `Scenario` is what a user writes (JSON/YAML file, URL, dashboard controls);
`resolve()` checks it against the catalog and returns a frozen `Resolved` with
every parameter typed, usable as a cache key.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .catalog import Catalog, Parameter, default_catalog


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the bad key and value."""


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {}
    disabled: list[str] = []


@dataclass(frozen=True)
class Resolved:
    name: str
    params: dict[str, Any]
    disabled: frozenset[str]  # unit IDs switched off (criterion IDs expanded)
    disabled_given: tuple[str, ...]  # IDs as the user gave them

    @property
    def key(self) -> tuple:
        items = tuple(
            (k, tuple(sorted(v)) if isinstance(v, frozenset) else v) for k, v in sorted(self.params.items())
        )
        return items, tuple(sorted(self.disabled))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Resolved) and self.key == other.key


def coerce_value(p: Parameter, value: Any) -> Any:
    """Check one parameter value against its type and domain; return it typed."""
    bad = f"parameter {p.name!r}: {value!r} is not "
    if p.type == "bool":
        if isinstance(value, bool):
            return value
        raise ScenarioError(bad + "true or false (a JSON/YAML boolean)")
    if p.type in ("number", "count"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(bad + "a number")
        x = float(value)
        if not math.isfinite(x) or x < 0:
            raise ScenarioError(bad + "a non-negative number")
        if p.type == "count":
            if x != int(x):
                raise ScenarioError(bad + "a whole number")
            return int(x)
        return x
    if p.type == "set":
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            raise ScenarioError(bad + f"a list of {p.field} values {list(p.choices)}")
        lookup = {c.lower(): c for c in p.choices}
        out = set()
        for v in value:
            if not isinstance(v, str) or v.strip().lower() not in lookup:
                raise ScenarioError(f"parameter {p.name!r}: {v!r} is not one of {list(p.choices)}")
            out.add(lookup[v.strip().lower()])
        return frozenset(out)
    raise AssertionError(p.type)


def resolve(scenario: Scenario | dict | None = None, catalog: Catalog | None = None) -> Resolved:
    catalog = catalog or default_catalog()
    if scenario is None:
        scenario = Scenario()
    elif isinstance(scenario, dict):
        try:
            scenario = Scenario.model_validate(scenario)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "scenario"
            raise ScenarioError(f"scenario {where}: {first['msg']}") from None
    params = catalog.defaults()
    for name, value in scenario.parameters.items():
        if name not in catalog.parameters:
            raise ScenarioError(f"unknown parameter {name!r}")
        params[name] = coerce_value(catalog.parameters[name], value)
    disabled: set[str] = set()
    for cid in scenario.disabled:
        if cid in catalog.unit_by_id:
            disabled.add(cid)
        elif cid in catalog.criterion_by_id:
            disabled |= {u.id for u in catalog.units if u.criterion == cid}
        else:
            raise ScenarioError(f"unknown criterion or part {cid!r} in disabled")
    return Resolved(scenario.name, params, frozenset(disabled), tuple(scenario.disabled))


def baseline(catalog: Catalog | None = None) -> Resolved:
    return resolve(Scenario(name="protocol"), catalog)


def to_scenario(resolved: Resolved, catalog: Catalog | None = None) -> Scenario:
    """The minimal Scenario (only values that differ from the protocol) for a resolved one."""
    catalog = catalog or default_catalog()
    defaults = catalog.defaults()
    changed = {}
    for k, v in resolved.params.items():
        if v != defaults[k]:
            changed[k] = sorted(v) if isinstance(v, frozenset) else v
    return Scenario(name=resolved.name, parameters=changed, disabled=list(resolved.disabled_given))


def parse_scenario_text(text: str, fmt: str = "json") -> Scenario:
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ScenarioError(f"scenario file is not valid {fmt.upper()}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario file must hold an object with 'parameters' and 'disabled'")
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "scenario"
        raise ScenarioError(f"scenario {where}: {first['msg']}") from None


def load_scenario(path: str | Path, catalog: Catalog | None = None) -> Resolved:
    path = Path(path)
    fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json"
    try:
        text = path.read_text("utf-8-sig")
    except OSError as e:
        raise ScenarioError(f"cannot read scenario file {path.name}: {e.strerror}") from None
    return resolve(parse_scenario_text(text, fmt), catalog)


def dump_scenario(scenario: Scenario, fmt: str = "json") -> str:
    data = scenario.model_dump(exclude_defaults=False)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def save_scenario(scenario: Scenario, path: str | Path) -> None:
    path = Path(path)
    fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json"
    path.write_text(dump_scenario(scenario, fmt), "utf-8")


def encode_for_url(scenario: Scenario) -> str:
    """Compact URL-safe token for a scenario (used in the dashboard's query string)."""
    raw = json.dumps(scenario.model_dump(), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_from_url(token: str) -> Scenario:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return parse_scenario_text(raw.decode("utf-8"), "json")
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, ScenarioError):
            raise
        raise ScenarioError("the scenario in the link is damaged") from None
