"""The one dispatch over the catalog's rule primitives.

Every consumer of rule trees (the vectorised evaluator, the reference evaluator, the
explainer and the renderer) is a `RuleVisitor` with one method per primitive. `visit`
matches on the node's class and ends in `assert_never`, so a primitive added to
`catalog.Node` is a type error here until it is dispatched, and its new abstract method
makes every visitor that lacks it fail to instantiate (tests) and fail mypy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar, assert_never

from .catalog import (
    AllOf,
    AnyOf,
    AtLeast,
    Compare,
    Flag,
    Implies,
    In,
    Node,
    Not,
    ParamTrue,
    Ref,
    UlnLimit,
    Within,
)

T = TypeVar("T")


class RuleVisitor(ABC, Generic[T]):
    def visit(self, node: Node) -> T:
        match node:
            case Flag():
                return self.flag(node)
            case Compare():
                return self.compare(node)
            case UlnLimit():
                return self.uln(node)
            case Within():
                return self.within(node)
            case In():
                return self.in_(node)
            case ParamTrue():
                return self.param_true(node)
            case Ref():
                return self.ref(node)
            case AllOf():
                return self.all_of(node)
            case AnyOf():
                return self.any_of(node)
            case Not():
                return self.not_(node)
            case AtLeast():
                return self.at_least(node)
            case Implies():
                return self.implies(node)
            case _:
                assert_never(node)

    @abstractmethod
    def flag(self, node: Flag) -> T: ...

    @abstractmethod
    def compare(self, node: Compare) -> T: ...

    @abstractmethod
    def uln(self, node: UlnLimit) -> T: ...

    @abstractmethod
    def within(self, node: Within) -> T: ...

    @abstractmethod
    def in_(self, node: In) -> T: ...

    @abstractmethod
    def param_true(self, node: ParamTrue) -> T: ...

    @abstractmethod
    def ref(self, node: Ref) -> T: ...

    @abstractmethod
    def all_of(self, node: AllOf) -> T: ...

    @abstractmethod
    def any_of(self, node: AnyOf) -> T: ...

    @abstractmethod
    def not_(self, node: Not) -> T: ...

    @abstractmethod
    def at_least(self, node: AtLeast) -> T: ...

    @abstractmethod
    def implies(self, node: Implies) -> T: ...
