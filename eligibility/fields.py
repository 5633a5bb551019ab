"""The cohort input contract (../shared/spec/cohort-fields.md) as data.

The contract lives in `protocol/fields.yaml` (one entry per column: type, unit, accepted
categories, plausible range, block, the value an eligible patient has, and the recipe the
synthetic generator draws it from) and the indications in `protocol/diseases.yaml` (code,
name, synonyms). Both are validated here and exposed as plain tuples and dicts; the loader,
the generator, the importers, the test factory and the dashboard all read these, and nothing
else hard-codes column names, units or diseases. The files are read from
`protocol_files.protocol_dir()` (ELIGIBILITY_PROTOCOL_DIR overrides the packaged folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic import Field as PydField

from .protocol_files import read_yaml

Kind = Literal["id", "disease", "category", "number", "yesno", "druglist", "date"]
OTHER = "other"  # recipe key: rows whose diagnosis is not one of the trial's indications
DEFAULT = "default"  # recipe key: every row a per-disease table does not name

# --------------------------------------------------------------------------------------------
# file models
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A recipe number: one value for every row, or a value per disease code (+ "other", "default").
PerDisease = float | dict[str, float]


class Normal(_Model):
    mean: PerDisease
    sd: PerDisease


class LogNormal(_Model):
    median: PerDisease
    sigma: PerDisease


class Uniform(_Model):
    low: PerDisease
    high: PerDisease


class Event(_Model):
    """days_since_* column: empty (never) for most rows, else an exponential delay."""

    p: PerDisease
    mean_days: float = PydField(gt=0)
    cap: float = 3650


class Recipe(_Model):
    """How eligibility/synth.py draws a column. `model: NAME` = drawn by the clinical model
    (correlated with other columns, see data/README.md); otherwise exactly one distribution,
    drawn from its own random stream (`stream`, default the field name) for the rows of the
    field's block, then `clip`, `decimals` and a `missing` share of empty cells."""

    model: str | None = None
    stream: str | None = None
    missing: float = PydField(0.0, ge=0, le=1)
    yes_share: PerDisease | None = None
    normal: Normal | None = None
    lognormal: LogNormal | None = None
    uniform: Uniform | None = None
    event: Event | None = None
    choice: dict[str, PerDisease] | None = None
    clip: tuple[float, float] | None = None
    decimals: int | None = None

    @property
    def distribution(self) -> str | None:
        found = [k for k in ("yes_share", "normal", "lognormal", "uniform", "event", "choice") if getattr(self, k) is not None]
        return found[0] if found else None

    @model_validator(mode="after")
    def _one_source(self):
        found = [k for k in ("yes_share", "normal", "lognormal", "uniform", "event", "choice") if getattr(self, k) is not None]
        if (self.model is None) == (not found) or len(found) > 1:
            raise ValueError("a recipe is either `model: NAME` or exactly one of yes_share, normal, lognormal, "
                             f"uniform, event, choice (found: {', '.join(found) or 'none'})")
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise ValueError(f"clip {list(self.clip)}: low above high")
        return self


class FieldSpec(_Model):
    name: str = PydField(pattern=r"^[a-z][a-z0-9_]*$")
    type: Kind
    unit: str = ""
    label: str = ""
    block: str = "common"
    categories: tuple[str, ...] = ()
    plausible: tuple[float, float] | None = None
    required: bool = False
    optional: bool = False
    whole: bool = False
    eligible: Any = None
    synth: Recipe

    @model_validator(mode="after")
    def _consistent(self):
        if self.plausible is not None and self.plausible[0] > self.plausible[1]:
            raise ValueError(f"plausible {list(self.plausible)}: low above high")
        if self.type in ("category", "druglist") and not self.categories:
            raise ValueError(f"a {self.type} field needs categories")
        if self.type not in ("category", "druglist") and self.categories:
            raise ValueError(f"a {self.type} field has no categories")
        dist = self.synth.distribution
        fits = {"yes_share": ("yesno",), "choice": ("category",), "normal": ("number",),
                "lognormal": ("number",), "uniform": ("number",), "event": ("number",)}
        if dist is not None and self.type not in fits[dist]:
            raise ValueError(f"synth: a {dist} recipe cannot fill a {self.type} field")
        if self.synth.choice is not None and set(self.synth.choice) != set(self.categories):
            raise ValueError(f"synth.choice must give a share for each category {list(self.categories)}")
        return self


class DiseaseSynth(_Model):
    share: float = PydField(ge=0)
    spellings: tuple[str, ...] = ()


class DiseaseSpec(_Model):
    code: str = PydField(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    name: str
    title: str = ""
    synonyms: tuple[str, ...] = ()
    synth: DiseaseSynth


# --------------------------------------------------------------------------------------------
# the public tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    unit: str = ""
    label: str = ""
    block: str = "common"
    categories: tuple[str, ...] = ()
    plausible: tuple[float, float] | None = None
    required: bool = False
    optional: bool = False  # absent column changes nothing (per-row ULN, weight)
    whole: bool = False  # counts: whole numbers
    eligible: Any = None  # a value meeting every criterion at the protocol defaults (test factory)
    synth: Recipe | None = None  # how the synthetic generator draws it

    @property
    def title(self) -> str:
        text = self.label or self.name
        return f"{text} ({self.unit})" if self.unit else text

    @property
    def criteria(self) -> list[str]:
        """Criterion/part IDs whose rule reads this column (from the catalog)."""
        from .catalog import default_catalog

        cat = default_catalog()
        return [u.id for u in cat.units if self.name in {source_field(f) for f in cat.fields_of(u.rule)}]


@dataclass(frozen=True)
class Disease:
    code: str
    name: str
    title: str
    synonyms: tuple[str, ...]
    share: float  # synthetic cohort: share of referrals
    spellings: tuple[str, ...]  # synthetic cohort: written forms besides the code


class ContractError(ValueError):
    """fields.yaml or diseases.yaml is not a valid contract; the message names file, entry and problem."""


def _validated(items: Any, model: type[_Model], filename: str, key: str) -> list[Any]:
    if not isinstance(items, list):
        raise ContractError(f"{filename}: expected a list of entries")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            msg = str(first["msg"]).removeprefix("Value error, ")
            name = item.get(key, f"entry {i + 1}") if isinstance(item, dict) else f"entry {i + 1}"
            raise ContractError(f"{filename}: {name}: {where + ': ' if where else ''}{msg}") from None
    return out


def load_diseases(data: Any = None) -> tuple[Disease, ...]:
    specs = _validated(read_yaml("diseases.yaml") if data is None else data, DiseaseSpec, "diseases.yaml", "code")
    codes = [d.code for d in specs]
    if len(set(codes)) != len(codes) or not codes:
        raise ContractError("diseases.yaml: disease codes must be unique and at least one given")
    seen: dict[str, str] = {}
    for d in specs:
        for s in (d.code, *d.synonyms):
            key = " ".join(s.lower().split())
            if seen.setdefault(key, d.code) != d.code:
                raise ContractError(f"diseases.yaml: synonym {s!r} names both {seen[key]} and {d.code}")
    return tuple(Disease(d.code, d.name, d.title or d.name, d.synonyms, d.synth.share, d.synth.spellings)
                 for d in specs)


def load_fields(data: Any = None, diseases: tuple[str, ...] | None = None) -> tuple[Field, ...]:
    codes = diseases if diseases is not None else DISEASES
    specs = _validated(read_yaml("fields.yaml") if data is None else data, FieldSpec, "fields.yaml", "name")
    names = [f.name for f in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ContractError(f"fields.yaml: duplicate field names {', '.join(dup)}")
    out = []
    for f in specs:
        if f.block not in ("common", *codes):
            raise ContractError(f"fields.yaml: {f.name}: block {f.block!r} is not common or a disease "
                                f"of diseases.yaml ({', '.join(codes)})")
        for table in _tables(f.synth):
            bad = sorted(set(table) - {*codes, OTHER, DEFAULT})
            if bad or not ({*codes, OTHER} <= set(table) or DEFAULT in table):
                raise ContractError(f"fields.yaml: {f.name}: synth per-disease table {table} must name "
                                    f"diseases of diseases.yaml, '{OTHER}' or '{DEFAULT}' and cover every row")
        cats = codes if f.type == "disease" else f.categories
        out.append(Field(f.name, f.type, f.unit, f.label, f.block, tuple(cats), f.plausible, f.required,
                         f.optional, f.whole, f.eligible, f.synth))
    for name, kind in (("patient_id", "id"), ("disease", "disease")):
        if name not in names or out[names.index(name)].kind != kind:
            raise ContractError(f"fields.yaml: the contract needs a {name} field of type {kind}")
    return tuple(out)


def _tables(recipe: Recipe) -> list[dict[str, float]]:
    values: list[Any] = [recipe.yes_share]
    for part in (recipe.normal, recipe.lognormal, recipe.uniform, recipe.event):
        if part is not None:
            values += [getattr(part, k) for k in type(part).model_fields]
    if recipe.choice is not None:
        values += list(recipe.choice.values())
    return [v for v in values if isinstance(v, dict)]


DISEASE_REGISTRY: tuple[Disease, ...] = load_diseases()
DISEASES: tuple[str, ...] = tuple(d.code for d in DISEASE_REGISTRY)
DISEASE_NAMES: dict[str, str] = {d.code: d.name for d in DISEASE_REGISTRY}
DISEASE_TITLES: dict[str, str] = {d.code: d.title for d in DISEASE_REGISTRY}
# lower-case spelling (spaces collapsed) -> disease code; the loader's and importers' table
DISEASE_SYNONYMS: dict[str, str] = {
    " ".join(s.lower().split()): d.code for d in DISEASE_REGISTRY for s in (d.code, *d.synonyms)
}

FIELDS: tuple[Field, ...] = load_fields()
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
IMMUNOMODULATORS: tuple[str, ...] = FIELD_BY_NAME["prior_immunomodulators"].categories

# Derived numeric columns the evaluator reads; each exists iff its source column does.
DERIVED: dict[str, str] = {"n_prior_immunomodulators": "prior_immunomodulators"}


def source_field(name: str) -> str:
    return DERIVED.get(name, name)


def field(name: str) -> Field:
    return FIELD_BY_NAME[source_field(name)]
