"""A text column as its distinct values and one code per row.

A million cells of a yes/no column hold a handful of spellings, a date column a few
thousand dates: the loader parses each distinct value once and spreads the result
over the rows by code. `values` are already cleaned (stripped, never empty);
a blank cell (missing, or only whitespace) has code -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BLANK = -1


@dataclass(frozen=True)
class Distinct:
    values: pa.Array  # string, cleaned and non-empty (a value may repeat after cleaning)
    codes: np.ndarray  # int32 per row: position in `values`, BLANK for a blank cell

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def nonblank(self) -> np.ndarray:
        return self.codes >= 0

    def expand(self, per_value: np.ndarray, blank) -> np.ndarray:
        """Per-row values from one per distinct value (`blank` in blank cells)."""
        lut = np.empty(len(per_value) + 1, dtype=per_value.dtype)
        lut[:-1] = per_value
        lut[-1] = blank
        return lut[self.codes]  # code -1 picks the trailing `blank`

    def expand_arrow(self, per_value: pa.Array) -> pa.Array:
        """Per-row Arrow values from one per distinct value (null in blank cells)."""
        return per_value.take(pa.array(self.codes, mask=self.codes < 0))

    def text(self) -> pa.Array:
        """The cleaned text of every row (null = blank)."""
        return self.expand_arrow(self.values)


def _indices(chunked: pa.ChunkedArray) -> np.ndarray:
    """Dictionary indices of every row as one int32 array (-1 where the cell is null)."""
    parts = [(c.indices if c.null_count == 0 else pc.fill_null(c.indices.cast(pa.int32()), BLANK))
             .to_numpy(zero_copy_only=False).astype(np.int32, copy=False) for c in chunked.chunks]
    if not parts:
        return np.zeros(0, dtype=np.int32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def from_dictionary(indices: np.ndarray, cleaned: pa.Array) -> Distinct:
    """From dictionary `indices` (-1 = null cell) and the cleaned text of each dictionary
    value (null or "" = blank)."""
    blank = pc.fill_null(pc.equal(cleaned, ""), True).to_numpy(zero_copy_only=False)
    if isinstance(cleaned, pa.ChunkedArray):
        cleaned = cleaned.combine_chunks()
    if not blank.any():  # the codes are the indices as they are
        return Distinct(cleaned.cast(pa.string()), indices)
    keep = ~blank
    lut = np.full(len(cleaned) + 1, BLANK, dtype=np.int32)  # the extra slot maps -1 to -1
    lut[:-1][keep] = np.arange(int(keep.sum()), dtype=np.int32)
    return Distinct(cleaned.filter(pa.array(keep)).cast(pa.string()), lut[indices])


def _encoded(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """`col` as one dictionary shared by all chunks."""
    if isinstance(col, pa.Array):
        col = pa.chunked_array([col])
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    return col.unify_dictionaries() if col.num_chunks > 1 else col


def _dictionary(col: pa.ChunkedArray) -> pa.Array:
    if col.num_chunks:
        return col.chunk(0).dictionary
    return pa.array([], type=col.type.value_type)


def from_strings(col: pa.ChunkedArray | pa.Array) -> Distinct:
    """From Arrow text (string, large_string or a dictionary of them); cells are stripped
    of surrounding whitespace."""
    enc = _encoded(col)
    return from_dictionary(_indices(enc), pc.utf8_trim_whitespace(_dictionary(enc)))


def from_text(text: pa.Array) -> Distinct:
    """From text that is already clean (stripped; null or "" = blank)."""
    enc = _encoded(text)
    return from_dictionary(_indices(enc), _dictionary(enc))
