"""The criteria catalog as declarative data.

`protocol/criteria.yaml` and `protocol/parameters.yaml` load into the pydantic
models below: a criterion (or each of its parts) holds a rule, a small tree of
primitives. An amendment is a change to those files, not to code. The
primitives' vectorised semantics live in `eligibility/rules.py`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .fields import DISEASES, FIELD_BY_NAME, field, source_field
from .protocol_files import read_yaml

Op = Literal["ge", "gt", "le", "lt"]
OP_TEXT = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Flag(_Node):
    """A yes/no field is yes."""

    kind: Literal["flag"]
    field: str


class Compare(_Node):
    """`field op threshold`; threshold from a parameter (negated if `negate`) or a constant."""

    kind: Literal["cmp"]
    field: str
    op: Op
    param: str | None = None
    value: float | None = None
    negate: bool = False
    # A count cannot be below this: `count >= t` with t at or below it holds even when empty.
    lower_bound: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self):
        if (self.param is None) == (self.value is None):
            raise ValueError("cmp needs exactly one of param or value")
        return self

    def threshold(self, params: dict[str, Any]) -> float:
        t = float(params[self.param]) if self.param is not None else float(self.value or 0.0)
        return -t if self.negate else t

    def always_holds(self, params: dict[str, Any]) -> bool:
        """A count compared `>=` with a threshold at or below its lower bound holds even when empty."""
        return self.lower_bound is not None and self.op == "ge" and self.threshold(params) <= self.lower_bound


class UlnLimit(_Node):
    """`field op round(max_param × ULN, 9)`; ULN from the row's `uln_field`, else `default_param`."""

    kind: Literal["uln"]
    field: str
    op: Op
    max_param: str
    uln_field: str
    default_param: str


class Within(_Node):
    """An event happened less than `param` units ago (`days_since < W`); empty = never.
    A cell that could not be read is unknown rather than "never" while the boolean
    parameter `unreadable` is on: a typo must not clear an exclusion."""

    kind: Literal["within"]
    field: str
    param: str
    unreadable: str | None = None
    # Days between the field's reference date and a later one the window counts from
    # (e.g. screening → randomisation): the event is `field + offset` units before it.
    offset_param: str | None = None

    def offset(self, params: dict[str, Any]) -> float:
        return float(params[self.offset_param]) if self.offset_param else 0.0


class In(_Node):
    """A category field is one of a set (constant `values` or a set parameter)."""

    kind: Literal["in"]
    field: str
    param: str | None = None
    values: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _one_set(self):
        if (self.param is None) == (self.values is None):
            raise ValueError("in needs exactly one of param or values")
        return self

    def allowed(self, params: dict[str, Any]) -> tuple[str, ...]:
        return tuple(params[self.param]) if self.param is not None else tuple(self.values or ())


class ParamTrue(_Node):
    """A boolean parameter is true (switches a clause on or off)."""

    kind: Literal["param_true"]
    param: str


class Ref(_Node):
    """A named rule from `definitions`."""

    kind: Literal["ref"]
    name: str


class AllOf(_Node):
    kind: Literal["all"]
    of: tuple[Node, ...]


class AnyOf(_Node):
    kind: Literal["any"]
    of: tuple[Node, ...]


class Not(_Node):
    kind: Literal["not"]
    item: Node


class AtLeast(_Node):
    """At least k of the items hold (k from a count parameter or a constant)."""

    kind: Literal["at_least"]
    of: tuple[Node, ...]
    param: str | None = None
    value: int | None = None

    def k(self, params: dict[str, Any]) -> int:
        return int(params[self.param]) if self.param is not None else int(self.value or 0)


class Implies(_Node):
    """If `if_` holds then `then` must hold (= not if_ or then)."""

    kind: Literal["implies"]
    if_: Node = Field(alias="if")
    then: Node


Node = Annotated[
    Flag | Compare | UlnLimit | Within | In | ParamTrue | Ref | AllOf | AnyOf | Not | AtLeast | Implies,
    Field(discriminator="kind"),
]
for _model in (AllOf, AnyOf, Not, AtLeast, Implies):
    _model.model_rebuild()


class Parameter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: Literal["number", "count", "bool", "set"]
    default: Any
    range: tuple[float, float] | None = None
    step: float | None = None
    unit: str = ""
    group: str
    label: str
    source: str = ""
    field: str | None = None  # for sets: the category field whose values may appear
    locked: bool = False  # never moved by the relaxation search (a data-handling setting, not a limit)

    @property
    def choices(self) -> tuple[str, ...]:
        return FIELD_BY_NAME[self.field].categories if self.field else ()


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    text: str
    rule: Node


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: Literal["incl", "excl"]
    block: str  # common or a disease code of diseases.yaml (checked in Catalog._check)
    text: str
    rule: Node | None = None
    parts: tuple[Part, ...] = ()
    locked: bool = False  # safety criterion: the relaxation search never switches it off or moves its limits

    @model_validator(mode="after")
    def _rule_or_parts(self):
        if (self.rule is None) == (not self.parts):
            raise ValueError(f"{self.id}: give either a rule or parts")
        return self


class CatalogFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    trial: str
    definitions: dict[str, Node] = {}
    criteria: tuple[Criterion, ...]
    merged_causes: tuple[tuple[str, ...], ...] = ()


class Unit(BaseModel):
    """One evaluable unit: a criterion without parts, or one part. Results are kept per unit."""

    model_config = ConfigDict(frozen=True)

    id: str  # most specific ID: "INC-1" or "INC-2.hb"
    criterion: str  # parent ID
    kind: Literal["incl", "excl"]
    block: str
    text: str
    criterion_text: str
    rule: Node


class Catalog:
    """The loaded, cross-checked catalog: units in attrition order, parameters, causes."""

    def __init__(self, spec: CatalogFile, parameters: list[Parameter], readings: dict[str, Any] | None = None):
        self.spec = spec
        self.trial = spec.trial
        self.readings: dict[str, Any] = dict(readings or {})  # name → readings.Reading
        self.choices: tuple[tuple[str, str], ...] = ()  # non-default readings this catalog applies
        self.rule_key: dict[str, tuple] = {}  # unit → the readings that changed its rule (cache key)
        self._variants: dict[tuple, Catalog] = {}
        self._unit_params: dict[str, tuple[str, ...]] = {}
        self.definitions = dict(spec.definitions)
        self.criteria = spec.criteria
        self.parameters = {p.name: p for p in parameters}
        units = []
        for c in spec.criteria:
            if c.parts:
                for p in c.parts:
                    units.append(
                        Unit(id=f"{c.id}.{p.id}", criterion=c.id, kind=c.kind, block=c.block,
                             text=p.text, criterion_text=c.text, rule=p.rule)
                    )
            else:
                units.append(
                    Unit(id=c.id, criterion=c.id, kind=c.kind, block=c.block, text=c.text,
                         criterion_text=c.text, rule=c.rule)
                )
        self.units: tuple[Unit, ...] = tuple(units)
        self.unit_by_id = {u.id: u for u in self.units}
        self.criterion_by_id = {c.id: c for c in self.criteria}
        self.cause_of: dict[str, str] = {u.id: u.id for u in self.units}
        for group in spec.merged_causes:
            for uid in group:
                self.cause_of[uid] = " / ".join(group)
        self._check()

    # -- structure -------------------------------------------------------------
    def resolve(self, node):
        return self.definitions[node.name] if isinstance(node, Ref) else node

    def walk(self, node):
        """Every node of a rule, refs expanded."""
        node = self.resolve(node)
        yield node
        for child in children(node):
            yield from self.walk(child)

    def fields_of(self, node, params: dict[str, Any] | None = None) -> set[str]:
        """Contract columns a rule needs. Optional per-row ULN columns are not counted;
        a clause switched off by a false boolean parameter, or a count threshold at its
        lower bound (e.g. min_immunomodulators = 0), needs nothing."""
        node = self.resolve(node)
        if isinstance(node, Implies) and isinstance(node.if_, ParamTrue) and params is not None:
            if not params[node.if_.param]:
                return set()
        if isinstance(node, Compare) and params is not None and node.lower_bound is not None and node.param:
            if node.op == "ge" and params[node.param] <= node.lower_bound:
                return set()  # holds whatever the count: the column is not needed
        if isinstance(node, Flag | Compare | UlnLimit | Within | In):
            return {source_field(node.field)}
        out: set[str] = set()
        for child in children(node):
            out |= self.fields_of(child, params)
        return out

    def params_of(self, node) -> set[str]:
        out: set[str] = set()
        for n in self.walk(node):
            for attr in ("param", "max_param", "default_param", "unreadable", "offset_param"):
                name = getattr(n, attr, None)
                if name:
                    out.add(name)
        return out

    def unit_params(self, unit_id: str) -> tuple[str, ...]:
        """Sorted parameters one unit's rule reads (memoised)."""
        if unit_id not in self._unit_params:
            self._unit_params[unit_id] = tuple(sorted(self.params_of(self.unit_by_id[unit_id].rule)))
        return self._unit_params[unit_id]

    def variant(self, choices: tuple[tuple[str, str], ...]) -> Catalog:
        """This catalog under non-default readings (see eligibility/readings.py)."""
        from .readings import variant

        return variant(self, choices)

    def units_reading_param(self, name: str) -> list[str]:
        return [u.id for u in self.units if name in self.params_of(u.rule)]

    def units_reading_field(self, name: str) -> list[str]:
        return [u.id for u in self.units if name in self.fields_of(u.rule)]

    def defaults(self) -> dict[str, Any]:
        return {
            name: (frozenset(p.default) if p.type == "set" else p.default)
            for name, p in self.parameters.items()
        }

    def _check(self) -> None:
        seen = set()
        for u in self.units:
            if u.id in seen:
                raise ValueError(f"duplicate criterion ID {u.id}")
            seen.add(u.id)
            for n in self.walk(u.rule):
                if isinstance(n, Ref) and n.name not in self.definitions:
                    raise ValueError(f"{u.id}: unknown definition {n.name!r}")
                for f in ("field", "uln_field"):
                    name = getattr(n, f, None)
                    if name is not None:
                        field(name)  # KeyError names an unknown column
            for pname in self.params_of(u.rule):
                if pname not in self.parameters:
                    raise ValueError(f"{u.id}: unknown parameter {pname!r}")
        for group in self.cause_of.values():
            for uid in group.split(" / "):
                if uid not in self.unit_by_id:
                    raise ValueError(f"merged cause names unknown part {uid}")
        for p in self.parameters.values():
            if p.type == "set" and not set(p.default) <= set(p.choices):
                raise ValueError(f"parameter {p.name}: default outside {p.field} categories")
        for u in self.units:
            if u.block not in ("common", *DISEASES):
                raise ValueError(f"{u.id}: block {u.block!r} is not common or a disease of diseases.yaml")


def children(node) -> tuple:
    if isinstance(node, AllOf | AnyOf | AtLeast):
        return node.of
    if isinstance(node, Not):
        return (node.item,)
    if isinstance(node, Implies):
        return (node.if_, node.then)
    return ()


def _read(name: str) -> Any:
    return read_yaml(name)


def load_catalog(criteria: Any = None, parameters: Any = None, readings: Any = None) -> Catalog:
    """Load the protocol files (or given already-parsed data) into a checked Catalog."""
    from .readings import check_readings, parse_readings

    spec = CatalogFile.model_validate(criteria if criteria is not None else _read("criteria.yaml"))
    params = [Parameter.model_validate(p) for p in (parameters if parameters is not None else _read("parameters.yaml"))]
    catalog = Catalog(spec, params, parse_readings(
        readings if readings is not None else (_read("readings.yaml") if criteria is None else [])))
    check_readings(catalog)
    return catalog


@cache
def default_catalog() -> Catalog:
    return load_catalog()


def parts_reading_field(field_name: str) -> list[str]:
    """Criterion/part IDs that need a contract column (for 'column absent' reports)."""
    return default_catalog().units_reading_field(field_name)
