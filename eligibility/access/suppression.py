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
- the attacker combines all relations exactly: whole numbers, every relation at once, and
  (on the safe side) no count above the largest count of the release. The audit is exact:
  per group of hidden counts tied by relations, a mixed-integer feasibility problem (HiGHS
  through scipy.optimize.milp) asks whether some other consistent table gives the count
  another value.

A count from 1 to k−1 is *recoverable* if that audit finds it takes one value only. `suppress`
hides complements (smallest count ≥ k in a relation of the exposed cell first), then
withholds, until nothing is recoverable. With `fixed`, the states of an earlier release are kept as they are (the
same counts must not be shown one way here and another way there) and only new cells
may be hidden; a cell that cannot then be protected is reported in `unprotected`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

Key = Hashable
DEFAULT_K = 5
SMALL = "small"  # 1..k-1, shown as "<k"
HIDDEN = "hidden"  # a complement (≥ k), shown as "*"
WITHHELD = "withheld"  # any value (0, small or large), shown as "n/s"
HIDDEN_TEXT = "*"
WITHHELD_TEXT = "n/s"


@dataclass(frozen=True)
class Relation:
    """Σ coefficient × count = 0 over the terms."""

    terms: tuple[tuple[Key, int], ...]

    @cached_property
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
    unshown: set[Key] = field(default_factory=set)  # never displayed (see `suppress`)

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


def _box(state: str, k: int, cap: int) -> tuple[int, int]:
    """What the attacker knows of a hidden count from how it is shown."""
    return (1, k - 1) if state == SMALL else (k, max(k, cap)) if state == HIDDEN else (0, cap)


def _components(relations: list[Relation], hidden: Mapping[Key, str]) -> list[tuple[list[Key], list[Relation]]]:
    """Groups of hidden counts tied together by relations (each is audited on its own: a
    relation whose counts are all shown says nothing about a hidden one)."""
    keys = list(hidden)
    idx = {key: i for i, key in enumerate(keys)}
    parent = list(range(len(keys)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    touching = []
    for r in relations:
        mine = [idx[key] for key in r.keys if key in idx]
        if mine:
            touching.append((r, mine[0]))
            for j in mine[1:]:
                a, b = find(mine[0]), find(j)
                if a != b:
                    parent[a] = b
    members: dict[int, list[Key]] = defaultdict(list)
    for key, i in idx.items():
        members[find(i)].append(key)
    rels: dict[int, list[Relation]] = defaultdict(list)
    for r, i in touching:
        rels[find(i)].append(r)
    return [(members[root], rels.get(root, [])) for root in members]


class _System:
    """Hidden counts as integer variables: the relations with the shown counts moved to the
    right-hand side, and each hidden count's box."""

    def __init__(self, values, keys: list[Key], rels: list[Relation], hidden, k: int, cap: int):
        from scipy.optimize import LinearConstraint
        from scipy.sparse import csr_array

        self.keys = keys
        self.col = {key: j for j, key in enumerate(keys)}
        self.truth = np.array([values[key] for key in keys], dtype=float)
        self.lo = np.empty(len(keys))
        self.hi = np.empty(len(keys))
        for key, j in self.col.items():
            self.lo[j], self.hi[j] = _box(hidden[key], k, cap)
        rows, cols, data = [], [], []
        b = np.zeros(len(rels))
        for i, r in enumerate(rels):
            for key, c in r.terms:
                if key in self.col:
                    rows.append(i)
                    cols.append(self.col[key])
                    data.append(float(c))
                else:
                    b[i] -= c * values[key]
        self.eq = LinearConstraint(csr_array((data, (rows, cols)), shape=(len(rels), len(keys))), b, b)

    def solve(self, cost=None, lo=None, hi=None):
        """An integer table consistent with what is shown (minimising `cost`), or None."""
        from scipy.optimize import Bounds, milp

        n = len(self.keys)
        res = milp(np.zeros(n) if cost is None else cost, constraints=[self.eq], integrality=np.ones(n),
                   bounds=Bounds(self.lo if lo is None else lo, self.hi if hi is None else hi))
        return np.round(res.x) if res.status == 0 and res.x is not None else None

    def push(self, pending: list[Key], up: bool):
        """A consistent table with every pending count pushed away from its true value (down,
        or up with `up`, where its box allows)."""
        cost = np.zeros(len(self.keys))
        for t in pending:
            j = self.col[t]
            can_up, can_down = self.truth[j] < self.hi[j], self.truth[j] > self.lo[j]
            cost[j] = -1.0 if (up and can_up) or not can_down else 1.0
        return self.solve(cost)

    def other_value(self, t: Key):
        """A consistent table where count t is not its true value, or None: t is recoverable."""
        j = self.col[t]
        for lo_j, hi_j in ((self.truth[j] + 1, self.hi[j]), (self.lo[j], self.truth[j] - 1)):
            if lo_j <= hi_j:
                lo, hi = self.lo.copy(), self.hi.copy()
                lo[j], hi[j] = lo_j, hi_j
                x = self.solve(None, lo, hi)
                if x is not None:
                    return x
        return None


def exposed(values: Mapping[Key, int], relations: list[Relation], hidden: Mapping[Key, str],
            k: int, safe: set[Key] | None = None, prove: bool = True) -> set[Key]:
    """Hidden counts from 1 to k−1 that the shown counts and the relations fix to one value.

    The attacker knows every shown count, the range each hidden state stands for, that counts
    are whole and that none exceeds the largest count of the release (a bound a real attacker
    may not have: assuming it is on the safe side), and combines every relation. Exact: each
    verdict "not recoverable" is an integer table found by HiGHS (scipy.optimize.milp) with
    the count at another value; "recoverable" is HiGHS's proof that none exists.

    `safe`: counts already proven not recoverable (updated). Hiding more counts, or widening
    what a hidden one may be, only adds consistent tables: a count once safe stays safe.
    With prove=False, the counts not shown safe by the joint solves are returned unproven
    (fewer solves; `suppress` protects them further and proves only at the end)."""
    if not hidden:
        return set()
    safe = set() if safe is None else safe
    cap = max(values.values(), default=0)
    groups = [(keys, rels) for keys, rels in _components(relations, hidden)
              if any(1 <= values[key] < k and key not in safe for key in keys)]
    if not groups:
        return set()
    pending = [key for keys, _ in groups for key in keys if 1 <= values[key] < k and key not in safe]

    def learn(system: _System, x) -> None:
        moved = {t for t in pending if t in system.col and x[system.col[t]] != system.truth[system.col[t]]}
        safe.update(moved)
        pending[:] = [t for t in pending if t not in moved]

    # All groups in one problem (they share no variable): push every undecided count away from
    # its true value, down then up, while that settles any; most counts settle here.
    every = _System(values, [key for keys, _ in groups for key in keys],
                    [r for _, rels in groups for r in rels], hidden, k, cap)
    for up in (False, True, False, True):
        before = len(pending)
        x = every.push(pending, up)
        if x is None:
            break
        learn(every, x)
        if not pending or (len(pending) == before and up):
            break
    if not prove:
        return set(pending)
    # What is left: each count on its own, in its own group.
    out: set[Key] = set()
    left = set(pending)
    for keys, rels in groups:
        mine = [t for t in keys if t in left]
        if not mine:
            continue
        system = _System(values, keys, rels, hidden, k, cap)
        for t in mine:
            if t in safe:
                continue
            x = system.other_value(t)
            if x is None:
                out.add(t)
            else:
                learn(system, x)
    return out


def _pinned(c: Key, by_key, hidden) -> bool:
    """Some relation of c has every other count shown: c follows from them, so hiding it
    would protect nothing (the attacker has its value either way)."""
    return any(all(x == c or x not in hidden for x in r.keys) for r in by_key[c])


def _usable(c: Key, by_key, hidden, frozen, values, k: int) -> bool:
    return c not in hidden and c not in frozen and values[c] >= k


def _closure(c: Key, by_key, hidden, frozen, values, k: int, limit: int = 8) -> list[Key] | None:
    """What must be hidden with c so that hiding it protects anything: while a relation fixes a
    count of the set (its other counts all shown), add the smallest count of that relation that
    may be hidden and is not itself fixed for good. None: c cannot be unfixed (within `limit`)."""
    group = [c]
    chosen = set(group)

    def shown(x) -> bool:
        return x not in hidden and x not in chosen

    def dead(x) -> bool:  # a relation of x whose other counts are shown and may not be hidden
        return any(all(y == x or (shown(y) and not _usable(y, by_key, hidden, frozen, values, k)) for y in r.keys)
                   for r in by_key[x])

    if dead(c):
        return None
    i = 0
    while i < len(group):
        x = group[i]
        i += 1
        for r in by_key[x]:
            if any(y != x and not shown(y) for y in r.keys):
                continue
            opts = [y for y in r.keys if y != x and _usable(y, by_key, hidden, frozen, values, k) and not dead(y)]
            if not opts or len(group) >= limit:
                return None
            y = min(opts, key=lambda y: (values[y], repr(y)))
            group.append(y)
            chosen.add(y)
    return group


def _pick(cands: set[Key], values, by_key, hidden, frozen, k: int) -> list[Key]:
    """The complement(s) to hide: a count whose hiding protects something (with the fewest
    extra counts hidden beside it — see `_closure`), then one sharing relations with several
    small counts (it serves them all), then the smallest total hidden."""
    def served(c):
        return sum(1 for r in by_key[c] for x in r.keys if hidden.get(x) == SMALL)

    best, best_cost = None, None
    for c in sorted(cands, key=repr):
        group = _closure(c, by_key, hidden, frozen, values, k)
        if group is None:
            continue
        cost = (len(group), -min(served(c), 2), sum(values[x] for x in group))
        if best_cost is None or cost < best_cost:
            best, best_cost = group, cost
    if best is None:  # no small closure: a larger one, else nothing (the caller withholds)
        groups = [g for g in (_closure(c, by_key, hidden, frozen, values, k, limit=10**6)
                              for c in sorted(cands, key=repr)) if g is not None]
        return min(groups, key=lambda g: (len(g), sum(values[x] for x in g))) if groups else []
    return best


def _two_per_relation(values: Mapping[Key, int], relations: list[Relation], hidden: dict[Key, str],
                      frozen: set[Key], k: int, by_key) -> None:
    """The classic first step of complementary suppression: a small count must not be the only
    hidden count of a relation (it would follow from the others). Give it a partner — the
    smallest count ≥ k beside it that is not fixed by another relation. Only small counts get
    partners here (a complement needs none of its own unless the exact audit says so, which
    keeps complements from cascading through the totals); the audit settles the rest."""
    for r in relations:
        lone = [key for key in r.keys if key in hidden]
        if len(lone) != 1 or hidden[lone[0]] != SMALL:
            continue
        cands = {c for c in r.keys if _usable(c, by_key, hidden, frozen, values, k)}
        for c in _pick(cands, values, by_key, hidden, frozen, k) if cands else []:
            hidden[c] = HIDDEN


def _candidates(key: Key, by_key, hidden, frozen, values, k: int, depth: int = 3) -> set[Key]:
    """Counts ≥ k that may still be hidden to protect `key`: in its relations, else one
    relation further out (through counts already hidden), up to `depth` steps; withholding
    whole relations is the last resort."""
    ring, seen = {key}, {key}
    for _ in range(depth):
        cells = {c for x in ring for r in by_key[x] for c in r.keys} - seen
        cands = {c for c in cells if _usable(c, by_key, hidden, frozen, values, k)}
        if cands:
            return cands
        seen |= cells
        ring = {c for c in cells if c in hidden}
        if not ring:
            break
    return set()


def suppress(values: Mapping[Key, int], relations: Iterable[Relation], k: int = DEFAULT_K,
             fixed: Suppression | None = None, unshown: Iterable[Key] = ()) -> Suppression:
    """Hide every count in 1..k−1 and enough complements that none can be recovered.

    `unshown`: counts that take part in the relations but are never displayed (e.g. the
    cells of a status-change matrix of which only the margins are shown): the attacker
    knows nothing of them but what the relations say (any value ≥ 0). They are not cells
    of the release, so they are not audited themselves: every displayed count is, and a
    change between two displayed counts is a displayed cell of its own (release.py)."""
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
    given = relations
    relations = [*relations, *_nested(relations)]
    hidden = {key: s for key, s in primary(values, k).items() if key not in frozen}
    unshown = set(unshown) | (fixed.unshown if fixed is not None else set())
    if unshown - set(values):
        raise KeyError(f"an unshown count is not given: {next(iter(unshown - set(values)))!r}")
    hidden.update({key: WITHHELD for key in unshown if key not in frozen})
    if fixed is not None:
        hidden.update(fixed.hidden)
    by_key = defaultdict(list)
    for r in relations:
        for key in r.keys:
            by_key[key].append(r)
    # Counts proven safe stay safe while counts are only added to `hidden` (more tables fit).
    # It starts empty even with `fixed`: the new relations may tie the earlier counts tighter.
    safe: set[Key] = set(unshown)
    _two_per_relation(values, relations, hidden, frozen, k, by_key)
    while True:
        bad = sorted(exposed(values, relations, hidden, k, safe, prove=False), key=repr)
        if bad and any(not any(c not in hidden and c not in frozen and values[c] >= k
                               for r in by_key[key] for c in r.keys) for key in bad):
            # Some would have to be withheld (nothing ≥ k left beside them): first prove which
            # are really recoverable, so that no count is withheld for nothing.
            bad = sorted(exposed(values, relations, hidden, k, safe, prove=True), key=repr)
        if not bad:
            break
        added = False
        touched: set[int] = set()  # relations that got a complement in this round
        for key in bad:
            rels = by_key[key]
            if any(id(r) in touched for r in rels):
                continue  # may be protected already; checked again next round
            cands = _candidates(key, by_key, hidden, frozen, values, k)
            picks = _pick(cands, values, by_key, hidden, frozen, k) if cands else []
            if picks:
                for pick in picks:
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
    unprotected = exposed(values, relations, hidden, k, safe)  # what is still exposed at the end
    return Suppression(k, values, given, hidden, unprotected, unshown)
