"""Exports that are safe to open in a spreadsheet."""

from __future__ import annotations

import io

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Prefix a text cell that a spreadsheet would run as a formula with a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def excel_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns with formula-like cells neutralised; numbers untouched."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype) or isinstance(s.dtype, pd.CategoricalDtype):
            text = s.astype("string")
            mask = text.str.startswith(_FORMULA_START).fillna(False).to_numpy(bool)
            if mask.any():
                out[col] = text.where(~mask, "'" + text)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with BOM so Excel shows non-ASCII text (e.g. Chinese names) correctly."""
    buf = io.StringIO()
    excel_safe(frame).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8-sig")


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
