"""Screen-failure attribution: all reasons, first reason, sole reason (impact),
attrition, failure combinations and the eligible range, per disease and overall."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import GROUP_NAMES
from .evaluate import ELIGIBLE, FAIL, INELIGIBLE, PENDING, UNKNOWN, Evaluation, clip, on_row_halves
from .fields import DISEASES
from .mixing import MIX64

ALL = "All"


EMPTY_ROWS = "empty"  # blank spreadsheet rows: reported apart, never counted as patients


def group_slices(ev: Evaluation, include_empty: bool = False) -> dict[str, slice]:
    """The disease groups (five indications, then 'other' and 'missing' if present) and All
    (every patient; blank rows are not patients and are left out of every group)."""
    out = {}
    for g in GROUP_NAMES:
        if g == EMPTY_ROWS:
            continue
        sl = ev.bounds[g]
        if include_empty or g in DISEASES or sl.stop > sl.start:
            out[g] = sl
    out[ALL] = slice(0, ev.n_patients)
    return out


def group_slice(ev: Evaluation, group: str | None) -> slice:
    return slice(0, ev.n_patients) if group in (None, ALL) else ev.bounds[group]


def status_counts(ev: Evaluation) -> pd.DataFrame:
    """Per group: screened, eligible, pending, ineligible, the eligible range and percentages.
    (Memoised per evaluation: every page draws it, the What-if page for two evaluations.)"""
    if "status_counts" not in ev._memo:
        ev._memo["status_counts"] = _status_counts(ev)
    df = ev._memo["status_counts"].copy()
    df.attrs = dict(ev._memo["status_counts"].attrs)
    return df


def _status_counts(ev: Evaluation) -> pd.DataFrame:
    rows = []
    masks = [ev.status == code for code in (INELIGIBLE, PENDING, ELIGIBLE)]  # once, counted per group
    for g, sl in group_slices(ev).items():
        c = [np.count_nonzero(m[sl]) for m in masks]
        n = int(sl.stop - sl.start)
        rows.append({
            "group": g, "screened": n, "eligible": int(c[ELIGIBLE]), "pending": int(c[PENDING]),
            "ineligible": int(c[INELIGIBLE]),
            "eligible_low": int(c[ELIGIBLE]), "eligible_high": int(c[ELIGIBLE] + c[PENDING]),
        })
    df = pd.DataFrame(rows).set_index("group")
    with np.errstate(invalid="ignore", divide="ignore"):
        for col in ("eligible", "pending", "ineligible"):
            df[f"{col}_pct"] = 100.0 * df[col] / df["screened"].where(df["screened"] > 0)
    df.attrs["empty_rows"] = ev.empty_rows
    return df


def _cause_index(ev: Evaluation) -> tuple[np.ndarray, list[str]]:
    names: list[str] = []
    idx = []
    for u in ev.units:
        c = ev.catalog.cause_of[u.id]
        if c not in names:
            names.append(c)
        idx.append(names.index(c))
    return np.array(idx, np.int32), names


def _fail_rows(ev: Evaluation, members, within: tuple[int, int] | None = None
               ) -> tuple[int, int, np.ndarray | None]:
    """(lo, hi, any_fail): whether any of the units `members` fails, on rows lo:hi (the span of
    their blocks, inside rows `within` if given; no member applies outside it). From the units'
    rows: no (units × patients) matrix is built (None: no member applies to a row there)."""
    rows = ev.rows()
    slices = [ev.bounds[ev.units[m].block] for m in members]
    lo, hi = min(x.start for x in slices), max(x.stop for x in slices)
    if within is not None:
        lo, hi = max(lo, within[0]), min(hi, within[1])
    if hi <= lo:
        return lo, hi, None
    if len(members) == 1:
        off = slices[0].start
        return lo, hi, rows[members[0]][lo - off:hi - off] == FAIL
    any_fail = np.zeros(hi - lo, bool)
    for m, sl in zip(members, slices, strict=True):
        a, b = clip(sl, lo, hi)
        if b > a:
            seg = any_fail[a - lo:b - lo]
            seg |= rows[m][a - sl.start:b - sl.start] == FAIL
    return lo, hi, any_fail


def sole_cause(ev: Evaluation) -> np.ndarray:
    """Per patient: index into the cause list of their only failing cause, -1 if not exactly one."""
    if "sole" in ev._memo:
        return ev._memo["sole"]
    cause_idx, names = _cause_index(ev)
    # Failing causes per patient, cause by cause on its units' block slices, from the units'
    # rows (a column sum of the (units × patients) bool matrix casts and strides through every
    # cell, and building that matrix costs 85 bytes a patient).
    if not len(cause_idx):
        sole = np.full(ev.n, -1, np.int32)
        ev._memo["sole"] = sole
        return sole
    first = ev.first_failed_index()
    members = [np.flatnonzero(cause_idx == k) for k in range(len(names))]
    sole = np.empty(ev.n, np.int32)

    def fill(lo: int, hi: int) -> None:
        n_causes = np.zeros(hi - lo, np.uint8)
        for units in members:
            a, b, any_fail = _fail_rows(ev, units, (lo, hi))
            if any_fail is not None:
                seg = n_causes[a - lo:b - lo]
                seg += any_fail.view(np.uint8)
        f = first[lo:hi]
        sole[lo:hi] = np.where((n_causes == 1) & (f >= 0), cause_idx[np.maximum(f, 0)], -1)

    on_row_halves(fill, ev.n)
    ev._memo["sole"] = sole
    return sole


def first_counts(ev: Evaluation, sl: slice) -> np.ndarray:
    """Per active unit, the patients in `sl` whose first failing unit it is (memoised: the
    criterion table and the attrition both read it)."""
    key = ("first_counts", sl.start, sl.stop)
    if key not in ev._memo:
        first = ev.first_failed_index()[sl]
        # Shifted by one, so -1 (none) is counted in bin 0: no masked selection of the rows.
        counts = np.bincount(first.astype(np.intp) + 1, minlength=len(ev.units) + 1)[1:]
        counts.flags.writeable = False  # shared by every table of this evaluation
        ev._memo[key] = counts
    return ev._memo[key]


def sole_counts(ev: Evaluation, sl: slice) -> np.ndarray:
    """Per cause, the patients in `sl` for whom it is the only failing cause (memoised)."""
    key = ("sole_counts", sl.start, sl.stop)
    if key not in ev._memo:
        counts = np.bincount(sole_cause(ev)[sl] + 1, minlength=len(_cause_index(ev)[1]) + 1)[1:]
        counts.flags.writeable = False  # shared by every table of this evaluation
        ev._memo[key] = counts
    return ev._memo[key]


def _row_counts(ev: Evaluation, codes: tuple[int, ...], sl: slice) -> list[np.ndarray]:
    """Per code, per unit: patients in `sl` (and the unit's own block) whose outcome is that
    code. From the units' rows, each row's segment read once for every code (no (units ×
    patients) matrix is built for a count; one already built is read instead)."""
    memo = {FAIL: "failed", UNKNOWN: "unknown"}
    matrices = [ev._memo.get(memo[c]) if c in memo else None for c in codes]
    rows, slices = ev.rows(), [ev.bounds[u.block] for u in ev.units]
    halves: list[np.ndarray] = []

    def count(lo: int, hi: int) -> None:
        out = np.zeros((len(codes), len(rows)), np.int64)
        for i, (row, b) in enumerate(zip(rows, slices, strict=True)):
            a, z = clip(b, max(lo, sl.start), min(hi, sl.stop))
            if z > a:
                seg = row[a - b.start:z - b.start]
                for k, (code, matrix) in enumerate(zip(codes, matrices, strict=True)):
                    out[k, i] = np.count_nonzero(matrix[i, a:z] if matrix is not None else seg == code)
        halves.append(out)

    on_row_halves(count, ev.n)
    total = np.sum(halves, axis=0) if halves else np.zeros((len(codes), len(rows)), np.int64)
    return list(total)


def criterion_table(ev: Evaluation, group: str | None = None) -> pd.DataFrame:
    """One row per active unit in catalog order: all-reasons, first-reason, sole-reason
    (impact of its cause) and unknown counts, with percentages of the patients it applies to."""
    sl = group_slice(ev, group)
    n = sl.stop - sl.start
    cause_idx, names = _cause_index(ev)
    firsts, soles = first_counts(ev, sl), sole_counts(ev, sl)
    failed, unknown = _row_counts(ev, (FAIL, UNKNOWN), sl)
    applicable = np.array([
        n if x.block == "common" else (min(sl.stop, ev.bounds[x.block].stop) - max(sl.start, ev.bounds[x.block].start))
        for x in ev.units
    ])
    df = pd.DataFrame({
        "id": [x.id for x in ev.units],
        "criterion": [x.criterion for x in ev.units],
        "kind": ["inclusion" if x.kind == "incl" else "exclusion" for x in ev.units],
        "block": [x.block for x in ev.units],
        "text": [x.text for x in ev.units],
        "applicable": np.maximum(applicable, 0),
        "all_reasons": failed if len(ev.units) else [],
        "first_reason": firsts,
        "sole_reason": soles[cause_idx] if len(ev.units) else [],
        "cause": [names[i] for i in cause_idx],
        "unknown": unknown if len(ev.units) else [],
    })
    # Percentages are of the patients the criterion applies to (a disease block's own patients).
    denom = df["applicable"].where(df["applicable"] > 0).astype(float)
    for col in ("all_reasons", "first_reason", "sole_reason", "unknown"):
        df[f"{col}_pct"] = 100.0 * df[col] / denom
    return df


def cause_impact(ev: Evaluation, group: str | None = None) -> pd.DataFrame:
    """Patients whose only failing cause is this one (relaxing it alone would admit them)."""
    sl = group_slice(ev, group)
    _, names = _cause_index(ev)
    return pd.DataFrame({"cause": names, "impact": sole_counts(ev, sl)}).sort_values("impact", ascending=False, kind="stable")


def attrition(ev: Evaluation, group: str | None = None) -> pd.DataFrame:
    """CONSORT-order attrition by criterion: each step removes the patients whose first
    failing criterion it is. The last row is what remains (eligible + pending)."""
    sl = group_slice(ev, group)
    unit_crit = [u.criterion for u in ev.units]
    crit_order = list(dict.fromkeys(unit_crit))
    crit_of_unit = np.array([crit_order.index(c) for c in unit_crit], np.int32)
    removed = np.zeros(len(crit_order), np.int64)
    np.add.at(removed, crit_of_unit, first_counts(ev, sl))
    blocks = {u.criterion: u.block for u in ev.units}
    n = sl.stop - sl.start
    rows, remaining = [], n
    for c, r in zip(crit_order, removed, strict=True):
        if group not in (None, ALL) and blocks[c] not in ("common", group):
            continue
        remaining -= int(r)
        rows.append({"criterion": c, "block": blocks[c], "excluded": int(r), "remaining": remaining,
                     "text": ev.catalog.criterion_by_id[c].text})
    df = pd.DataFrame(rows, columns=["criterion", "block", "excluded", "remaining", "text"])
    df.attrs["screened"] = n
    status = np.bincount(ev.status[sl], minlength=3)
    df.attrs["eligible"], df.attrs["pending"] = int(status[ELIGIBLE]), int(status[PENDING])
    return df


def _criteria(ev: Evaluation) -> tuple[list[str], list[np.ndarray]]:
    """Criterion IDs in catalog order and, per criterion, the indexes of its units."""
    crit = [u.criterion for u in ev.units]
    names = list(dict.fromkeys(crit))
    members = [np.flatnonzero(np.array(crit, dtype=object) == name) for name in names]
    return names, members


def criterion_failures(ev: Evaluation) -> tuple[np.ndarray, list[str]]:
    """(criteria × patients) bool matrix: the criterion fails (any of its parts fails)."""
    if "crit_fail" not in ev._memo:
        names, members = _criteria(ev)
        m = np.zeros((len(names), ev.n), bool)
        for q, units in enumerate(members):
            lo, hi, any_fail = _fail_rows(ev, units)
            if any_fail is not None:
                m[q, lo:hi] = any_fail
        ev._memo["crit_fail"] = (m, names)
    return ev._memo["crit_fail"]


def row_keys(matrix: np.ndarray) -> np.ndarray:
    """One hashable key per column of a bool (k × n) matrix: a packed bit pattern."""
    matrix = np.asarray(matrix, bool)
    k, n = matrix.shape
    return _pack_keys(n, k, lambda q: (0, n, matrix[q]))


def _pack_keys(n: int, k: int, row) -> np.ndarray:
    """row_keys of a (k × n) bool matrix given row by row: `row(q)` is (lo, hi, bools on
    lo:hi) with False elsewhere (or bools None: all False)."""
    nbytes = max(1, -(-k // 8))
    width = 8 if nbytes <= 8 else -(-nbytes // 8) * 8
    buf = np.zeros((n, width), np.uint8)
    # Byte by byte from the rows (np.packbits along axis 0 strides through memory, 5× slower).
    byte = np.empty(n, np.uint8)
    for b in range(0, k, 8):
        byte[:] = 0
        for j in range(min(8, k - b)):
            lo, hi, bits = row(b + j)
            if bits is not None:
                seg = byte[lo:hi]
                seg |= bits.view(np.uint8) << np.uint8(j)
        buf[:, b // 8] = byte
    if width == 8:
        return buf.view(np.uint64).ravel()
    return buf.view(np.dtype((np.void, width))).ravel()


def criterion_keys(ev: Evaluation) -> np.ndarray:
    """row_keys of the criterion failures of every patient (memoised per evaluation); from the
    units' rows, criterion by criterion, without the (criteria × patients) matrix."""
    if "crit_keys" not in ev._memo:
        if "crit_fail" in ev._memo:
            ev._memo["crit_keys"] = row_keys(ev._memo["crit_fail"][0])
        else:
            names, members = _criteria(ev)
            parts: dict[tuple[int, int], np.ndarray] = {}
            ev.rows()  # built once here, not by both halves at once

            def pack(lo: int, hi: int) -> None:
                def row(q: int):
                    a, b, bits = _fail_rows(ev, members[q], (lo, hi))
                    return a - lo, b - lo, bits
                parts[(lo, hi)] = _pack_keys(hi - lo, len(names), row)

            on_row_halves(pack, ev.n)
            ev._memo["crit_keys"] = np.concatenate([parts[k] for k in sorted(parts)])
    return ev._memo["crit_keys"]


def decode_key(key, names: list[str]) -> list[str]:
    raw = np.frombuffer(np.asarray(key).tobytes(), np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[: len(names)]
    return [names[i] for i in np.flatnonzero(bits)]


_BUCKET_BITS = 17


def _key_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(keys, return_counts=True). 64-bit keys are counted by bucket (a hash of the
    key) in a few array passes, each bucket's key checked: the keys that lost their bucket to
    another key are few and are counted apart (2× faster than pd.factorize: 10 against 21 ms
    for the 760k ineligible patients of 1M, 22k distinct keys)."""
    if keys.dtype != np.uint64:
        return np.unique(keys, return_counts=True)
    if len(keys) < 1 << _BUCKET_BITS:
        codes, uniq = pd.factorize(keys, sort=False)
        counts = np.bincount(codes, minlength=len(uniq))
        order = np.argsort(uniq)
        return uniq[order], counts[order]
    size = 1 << _BUCKET_BITS
    bucket = (keys * MIX64[0]) >> np.uint64(64 - _BUCKET_BITS)
    holder = np.empty(size, np.uint64)
    holder[bucket] = keys  # one of each bucket's keys (the last written)
    lost = holder[bucket] != keys
    counts = np.bincount(bucket, minlength=size)
    if lost.any():
        counts -= np.bincount(bucket[lost], minlength=size)
        other, other_counts = np.unique(keys[lost], return_counts=True)
    else:
        other, other_counts = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    held = np.flatnonzero(counts)
    uniq = np.concatenate([holder[held], other])
    order = np.argsort(uniq)
    return uniq[order], np.concatenate([counts[held], other_counts])[order]


def combinations(ev: Evaluation, group: str | None = None, top: int = 15) -> pd.DataFrame:
    """The most common sets of failing criteria among ineligible patients."""
    sl = group_slice(ev, group)
    names = _criteria(ev)[0]
    inel = np.flatnonzero(ev.status[sl] == INELIGIBLE) + sl.start
    if len(inel) == 0 or not names:
        return pd.DataFrame(columns=["criteria", "size", "count", "pct_of_ineligible"])
    keys = criterion_keys(ev)[inel]
    uniq, counts = _key_counts(keys)
    order = np.argsort(-counts, kind="stable")[:top]
    rows = []
    for i in order:
        crits = decode_key(uniq[i], names)
        rows.append({"criteria": tuple(crits), "size": len(crits), "count": int(counts[i]),
                     "pct_of_ineligible": 100.0 * counts[i] / len(inel)})
    return pd.DataFrame(rows)


def criterion_totals(ev: Evaluation, group: str | None = None) -> pd.DataFrame:
    """Failures per criterion (any part) among the group, for UpSet set sizes."""
    sl = group_slice(ev, group)
    names, members = _criteria(ev)
    failed = np.zeros(len(names), np.int64)
    for q, units in enumerate(members):
        lo, hi, any_fail = _fail_rows(ev, units)
        a, b = max(lo, sl.start), min(hi, sl.stop)
        if any_fail is not None and b > a:
            failed[q] = np.count_nonzero(any_fail[a - lo:b - lo])
    return pd.DataFrame({"criterion": names, "failed": failed})
