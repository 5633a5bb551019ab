"""Pydantic models of the mapping catalog (eligibility/protocol/mapping.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..fields import DISEASES, FIELD_BY_NAME, IMMUNOMODULATORS

Vocabulary = Literal["LOINC", "SNOMED", "ICD10CM", "RxNorm", "ATC", "CVX", "UCUM", "Gender"]
Table = Literal["condition", "procedure", "observation", "measurement", "drug"]
# vocabularies whose codes are expanded to their descendants by default (OMOP concept_ancestor)
HIERARCHICAL = frozenset({"SNOMED", "ATC", "RxNorm"})


class _M(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Code(_M):
    """One code of a code set, with its display name and the public source it comes from."""

    vocabulary: Vocabulary
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)
    source: str
    checked: str | None = None
    descendants: bool | None = None  # None: yes for SNOMED/ATC/RxNorm, no otherwise

    @property
    def expand(self) -> bool:
        return self.vocabulary in HIERARCHICAL if self.descendants is None else self.descendants


class _Rule(_M):
    field: str

    @model_validator(mode="after")
    def _known_field(self):
        if self.field not in FIELD_BY_NAME:
            raise ValueError(f"{self.field!r} is not a contract field")
        return self

    def code_sets(self) -> dict[str, tuple[Code, ...]]:
        """Category (or role) -> codes; the empty category is the rule's own code list."""
        return {}


class AgeRule(_Rule):
    kind: Literal["age"]


class SexRule(_Rule):
    kind: Literal["sex"]
    categories: dict[Literal["F", "M"], tuple[Code, ...]]

    def code_sets(self):
        return dict(self.categories)


class LabRule(_Rule):
    """Latest value within `lookback_days` before (and on) the as-of date, converted to `unit`."""

    kind: Literal["lab"]
    unit: str
    lookback_days: int = Field(gt=0)
    codes: tuple[Code, ...] = Field(min_length=1)

    def code_sets(self):
        return {"": self.codes}


class CategoryRule(_Rule):
    """A category field (disease, subtypes) from condition code sets; the most recent record wins."""

    kind: Literal["disease", "category"]
    categories: dict[str, tuple[Code, ...]]

    @model_validator(mode="after")
    def _known_categories(self):
        allowed = DISEASES if self.kind == "disease" else FIELD_BY_NAME[self.field].categories
        bad = sorted(set(self.categories) - set(allowed))
        if bad:
            raise ValueError(f"{self.field}: unknown categories {bad}")
        return self

    def code_sets(self):
        return dict(self.categories)


class ConditionRule(_Rule):
    """yes when a code is recorded on or before the as-of date and, with `lookback_years`,
    active within that many years (no end date = still active); else `absent`."""

    kind: Literal["condition"]
    codes: tuple[Code, ...] = Field(min_length=1)
    lookback_years: float | None = Field(default=None, gt=0)
    absent: Literal["no", "empty"] | None = None  # None: the catalog default
    tables: tuple[Table, ...] = ("condition", "observation")

    def code_sets(self):
        return {"": self.codes}


class MalignancyRule(_Rule):
    kind: Literal["malignancy"]
    also_fills: Literal["malignancy_excepted"]
    codes: tuple[Code, ...] = Field(min_length=1)
    excepted: tuple[Code, ...] = Field(min_length=1)
    tables: tuple[Table, ...] = ("condition", "observation")

    def code_sets(self):
        return {"": self.codes, "excepted": self.excepted}


class DrugRule(_Rule):
    """ever: yes/no; days_since: days from the end of the latest exposure (0 while ongoing)."""

    kind: Literal["drug"]
    value: Literal["ever", "days_since"]
    codes: tuple[Code, ...] = Field(min_length=1)
    route: Literal["oral", "iv"] | None = None
    tables: tuple[Table, ...] = ("drug",)

    def code_sets(self):
        return {"": self.codes}


class DrugListRule(_Rule):
    kind: Literal["drug_list"]
    categories: dict[str, tuple[Code, ...]]

    @model_validator(mode="after")
    def _known(self):
        bad = sorted(set(self.categories) - set(IMMUNOMODULATORS))
        if bad:
            raise ValueError(f"{self.field}: unknown categories {bad}")
        return self

    def code_sets(self):
        return dict(self.categories)


class DrugSpanRule(_Rule):
    kind: Literal["drug_span"]
    from_fields: tuple[str, ...] = Field(min_length=1)


Rule = Annotated[
    AgeRule | SexRule | LabRule | CategoryRule | ConditionRule | MalignancyRule
    | DrugRule | DrugListRule | DrugSpanRule,
    Field(discriminator="kind"),
]


class Defaults(_M):
    lab_lookback_days: int = Field(gt=0)
    absent: Literal["no", "empty"]
    route_unknown: Literal["any", "none"]


class MappingCatalog(_M):
    version: Literal[1]
    systems: dict[Vocabulary, str]
    sources: dict[str, str]
    defaults: Defaults
    unit_groups: dict[str, dict[str, float]]
    fields: tuple[Rule, ...]
    routes: dict[Literal["oral", "iv"], tuple[Code, ...]]
    not_mapped: dict[str, str]

    @model_validator(mode="after")
    def _consistent(self):
        names = [r.field for r in self.fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"fields listed twice: {dup}")
        for rule in self.fields:
            if isinstance(rule, LabRule) and rule.unit not in self.unit_groups:
                raise ValueError(f"{rule.field}: unit {rule.unit!r} has no unit group")
            if isinstance(rule, DrugSpanRule):
                missing = [f for f in rule.from_fields if f not in names]
                if missing:
                    raise ValueError(f"{rule.field}: from_fields not in the catalog: {missing}")
            for codes in rule.code_sets().values():
                for c in codes:
                    if c.source not in self.sources:
                        raise ValueError(f"{rule.field}: code {c.code} names unknown source {c.source!r}")
        for codes in self.routes.values():
            for c in codes:
                if c.source not in self.sources:
                    raise ValueError(f"route code {c.code} names unknown source {c.source!r}")
        overlap = sorted(set(self.not_mapped) & set(names))
        if overlap:
            raise ValueError(f"fields both mapped and not_mapped: {overlap}")
        bad = sorted(f for f in self.not_mapped if f not in FIELD_BY_NAME)
        if bad:
            raise ValueError(f"not_mapped names unknown fields: {bad}")
        return self
