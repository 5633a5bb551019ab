"""Numpy views of a typed cohort, in evaluation order (rows grouped by disease).

Rows are stably sorted by disease group once, so each disease block is one
contiguous slice: block criteria run only on their slice, and per-disease
counts are slice sums rather than group-bys.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .fields import DISEASES, FIELD_BY_NAME, source_field

OTHER_DISEASE = len(DISEASES)  # a value that is not one of the five indications
MISSING_DISEASE = len(DISEASES) + 1
EMPTY_ROW = len(DISEASES) + 2  # a blank spreadsheet row: kept, but not a patient
GROUP_NAMES = (*DISEASES, "other", "missing", "empty")


def _row_indexes(cohort, rows: np.ndarray) -> np.ndarray:
    """Frame positions of 1-based data-row numbers (-1: a row not kept)."""
    n = len(cohort.frame)
    rows = np.asarray(rows, np.int64)
    rows_of = getattr(cohort, "row_numbers", None)
    if rows_of is not None and len(rows_of) == n:
        idx = np.searchsorted(rows_of, rows)
        inside = idx < n
        found = np.zeros(len(rows), bool)
        found[inside] = rows_of[idx[inside]] == rows[inside]
        return np.where(found, idx, -1)
    return np.where((rows > 0) & (rows <= n), rows - 1, -1)


def issue_masks(cohort, kinds: tuple[str, ...]) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """Per issue kind and column, which rows the loader reported with an issue of that kind,
    and which rows it kept as fully empty: one pass over the report (it can hold a row's
    worth of issues for every patient of a large cohort)."""
    n = len(cohort.frame)
    rows_by: dict[str, dict[str, list[int]]] = {k: {} for k in kinds}
    blank: list[int] = []
    for issue in getattr(cohort, "issues", ()):
        kind = issue.kind  # first: most issues are of other kinds (unrecognised drugs, as a rule)
        if (per_column := rows_by.get(kind)) is not None:
            if issue.row is not None and issue.column is not None:
                per_column.setdefault(issue.column, []).append(issue.row)
        elif kind == "empty_row" and issue.row is not None and issue.column is None:
            blank.append(issue.row)
    masks: dict[str, dict[str, np.ndarray]] = {k: {} for k in kinds}
    for kind, rows_by_column in rows_by.items():
        for column, rows in rows_by_column.items():
            idx = _row_indexes(cohort, np.array(rows, np.int64))
            idx = idx[idx >= 0]
            if len(idx):  # a column whose issues all lie on rows not kept gets no mask (as before)
                masks[kind][column] = mask = np.zeros(n, bool)
                mask[idx] = True
    empty = np.zeros(n, bool)
    if blank:
        idx = _row_indexes(cohort, np.array(blank, np.int64))
        empty[idx[idx >= 0]] = True
    return masks, empty


def flagged_cells(cohort, kind: str) -> dict[str, np.ndarray]:
    """Per column, which rows the loader reported with an issue of this kind."""
    return issue_masks(cohort, (kind,))[0][kind]


def unreadable_cells(cohort) -> dict[str, np.ndarray]:
    """Per column, which rows had a cell error (from the loader's report)."""
    return flagged_cells(cohort, "cell_error")


def implausible_cells(cohort) -> dict[str, np.ndarray]:
    """Per column, which rows hold a value outside the field's plausible range (kept as given)."""
    return flagged_cells(cohort, "implausible")


def blank_rows(cohort) -> np.ndarray:
    """Rows the loader kept as fully empty (a blank spreadsheet row between data rows)."""
    return issue_masks(cohort, ())[1]


def _arrow_strings(values: pd.Series):
    """The column's Arrow string data when it holds it (the loader's string columns), else None."""
    data = getattr(values.array, "_pa_array", None)
    if data is None or not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        return None
    return data


def disease_groups(disease: pd.Series, blank: np.ndarray | None = None) -> np.ndarray:
    data = _arrow_strings(disease)
    if data is not None:  # one hash lookup a row instead of a string comparison per disease
        found = pc.index_in(data, value_set=pa.array(DISEASES, data.type))
        codes = found.fill_null(OTHER_DISEASE).to_numpy().astype(np.int8)
        missing = data.is_null().to_numpy(zero_copy_only=False) if data.null_count else None
    else:
        codes = np.full(len(disease), OTHER_DISEASE, np.int8)
        values = disease.astype("string")
        for i, d in enumerate(DISEASES):
            codes[(values == d).fillna(False).to_numpy(bool)] = i
        missing = values.isna().to_numpy(bool)
    if missing is not None:
        codes[missing] = MISSING_DISEASE
        if blank is not None and len(blank) == len(codes):
            codes[blank & missing] = EMPTY_ROW
    return codes


class Columns:
    """Typed cohort columns as numpy arrays in evaluation order, converted on first use.

    `input_order()` gives the same columns over every row in the frame's own order: a column
    the frame holds as float64 is then used in place, without a gathered copy (what the
    evaluator reads for the common block, whose units cover every row)."""

    def __init__(self, frame: pd.DataFrame, present: Iterable[str],
                 unreadable: dict[str, np.ndarray] | None = None,
                 implausible: dict[str, np.ndarray] | None = None,
                 blank: np.ndarray | None = None):
        self.frame = frame
        self.present = frozenset(present)
        self._unreadable = unreadable or {}  # column → bool mask (input order) of cells that could not be read
        self._implausible = implausible or {}  # column → bool mask (input order) of values to verify
        groups = (disease_groups(frame["disease"], blank) if "disease" in frame
                  else np.full(len(frame), MISSING_DISEASE, np.int8))
        self._groups = groups  # input order
        self.order = np.argsort(groups, kind="stable")  # eval position → input row
        self.group = groups[self.order]
        self._identity = bool((np.diff(self.order) == 1).all()) if len(self.order) > 1 else True
        edges = np.searchsorted(self.group, np.arange(len(GROUP_NAMES) + 1))
        self.bounds = {name: slice(int(edges[i]), int(edges[i + 1])) for i, name in enumerate(GROUP_NAMES)}
        self.bounds["common"] = slice(0, len(frame))
        # Patients are every row but the blank ones, which sort last: "All" is one slice too.
        self.n_patients = int(self.bounds["empty"].start)
        self.bounds["patients"] = slice(0, self.n_patients)
        self._cache: dict[tuple, np.ndarray] = {}

    in_input_order = False  # see InputOrder

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def identity(self) -> bool:
        """Evaluation order is input order (the rows come grouped by disease already)."""
        return self._identity

    def input_order(self) -> InputOrder:
        """These columns over every row in input order (see the class docstring). A new view
        each time, not kept: kept, it would make a reference cycle, and a dropped Evaluator's
        columns would wait for the cycle collector instead of being freed at once."""
        return InputOrder(self)

    def has(self, name: str) -> bool:
        return source_field(name) in self.present and name in self.frame

    def _take(self, kind: str, name: str, sl: slice, raw) -> np.ndarray:
        """Rows `sl` (evaluation order) of a column; a block's rows are gathered on their own,
        so a disease-specific field never pays for the whole cohort."""
        full = self._cache.get((kind, name, 0, len(self)))
        if full is not None:
            return full[sl]
        key = (kind, name, sl.start, sl.stop)
        if key not in self._cache:
            values = raw()
            self._cache[key] = values[sl] if self._identity else values[self.order[sl]]
        return self._cache[key]

    def _whole(self, kind: str, name: str, raw) -> np.ndarray:
        """Every row of a column in input order: raw() itself, kept (a view of the frame's own
        buffer when the frame holds the column in that form, else the one converted copy)."""
        key = (kind, name, "input")
        if key not in self._cache:
            self._cache[key] = raw()
        return self._cache[key]

    def _number_raw(self, name: str) -> np.ndarray:
        s = self.frame[name]
        if s.dtype != np.float64:
            s = pd.to_numeric(s, errors="coerce")
        return s.to_numpy(np.float64, na_value=np.nan)

    def number(self, name: str, sl: slice | None = None) -> np.ndarray:
        return self._take("num", name, sl or slice(0, len(self)), lambda: self._number_raw(name))

    def number_at(self, name: str, pos: np.ndarray) -> np.ndarray:
        """number(name)[pos] at evaluation positions `pos`, without gathering the whole column."""
        pos = np.asarray(pos, np.intp)
        full = self._cache.get(("num", name, 0, len(self)))
        if full is not None:
            return full[pos]
        return self._whole("num", name, lambda: self._number_raw(name))[self.order[pos]]

    def unreadable(self, name: str, sl: slice) -> np.ndarray | None:
        """Cells of a column that held a value the loader could not read (None: none)."""
        mask = self._unreadable.get(name)
        if mask is None:
            return None
        return self._take("bad", name, sl, lambda: mask)

    def implausible(self, name: str, sl: slice) -> np.ndarray | None:
        """Cells of a column outside the field's plausible range (None: none)."""
        mask = self._implausible.get(name)
        if mask is None or not mask.any():
            return None
        return self._take("odd", name, sl, lambda: mask)

    def _kleene_raw(self, name: str) -> np.ndarray:
        arr = self.frame[name].array
        if not isinstance(arr, pd.arrays.BooleanArray):
            arr = pd.array(arr, dtype="boolean")
        values, mask = arr._data.view(np.uint8), arr._mask.view(np.uint8)  # its own buffers
        # Branch-free: (value and not masked) × 2, or 1 where masked. A masked assignment
        # (out[mask] = 1) costs ~10× as much on a column half empty (branch mispredictions).
        # Bool bytes are 0/1 (numpy's, as pandas builds them); under the mask the value may be
        # either, which `value > mask` ignores. (Logical operations that would also tolerate
        # other bytes take twice as long: 0.7 against 0.34 ms a million cells.)
        out = np.greater(values, mask).view(np.uint8)
        out <<= 1
        out |= mask
        return out

    def kleene(self, name: str, sl: slice | None = None) -> np.ndarray:
        """A yes/no column as truth codes: 0 no, 1 empty, 2 yes."""
        return self._take("yn", name, sl or slice(0, len(self)), lambda: self._kleene_raw(name))

    def _codes_raw(self, name: str) -> np.ndarray:
        cats = FIELD_BY_NAME[name].categories
        s = self.frame[name]
        if not (isinstance(s.dtype, pd.CategoricalDtype) and tuple(s.cat.categories) == cats):
            s = pd.Series(pd.Categorical(s.astype("string"), categories=cats))
        return s.cat.codes.to_numpy(np.int16)

    @staticmethod
    def _disease_codes(groups: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        c = groups.astype(np.int16)
        c[c >= MISSING_DISEASE] = -1
        return c, tuple(GROUP_NAMES[: OTHER_DISEASE + 1])

    def codes(self, name: str, sl: slice | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
        """A category column as codes into its categories (-1 = empty)."""
        sl = sl or slice(0, len(self))
        if name == "disease":
            return self._disease_codes(self.group[sl])
        return self._take("cat", name, sl, lambda: self._codes_raw(name)), FIELD_BY_NAME[name].categories

    def membership(self, name: str, allowed: Iterable[str], sl: slice | None = None) -> np.ndarray:
        """Truth codes of `value ∈ allowed` (empty → unknown); matched case-insensitively."""
        return _membership(name, allowed, *self.codes(name, sl))


def _membership(name: str, allowed: Iterable[str], codes: np.ndarray, cats: tuple[str, ...]) -> np.ndarray:
    wanted = {a.lower() for a in allowed}
    # A closed category set settles even an empty cell: nothing is in {}, everything in all.
    if not wanted & {c.lower() for c in cats}:
        return np.zeros(len(codes), np.uint8)
    if name != "disease" and wanted >= {c.lower() for c in cats}:
        return np.full(len(codes), 2, np.uint8)
    lut = np.array([2 if c.lower() in wanted else 0 for c in cats] + [1], np.uint8)
    return lut[codes]  # code -1 picks the trailing UNKNOWN


class InputOrder:
    """A `Columns` over every row in input order, read like it (the slice given to each method
    must be every row): no column is gathered, and one the frame holds as float64 is its own
    buffer, so the common block's units cost no copy. Results come in input order; the
    evaluator puts a unit's outcomes in evaluation order (`Columns.order`), one byte a row."""

    in_input_order = True

    def __init__(self, cols: Columns):
        self.cols = cols
        self.frame = cols.frame
        self.present = cols.present

    def __len__(self) -> int:
        return len(self.cols)

    def has(self, name: str) -> bool:
        return self.cols.has(name)

    def _check(self, sl: slice | None) -> None:
        if sl is not None and (sl.start, sl.stop) != (0, len(self.cols)):
            raise ValueError("input-order columns are read whole")

    def number(self, name: str, sl: slice | None = None) -> np.ndarray:
        self._check(sl)
        return self.cols._whole("num", name, lambda: self.cols._number_raw(name))

    def unreadable(self, name: str, sl: slice) -> np.ndarray | None:
        self._check(sl)
        return self.cols._unreadable.get(name)

    def implausible(self, name: str, sl: slice) -> np.ndarray | None:
        self._check(sl)
        mask = self.cols._implausible.get(name)
        return None if mask is None or not mask.any() else mask

    def kleene(self, name: str, sl: slice | None = None) -> np.ndarray:
        # Not kept: a byte a row, rebuilt from the frame's two buffers in one pass when a unit
        # reading it is computed again (the unit's outcome row is kept, in evaluation order).
        self._check(sl)
        return self.cols._kleene_raw(name)

    def codes(self, name: str, sl: slice | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
        self._check(sl)
        if name == "disease":
            return self.cols._disease_codes(self.cols._groups)
        return self.cols._whole("cat", name, lambda: self.cols._codes_raw(name)), FIELD_BY_NAME[name].categories

    def membership(self, name: str, allowed: Iterable[str], sl: slice | None = None) -> np.ndarray:
        return _membership(name, allowed, *self.codes(name, sl))
