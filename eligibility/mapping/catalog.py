"""Loading the mapping catalog and looking codes up in it."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import yaml

from ..protocol_files import read_text
from .models import Code, MappingCatalog


class CodeUse(NamedTuple):
    """One use of a code: the field it fills, the category it stands for ("" = the
    field's own code list; "excepted" for malignancy exceptions) and the code entry."""

    field: str
    category: str
    role: str  # "code" or "excepted"
    code: Code


@cache
def load_mapping() -> MappingCatalog:
    text = read_text("mapping.yaml")
    return MappingCatalog.model_validate(yaml.safe_load(text))


def rule_for(field: str):
    for rule in load_mapping().fields:
        if rule.field == field:
            return rule
    raise KeyError(f"{field!r} has no rule in the mapping catalog")


@cache
def _by_system() -> dict[str, str]:
    return {uri: vocab for vocab, uri in load_mapping().systems.items()}


def vocabulary_of(system: str) -> str | None:
    """OMOP vocabulary_id of a FHIR system URI (a vocabulary_id is returned as is)."""
    m = load_mapping()
    if system in m.systems:
        return system
    return _by_system().get(system.rstrip("/"))


def system_of(vocabulary: str) -> str:
    return load_mapping().systems[vocabulary]  # type: ignore[index]


@cache
def _index() -> dict[tuple[str, str], tuple[CodeUse, ...]]:
    out: dict[tuple[str, str], list[CodeUse]] = {}
    for rule in load_mapping().fields:
        for category, codes in rule.code_sets().items():
            role = "excepted" if category == "excepted" else "code"
            cat = "" if role == "excepted" else category
            for c in codes:
                out.setdefault((c.vocabulary, c.code), []).append(CodeUse(rule.field, cat, role, c))
    return {k: tuple(v) for k, v in out.items()}


def field_for_code(system: str, code: str) -> tuple[CodeUse, ...]:
    """Every use of (system or vocabulary_id, code) in the catalog; () when unmapped."""
    vocab = vocabulary_of(system)
    if vocab is None:
        return ()
    return _index().get((vocab, str(code).strip()), ())


def route_of(system: str, code: str) -> str | None:
    vocab = vocabulary_of(system)
    for route, codes in load_mapping().routes.items():
        if any(c.vocabulary == vocab and c.code == str(code).strip() for c in codes):
            return route
    return None
