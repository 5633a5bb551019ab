"""Numpy views of a typed cohort, in evaluation order (rows grouped by disease).

Rows are stably sorted by disease group once, so each disease block is one
contiguous slice: block criteria run only on their slice, and per-disease
counts are slice sums rather than group-bys.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .fields import DISEASES, FIELD_BY_NAME, source_field

OTHER_DISEASE = len(DISEASES)  # a value that is not one of the five indications
MISSING_DISEASE = len(DISEASES) + 1
GROUP_NAMES = (*DISEASES, "other", "missing")


def disease_groups(disease: pd.Series) -> np.ndarray:
    codes = np.full(len(disease), OTHER_DISEASE, np.int8)
    values = disease.astype("string")
    for i, d in enumerate(DISEASES):
        codes[(values == d).fillna(False).to_numpy(bool)] = i
    codes[values.isna().to_numpy(bool)] = MISSING_DISEASE
    return codes


class Columns:
    """Typed cohort columns as numpy arrays in evaluation order, converted on first use."""

    def __init__(self, frame: pd.DataFrame, present: Iterable[str]):
        self.frame = frame
        self.present = frozenset(present)
        groups = disease_groups(frame["disease"]) if "disease" in frame else np.full(len(frame), MISSING_DISEASE, np.int8)
        self.order = np.argsort(groups, kind="stable")  # eval position → input row
        self.group = groups[self.order]
        self._identity = bool((np.diff(self.order) == 1).all()) if len(self.order) > 1 else True
        edges = np.searchsorted(self.group, np.arange(len(GROUP_NAMES) + 1))
        self.bounds = {name: slice(int(edges[i]), int(edges[i + 1])) for i, name in enumerate(GROUP_NAMES)}
        self.bounds["common"] = slice(0, len(frame))
        self._cache: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def has(self, name: str) -> bool:
        return source_field(name) in self.present and name in self.frame

    def _ordered(self, values: np.ndarray) -> np.ndarray:
        return values if self._identity else values[self.order]

    def number(self, name: str) -> np.ndarray:
        key = ("num", name)
        if key not in self._cache:
            s = self.frame[name]
            if s.dtype != np.float64:
                s = pd.to_numeric(s, errors="coerce")
            self._cache[key] = self._ordered(s.to_numpy(np.float64, na_value=np.nan))
        return self._cache[key]

    def kleene(self, name: str) -> np.ndarray:
        """A yes/no column as truth codes: 0 no, 1 empty, 2 yes."""
        key = ("yn", name)
        if key not in self._cache:
            s = self.frame[name].astype("boolean")
            out = s.to_numpy(bool, na_value=False).astype(np.uint8) * np.uint8(2)
            out[s.isna().to_numpy(bool)] = 1
            self._cache[key] = self._ordered(out)
        return self._cache[key]

    def codes(self, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """A category column as codes into its categories (-1 = empty)."""
        key = ("cat", name)
        if key not in self._cache:
            if name == "disease":
                cats = tuple(GROUP_NAMES[:-1])
                c = self.group.astype(np.int16)
                c[c == MISSING_DISEASE] = -1
            else:
                cats = FIELD_BY_NAME[name].categories
                s = self.frame[name]
                if not (isinstance(s.dtype, pd.CategoricalDtype) and tuple(s.cat.categories) == cats):
                    s = pd.Series(pd.Categorical(s.astype("string"), categories=cats))
                c = self._ordered(s.cat.codes.to_numpy(np.int16))
            self._cache[key] = (c, cats)
        return self._cache[key]

    def membership(self, name: str, allowed: Iterable[str]) -> np.ndarray:
        """Truth codes of `value ∈ allowed` (empty → unknown); matched case-insensitively."""
        codes, cats = self.codes(name)
        wanted = {a.lower() for a in allowed}
        lut = np.array([2 if c.lower() in wanted else 0 for c in cats] + [1], np.uint8)
        return lut[codes]  # code -1 picks the trailing UNKNOWN
