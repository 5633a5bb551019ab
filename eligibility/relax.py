"""The smallest relaxation of the protocol that reaches a target number of eligible patients.

A *move* sets one parameter to a less strict value (within its what-if range) or switches
one criterion off. An option is a set of moves on distinct parameters/criteria; options
are ranked by the number of changes, then by their distance from the protocol (a numeric
parameter counts |value − default| / width of its what-if range, a set the share of its
categories changed, a switch or a switched-off criterion 1), then by more patients gained.

Locked criteria (`locked: true` in criteria.yaml: safety, e.g. HIV, infection, TB,
pregnancy, organ function; plus the planner's `lock`) are never switched off, and the
parameters they read are never moved. Search: exact for k = 1, 2, … changes while the
combinations of k dimensions number at most EXACT_BUDGET (every combination, its values
searched with branch-and-bound and the last one by bisection, as the eligible count only
grows as a threshold is relaxed); beyond that, a bounded greedy search from the most
helpful single moves, then pruned (no change the target does not need) and tightened.
Statuses come from the engine's per-unit evaluation cache: a move recomputes only the
units that read the moved parameter.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import (
    AllOf,
    AnyOf,
    AtLeast,
    Catalog,
    Compare,
    Flag,
    Implies,
    In,
    Not,
    ParamTrue,
    Ref,
    UlnLimit,
    Within,
)
from .evaluate import ELIGIBLE, PASS, Evaluator
from .rule_visit import RuleVisitor
from .scenario import Resolved, baseline, resolve
from .whatif import sweep_values

EXACT_BUDGET = 6_000  # combinations of k dimensions searched exactly; beyond, greedy
GREEDY_STARTS = 5  # greedy runs, each from one of the most helpful single moves
MAX_CHANGES = 40  # greedy gives up beyond this many changes


class RelaxError(ValueError):
    """A relaxation request that cannot be answered (unknown name, impossible target)."""


@dataclass(frozen=True)
class Move:
    dim: str  # parameter name or criterion ID
    value: Any  # typed parameter value; True for a switched-off criterion
    distance: float
    is_criterion: bool = False


@dataclass
class Option:
    parameters: dict[str, Any]
    disabled: list[str]
    eligible: int
    gained: int
    distance: float
    gained_rows: list[int] = field(default_factory=list)  # input rows (0-based) newly eligible
    exact: bool = True  # False: found by the greedy search (reaches the target, not proven fewest)

    @property
    def changes(self) -> int:
        return len(self.parameters) + len(self.disabled)

    def as_scenario(self) -> dict[str, Any]:
        """The option as a scenario file (the counts are annotations a scenario ignores)."""
        return {"parameters": self.parameters, "disabled": self.disabled, "eligible": self.eligible,
                "gained": self.gained}


# -- which way each parameter relaxes ------------------------------------------------------------


class _Directions(RuleVisitor[None]):
    """Collects, per parameter, the directions in which moving it helps a patient pass.
    `pol` is +1 where a node being true helps (inclusion, even number of negations)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.out: dict[str, set[int]] = {}
        self.pol = 1

    def add(self, name: str | None, d: int) -> None:
        if name:
            self.out.setdefault(name, set()).add(d)

    def under(self, node, pol: int) -> None:
        saved, self.pol = self.pol, pol
        self.visit(node)
        self.pol = saved

    def ref(self, node: Ref) -> None:
        self.visit(self.catalog.definitions[node.name])

    def flag(self, node: Flag) -> None:
        pass

    def in_(self, node: In) -> None:
        pass  # sets: relaxed by adding (inclusion) or removing (exclusion) values, see parameter_moves

    def compare(self, node: Compare) -> None:
        up = +1 if node.op in ("lt", "le") else -1
        self.add(node.param, self.pol * (-up if node.negate else up))

    def uln(self, node: UlnLimit) -> None:
        up = +1 if node.op in ("lt", "le") else -1
        self.add(node.max_param, self.pol * up)
        self.add(node.default_param, self.pol * up)

    def within(self, node: Within) -> None:
        self.add(node.param, self.pol)
        self.add(node.unreadable, self.pol)
        self.add(node.offset_param, -self.pol)

    def param_true(self, node: ParamTrue) -> None:
        self.add(node.param, self.pol)

    def all_of(self, node: AllOf) -> None:
        for c in node.of:
            self.visit(c)

    def any_of(self, node: AnyOf) -> None:
        for c in node.of:
            self.visit(c)

    def not_(self, node: Not) -> None:
        self.under(node.item, -self.pol)

    def implies(self, node: Implies) -> None:
        self.under(node.if_, -self.pol)
        self.visit(node.then)

    def at_least(self, node: AtLeast) -> None:
        self.add(node.param, -self.pol)
        for c in node.of:
            self.visit(c)


def relax_directions(catalog: Catalog) -> dict[str, set[int]]:
    """Per parameter, the directions (+1 raise, −1 lower/false) that help a patient pass.
    A parameter read both ways (e.g. mmt8_max) has two and is not moved."""
    d = _Directions(catalog)
    for u in catalog.units:
        d.under(u.rule, +1 if u.kind == "incl" else -1)
    return d.out


# -- candidate moves -----------------------------------------------------------------------------


def locked_parameters(catalog: Catalog, locked_criteria: Iterable[str]) -> set[str]:
    locked = set(locked_criteria)
    out = {p.name for p in catalog.parameters.values() if p.locked}
    for u in catalog.units:
        if u.criterion in locked or u.id in locked:
            out |= catalog.params_of(u.rule)
    return out


def parameter_moves(catalog: Catalog, name: str, direction: int, default) -> list[Move]:
    """Less strict values of one parameter, nearest first (its what-if range bounds them)."""
    p = catalog.parameters[name]
    if p.type == "bool":
        want = direction > 0
        return [] if bool(default) == want else [Move(name, want, 1.0)]
    if p.type == "set":
        cats = p.choices
        base = frozenset(default)
        pool = sorted(base) if direction < 0 else sorted(set(cats) - base)
        moves = []
        for k in range(1, len(pool) + 1):
            for combo in itertools.combinations(pool, k):
                value = base - set(combo) if direction < 0 else base | set(combo)
                moves.append(Move(name, frozenset(value), k / len(cats)))
        return moves
    if p.range is None:
        return []
    lo, hi = p.range
    width = (hi - lo) or 1.0
    values = [float(v) for v in sweep_values(p)]
    values = [v for v in values if (v > default if direction > 0 else v < default)]
    values.sort(key=lambda v: abs(v - default))
    cast = int if p.type == "count" else float
    return [Move(name, cast(v), abs(v - default) / width) for v in values]


def candidate_moves(catalog: Catalog, params: dict[str, Any], lock: Iterable[str] = (),
                    only: Iterable[str] | None = None) -> dict[str, list[Move]]:
    """Per dimension (parameter or criterion), its moves nearest first; the last is the most relaxed.
    `only`: restrict to these parameters/criteria (tests, planners who know what they may change)."""
    lock = set(lock)
    for name in lock:
        if name not in catalog.criterion_by_id and name not in catalog.unit_by_id and name not in catalog.parameters:
            raise RelaxError(f"unknown criterion or parameter {name!r} in --lock")
    locked_criteria = {c.id for c in catalog.criteria if c.locked} | (lock & set(catalog.criterion_by_id))
    locked_units = lock & set(catalog.unit_by_id)
    frozen = locked_parameters(catalog, locked_criteria | locked_units) | (lock & set(catalog.parameters))
    wanted = set(only) if only is not None else None
    if wanted is not None:
        unknown = [x for x in wanted if x not in catalog.criterion_by_id and x not in catalog.parameters]
        if unknown:
            raise RelaxError(f"unknown criterion or parameter {unknown[0]!r}")
    dims: dict[str, list[Move]] = {}
    for name, directions in relax_directions(catalog).items():
        if name in frozen or len(directions) != 1 or (wanted is not None and name not in wanted):
            continue
        moves = parameter_moves(catalog, name, next(iter(directions)), params[name])
        if moves:
            dims[name] = moves
    for c in catalog.criteria:
        if c.id in locked_criteria or (wanted is not None and c.id not in wanted):
            continue
        if any(u.criterion == c.id for u in catalog.units if u.id in locked_units):
            continue
        dims[c.id] = [Move(c.id, True, 1.0, is_criterion=True)]
    return dims


# -- fast counting over the engine's unit cache -----------------------------------------------------


class _Counter:
    """Eligible counts under sets of moves. Each patient's baseline blockers (units not passing)
    are counted once; a set of moves re-checks only the units it touches (those reading a moved
    parameter, from the evaluator's per-unit cache, and the switched-off ones)."""

    def __init__(self, evaluator: Evaluator, scenario: Resolved, disease: str | None):
        self.ev = evaluator
        self.catalog = evaluator.catalog_for(scenario)
        self.params = scenario.params
        n = len(evaluator)
        self.sl = slice(0, n) if disease is None else evaluator.columns.bounds[disease]
        self.units = [u for u in self.catalog.units if u.id not in scenario.disabled]
        self.readers: dict[str, list[int]] = {}
        self.by_criterion: dict[str, list[int]] = {}
        self.notpass = np.zeros((len(self.units), n), bool)
        for i, u in enumerate(self.units):
            for p in self.catalog.unit_params(u.id):
                self.readers.setdefault(p, []).append(i)
            self.by_criterion.setdefault(u.criterion, []).append(i)
            if evaluator.assessed(u, self.params, self.catalog):
                sl = evaluator.columns.bounds[u.block]
                self.notpass[i, sl] = evaluator.unit_outcome(u, self.params, self.catalog) != PASS
        self.blockers = self.notpass.sum(axis=0, dtype=np.int16)
        self.seen: dict[frozenset, int] = {}

    def residual(self, moves: Sequence[Move]) -> np.ndarray:
        """Per patient (evaluation order), how many units still keep them from eligible."""
        params = dict(self.params)
        off: set[int] = set()
        touched: set[int] = set()
        for m in moves:
            if m.is_criterion:
                off.update(self.by_criterion[m.dim])
            else:
                params[m.dim] = m.value
                touched.update(self.readers.get(m.dim, ()))
        touched |= off
        if not touched:
            return self.blockers
        idx = sorted(touched)
        left = self.blockers - self.notpass[idx].sum(axis=0, dtype=np.int16)
        bounds = self.ev.columns.bounds
        for i in idx:
            u = self.units[i]
            if i in off or not self.ev.assessed(u, params, self.catalog):
                continue
            sl = bounds[u.block]
            left[sl] += self.ev.unit_outcome(u, params, self.catalog) != PASS
        return left

    def eligible(self, moves: Sequence[Move]) -> np.ndarray:
        """Who is eligible under the moves (evaluation order, all rows)."""
        return self.residual(moves) == 0

    def blocking(self, moves: Sequence[Move]) -> int:
        """Blocking (patient, unit) pairs left in scope: progress when no single move admits anyone."""
        return int(self.residual(moves)[self.sl].sum())

    def count(self, moves: Sequence[Move]) -> int:
        key = frozenset((m.dim, m.value if not isinstance(m.value, frozenset) else tuple(sorted(m.value)))
                        for m in moves)
        if key not in self.seen:
            self.seen[key] = int(self.eligible(moves)[self.sl].sum())
        return self.seen[key]


def _is_ordered(moves: list[Move]) -> bool:
    """Numeric and switch dimensions: each move is less strict than the one before (bisection applies)."""
    return not isinstance(moves[0].value, frozenset)


def _smallest(counter: _Counter, fixed: list[Move], moves: list[Move], need: int) -> Move | None:
    """The nearest move of one dimension that, with `fixed`, reaches `need` eligible."""
    if not _is_ordered(moves):
        hits = [m for m in moves if counter.count([*fixed, m]) >= need]
        return min(hits, key=lambda m: m.distance) if hits else None
    if counter.count([*fixed, moves[-1]]) < need:
        return None
    lo, hi = 0, len(moves) - 1  # invariant: moves[hi] reaches
    while lo < hi:
        mid = (lo + hi) // 2
        if counter.count([*fixed, moves[mid]]) >= need:
            hi = mid
        else:
            lo = mid + 1
    return moves[hi]


def _option(counter: _Counter, moves: Sequence[Move], base_eligible: np.ndarray) -> Option:
    now = counter.eligible(moves)
    scope = np.zeros(len(now), bool)
    scope[counter.sl] = True
    eligible = scope & now
    gained = eligible & ~base_eligible
    params = {}
    for m in moves:
        if not m.is_criterion:
            params[m.dim] = sorted(m.value) if isinstance(m.value, frozenset) else m.value
    rows = np.sort(counter.ev.columns.order[np.flatnonzero(gained)])
    return Option(parameters=dict(sorted(params.items())),
                  disabled=sorted(m.dim for m in moves if m.is_criterion),
                  eligible=int(eligible.sum()), gained=int(gained.sum()),
                  distance=round(sum(m.distance for m in moves), 9), gained_rows=[int(r) for r in rows])


def _combo(counter: _Counter, dims: list[list[Move]], need: int) -> list[Move] | None:
    """The nearest moves, one per dimension, that together reach `need` (None: they cannot).
    Exhaustive over the values of all but one dimension, which is bisected; branches that
    cannot beat the best found, or cannot reach even with the rest fully relaxed, are cut."""
    if counter.count([m[-1] for m in dims]) < need:
        return None
    dims = sorted(dims, key=lambda m: (_is_ordered(m), len(m)))  # bisect the longest ordered one
    best: list[Move] | None = None
    best_d = math.inf

    def rec(fixed: list[Move], i: int, dist: float) -> None:
        nonlocal best, best_d
        if i == len(dims) - 1:
            m = _smallest(counter, fixed, dims[i], need)
            if m is not None and dist + m.distance < best_d:
                best, best_d = [*fixed, m], dist + m.distance
            return
        rest = [x[-1] for x in dims[i + 1:]]
        for m in dims[i]:  # nearest first
            if dist + m.distance >= best_d:
                if _is_ordered(dims[i]):
                    break
                continue
            if counter.count([*fixed, m, *rest]) < need:
                continue
            rec([*fixed, m], i + 1, dist + m.distance)

    rec([], 0, 0.0)
    return best


def _greedy(counter: _Counter, dims: dict[str, list[Move]], start: Move, need: int) -> list[Move] | None:
    chosen = {start.dim: dims[start.dim][-1]}
    while counter.count(list(chosen.values())) < need:
        if len(chosen) >= MAX_CHANGES:
            return None
        current = list(chosen.values())
        now, left = counter.count(current), counter.blocking(current)
        best, best_score = None, (0.0, 0.0)
        for d, moves in dims.items():
            if d in chosen:
                continue
            step = [*current, moves[-1]]
            cost = max(moves[-1].distance, 1e-9)
            # patients admitted per unit of distance; failing that, blockers removed
            score = ((counter.count(step) - now) / cost, (left - counter.blocking(step)) / cost)
            if score > best_score:
                best, best_score = d, score
        if best is None:
            return None
        chosen[best] = dims[best][-1]
    for d in sorted(chosen, key=lambda d: -chosen[d].distance):  # drop changes the target does not need
        rest = [m for k, m in chosen.items() if k != d]
        if counter.count(rest) >= need:
            del chosen[d]
    for d in list(chosen):  # tighten each value, the others held
        rest = [m for k, m in chosen.items() if k != d]
        m = _smallest(counter, rest, dims[d], need)
        if m is not None:
            chosen[d] = m
    return list(chosen.values())


def relax(evaluator: Evaluator, target: int, disease: str | None = None, lock: Iterable[str] = (),
          scenario: Resolved | None = None, only: Iterable[str] | None = None,
          max_options: int = 10, exact_budget: int = EXACT_BUDGET) -> list[Option]:
    """Ranked options (fewest changes, then nearest the protocol) that reach `target` eligible
    patients (in `disease`, else pooled). Empty when even every allowed relaxation falls short."""
    catalog = evaluator.catalog
    if target < 0:
        raise RelaxError("the target must be a whole number ≥ 0")
    if disease is not None and disease not in evaluator.columns.bounds:
        raise RelaxError(f"unknown disease {disease!r}")
    scenario = scenario or baseline(catalog)
    counter = _Counter(evaluator, scenario, disease)
    dims = candidate_moves(counter.catalog, scenario.params, lock, only)
    if disease is not None:  # only what can matter to this disease's patients
        blocks = {"common", disease}
        relevant = {u.criterion for u in counter.catalog.units if u.block in blocks}
        relevant |= {p for u in counter.catalog.units if u.block in blocks for p in counter.catalog.unit_params(u.id)}
        dims = {d: m for d, m in dims.items() if d in relevant}
    base_eligible = np.zeros(len(evaluator), bool)
    base_eligible[counter.sl] = counter.eligible([])[counter.sl]
    if counter.count([]) >= target:
        return [_option(counter, [], base_eligible)]
    if counter.count([m[-1] for m in dims.values()]) < target:
        return []
    found: list[list[Move]] = []
    names = list(dims)
    for k in range(1, len(names) + 1):  # exact while the combinations of k dimensions are few
        if math.comb(len(names), k) > exact_budget:
            break
        for combo in itertools.combinations(names, k):
            hit = _combo(counter, [dims[d] for d in combo], target)
            if hit is not None:
                found.append(hit)
        if found:
            break
    exact = bool(found)
    if not found:
        singles = sorted(names, key=lambda d: -counter.count([dims[d][-1]]))[:GREEDY_STARTS]
        for d in singles:
            hit = _greedy(counter, dims, dims[d][-1], target)
            if hit is not None and not any({m.dim for m in hit} == {m.dim for m in f} for f in found):
                found.append(hit)
    options = [_option(counter, moves, base_eligible) for moves in found]
    for o in options:
        o.exact = exact
    options.sort(key=lambda o: (o.changes, o.distance, -o.gained, sorted(o.parameters), o.disabled))
    if options:
        fewest = options[0].changes
        options = [o for o in options if o.changes == fewest]
    return options[:max_options]


def check_option(evaluator: Evaluator, option: Option, disease: str | None = None) -> int:
    """Eligible count of an option evaluated as a scenario through the public path."""
    r = resolve({"parameters": option.parameters, "disabled": option.disabled}, evaluator.catalog)
    status = evaluator.status(r)
    sl = slice(0, len(evaluator)) if disease is None else evaluator.columns.bounds[disease]
    return int((status[sl] == ELIGIBLE).sum())


__all__ = ["Move", "Option", "RelaxError", "candidate_moves", "check_option", "relax", "relax_directions"]
