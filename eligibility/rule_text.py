"""A rule tree in words, with a scenario's parameter values filled in."""

from __future__ import annotations

from .catalog import AllOf, AnyOf, AtLeast, Catalog, Compare, Implies, Not, ParamTrue, Ref
from .explain import Describe
from .fields import DERIVED, field

REF_TITLES = {
    "rr_no_gc": "RR-A: refractory/relapsed on conventional therapy",
    "rr_gc": "RR-A(gc): refractory/relapsed on conventional therapy incl. glucocorticoid dose",
    "rr_regimen": "the conventional regimen (glucocorticoid, cyclophosphamide, immunomodulators)",
}


class Render(Describe):
    """Leaves as the explainer words them; composites written out. `inline`: named
    definitions written out instead of named (to compare protocol versions)."""

    def __init__(self, catalog: Catalog, params: dict, inline: bool = False):
        super().__init__(params)
        self.catalog = catalog
        self.inline = inline

    def _wrap(self, child) -> str:
        text = self.visit(child)
        target = self.catalog.definitions[child.name] if self.inline and isinstance(child, Ref) else child
        return f"({text})" if isinstance(target, AllOf | AnyOf | Implies | AtLeast) else text

    def ref(self, node: Ref) -> str:
        if self.inline:
            return self.visit(self.catalog.definitions[node.name])
        return REF_TITLES.get(node.name, node.name)

    def all_of(self, node: AllOf) -> str:
        return " AND ".join(self._wrap(c) for c in node.of)

    def any_of(self, node: AnyOf) -> str:
        return " OR ".join(self._wrap(c) for c in node.of)

    def not_(self, node: Not) -> str:
        return "NOT " + self._wrap(node.item)

    def implies(self, node: Implies) -> str:
        if isinstance(node.if_, ParamTrue):
            on = bool(self.params[node.if_.param])
            label = self.catalog.parameters[node.if_.param].label
            return f"[{label}: {'on' if on else 'off'}] " + (self._wrap(node.then) if on else "nothing required")
        return f"IF {self._wrap(node.if_)} THEN {self._wrap(node.then)}"

    def at_least(self, node: AtLeast) -> str:
        return f"at least {node.k(self.params)} of: " + "; ".join(self.visit(c) for c in node.of)

    def compare(self, node: Compare) -> str:
        text = super().compare(node)
        if node.field in DERIVED:  # a count derived from a list column
            label = field(node.field).label
            text = text.replace(label, f"Number of recognised {label.lower()}", 1)
        return text


def render(catalog: Catalog, node, params: dict, inline: bool = False) -> str:
    return Render(catalog, params, inline).visit(node)
