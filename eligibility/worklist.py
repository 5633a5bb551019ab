"""What to collect by chart review: per patient the fields that decide their status,
and the fields ranked by how many patients they concern.

Target patients: *pending* ones, and those *eligible on assessed criteria* only
(some applicable criterion not assessed). Their *open* criteria are the applicable
units that are unknown or not assessed.

A patient's deciding fields are computed with the engine, not written per criterion:
for each open unit, its fields that are empty for the patient are given candidate
values (yes/no, every category, and for numbers a value on each side of every
threshold the unit compares them with under the scenario), and the unit is
evaluated on every combination with the patient's known values held fixed. A field
*decides* when some pair of combinations that differ only in it gives different
outcomes. The union over open units is the shortest list that settles the status
whatever the values turn out to be: leaving out any field in it leaves some values
for which the patient stays pending. A field *could exclude alone* when one of its
values makes an open unit fail with every other empty field still empty.

A criterion counts as *assessed* only when every column it reads is in the file, so the
template also carries the absent columns of open not-assessed criteria that decide no
one's status (e.g. the RR-A columns of SSC-INC-4 when progression alone can pass it):
ranked last, ``patients`` 0, to be left empty unless known.

A patient without a disease has only the common criteria and DX-1 applicable: the
list asks for the disease first; its block's criteria join the list on the next round.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .catalog import Compare, UlnLimit, Unit, Within
from .columns import GROUP_NAMES, Columns
from .evaluate import ELIGIBLE, FAIL, PENDING, UNKNOWN, Evaluator
from .fields import DERIVED, DISEASES, FIELD_BY_NAME, FIELDS, IMMUNOMODULATORS, Field, source_field
from .rules import RuleEvaluator
from .scenario import Resolved, baseline

MAX_GRID = 60_000  # combinations per (unit, known values); beyond it every empty field counts
WORKLIST_PATIENT_COLUMNS = ("patient_id", "disease", "status", "open_criteria", "collect", "n_collect", "could_exclude")
WORKLIST_FIELD_COLUMNS = (
    "field", "label", "unit", "values", "criteria", "patients", "settles_alone", "could_exclude",
)


@dataclass
class Worklist:
    patients: pd.DataFrame  # one row per target patient, input order
    fields: pd.DataFrame  # one row per field to collect, ranked
    notes: list[str] = field(default_factory=list)

    def field_order(self) -> list[str]:
        return self.fields["field"].tolist()


def allowed_values(f: Field) -> tuple[str, ...]:
    if f.kind == "yesno":
        return ("yes", "no")
    if f.kind == "disease":
        return DISEASES
    if f.kind in ("category", "druglist"):
        return f.categories
    return ()


def _thresholds(unit: Unit, name: str, params: dict, catalog) -> list[float]:
    out: list[float] = []
    for node in catalog.walk(unit.rule):
        if getattr(node, "field", None) != name:
            continue
        if isinstance(node, Compare):
            out.append(node.threshold(params))
        elif isinstance(node, UlnLimit):
            out.append(round(params[node.max_param] * params[node.default_param], 9))
        elif isinstance(node, Within):
            out.append(params[node.param])
    return out


def _candidates(unit: Unit, name: str, params: dict, catalog) -> list:
    """Values that exercise every branch of the unit's rule for one field."""
    f = FIELD_BY_NAME[name]
    if f.kind == "yesno":
        return [True, False]
    if f.kind == "disease":
        return [*DISEASES, "another diagnosis"]
    if f.kind == "category":
        return list(f.categories)
    if f.kind == "druglist":
        return [";".join(IMMUNOMODULATORS[:k]) or "none" for k in range(4)]
    within = any(isinstance(n, Within) and n.field == name for n in catalog.walk(unit.rule))
    ts = sorted(set(_thresholds(unit, name, params, catalog))) or [0.0]
    vals: set[float] = set()
    for t in ts:
        d = max(0.001, 0.05 * abs(t))
        lo, hi = (np.floor(t - d), np.ceil(t + d)) if f.whole else (t - d, t + d)
        vals.update((float(lo), float(hi)))
    out: list = sorted(vals)
    if within:
        out = [np.nan, *(v for v in out if v >= 0)]  # empty = no such event
    return out


def _column(name: str, values: list) -> dict[str, list]:
    """Probe columns for one field (a drug list also fills its derived count)."""
    if FIELD_BY_NAME[name].kind == "druglist":  # canonical text holds recognised names only
        counts = [np.nan if v is None else (0.0 if v == "none" else float(len(v.split(";")))) for v in values]
        return {name: values, **{d: counts for d, src in DERIVED.items() if src == name}}
    return {name: values}


class _Prober:
    """Runs the engine on synthetic rows: per unit, every combination of candidate values for
    the fields a patient lacks. Requests are queued, then evaluated in one batch per unit."""

    def __init__(self, evaluator: Evaluator, params: dict):
        self.catalog = evaluator.catalog
        self.params = params
        self._cache: dict[tuple, tuple[frozenset[str], frozenset[str]]] = {}
        self._queue: dict[str, dict[tuple, tuple[Unit, dict, tuple[str, ...]]]] = {}
        self.capped: set[str] = set()

    def request(self, unit: Unit, known: dict[str, object], missing: tuple[str, ...]) -> tuple:
        key = (unit.id, tuple(sorted((k, repr(v)) for k, v in known.items())), missing)
        if key not in self._cache:
            self._queue.setdefault(unit.id, {})[key] = (unit, known, missing)
        return key

    def result(self, key: tuple) -> tuple[frozenset[str], frozenset[str]]:
        """(deciding fields, fields one value of which fails the unit alone)."""
        return self._cache[key]

    def run(self) -> None:
        for requests in self._queue.values():
            self._batch(list(requests.items()))
        self._queue.clear()

    def _batch(self, requests: list) -> None:
        cols: dict[str, list] = {}
        n = 0
        plans = []
        unit = requests[0][1][0]
        for key, (_u, known, missing) in requests:
            cands = [_candidates(unit, m, self.params, self.catalog) for m in missing]
            size = int(np.prod([len(c) for c in cands])) if cands else 0
            if size > MAX_GRID:
                self.capped.add(unit.id)
                size = 0
            singles = sum(len(c) for c in cands)
            rows = singles + size
            block: dict[str, list] = {k: [v] * rows for k, v in known.items()}
            for i, m in enumerate(missing):
                vals: list = []
                for j, c in enumerate(cands):  # one field set, the others empty
                    vals += list(c) if i == j else [None] * len(c)
                block[m] = vals
            if size:
                for i, m in enumerate(missing):
                    block[m] += [g[i] for g in itertools.product(*cands)]
            for name, vals in block.items():
                cols.setdefault(name, [None] * n).extend(vals)
            n += rows
            for vals in cols.values():
                if len(vals) < n:
                    vals.extend([None] * (n - len(vals)))
            plans.append((key, missing, cands, singles, size, n - rows))
        if n == 0:
            for key, *_ in plans:
                self._cache[key] = (frozenset(), frozenset())
            return
        data: dict[str, list] = {}
        for name, vals in cols.items():
            data.update(_column(name, vals))
        out = self._outcome(unit, data, n)
        for key, missing, cands, singles, size, at in plans:
            alone, pos = set(), at
            for m, c in zip(missing, cands, strict=True):
                if (out[pos:pos + len(c)] == FAIL).any():
                    alone.add(m)
                pos += len(c)
            if not size and cands:  # too many combinations: every empty field counts
                self._cache[key] = (frozenset(missing), frozenset(alone))
                continue
            deciding = set()
            if size:
                grid = out[at + singles:at + singles + size].reshape([len(c) for c in cands]).astype(np.int8)
                deciding = {m for i, m in enumerate(missing) if (np.diff(grid, axis=i) != 0).any()}
            self._cache[key] = (frozenset(deciding), frozenset(alone))

    def _outcome(self, unit: Unit, cols: dict[str, list], n: int) -> np.ndarray:
        frame = pd.DataFrame(cols)
        if "disease" not in frame:
            frame["disease"] = unit.block if unit.block in DISEASES else DISEASES[0]
        present = set(frame.columns) | {source_field(c) for c in frame.columns}
        truth = RuleEvaluator(self.catalog, Columns(frame, present), slice(0, n), self.params)(unit.rule)
        return truth if unit.kind == "incl" else 2 - truth


def _is_empty(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def build_worklist(cohort, scenario: Resolved | None = None, evaluator: Evaluator | None = None) -> Worklist:
    """The worklist for a loaded cohort (see the module docstring)."""
    evaluator = evaluator or Evaluator.for_cohort(cohort)
    scenario = scenario or baseline(evaluator.catalog)
    ev = evaluator.evaluate(scenario)
    catalog, params = ev.catalog, scenario.params
    cols = ev.columns
    k, m = ev.assessed_counts()
    target = (ev.status == PENDING) | ((ev.status == ELIGIBLE) & (k < m))
    not_assessed = set(ev.not_assessed)
    washout = {n.field for u in catalog.units for n in catalog.walk(u.rule) if isinstance(n, Within)}
    unreadable = {name: mask for name, mask in (cols._unreadable or {}).items()}
    frame = cohort.frame
    prober = _Prober(evaluator, params)
    active_pos = {u.id: i for i, u in enumerate(ev.units)}
    display = ev.status_display()

    rows = []
    columns_needed: set[str] = set()
    unit_fields = {u.id: sorted(catalog.fields_of(u.rule, params)) for u in catalog.units}
    for e in np.flatnonzero(target):
        r = int(cols.order[e])
        group = GROUP_NAMES[int(ev.group[e])]
        open_units = [
            u for u in catalog.units
            if u.block in ("common", group) and u.id not in ev.disabled
            and (u.id in not_assessed or ev.outcomes[active_pos[u.id], e] == UNKNOWN)
        ]
        keys = []
        for u in open_units:
            if u.id in not_assessed:  # its absent columns must exist for it to count as assessed
                columns_needed.update(f for f in unit_fields[u.id] if f not in cols.present)
            known: dict[str, object] = {}
            missing: list[str] = []
            for name in unit_fields[u.id]:
                absent = name not in cols.present
                value = None if absent else frame[name].iat[r]
                if name in washout and not absent and _is_empty(value):
                    bad = unreadable.get(name)
                    if bad is None or not bad[r]:
                        known[name] = np.nan  # empty washout = no such event: a known value
                        continue
                if absent or _is_empty(value):
                    missing.append(name)
                else:
                    known[name] = value
            keys.append(prober.request(u, known, tuple(missing)))
        rows.append({
            "row": r, "patient_id": frame["patient_id"].iat[r],
            "disease": frame["disease"].iat[r] if "disease" in frame else None,
            "status": display[r], "open_criteria": [u.id for u in open_units], "keys": keys,
        })
    prober.run()
    for x in rows:
        deciding: set[str] = set()
        alone: set[str] = set()
        for key in x.pop("keys"):
            d_set, a_set = prober.result(key)
            deciding |= d_set
            alone |= a_set
        x["collect"], x["could_exclude"] = deciding, alone & deciding

    ranks = _rank_fields(rows, catalog, params, columns_needed)
    order = {name: i for i, name in enumerate(ranks["field"])}
    patients = pd.DataFrame({
        "patient_id": [x["patient_id"] for x in rows],
        "disease": [x["disease"] for x in rows],
        "status": [x["status"] for x in rows],
        "open_criteria": [";".join(x["open_criteria"]) for x in rows],
        "collect": [";".join(sorted(x["collect"], key=lambda name: order.get(name, len(order)))) for x in rows],
        "n_collect": [len(x["collect"]) for x in rows],
        "could_exclude": [";".join(sorted(x["could_exclude"], key=lambda name: order.get(name, len(order)))) for x in rows],
    }, columns=list(WORKLIST_PATIENT_COLUMNS))
    patients.index = pd.Index([x["row"] + 1 for x in rows], name="row")
    patients = patients.sort_index()
    notes = []
    if prober.capped:
        notes.append(f"too many value combinations to test for {', '.join(sorted(prober.capped))}: "
                     "every empty field of these criteria is listed")
    return Worklist(patients=patients, fields=ranks, notes=notes)


def _rank_fields(rows: list[dict], catalog, params, columns_needed: set[str]) -> pd.DataFrame:
    """Fields ranked by patients needing them; then absent columns that no patient's status
    depends on but that a not-assessed criterion needs in the file to count as assessed."""
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in columns_needed}
    for x in rows:
        for name in x["collect"]:
            c = counts.setdefault(name, [0, 0, 0])
            c[0] += 1
            c[1] += len(x["collect"]) == 1
            c[2] += name in x["could_exclude"]
    fields_pos = {f.name: i for i, f in enumerate(FIELDS)}
    names = sorted(counts, key=lambda n: (n != "disease", -counts[n][0], -counts[n][1], -counts[n][2], fields_pos[n]))
    open_ids = {uid for x in rows for uid in x["open_criteria"]}
    out = []
    for name in names:
        f = FIELD_BY_NAME[name]
        serves = [u.id for u in catalog.units if u.id in open_ids and name in catalog.fields_of(u.rule, params)]
        out.append({
            "field": name, "label": f.label or name, "unit": f.unit, "values": ", ".join(allowed_values(f)),
            "criteria": ";".join(serves), "patients": counts[name][0],
            "settles_alone": counts[name][1], "could_exclude": counts[name][2],
        })
    return pd.DataFrame(out, columns=list(WORKLIST_FIELD_COLUMNS))
