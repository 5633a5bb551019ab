"""Spelling tables and vectorised cell parsers for the cohort loader.

The tables are plain data: keys are lower-case spellings (after stripping and
collapsing inner whitespace), values the canonical contract spelling. The
parsers take a pyarrow string array (already stripped, null = empty cell) and
return numpy/pandas values plus a boolean mask of cells that could not be read.
Nothing here loops over rows in Python except for the (few) offending cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eligibility.distinct import Distinct
from eligibility.fields import DISEASE_SYNONYMS as REGISTRY_SYNONYMS
from eligibility.fields import DISEASES, IMMUNOMODULATORS

# ---------------------------------------------------------------------------
# Tables (data, not code)
# ---------------------------------------------------------------------------

YES_SPELLINGS: tuple[str, ...] = ("true", "yes", "y", "1", "1.0")
NO_SPELLINGS: tuple[str, ...] = ("false", "no", "n", "0", "0.0")

# disease spellings: the registry's (protocol/diseases.yaml), re-exported for the loaders
DISEASE_SYNONYMS: dict[str, str] = REGISTRY_SYNONYMS

SEX_SYNONYMS: dict[str, str] = {
    "f": "F",
    "m": "M",
    "female": "F",
    "male": "M",
    "woman": "F",
    "man": "M",
    "女": "F",
    "男": "M",
}

# Extra spellings per category column (canonical categories always match case-insensitively).
CATEGORY_SYNONYMS: dict[str, dict[str, str]] = {
    "sex": SEX_SYNONYMS,
}

DRUG_SYNONYMS: dict[str, str] = {
    # antimalarial
    "antimalarial": "antimalarial",
    "antimalarials": "antimalarial",
    "hydroxychloroquine": "antimalarial",
    "hydroxychloroquine sulfate": "antimalarial",
    "hcq": "antimalarial",
    "plaquenil": "antimalarial",
    "chloroquine": "antimalarial",
    "羟氯喹": "antimalarial",
    "硫酸羟氯喹": "antimalarial",
    "氯喹": "antimalarial",
    # azathioprine
    "azathioprine": "azathioprine",
    "aza": "azathioprine",
    "imuran": "azathioprine",
    "硫唑嘌呤": "azathioprine",
    # mycophenolate
    "mycophenolate": "mycophenolate",
    "mycophenolate mofetil": "mycophenolate",
    "mycophenolic acid": "mycophenolate",
    "mycophenolate sodium": "mycophenolate",
    "mmf": "mycophenolate",
    "mpa": "mycophenolate",
    "cellcept": "mycophenolate",
    "myfortic": "mycophenolate",
    "吗替麦考酚酯": "mycophenolate",
    "麦考酚酯": "mycophenolate",
    "霉酚酸酯": "mycophenolate",
    "麦考酚酸": "mycophenolate",
    "骁悉": "mycophenolate",
    # methotrexate
    "methotrexate": "methotrexate",
    "mtx": "methotrexate",
    "甲氨蝶呤": "methotrexate",
    # leflunomide
    "leflunomide": "leflunomide",
    "lef": "leflunomide",
    "arava": "leflunomide",
    "来氟米特": "leflunomide",
    # tacrolimus
    "tacrolimus": "tacrolimus",
    "fk506": "tacrolimus",
    "fk-506": "tacrolimus",
    "prograf": "tacrolimus",
    "他克莫司": "tacrolimus",
    # cyclosporine
    "cyclosporine": "cyclosporine",
    "cyclosporine a": "cyclosporine",
    "cyclosporin": "cyclosporine",
    "cyclosporin a": "cyclosporine",
    "ciclosporin": "cyclosporine",
    "ciclosporine": "cyclosporine",
    "csa": "cyclosporine",
    "neoral": "cyclosporine",
    "sandimmune": "cyclosporine",
    "环孢素": "cyclosporine",
    "环孢素a": "cyclosporine",
    # rituximab
    "rituximab": "rituximab",
    "rtx": "rituximab",
    "mabthera": "rituximab",
    "rituxan": "rituximab",
    "利妥昔单抗": "rituximab",
    "美罗华": "rituximab",
    # belimumab
    "belimumab": "belimumab",
    "benlysta": "belimumab",
    "贝利尤单抗": "belimumab",
    # tocilizumab
    "tocilizumab": "tocilizumab",
    "actemra": "tocilizumab",
    "roactemra": "tocilizumab",
    "tcz": "tocilizumab",
    "托珠单抗": "tocilizumab",
    "托珠单抗注射液": "tocilizumab",
    # telitacicept
    "telitacicept": "telitacicept",
    "tetatercept": "telitacicept",
    "rc18": "telitacicept",
    "rc-18": "telitacicept",
    "tai'ai": "telitacicept",
    "taiai": "telitacicept",
    "泰它西普": "telitacicept",
    "泰爱": "telitacicept",
}

# A whole drug-list cell meaning "none given".
DRUG_NONE_WORDS: tuple[str, ...] = ("none", "无")

# Separators between drug names in one cell (regex character class).
DRUG_SEPARATORS = r"[;,；，、/+]"

# Unit-slip hints for implausible values: field -> list of (low side?, threshold, hint).
# A value below the plausible range (low side True) and <= threshold, or above it
# (low side False) and >= threshold, gets the hint.
UNIT_HINTS: dict[str, list[tuple[bool, float, str]]] = {
    "hemoglobin_g_l": [(True, 30, "looks like g/dL; the contract unit is g/L")],
    "wbc_10e9_l": [(False, 500, "looks like cells/µL; the contract unit is ×10⁹/L")],
    "anc_10e9_l": [(False, 500, "looks like cells/µL; the contract unit is ×10⁹/L")],
    "tbil_umol_l": [(True, 1, "looks like mg/dL; the contract unit is µmol/L")],
    "igg_mg_dl": [
        (True, 50, "looks like g/L; the contract unit is mg/dL"),
        (False, 6000, "looks like mg/L; the contract unit is mg/dL"),
    ],
    "iga_mg_dl": [(False, 1500, "looks like mg/L; the contract unit is mg/dL")],
    "fvc_pct_pred": [(True, 2, "looks like a fraction or litres; the contract unit is % predicted")],
    "dlco_pct_pred": [(True, 2, "looks like a fraction; the contract unit is % predicted")],
    "gc_max_mg_kg_day": [(False, 30, "looks like mg/day; the contract unit is mg/kg/day")],
    "weight_kg": [(False, 250, "looks like pounds; the contract unit is kg")],
    "iim_eular_acr_2017_prob_pct": [],
    "age_years": [(False, 120, "looks like months; the contract unit is years")],
}

NUMBER_PATTERN = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
DATE_PATTERN = (
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _key(arr: pa.Array) -> pa.Array:
    """Lower-case, collapse inner whitespace, straighten apostrophes."""
    out = pc.utf8_lower(arr)
    out = pc.replace_substring_regex(out, r"\s+", " ")
    out = pc.replace_substring_regex(out, "[’‘`´]", "'")
    return out


def _lookup(keys: pa.Array, table: dict[str, str], canon: tuple[str, ...]) -> np.ndarray:
    """Codes into `canon` for each key (-1 = not in table / null)."""
    names = list(table)
    targets = np.array([canon.index(table[k]) for k in names], dtype=np.int64)
    idx = pc.index_in(keys, value_set=pa.array(names, type=pa.string()))
    idx_np = idx.to_numpy(zero_copy_only=False)
    idx_np = np.where(np.isnan(idx_np), -1, idx_np).astype(np.int64) if idx_np.dtype.kind == "f" else idx_np
    codes = np.full(len(keys), -1, dtype=np.int64)
    ok = idx_np >= 0
    codes[ok] = targets[idx_np[ok]]
    return codes


def _string_series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.StringDtype().__from_arrow__(arr))


def _valid(arr: pa.Array) -> np.ndarray:
    return pc.is_valid(arr).to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------------------
# Parsers: text (pa string array, stripped, null = empty) -> (values, bad mask)
# ---------------------------------------------------------------------------


def parse_number(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    try:  # fast path: every cell is a number (nan/inf are caught below)
        vals = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        ok = pc.fill_null(pc.match_substring_regex(text, NUMBER_PATTERN), False)
        vals = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    out = vals.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    out[np.isinf(out)] = np.nan
    bad = _valid(text) & np.isnan(out)
    return out, bad


def _yes_no(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    low = pc.utf8_lower(text)
    yes = pc.fill_null(pc.is_in(low, value_set=pa.array(YES_SPELLINGS)), False).to_numpy(
        zero_copy_only=False
    )
    no = pc.fill_null(pc.is_in(low, value_set=pa.array(NO_SPELLINGS)), False).to_numpy(
        zero_copy_only=False
    )
    return yes, no


def parse_yesno(text: pa.Array) -> tuple[pd.arrays.BooleanArray, np.ndarray]:
    yes, no = _yes_no(text)
    bad = _valid(text) & ~yes & ~no
    return pd.arrays.BooleanArray(yes, ~(yes | no)), bad


def parse_category(
    text: pa.Array, categories: tuple[str, ...], synonyms: dict[str, str] | None = None
) -> tuple[pd.Categorical, np.ndarray]:
    table = {c.lower(): c for c in categories}
    if synonyms:
        table.update(synonyms)
    codes = _lookup(_key(text), table, categories)
    bad = _valid(text) & (codes < 0)
    return pd.Categorical.from_codes(codes, categories=list(categories)), bad


def _disease(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    codes = _lookup(_key(text), DISEASE_SYNONYMS, DISEASES)
    known = codes >= 0
    canon = pa.array(DISEASES, type=pa.string()).take(pa.array(np.where(known, codes, 0)))
    return pc.if_else(pa.array(known), canon, text), known


def parse_disease(text: pa.Array) -> tuple[pd.Series, np.ndarray]:
    """Canonical code where recognised, else the value as given; mask = unrecognised."""
    out, known = _disease(text)
    return _string_series(out), _valid(text) & ~known


def parse_date(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """yyyy-mm-dd, yyyy/mm/dd or yyyy.mm.dd (optionally with a time, which is dropped)."""
    parts = pc.extract_regex(pc.fill_null(text, ""), DATE_PATTERN)
    y = pc.struct_field(parts, "y")
    m = pc.utf8_lpad(pc.struct_field(parts, "m"), 2, "0")
    d = pc.utf8_lpad(pc.struct_field(parts, "d"), 2, "0")
    iso = pc.binary_join_element_wise(y, m, d, "-")
    year = pc.cast(y, pa.int32())
    in_range = pc.and_(pc.greater_equal(year, 1900), pc.less_equal(year, 2200))
    iso = pc.if_else(in_range, iso, pa.scalar(None, pa.string()))
    ts = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2024-02-30 over to March; a round trip catches that
    same = pc.equal(pc.strftime(ts, format="%Y-%m-%d"), iso)
    ts = pc.if_else(pc.fill_null(same, False), ts, pa.scalar(None, ts.type))
    out = ts.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
    bad = _valid(text) & np.isnat(out)
    return out, bad


# Canonical drug order is alphabetical so bit order == sorted order.
DRUGS_SORTED: tuple[str, ...] = tuple(sorted(IMMUNOMODULATORS))
_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << len(DRUGS_SORTED))], dtype=np.float64)
_MASK_TEXT = np.array(
    [";".join(d for b, d in enumerate(DRUGS_SORTED) if i >> b & 1) for i in range(1 << len(DRUGS_SORTED))],
    dtype=object,
)


_MASK_ARROW = pa.array([*_MASK_TEXT.tolist(), "none"], type=pa.string())


def parse_druglist(text: pa.Array) -> tuple[pd.Series, np.ndarray, dict[int, list[str]]]:
    """Return (canonical string, count, {row index: unrecognised names})."""
    strings, count, unrecognised = _druglist(text)
    return _string_series(strings), count, unrecognised


def _druglist(text: pa.Array) -> tuple[pa.Array, np.ndarray, dict[int, list[str]]]:
    n = len(text)
    low = _key(text)
    is_none = pc.fill_null(pc.is_in(low, value_set=pa.array(DRUG_NONE_WORDS)), False).to_numpy(
        zero_copy_only=False
    )
    valid = _valid(text)
    seps = pc.replace_substring_regex(low, DRUG_SEPARATORS, ";")
    lists = pc.split_pattern(seps, ";")
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    tokens = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    tok_codes = _lookup(tokens, DRUG_SYNONYMS, DRUGS_SORTED)
    tok_valid = pc.not_equal(tokens, "").to_numpy(zero_copy_only=False)
    tok_none = pc.is_in(tokens, value_set=pa.array(DRUG_NONE_WORDS)).to_numpy(zero_copy_only=False)
    mask = np.zeros(n, dtype=np.int64)
    known = tok_codes >= 0
    np.bitwise_or.at(mask, parents[known], np.left_shift(1, tok_codes[known]))
    unknown_pos = np.flatnonzero(tok_valid & ~known & ~tok_none)
    unrecognised: dict[int, list[str]] = {}
    if len(unknown_pos):
        raw_tokens = pc.utf8_trim_whitespace(
            pc.list_flatten(pc.split_pattern(pc.replace_substring_regex(text, DRUG_SEPARATORS, ";"), ";"))
        )
        for pos in unknown_pos:
            unrecognised.setdefault(int(parents[pos]), []).append(raw_tokens[int(pos)].as_py())
    strings = _MASK_ARROW.take(pa.array(np.where(is_none & (mask == 0), len(_MASK_TEXT), mask)))
    strings = pc.if_else(pa.array(valid), strings, pa.scalar(None, pa.string()))
    count = np.where(valid, _POPCOUNT[mask], np.nan)
    return strings, count, unrecognised


# ---------------------------------------------------------------------------
# The same parsers over a column's distinct values, spread over its rows
# (identical to parsing every cell: tests/test_loader_distinct.py)
# ---------------------------------------------------------------------------


def yesno_rows(d: Distinct) -> tuple[pd.arrays.BooleanArray, np.ndarray]:
    yes, no = _yes_no(d.values)
    state = np.where(yes, 1, np.where(no, 0, 2)).astype(np.uint8)  # 0 no, 1 yes, 2 unreadable
    rows = d.expand(state, 3)  # 3: blank
    return pd.arrays.BooleanArray(rows == 1, rows >= 2), rows == 2


def category_rows(
    d: Distinct, categories: tuple[str, ...], synonyms: dict[str, str] | None = None
) -> tuple[pd.Categorical, np.ndarray]:
    cat, bad = parse_category(d.values, categories, synonyms)
    codes = d.expand(np.asarray(cat.codes), -1)
    return pd.Categorical.from_codes(codes, categories=list(categories)), d.expand(bad, False)


def disease_rows(d: Distinct) -> tuple[pd.Series, np.ndarray]:
    out, known = _disease(d.values)
    return _string_series(d.expand_arrow(out)), d.expand(~known, False)


def date_rows(d: Distinct) -> tuple[np.ndarray, np.ndarray]:
    dates, bad = parse_date(d.values)
    return d.expand(dates, np.datetime64("NaT", "ns")), d.expand(bad, False)


def druglist_rows(d: Distinct) -> tuple[pd.Series, np.ndarray, dict[int, list[str]]]:
    strings, count, unrecognised = _druglist(d.values)
    flagged = np.zeros(len(d.values), dtype=bool)
    flagged[list(unrecognised)] = True
    rows = np.flatnonzero(d.expand(flagged, False))
    codes = d.codes[rows].tolist()
    by_row = {r: unrecognised[c] for r, c in zip(rows.tolist(), codes, strict=True)}
    return _string_series(d.expand_arrow(strings)), d.expand(count, np.nan), by_row


def unit_hint(field_name: str, value: float, lo: float, hi: float) -> str:
    for low_side, threshold, hint in UNIT_HINTS.get(field_name, []):
        if low_side and value < lo and value <= threshold:
            return hint
        if not low_side and value > hi and value >= threshold:
            return hint
    return ""
