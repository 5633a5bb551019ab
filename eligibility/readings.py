"""Contested readings of the protocol text, as data (`protocol/readings.yaml`).

A reading names one sentence that can be read two (or more) ways. Each alternative
is expressed through the catalog: replacement rule trees for named definitions or
for criterion parts, and/or parameter values it binds. The default alternative is
what `criteria.yaml` and `parameters.yaml` already say, so it changes nothing.
`variant(catalog, choices)` returns the catalog under other alternatives; the
engine evaluates it like the protocol itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from .catalog import Node, Ref

if TYPE_CHECKING:
    from .catalog import Catalog

Choices = tuple[tuple[str, str], ...]  # (reading, alternative), sorted; non-default choices only


class ReadingError(ValueError):
    """A readings file or a chosen alternative that does not fit the catalog."""


class Alternative(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    wording: str
    definitions: dict[str, Node] = {}  # definition name → replacement rule
    rules: dict[str, Node] = {}  # criterion or part ID (without parts: the criterion) → replacement rule
    parameters: dict[str, Any] = {}  # parameter → value this reading binds (a scenario may still override)

    @property
    def changes_nothing(self) -> bool:
        return not (self.definitions or self.rules or self.parameters)


class Reading(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    title: str
    quote: str  # the protocol's own words
    criteria: tuple[str, ...]  # criterion IDs the sentence belongs to (for display)
    default: str
    alternatives: dict[str, Alternative]

    @model_validator(mode="after")
    def _default_is_the_catalog(self):
        if self.default not in self.alternatives:
            raise ValueError(f"reading {self.name}: default {self.default!r} is not one of its alternatives")
        if not self.alternatives[self.default].changes_nothing:
            raise ValueError(f"reading {self.name}: the default alternative must be the catalog as written "
                             "(no definitions, rules or parameters)")
        if len(self.alternatives) < 2:
            raise ValueError(f"reading {self.name}: needs at least two alternatives")
        return self


def parse_readings(data: Any) -> dict[str, Reading]:
    readings = [Reading.model_validate(r) for r in (data or [])]
    out: dict[str, Reading] = {}
    for r in readings:
        if r.name in out:
            raise ReadingError(f"duplicate reading {r.name!r}")
        out[r.name] = r
    return out


def normalise(catalog: Catalog, chosen: dict[str, str] | None) -> Choices:
    """Checked (reading, alternative) pairs that differ from the defaults, sorted."""
    out = []
    for name, alt in (chosen or {}).items():
        reading = catalog.readings.get(name)
        if reading is None:
            raise ReadingError(f"unknown reading {name!r} (known: {', '.join(catalog.readings) or 'none'})")
        if not isinstance(alt, str) or alt not in reading.alternatives:
            raise ReadingError(f"reading {name!r}: {alt!r} is not one of {list(reading.alternatives)}")
        if alt != reading.default:
            out.append((name, alt))
    return tuple(sorted(out))


def _refs(catalog: Catalog, node, seen: set[str]) -> None:
    """Names of the definitions a rule reaches, transitively."""
    from .catalog import children

    if isinstance(node, Ref):
        if node.name in seen:
            return
        seen.add(node.name)
        _refs(catalog, catalog.definitions[node.name], seen)
        return
    for child in children(node):
        _refs(catalog, child, seen)


def variant(catalog: Catalog, choices: Choices) -> Catalog:
    """The catalog under the given alternatives (memoised on the base catalog)."""
    if not choices:
        return catalog
    hit = catalog._variants.get(choices)
    if hit is not None:
        return hit
    from .catalog import Catalog as _Catalog
    from .scenario import ScenarioError, coerce_value

    definitions = dict(catalog.definitions)
    rules: dict[str, Node] = {}
    bound: dict[str, Any] = {}
    touched_defs: dict[str, list[tuple[str, str]]] = {}
    touched_units: dict[str, list[tuple[str, str]]] = {}
    for name, alt_name in choices:
        alt = catalog.readings[name].alternatives[alt_name]
        for d, rule in alt.definitions.items():
            if d not in definitions:
                raise ReadingError(f"reading {name}/{alt_name}: unknown definition {d!r}")
            definitions[d] = rule
            touched_defs.setdefault(d, []).append((name, alt_name))
        for uid, rule in alt.rules.items():
            if uid not in catalog.unit_by_id:
                raise ReadingError(f"reading {name}/{alt_name}: unknown criterion or part {uid!r}")
            rules[uid] = rule
            touched_units.setdefault(uid, []).append((name, alt_name))
        for p, value in alt.parameters.items():
            if p not in catalog.parameters:
                raise ReadingError(f"reading {name}/{alt_name}: unknown parameter {p!r}")
            try:
                bound[p] = coerce_value(catalog.parameters[p], value)
            except ScenarioError as e:
                raise ReadingError(f"reading {name}/{alt_name}: {e}") from None
    criteria = []
    for c in catalog.criteria:
        if c.parts:
            parts = tuple(p.model_copy(update={"rule": rules[f"{c.id}.{p.id}"]}) if f"{c.id}.{p.id}" in rules else p
                          for p in c.parts)
            criteria.append(c.model_copy(update={"parts": parts}))
        else:
            criteria.append(c.model_copy(update={"rule": rules[c.id]}) if c.id in rules else c)
    spec = catalog.spec.model_copy(update={"definitions": definitions, "criteria": tuple(criteria)})
    params = [p.model_copy(update={"default": sorted(bound[p.name]) if p.type == "set" else bound[p.name]})
              if p.name in bound else p for p in catalog.parameters.values()]
    try:
        out = _Catalog(spec, params, catalog.readings)
    except (ValueError, KeyError) as e:
        raise ReadingError(f"readings {dict(choices)}: {e}") from None
    out.choices = choices
    for u in out.units:
        reached: set[str] = set()
        _refs(out, u.rule, reached)
        key = list(touched_units.get(u.id, []))
        for d in sorted(reached):
            key += touched_defs.get(d, [])
        out.rule_key[u.id] = tuple(sorted(set(key)))
    catalog._variants[choices] = out
    return out


def check_readings(catalog: Catalog) -> None:
    """Every alternative of every reading builds a valid catalog (names, fields, parameters)."""
    for r in catalog.readings.values():
        unknown = [c for c in r.criteria if c not in catalog.criterion_by_id]
        if unknown:
            raise ReadingError(f"reading {r.name}: unknown criteria {unknown}")
        for alt in r.alternatives:
            if alt != r.default:
                variant(catalog, ((r.name, alt),))


def alternatives_table(catalog: Catalog) -> list[dict[str, Any]]:
    """One row per reading: name, title, protocol quote, default, alternatives with wording."""
    return [
        {"name": r.name, "title": r.title, "quote": r.quote, "criteria": list(r.criteria), "default": r.default,
         "alternatives": {k: a.wording for k, a in r.alternatives.items()}}
        for r in catalog.readings.values()
    ]
