"""Small-cell suppression with complementary suppression, over any set of counts tied by
linear relations (a total and its parts, a count before and after a change).

Every count from 1 to k−1 is hidden as "<k" (primary suppression). A hidden count must
not be recoverable from what is shown: from a total and its other parts, or from several
relations together. The attacker model, used to decide and to check:

- a shown count is known exactly; a count shown as "<k" lies in [1, k−1];
- a count hidden to protect another (shown as "*") lies in [k, ∞): complements are
  chosen only among counts ≥ k, and zeros are never hidden, so assuming the attacker
  knows this is on the safe side;
- where no count ≥ k is left to hide (tiny groups: every part small or zero), the cells of
  the exposed count's relations are *withheld* ("n/s", small ones too): any value ≥ 0;
- the attacker combines all relations: interval propagation to a fixpoint, plus exact
  linear algebra (a hidden count fixed by the equations alone, whatever the bounds).

A count from 1 to k−1 is *recoverable* if that analysis narrows it to one value. `suppress`
hides complements (smallest count ≥ k in a relation of the exposed cell first), then
withholds, until nothing is recoverable. With `fixed`, the states of an earlier release are kept as they are (the
same counts must not be shown one way here and another way there) and only new cells
may be hidden; a cell that cannot then be protected is reported in `unprotected`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

Key = Hashable
DEFAULT_K = 5
SMALL = "small"  # 1..k-1, shown as "<k"
HIDDEN = "hidden"  # a complement (≥ k), shown as "*"
WITHHELD = "withheld"  # any value (0, small or large), shown as "n/s"
HIDDEN_TEXT = "*"
WITHHELD_TEXT = "n/s"
INF = math.inf


@dataclass(frozen=True)
class Relation:
    """Σ coefficient × count = 0 over the terms."""

    terms: tuple[tuple[Key, int], ...]

    @property
    def keys(self) -> tuple[Key, ...]:
        return tuple(k for k, _ in self.terms)


def total_of(total: Key, parts: Iterable[Key]) -> Relation:
    """total = Σ parts."""
    return Relation(((total, 1), *((p, -1) for p in parts)))


def difference(after: Key, before: Key, plus: Key, minus: Key) -> Relation:
    """after = before + plus − minus."""
    return Relation(((after, 1), (before, -1), (plus, -1), (minus, 1)))


def small_text(k: int) -> str:
    return f"<{k}"


@dataclass
class Suppression:
    """The outcome: which counts are hidden, and how each count is shown."""

    k: int
    values: dict[Key, int]
    relations: list[Relation]
    hidden: dict[Key, str] = field(default_factory=dict)  # key → SMALL | HIDDEN
    unprotected: set[Key] = field(default_factory=set)  # could not be protected (see `fixed`)

    def __contains__(self, key: Key) -> bool:
        return key in self.values

    def shown(self, *keys: Key) -> bool:
        """Every one of these counts is shown as a number (so values derived from them may be)."""
        return all(k in self.values and k not in self.hidden for k in keys)

    def value(self, key: Key) -> int | None:
        """The count, or None if it is hidden."""
        return None if key in self.hidden else self.values[key]

    def text(self, key: Key, fmt: str = "{:,}") -> str:
        state = self.hidden.get(key)
        if state == SMALL:
            return small_text(self.k)
        if state == HIDDEN:
            return HIDDEN_TEXT
        if state == WITHHELD:
            return WITHHELD_TEXT
        return fmt.format(self.values[key])

    def derived(self, keys: Iterable[Key], compute, fmt: str = "{:,}", hidden: str = HIDDEN_TEXT) -> str:
        """A value computed from counts (a percentage, a difference): shown only when all of
        them are shown, since otherwise it would give a hidden count away."""
        keys = tuple(keys)
        if not self.shown(*keys):
            return hidden
        return fmt.format(compute(*(self.values[k] for k in keys)))


def _nested(relations: list[Relation]) -> list[Relation]:
    """For sums whose parts include all the parts of another sum (T = a + b + c and
    S = a + b), the relation T = S + c: an attacker combines them, and interval
    propagation over single relations would not."""
    sums = []
    for r in relations:
        if r.terms and r.terms[0][1] == 1 and all(c == -1 for _, c in r.terms[1:]) and len(r.terms) > 2:
            sums.append((r.terms[0][0], frozenset(k for k, _ in r.terms[1:])))
    by_part: dict = defaultdict(list)
    for i, (_, parts) in enumerate(sums):
        for p in parts:
            by_part[p].append(i)
    extra = []
    for i, (total, parts) in enumerate(sums):
        cands = set.intersection(*(set(by_part[p]) for p in parts)) if parts else set()
        for j in cands:  # sums j whose parts contain all of i's parts
            t2, p2 = sums[j]
            if j != i and parts < p2:
                extra.append(total_of(t2, [total, *sorted(p2 - parts, key=repr)]))
    return extra


def primary(values: Mapping[Key, int], k: int) -> dict[Key, str]:
    return {key: SMALL for key, v in values.items() if 1 <= v < k}


def _bounds(values: Mapping[Key, int], hidden: Mapping[Key, str], k: int) -> dict[Key, list[float]]:
    out = {}
    for key, state in hidden.items():
        out[key] = ([1.0, float(k - 1)] if state == SMALL else [float(k), INF] if state == HIDDEN
                    else [0.0, INF])
    return out


def propagate(values: Mapping[Key, int], relations: list[Relation], hidden: Mapping[Key, str],
              k: int, max_passes: int = 60) -> dict[Key, tuple[float, float]]:
    """The attacker's interval for every hidden count after propagating every relation
    to a fixpoint (integer rounding: counts are whole)."""
    bounds = _bounds(values, hidden, k)
    rels = [r for r in relations if any(key in bounds for key in r.keys)]
    by_key = defaultdict(list)
    for i, r in enumerate(rels):
        for key in r.keys:
            if key in bounds:
                by_key[key].append(i)
    # Passes over the relations touched by the last pass, until nothing tightens. Bounds
    # can creep by one per pass around a cycle of relations; `max_passes` caps that (the
    # creep ends at a bound the linear-algebra check or an exact audit also sees).
    active = set(range(len(rels)))
    for _ in range(max_passes):
        if not active:
            break
        nxt: set[int] = set()
        for i in sorted(active):
            _tighten(rels[i], i, values, bounds, by_key, nxt)
        active = nxt
    return {key: (b[0], b[1]) for key, b in bounds.items()}


def _tighten(r: Relation, i: int, values, bounds, by_key, changed_rels: set[int]) -> None:
    """Σ c·x = 0: each hidden term's interval from the others' (infinite ends counted apart,
    so one unbounded term does not blur the others)."""
    terms = []
    lo_fin = hi_fin = 0.0
    lo_inf = hi_inf = 0  # terms whose c·x is unbounded below / above
    for key, c in r.terms:
        lo, hi = bounds[key] if key in bounds else (float(values[key]), float(values[key]))
        tl, th = (c * lo, c * hi) if c > 0 else (c * hi, c * lo)
        terms.append((key, c, tl, th))
        if math.isinf(tl):
            lo_inf += 1
        else:
            lo_fin += tl
        if math.isinf(th):
            hi_inf += 1
        else:
            hi_fin += th
    for key, c, tl, th in terms:
        if key not in bounds:
            continue
        # others' Σ ∈ [o_lo, o_hi]; c·x = −others
        o_lo = -INF if lo_inf - math.isinf(tl) > 0 else lo_fin - (0.0 if math.isinf(tl) else tl)
        o_hi = INF if hi_inf - math.isinf(th) > 0 else hi_fin - (0.0 if math.isinf(th) else th)
        lo_cx, hi_cx = -o_hi, -o_lo
        new_lo, new_hi = (lo_cx / c, hi_cx / c) if c > 0 else (hi_cx / c, lo_cx / c)
        cur = bounds[key]
        changed = False
        if new_lo > cur[0] + 1e-9:
            cur[0] = float(math.ceil(new_lo - 1e-9))
            changed = True
        if new_hi < cur[1] - 1e-9:
            cur[1] = float(math.floor(new_hi + 1e-9))
            changed = True
        if changed:
            changed_rels.update(j for j in by_key[key] if j != i)


def fixed_by_equations(relations: list[Relation], hidden: Mapping[Key, str]) -> set[Key]:
    """Hidden counts that the relations alone determine (their unit vector lies in the row
    space of the relations restricted to the hidden counts). Solved per connected group of
    hidden counts, which keeps every matrix small."""
    keys = list(hidden)
    if not keys:
        return set()
    col = {key: j for j, key in enumerate(keys)}
    parent = list(range(len(keys)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = []
    for r in relations:
        terms = [(col[key], c) for key, c in r.terms if key in col]
        if terms:
            rows.append(terms)
            for j, _ in terms[1:]:
                a, b = find(terms[0][0]), find(j)
                if a != b:
                    parent[a] = b
    members: dict[int, list[int]] = defaultdict(list)
    for j in range(len(keys)):
        members[find(j)].append(j)
    by_comp: dict[int, list] = defaultdict(list)
    for terms in rows:
        by_comp[find(terms[0][0])].append(terms)
    out = set()
    for root, cols in members.items():
        eqs = by_comp.get(root, [])
        if not eqs:
            continue
        local = {j: i for i, j in enumerate(cols)}
        a = np.zeros((len(eqs), len(cols)))
        for r, terms in enumerate(eqs):
            for j, c in terms:
                a[r, local[j]] += c
        # Null space of A (via AᵀA): x_j is determined iff every null-space vector is 0 at j.
        w, v = np.linalg.eigh(a.T @ a)
        null = v[:, w <= 1e-8 * max(1.0, float(w.max(initial=0.0)))]
        if null.shape[1] == 0:
            out.update(keys[j] for j in cols)
            continue
        free = np.abs(null).max(axis=1) > 1e-6
        out.update(keys[cols[i]] for i in np.flatnonzero(~free))
    return out


def exposed(values: Mapping[Key, int], relations: list[Relation], hidden: Mapping[Key, str],
            k: int) -> set[Key]:
    """Hidden counts from 1 to k−1 that the attacker model narrows to a single value."""
    if not hidden:
        return set()
    rng = propagate(values, relations, hidden, k)
    out = {key for key, (lo, hi) in rng.items() if lo >= hi}
    out |= fixed_by_equations(relations, hidden)
    return {key for key in out if 1 <= values[key] < k}


def suppress(values: Mapping[Key, int], relations: Iterable[Relation], k: int = DEFAULT_K,
             fixed: Suppression | None = None) -> Suppression:
    """Hide every count in 1..k−1 and enough complements that none can be recovered."""
    if k < 3:  # with k = 2, "<2" would say "1"
        raise ValueError(f"the minimum cell count k must be at least 3, not {k}")
    values = {key: int(v) for key, v in values.items()}
    relations = list(relations)
    frozen: set[Key] = set()
    if fixed is not None:
        for key, v in fixed.values.items():
            values.setdefault(key, v)
        relations = [*fixed.relations, *relations]
        frozen = set(fixed.values)
    for r in relations:
        for key in r.keys:
            if key not in values:
                raise KeyError(f"relation names a count that is not given: {key!r}")
    relations = [*relations, *_nested(relations)]
    hidden = {key: s for key, s in primary(values, k).items() if key not in frozen}
    if fixed is not None:
        hidden.update(fixed.hidden)
    by_key = defaultdict(list)
    for r in relations:
        for key in r.keys:
            by_key[key].append(r)
    while True:
        bad = sorted(exposed(values, relations, hidden, k), key=repr)
        if not bad:
            break
        added = False
        touched: set[int] = set()  # relations that got a complement in this round
        for key in bad:
            rels = by_key[key]
            if any(id(r) in touched for r in rels):
                continue  # may be protected already; checked again next round
            cands = {c for r in rels for c in r.keys
                     if c not in hidden and c not in frozen and values[c] >= k}
            if cands:
                pick = min(cands, key=lambda c: (values[c], repr(c)))
                hidden[pick] = HIDDEN
                touched.update(id(r) for r in by_key[pick])
                added = True
                continue
            # Nothing ≥ k left to hide: withhold every cell of these relations (value-blind).
            grow = {c for r in rels for c in r.keys if c not in frozen and hidden.get(c) != WITHHELD}
            if not grow:
                continue
            for c in grow:
                hidden[c] = WITHHELD
            touched.update(id(r) for r in rels)
            added = True
        if not added:
            # Still exposed with every neighbour hidden: withhold ever wider rings of cells
            # around the exposed counts (one relation further each time) until one changes.
            ring = set(bad)
            while not added:
                wider = {c for key in ring for r in by_key[key] for c in r.keys} | ring
                grow = {c for c in wider if c not in frozen and hidden.get(c) != WITHHELD}
                for c in grow:
                    hidden[c] = WITHHELD
                added = bool(grow)
                if wider == ring:
                    break
                ring = wider
            if not added:
                break
    unprotected = exposed(values, relations, hidden, k)  # what is still exposed at the end
    return Suppression(k, values, relations, hidden, unprotected)
