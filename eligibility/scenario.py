"""What-if scenarios: parameter overrides and switched-off criteria, validated once.

A `Scenario` is what a user writes (JSON/YAML file, URL, dashboard controls);
`resolve()` checks it against the catalog and returns a frozen `Resolved` with
every parameter typed, usable as a cache key.
"""

from __future__ import annotations

import base64
import codecs
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .catalog import Catalog, Parameter, default_catalog
from .textsafe import shorten

# Limits on what a user can hand in (a real scenario is well under 5 kB, depth 3).
MAX_FILE_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 16 * 1024
MAX_NAME_CHARS = 120
MAX_DESCRIPTION_CHARS = 2_000
MAX_LIST_ITEMS = 500
MAX_DEPTH = 8
MAX_DIGITS = 30
MAX_NODES = 5_000
_LONG_DIGITS = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the bad key and value."""


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=MAX_NAME_CHARS)
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    parameters: dict[str, Any] = Field({}, max_length=MAX_LIST_ITEMS)
    disabled: list[str] = Field([], max_length=MAX_LIST_ITEMS)
    readings: dict[str, str] = Field({}, max_length=MAX_LIST_ITEMS)  # contested reading → alternative
    # Annotations a `relax` option carries (its counts when found); resolve() ignores them.
    eligible: int | None = None
    gained: int | None = None


@dataclass(frozen=True)
class Resolved:
    name: str
    params: dict[str, Any]
    disabled: frozenset[str]  # unit IDs switched off (criterion IDs expanded)
    disabled_given: tuple[str, ...]  # IDs as the user gave them
    readings: tuple[tuple[str, str], ...] = ()  # non-default (reading, alternative) pairs, sorted

    @property
    def key(self) -> tuple:
        items = tuple(
            (k, tuple(sorted(v)) if isinstance(v, frozenset) else v) for k, v in sorted(self.params.items())
        )
        if self.readings:  # kept a pair (items, disabled) for the pages that unpack it
            items += (("readings:", self.readings),)
        return items, tuple(sorted(self.disabled))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Resolved) and self.key == other.key


def coerce_value(p: Parameter, value: Any) -> Any:
    """Check one parameter value against its type and domain; return it typed."""
    bad = f"parameter {p.name!r}: {shorten(repr(value))} is not "
    if p.type == "bool":
        if isinstance(value, bool):
            return value
        raise ScenarioError(bad + "true or false (a JSON/YAML boolean)")
    if p.type in ("number", "count"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(bad + "a number")
        try:
            x = float(value)
        except OverflowError:
            raise ScenarioError(bad + "a number of a usable size") from None
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
                raise ScenarioError(f"parameter {p.name!r}: {shorten(repr(v))} is not one of {list(p.choices)}")
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
            raise ScenarioError(_validation_message(e)) from None
    from .readings import ReadingError, normalise

    try:
        choices = normalise(catalog, scenario.readings)
    except ReadingError as e:
        raise ScenarioError(shorten(str(e))) from None
    params = catalog.variant(choices).defaults()  # a reading may bind parameters; the scenario's win
    for name, value in scenario.parameters.items():
        if name not in catalog.parameters:
            raise ScenarioError(f"unknown parameter {shorten(name)!r}")
        params[name] = coerce_value(catalog.parameters[name], value)
    disabled: set[str] = set()
    for cid in scenario.disabled:
        if cid in catalog.unit_by_id:
            disabled.add(cid)
        elif cid in catalog.criterion_by_id:
            disabled |= {u.id for u in catalog.units if u.criterion == cid}
        else:
            raise ScenarioError(f"unknown criterion or part {shorten(cid)!r} in disabled")
    return Resolved(scenario.name, params, frozenset(disabled), tuple(scenario.disabled), choices)


def baseline(catalog: Catalog | None = None) -> Resolved:
    return resolve(Scenario(name="protocol"), catalog)


def to_scenario(resolved: Resolved, catalog: Catalog | None = None) -> Scenario:
    """The minimal Scenario (only values that differ from the protocol) for a resolved one."""
    catalog = catalog or default_catalog()
    defaults = catalog.variant(resolved.readings).defaults()
    changed = {}
    for k, v in resolved.params.items():
        if v != defaults[k]:
            changed[k] = sorted(v) if isinstance(v, frozenset) else v
    return Scenario(name=resolved.name, parameters=changed, disabled=list(resolved.disabled_given),
                    readings=dict(resolved.readings))


def _depth(text: str) -> int:
    """Deepest nesting of [ and { outside quoted strings (JSON, YAML flow style)."""
    depth = deepest = 0
    quote = None
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _validation_message(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(x) for x in first["loc"]) or "scenario"
    return f"scenario {shorten(where)}: {first['msg']}"


def scenario_data(text: str, fmt: str = "json") -> dict:
    """The parsed object of a scenario text: size, digits, depth and syntax checked,
    its contents not yet validated (see `parse_scenario_text`)."""
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(f"scenario is {len(text):,} characters long; the limit is {MAX_FILE_BYTES:,}")
    if _LONG_DIGITS.search(text):
        raise ScenarioError(f"scenario holds a number longer than {MAX_DIGITS} digits")
    if _depth(text) > MAX_DEPTH or (fmt != "json" and _yaml_depth(text) > MAX_DEPTH):
        raise ScenarioError(f"scenario is nested more than {MAX_DEPTH} levels deep")
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ScenarioError(
            f"scenario file is not valid {fmt.upper()}: {shorten(str(e).splitlines()[0], 200)}"
        ) from None
    except (ValueError, RecursionError, OverflowError) as e:
        raise ScenarioError(f"scenario file cannot be read ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario file must hold an object with 'parameters' and 'disabled'")
    _check_shape(data)
    return data


def validate_scenario(data: dict) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_validation_message(e)) from None


def parse_scenario_text(text: str, fmt: str = "json") -> Scenario:
    return validate_scenario(scenario_data(text, fmt))


def _check_shape(data) -> None:
    """Depth and size of the parsed value (YAML aliases can nest and repeat what the text does not)."""
    stack = [(data, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH:
            raise ScenarioError(f"scenario is nested more than {MAX_DEPTH} levels deep")
        if seen > MAX_NODES:
            raise ScenarioError(f"scenario holds more than {MAX_NODES:,} values")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)


def _yaml_depth(text: str) -> int:
    """Block-style YAML nesting, estimated from indentation steps (2 spaces or more a level)."""
    indents = sorted({len(ln) - len(ln.lstrip(" -")) for ln in text.splitlines() if ln.strip()})
    return len(indents)


def scenario_file_data(data: bytes, filename: str = "scenario.json") -> dict:
    """A scenario file's parsed object: size, encoding (UTF-8, or UTF-16 with a BOM) and
    syntax checked; every problem is a one-line ScenarioError."""
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(f"scenario file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}")
    fmt = "yaml" if filename.lower().endswith((".yaml", ".yml")) else "json"
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ScenarioError("scenario file is not UTF-8 text (it looks like UTF-16 without a byte-order mark); "
                            "save it as UTF-8")
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ScenarioError(
            f"scenario file is not UTF-8 text (byte 0x{data[e.start]:02X} on line {line}); save it as UTF-8"
        ) from None
    return scenario_data(text, fmt)


def scenario_from_bytes(data: bytes, filename: str = "scenario.json") -> Scenario:
    return validate_scenario(scenario_file_data(data, filename))


def load_scenario(path: str | Path, catalog: Catalog | None = None) -> Resolved:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(f"scenario file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
        data = path.read_bytes()
    except OSError as e:
        raise ScenarioError(f"cannot read scenario file {shorten(path.name)}: {e.strerror}") from None
    return resolve(scenario_from_bytes(data, path.name), catalog)


def _unset_extras(scenario: Scenario) -> set[str]:
    return {k for k in ("readings", "eligible", "gained") if getattr(scenario, k) in (None, {})}


def dump_scenario(scenario: Scenario, fmt: str = "json") -> str:
    data = scenario.model_dump(exclude=_unset_extras(scenario))  # files look as they always did
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def save_scenario(scenario: Scenario, path: str | Path) -> None:
    path = Path(path)
    fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json"
    path.write_text(dump_scenario(scenario, fmt), "utf-8")


def encode_for_url(scenario: Scenario) -> str:
    """Compact URL-safe token for a scenario (used in the dashboard's query string)."""
    raw = json.dumps(scenario.model_dump(exclude=_unset_extras(scenario)), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_from_url(token: str) -> Scenario:
    if len(token) > MAX_TOKEN_CHARS:
        raise ScenarioError(
            f"the scenario in the link is {len(token):,} characters long; the limit is {MAX_TOKEN_CHARS:,}"
        )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return parse_scenario_text(raw.decode("utf-8"), "json")
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, ScenarioError):
            raise
        raise ScenarioError("the scenario in the link is damaged") from None
