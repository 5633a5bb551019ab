"""One entry point for shown tables: an aggregate table plus its additive relations in, the
displayed table (counts as text, small ones as "<k", complements as "*") out.

`display_table` builds the cells (row label, column) and the relations a reader can use —
each row's total column = the sum of its part columns, a total row = the sum of the other
rows, any extra sums — suppresses them together (suppression.py), and renders every count
and every value derived from counts (percentages, differences) as text. A derived value is
shown only when all the counts it is computed from are shown.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from .suppression import DEFAULT_K, Relation, Suppression, suppress, total_of


@dataclass(frozen=True)
class Ratio:
    """A percentage column: 100 × numerator / denominator (columns of the same row, or a
    fixed (row, column) cell for the denominator)."""

    num: str
    den: str | tuple


@dataclass(frozen=True)
class Delta:
    """A difference column: after − before (columns of the same row), signed."""

    after: str
    before: str


def display_table(frame: pd.DataFrame, counts: Sequence[str], k: int = DEFAULT_K, *,
                  row_total: tuple[str, Sequence[str]] | None = None,
                  total_row: tuple[object, Sequence[object]] | None = None,
                  derived: Mapping[str, Ratio | Delta] | None = None,
                  relations: Sequence[Relation] = (),
                  fixed: Suppression | None = None) -> tuple[pd.DataFrame, Suppression]:
    """The displayed table and the suppression behind it.

    frame: one row per index label; `counts`: its count columns. row_total = (total column,
    part columns): in every row, total = Σ parts. total_row = (total row label, part row
    labels): in every count column, total row = Σ part rows. relations: more sums over cell
    keys (row label, column). derived: columns computed from counts (replaced by text).
    fixed: an earlier release these cells extend (its states are kept)."""
    if not frame.index.is_unique:
        raise ValueError("display_table needs a unique row index")
    values: dict[Hashable, int] = {}
    for row in frame.index:
        for col in counts:
            v = frame.at[row, col]
            if pd.isna(v):
                raise ValueError(f"row {row!r}, column {col!r}: a count is missing")
            values[(row, col)] = int(v)
    rels: list[Relation] = list(relations)
    if row_total is not None:
        total, parts = row_total
        rels += [total_of((row, total), [(row, p) for p in parts]) for row in frame.index]
    if total_row is not None:
        total_label, part_rows = total_row
        rels += [total_of((total_label, col), [(p, col) for p in part_rows]) for col in counts]
    sup = suppress(values, rels, k, fixed=fixed)
    out = frame.copy().astype({c: object for c in frame.columns})
    for col in counts:
        out[col] = [sup.text((row, col)) for row in frame.index]
    for col, spec in (derived or {}).items():
        texts = []
        for row in frame.index:
            if isinstance(spec, Ratio):
                den = spec.den if isinstance(spec.den, tuple) else (row, spec.den)
                texts.append(sup.derived([(row, spec.num), den],
                                         lambda a, b: 100.0 * a / b if b else float("nan"), "{:.1f}%"))
            else:
                texts.append(sup.derived([(row, spec.before), (row, spec.after)], lambda a, b: b - a, "{:+,}"))
        out[col] = texts
    return out, sup
