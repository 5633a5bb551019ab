"""A rule tree in words, with a scenario's parameter values filled in."""

from __future__ import annotations

from .catalog import AllOf, AnyOf, AtLeast, Catalog, Implies, Not, ParamTrue, Ref
from .explain import describe
from .fields import DERIVED, field

REF_TITLES = {
    "rr_no_gc": "RR-A: refractory/relapsed on conventional therapy",
    "rr_gc": "RR-A(gc): refractory/relapsed on conventional therapy incl. glucocorticoid dose",
    "rr_regimen": "the conventional regimen (glucocorticoid, cyclophosphamide, immunomodulators)",
}


def render(catalog: Catalog, node, params: dict, inline: bool = False) -> str:
    """`inline`: write named definitions out instead of naming them (to compare versions)."""

    def wrap(child) -> str:
        text = render(catalog, child, params, inline)
        target = catalog.definitions[child.name] if inline and isinstance(child, Ref) else child
        composite = isinstance(target, AllOf | AnyOf | Implies | AtLeast)
        return f"({text})" if composite else text

    if isinstance(node, Ref):
        if inline:
            return render(catalog, catalog.definitions[node.name], params, inline)
        return REF_TITLES.get(node.name, node.name)
    if isinstance(node, AllOf):
        return " AND ".join(wrap(c) for c in node.of)
    if isinstance(node, AnyOf):
        return " OR ".join(wrap(c) for c in node.of)
    if isinstance(node, Not):
        return "NOT " + wrap(node.item)
    if isinstance(node, Implies):
        if isinstance(node.if_, ParamTrue):
            on = bool(params[node.if_.param])
            label = catalog.parameters[node.if_.param].label
            return f"[{label}: {'on' if on else 'off'}] " + (wrap(node.then) if on else "nothing required")
        return f"IF {wrap(node.if_)} THEN {wrap(node.then)}"
    if isinstance(node, AtLeast):
        k = params[node.param] if node.param else node.value
        return f"at least {k} of: " + "; ".join(render(catalog, c, params, inline) for c in node.of)
    text = describe(node, params)
    field_name = getattr(node, "field", None)
    if field_name in DERIVED:  # a count derived from a list column
        label = field(field_name).label
        text = text.replace(label, f"Number of recognised {label.lower()}", 1)
    return text
