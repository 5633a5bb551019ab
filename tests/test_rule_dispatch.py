"""One rule dispatch: every consumer of rule trees is a RuleVisitor, so none can miss a primitive."""

from __future__ import annotations

import typing

import pytest

from eligibility import catalog as C
from eligibility.explain import Describe
from eligibility.reference import _Truth
from eligibility.relax import _Directions
from eligibility.rule_text import Render
from eligibility.rule_visit import RuleVisitor
from eligibility.rules import RuleEvaluator

PRIMITIVES = typing.get_args(typing.get_args(C.Node)[0])


def test_every_primitive_has_a_visitor_method():
    abstract = RuleVisitor.__abstractmethods__
    assert len(abstract) == len(PRIMITIVES) == 12
    for consumer in (RuleEvaluator, _Truth, Describe, Render, _Directions):
        assert issubclass(consumer, RuleVisitor)
        assert not consumer.__abstractmethods__, consumer


def test_a_visitor_missing_a_primitive_cannot_be_made():
    class Partial(RuleVisitor[int]):
        def flag(self, node):
            return 0

    with pytest.raises(TypeError, match="abstract"):
        Partial()


def test_every_primitive_in_the_catalog_is_dispatched():
    cat = C.default_catalog()
    seen = {type(n) for u in cat.units for n in cat.walk(u.rule)} | {C.Ref}
    assert seen == set(PRIMITIVES)
