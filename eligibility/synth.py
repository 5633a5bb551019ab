"""Synthetic candidate cohort for NCT06614270 (a hospital referral-list extract).

`generate(n, seed)` returns a raw cohort in the contract's columns
(../shared/spec/cohort-fields.md) and in the text/number forms a hospital
extract has: yes/no cells as "yes"/"Y"/"1"/"TRUE"…, ISO date strings,
';'-separated drug names mixing generic names, abbreviations and Chinese
names, disease names as codes or synonyms. Every modelling assumption and its
source is written down in data/README.md.

Design rules
- deterministic: each column group draws from its own stream
  ``np.random.default_rng([seed, crc32(name)])``, so the output depends only on
  (n, seed, options) and never on dict/set order or hash randomisation;
  dropping a column leaves every other value unchanged;
- vectorised: numpy per column, no Python loop over rows (the only Python loops
  run over columns, injection kinds, or distinct drug-list patterns);
- a small rate of data-entry problems (unit slips, yes/no typos, impossible
  values) is injected, and the ground truth of what was injected is returned by
  ``generate(..., return_injections=True)`` so tests can check the loader
  reports every one of them.

CLI: ``python -m eligibility.synth --n 3000 --seed 20260101 -o cohort.parquet``
or ``python -m eligibility.synth --bundle data/`` (regenerates the bundled files).
"""

from __future__ import annotations

import argparse
import io
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from eligibility.fields import (
    DEFAULT,
    DISEASE_REGISTRY,
    DISEASE_SYNONYMS,
    DISEASES,
    FIELD_BY_NAME,
    FIELD_NAMES,
    FIELDS,
    IMMUNOMODULATORS,
    OTHER,
    Field,
)

__all__ = [
    "BUNDLE_N",
    "BUNDLE_SEED",
    "PROFILES",
    "SAMPLE_N",
    "INJECTION_COLUMNS",
    "generate",
    "write_cohort",
    "write_bundle",
    "main",
]

BUNDLE_SEED = 20260101
BUNDLE_N = 3000
SAMPLE_N = 200
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 9
XLSX_MAX_ROWS = 1_048_575
INJECTION_RATE = 0.005  # share of rows carrying one data-entry problem
INJECTION_COLUMNS = ("row", "patient_id", "column", "value", "kind", "expect")

# Sites lacking a few contract columns (a column absent from the file = not assessed).
PROFILES: dict[str, tuple[str, ...]] = {
    "full": (),
    # branch-campus extract: no reference-range columns, no weight, no DLCO trend,
    # IGRA results kept in a separate infection-control system
    "branch": (
        "weight_kg",
        "alt_uln_u_l",
        "ast_uln_u_l",
        "tbil_uln_umol_l",
        "inr_uln",
        "pt_uln_s",
        "dlco_change_6m_pct",
        "tb_latent",
    ),
    # older registry export: no 6-month trends, no IGRA, no CAPS histology item
    "legacy": (
        "mrss_change_6m_pct",
        "fvc_change_6m_pct",
        "dlco_change_6m_pct",
        "tb_latent",
        "caps_small_vessel_occlusion",
    ),
}

# disease index per row: 0..k-1 = the registry's order (protocol/diseases.yaml), k = another diagnosis
OTHER_SHARE = 0.01  # referrals with a diagnosis outside the trial's indications (they fail DX-1)
OTHER_CODE = len(DISEASES)
DISEASE_P = np.array([d.share for d in DISEASE_REGISTRY] + [OTHER_SHARE])
# The clinical model's per-disease tables are written in this order; a registry disease the model
# does not know is drawn like the other diagnoses (its own columns come from their recipes).
MODEL_ORDER = ("SSc", "IIM", "AAV", "SjS", "APS", OTHER)
_MODEL_ROW = np.array([MODEL_ORDER.index(c) if c in MODEL_ORDER else len(MODEL_ORDER) - 1
                       for c in (*DISEASES, OTHER)])


def _index(code: str) -> int:
    """The row index of a disease of the clinical model (-1 when the registry lacks it)."""
    return DISEASES.index(code) if code in DISEASES else -1


SSC, IIM, AAV, SJS, APS = (_index(c) for c in MODEL_ORDER[:5])

START_DATE = np.datetime64("2025-01-01")
END_DATE = np.datetime64("2026-06-30")

# ---------------------------------------------------------------------------
# random streams and small helpers
# ---------------------------------------------------------------------------


def _rng(seed: int, name: str) -> np.random.Generator:
    """An independent stream per (seed, name): stable across runs and platforms."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _by(d: np.ndarray, table) -> np.ndarray:
    """Per-row parameter from a per-disease table in MODEL_ORDER."""
    return np.asarray(table, dtype=np.float64)[_MODEL_ROW][d]


def _choice(rng: np.random.Generator, p, n: int) -> np.ndarray:
    """Category codes 0..k-1 drawn with probabilities p (rows may have their own p)."""
    p = np.asarray(p, dtype=np.float64)
    u = rng.random(n)
    if p.ndim == 1:
        cum = np.cumsum(p / p.sum())
        return np.minimum(np.searchsorted(cum, u, side="right"), len(p) - 1).astype(np.int16)
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((u[:, None] >= cum).sum(axis=1), p.shape[1] - 1).astype(np.int16)


def _logn(rng: np.random.Generator, median, sigma, n: int) -> np.ndarray:
    return np.asarray(median, dtype=np.float64) * np.exp(sigma * rng.standard_normal(n))


def _event_days(rng: np.random.Generator, p, mean_days: float, n: int, cap: int = 3650) -> np.ndarray:
    """days_since_* column: empty (never) for most, else an exponential delay in days."""
    has = rng.random(n) < p
    days = np.minimum(np.floor(rng.exponential(mean_days, n)), cap)
    return np.where(has, days, np.nan)


class _Builder:
    """Holds the columns while they are being generated.

    num: float64 arrays (NaN = empty); yn: int8 codes (1 yes, 0 no, -1 empty);
    cat: (int16 codes, labels) with -1 = empty; txt: ready string arrays."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.num: dict[str, np.ndarray] = {}
        self.yn: dict[str, np.ndarray] = {}
        self.cat: dict[str, tuple[np.ndarray, list[str]]] = {}
        self.txt: dict[str, pa.Array] = {}
        self.typos: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def rng(self, name: str) -> np.random.Generator:
        return _rng(self.seed, name)

    def put_num(self, name: str, values: np.ndarray, missing: float | np.ndarray = 0.0,
                applies: np.ndarray | None = None, decimals: int | None = None) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64).copy()
        if decimals is not None:
            v = np.round(v, decimals)
        if applies is not None:
            v[~applies] = np.nan
        miss = self.rng("missing:" + name).random(self.n) < missing
        v[miss] = np.nan
        self.num[name] = v
        return v

    def put_yn(self, name: str, truth: np.ndarray, missing: float | np.ndarray = 0.0,
               applies: np.ndarray | None = None) -> np.ndarray:
        codes = np.asarray(truth, dtype=bool).astype(np.int8)
        if applies is not None:
            codes[~applies] = -1
        miss = self.rng("missing:" + name).random(self.n) < missing
        codes[miss] = -1
        self.yn[name] = codes
        return codes

    def bern(self, name: str, p) -> np.ndarray:
        return self.rng(name).random(self.n) < p


# ---------------------------------------------------------------------------
# the clinical model (see data/README.md for every number's source/reasoning)
# ---------------------------------------------------------------------------

# diagnoses outside the trial (they fail DX-1); any the registry names as an indication are left out
OTHER_DISEASES = tuple(x for x in ("SLE", "RA", "MCTD", "IgG4-RD", "Behçet's disease", "UCTD")
                       if " ".join(x.lower().split()) not in DISEASE_SYNONYMS)
# spellings of each indication other than the code (diseases.yaml; all recognised by the loader)
DISEASE_SPELLINGS = {k: d.spellings for k, d in enumerate(DISEASE_REGISTRY) if d.spellings}
IIM_SUBTYPES = ("DM", "PM", "ASS", "IMNM", "IBM", "other")
AAV_SUBTYPES = ("GPA", "MPA", "EGPA")

YN_STYLES = (("no", "yes"), ("No", "Yes"), ("N", "Y"), ("0", "1"), ("FALSE", "TRUE"), ("n", "y"))
YN_STYLE_P = (0.40, 0.20, 0.15, 0.15, 0.05, 0.05)

# drug names per style: canonical, generic, abbreviation/brand, Chinese
DRUG_NAMES: dict[str, tuple[str, str, str, str]] = {
    "antimalarial": ("antimalarial", "hydroxychloroquine", "HCQ", "羟氯喹"),
    "azathioprine": ("azathioprine", "azathioprine", "AZA", "硫唑嘌呤"),
    "mycophenolate": ("mycophenolate", "mycophenolate mofetil", "MMF", "吗替麦考酚酯"),
    "methotrexate": ("methotrexate", "methotrexate", "MTX", "甲氨蝶呤"),
    "leflunomide": ("leflunomide", "leflunomide", "LEF", "来氟米特"),
    "tacrolimus": ("tacrolimus", "tacrolimus", "FK506", "他克莫司"),
    "cyclosporine": ("cyclosporine", "ciclosporin", "CsA", "环孢素"),
    "rituximab": ("rituximab", "rituximab", "RTX", "利妥昔单抗"),
    "belimumab": ("belimumab", "belimumab", "Benlysta", "贝利尤单抗"),
    "tocilizumab": ("tocilizumab", "tocilizumab", "TCZ", "托珠单抗"),
    "telitacicept": ("telitacicept", "telitacicept", "RC18", "泰它西普"),
}
# non-listed drugs commonly used in Chinese rheumatology (reported as unrecognised, not counted)
EXTRA_DRUGS = ("iguratimod", "tripterygium glycosides", "tofacitinib", "IVIG", "thalidomide")
DRUG_STYLE_P = (0.15, 0.40, 0.30, 0.15)
# relative preference per disease (rows: SSc, IIM, AAV, SjS, APS, other; columns: IMMUNOMODULATORS)
DRUG_WEIGHTS = np.array([
    # am  aza  mmf  mtx  lef  tac  csa  rtx  bel  tcz  tel
    [3.0, 2.0, 8.0, 5.0, 1.0, 2.0, 1.0, 3.0, 0.3, 3.0, 0.3],  # SSc
    [4.0, 3.0, 5.0, 6.0, 0.5, 8.0, 4.0, 3.0, 0.2, 0.5, 0.3],  # IIM
    [1.0, 6.0, 6.0, 3.0, 1.0, 1.5, 0.5, 6.0, 0.3, 0.2, 0.2],  # AAV
    [9.0, 2.0, 4.0, 4.0, 3.0, 2.0, 2.0, 2.0, 3.0, 0.3, 3.0],  # SjS
    [9.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 0.3, 1.0],  # APS
    [8.0, 3.0, 5.0, 5.0, 3.0, 3.0, 1.0, 2.0, 2.0, 1.0, 2.0],  # other
])[_MODEL_ROW]  # rows in the registry's order, then other
assert tuple(DRUG_NAMES) == IMMUNOMODULATORS


def _model(b: _Builder) -> np.ndarray:
    """Generate the clinical model's columns into the builder; returns each row's disease index."""
    n = b.n

    # ---- disease, subtypes ---------------------------------------------
    d = _choice(b.rng("disease"), DISEASE_P, n)
    ssc, iim, aav, sjs, aps, other = (d == k for k in (SSC, IIM, AAV, SJS, APS, OTHER_CODE))

    ssc_sub = np.where(ssc, _choice(b.rng("ssc_subtype"), (0.78, 0.15, 0.07), n), -1)
    iim_sub = np.where(iim, _choice(b.rng("iim_subtype"), (0.45, 0.08, 0.24, 0.17, 0.03, 0.03), n), -1)
    aav_sub = np.where(aav, _choice(b.rng("aav_subtype"), (0.28, 0.65, 0.07), n), -1)

    # ---- demographics ---------------------------------------------------
    r = b.rng("sex")
    female = r.random(n) < _by(d, (0.80, 0.66, 0.50, 0.92, 0.80, 0.88))
    r = b.rng("age")
    age_mean = _by(d, (45.0, 46.0, 52.0, 46.0, 37.0, 38.0))
    age_mean = np.where(aav & (aav_sub == 0), 49.0, age_mean)  # GPA younger than MPA
    age_sd = _by(d, (11.0, 12.0, 10.5, 11.5, 10.0, 12.0))
    age = np.clip(np.round(age_mean + age_sd * r.standard_normal(n)), 15, 82)
    b.put_num("age_years", age)
    sex_codes = np.where(female, 0, 1).astype(np.int16)
    sex_codes = np.where(b.bern("sex:case", 0.03), sex_codes + 2, sex_codes)  # lower case
    sex_codes = np.where(b.bern("sex:zh", 0.02), (sex_codes % 2) + 4, sex_codes)  # 女/男
    sex_codes[b.bern("missing:sex", 0.002)] = -1
    b.cat["sex"] = (sex_codes, ["F", "M", "f", "m", "女", "男"])
    r = b.rng("weight")
    weight = np.clip(np.where(female, 56.0, 67.0) + np.where(female, 8.5, 10.0) * r.standard_normal(n), 36, 120)
    b.put_num("weight_kg", weight, missing=0.08, decimals=1)

    # disease text: code, synonym or Chinese name; other diseases fail DX-1
    r = b.rng("disease:text")
    syn = r.random(n) < 0.18
    pick = r.integers(0, 5, n)
    labels: list[str] = list(DISEASES) + list(OTHER_DISEASES)
    text_code = np.where(other, OTHER_CODE + r.integers(0, len(OTHER_DISEASES), n), d).astype(np.int16)
    extra_labels = ["dermatomyositis", "polymyositis", "myositis", "GPA", "MPA", "ANCA vasculitis"]
    base = len(labels)
    labels += extra_labels
    iim_syn = np.select([iim_sub == 0, iim_sub == 1], [base, base + 1], base + 2)
    aav_syn = np.select([aav_sub == 0, aav_sub == 1], [base + 3, base + 4], base + 5)
    text_code = np.where(syn & iim, iim_syn, text_code)
    text_code = np.where(syn & aav, aav_syn, text_code)
    for k, spellings in DISEASE_SPELLINGS.items():
        off = len(labels)
        labels += list(spellings)
        text_code = np.where(syn & (d == k), off + pick % len(spellings), text_code)
    b.cat["disease"] = (text_code.astype(np.int16), labels)

    # ---- screening date and id -----------------------------------------
    r = b.rng("screening_date")
    span = int((END_DATE - START_DATE).astype(int)) + 1
    # referral rate rising linearly from 0.7x to 1.3x over the window (inverse CDF)
    u = r.random(n)
    a_, b_ = 0.7, 1.3
    x = (-a_ + np.sqrt(a_ * a_ + (b_ * b_ - a_ * a_) * u)) / (b_ - a_)
    day = np.minimum(np.floor(x * span), span - 1).astype(np.int64)
    dates = START_DATE + day
    wd = (dates.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    shift = np.where((wd >= 5) & (r.random(n) < 0.92), 7 - wd, 0)
    dates = np.minimum(dates + shift, END_DATE)
    dates = np.sort(dates)
    b.txt["screening_date"] = pa.array(dates.astype("datetime64[D]"), pa.date32()).cast(pa.string())
    width = max(6, len(str(n)))
    ids = np.strings.add("ZJU2-", np.strings.zfill(np.arange(1, n + 1).astype(np.str_), width))
    b.txt["patient_id"] = pa.array(ids, pa.string())

    # ---- lung: ILD / HRCT / PFT ----------------------------------------
    p_ggo = _by(d, (0.0, 0.0, 0.0, 0.12, 0.03, 0.10))
    p_ggo = np.where(ssc, np.take([0.55, 0.35, 0.40], np.clip(ssc_sub, 0, 2)), p_ggo)
    p_ggo = np.where(iim, np.take([0.50, 0.30, 0.85, 0.15, 0.05, 0.35], np.clip(iim_sub, 0, 5)), p_ggo)
    p_ggo = np.where(aav, np.take([0.12, 0.22, 0.10], np.clip(aav_sub, 0, 2)), p_ggo)
    ild = b.bern("ild", p_ggo)
    rp_ild = iim & ild & b.bern("rp_ild", np.where(iim_sub == 0, 0.26, np.where(iim_sub == 2, 0.10, 0.04)))
    ct_missing = np.where(ssc | iim, 0.02, 0.12)
    b.put_yn("hrct_ggo", ild, missing=ct_missing)
    r = b.rng("pft")
    z1, z2 = r.standard_normal(n), r.standard_normal(n)
    zd = 0.6 * z1 + 0.8 * z2
    fvc = np.where(ild, 75.0 + 14.0 * z1, 96.0 + 11.0 * z1)
    fvc = np.where(rp_ild, fvc - 12.0, fvc)
    dlco = np.where(ild, 60.0 + 13.0 * zd, 86.0 + 12.0 * zd)
    pft_missing = _by(d, (0.015, 0.025, 0.04, 0.04, 0.05, 0.08))
    b.put_num("fvc_pct_pred", np.clip(fvc, 18, 140), missing=pft_missing, decimals=1)
    # DLCO is done in the same lab visit: missing together with FVC most of the time
    dl_missing = np.isnan(b.num["fvc_pct_pred"]) | b.bern("missing:dlco_extra", 0.01)
    dl = np.clip(dlco, 15, 140)
    b.num["dlco_pct_pred"] = np.where(dl_missing, np.nan, np.round(dl, 1))

    # ---- kidney ---------------------------------------------------------
    r = b.rng("egfr")
    renal_aav = aav & b.bern("renal_aav", np.take([0.50, 0.75, 0.20], np.clip(aav_sub, 0, 2)))
    egfr = 112.0 - 0.65 * (age - 30.0) + 13.0 * r.standard_normal(n)
    egfr = np.where(renal_aav, _logn(r, 48.0, 0.62, n), egfr)
    renal_crisis = ssc & b.bern("renal_crisis", np.where(ssc_sub == 0, 0.035, 0.01))
    egfr = np.where(renal_crisis, egfr * 0.65, egfr)
    egfr = np.clip(egfr, 4.0, 150.0)
    b.put_num("egfr_ml_min_1_73m2", egfr, missing=0.008, decimals=1)

    # ---- blood counts ---------------------------------------------------
    r = b.rng("blood")
    hb = np.where(female, 122.0, 136.0) + 14.0 * r.standard_normal(n)
    hb -= _by(d, (3.0, 2.0, 6.0, 7.0, 2.0, 8.0))
    hb -= np.clip(90.0 - egfr, 0, None) * 0.35  # renal anaemia
    low_hb = r.random(n) < 0.008
    hb = np.where(low_hb, 52.0 + 10.0 * r.standard_normal(n), hb)
    b.put_num("hemoglobin_g_l", np.clip(hb, 35, 185), missing=0.006, decimals=0)
    wbc = _logn(r, _by(d, (6.6, 7.2, 7.8, 5.0, 6.2, 5.2)), 0.32, n)
    leuko = r.random(n) < np.where(sjs, 0.03, 0.008)  # cytopenic tail (SjS haematological domain)
    wbc = np.where(leuko, _logn(r, 2.8, 0.25, n), wbc)
    wbc = np.clip(wbc, 0.8, 30.0)
    neut_frac = r.beta(12.0, 7.0, n)
    anc = wbc * neut_frac
    wbc_miss = r.random(n) < 0.006
    b.num["wbc_10e9_l"] = np.where(wbc_miss, np.nan, np.round(wbc, 2))
    b.num["anc_10e9_l"] = np.where(wbc_miss, np.nan, np.round(anc, 2))
    r = b.rng("gcsf")
    gcsf = r.random(n) < np.where(wbc < 3.5, 0.20, 0.004)
    b.put_num("days_since_gcsf", np.where(gcsf, np.floor(r.exponential(45.0, n)) + 1, np.nan))

    # ---- IIM muscle latent (needed by liver enzymes) ---------------------
    r = b.rng("iim_activity")
    act = r.standard_normal(n)
    enz_med = np.take([3.0, 5.0, 2.0, 14.0, 2.5, 2.0], np.clip(iim_sub, 0, 5))
    enzyme = np.where(iim, np.clip(_logn(r, enz_med, 0.8, n) * np.exp(0.3 * act), 0.3, 120.0), np.nan)

    # ---- liver, coagulation, site reference ranges ----------------------
    r = b.rng("liver")
    zh = r.standard_normal(n)
    alt = 18.0 * np.exp(0.42 * zh + 0.28 * r.standard_normal(n))
    ast = 20.0 * np.exp(0.30 * zh + 0.20 * r.standard_normal(n))
    hepatotox = r.random(n) < 0.015  # MTX/LEF/azathioprine hepatotoxicity, fatty liver
    alt = np.where(hepatotox, alt * r.uniform(2.5, 8.0, n), alt)
    ast = np.where(hepatotox, ast * r.uniform(1.8, 5.0, n), ast)
    muscle = np.where(iim, enzyme, 0.0)  # AST (and less ALT) leak from damaged muscle
    ast = ast + muscle * 3.5 * r.uniform(0.5, 1.5, n)
    alt = alt + muscle * 1.8 * r.uniform(0.5, 1.5, n)
    tbil = _logn(r, 10.5, 0.38, n)
    gilbert = r.random(n) < 0.02
    tbil = np.where(gilbert, r.uniform(22.0, 40.0, n), tbil)
    liver_miss = r.random(n) < 0.005
    b.num["alt_u_l"] = np.where(liver_miss, np.nan, np.round(np.clip(alt, 3, 2000)))
    b.num["ast_u_l"] = np.where(liver_miss, np.nan, np.round(np.clip(ast, 5, 2000)))
    b.num["tbil_umol_l"] = np.where(liver_miss, np.nan, np.round(np.clip(tbil, 2.0, 300.0), 1))
    # site A (main campus lab, exports its reference ranges) vs site B (no ULN columns)
    site_a = b.bern("site", 0.55)
    b.put_num("alt_uln_u_l", np.where(female, 40.0, 50.0), applies=site_a)
    b.put_num("ast_uln_u_l", np.where(female, 35.0, 40.0), applies=site_a)
    b.put_num("tbil_uln_umol_l", np.full(n, 26.0), applies=site_a)
    b.put_num("inr_uln", np.full(n, 1.15), applies=site_a)
    b.put_num("pt_uln_s", np.full(n, 12.5), applies=site_a)
    r = b.rng("coag")
    on_vka = (aps & (r.random(n) < 0.25)) | (~aps & (r.random(n) < 0.004 * (age > 55)))
    inr = np.where(on_vka, np.clip(2.6 + 0.5 * r.standard_normal(n), 1.6, 4.5),
                   np.clip(1.0 + 0.07 * r.standard_normal(n), 0.8, 1.5))
    inr = np.where(on_vka & (r.random(n) < 0.08), r.uniform(1.1, 1.6, n), inr)  # bridging / sub-range
    pt_scale = np.where(site_a, 10.6, 11.5)
    pt = pt_scale * inr ** 0.92 + 0.35 * r.standard_normal(n)
    coag_miss = r.random(n) < 0.01
    b.num["inr"] = np.where(coag_miss, np.nan, np.round(inr, 2))
    b.num["pt_s"] = np.where(coag_miss, np.nan, np.round(pt, 1))

    # ---- general yes/no facts ------------------------------------------
    heart = b.bern("heart", 0.005 + 0.0005 * np.clip(age - 40, 0, None) + _by(d, (0.015, 0.012, 0.01, 0.0, 0.005, 0.0)))
    b.put_yn("severe_heart_disease", heart, missing=0.004)
    b.put_yn("hemodynamically_stable", ~b.bern("unstable", np.where(heart, 0.15, 0.006)), missing=0.004)
    cbp_p = np.where(age < 45, 0.93, np.where(age <= 52, 0.45, 0.04))
    cbp = female & b.bern("cbp", cbp_p)
    b.put_yn("childbearing_potential", cbp, missing=np.where(female, 0.008, 0.0),
             applies=female | b.bern("cbp:male_recorded", 0.7))
    pregnant = cbp & b.bern("pregnant", 0.004)
    breastfeeding = cbp & (age < 40) & b.bern("breastfeeding", 0.02)
    planning = cbp & (age < 40) & b.bern("planning", 0.035)
    # pregnancy test: done at screening for women of childbearing potential
    b.put_yn("pregnancy_test_negative", ~pregnant, missing=0.02, applies=cbp | (female & b.bern("ptest:other", 0.15)))
    contra = b.bern("contraception", 0.97)
    b.put_yn("contraception_agreed", contra, missing=0.012, applies=cbp | b.bern("contra:other", 0.1))
    f_rec = female | b.bern("preg:male_recorded", 0.6)
    b.put_yn("pregnant", pregnant, missing=0.004, applies=f_rec)
    b.put_yn("breastfeeding", breastfeeding, missing=0.004, applies=f_rec)
    b.put_yn("planning_pregnancy", planning, missing=0.006, applies=f_rec)
    consent_r = b.rng("consent").random(n)
    b.put_yn("consent_signed", consent_r >= 0.015)  # 1.5 % declined
    b.yn["consent_signed"][consent_r > 0.985] = -1  # 1.5 % not yet signed (screening visit pending)

    other_ctd_p = _by(d, (0.025, 0.025, 0.01, 0.04, 0.10, 0.30))
    other_ctd = b.bern("other_ctd", other_ctd_p)
    b.put_yn("other_ctd", other_ctd, missing=0.004)

    # serology: HBcAb rises with age (birth cohorts before 1992 universal vaccination)
    hbcab = b.bern("hbcab", np.clip(0.05 + 0.0085 * (age - 18.0), 0.04, 0.55))
    hbsag = hbcab & b.bern("hbsag", 0.18)
    b.put_yn("hbcab_pos", hbcab, missing=0.008)
    b.put_yn("hbsag_pos", hbsag, missing=0.006)
    b.put_yn("tb_latent", b.bern("tb_latent", np.clip(0.085 + 0.0022 * (age - 18.0), 0.08, 0.3)), missing=0.015)
    r = b.rng("abx")
    hosp = _event_days(r, 0.06, 260.0, n)
    iv = _event_days(r, 0.06, 200.0, n)
    iv = np.where(~np.isnan(hosp) & (r.random(n) < 0.8), hosp + np.floor(r.uniform(0, 4, n)), iv)
    b.put_num("days_since_infection_hospitalization", hosp)
    b.put_num("days_since_iv_antibiotics", iv)
    b.put_num("days_since_oral_antibiotics", _event_days(r, 0.10, 160.0, n))

    # ---- treatment history --------------------------------------------
    r = b.rng("course")
    course = _choice(r, (0.62, 0.33, 0.04, 0.01), n)  # refractory, relapsed, responding, untreated
    untreated = course == 3
    course_codes = np.where(r.random(n) < 0.015, -1, course).astype(np.int16)
    b.cat["disease_course"] = (course_codes, ["refractory", "relapsed", "responding", "untreated"])
    gc = ~untreated | b.bern("gc:untreated", 0.3)
    b.put_yn("prior_glucocorticoid", gc, missing=0.008)
    r = b.rng("gc_dose")
    p_high = _by(d, (0.35, 0.95, 0.96, 0.93, 0.55, 0.6))
    high = r.random(n) < p_high
    kind = r.random(n)
    wt = np.maximum(weight, 40.0)
    high_dose = np.where(kind < 0.35, 1.0, np.where(kind < 0.75, r.uniform(1.0, 1.6, n),
                         500.0 * 1.25 / wt))  # pulse methylprednisolone 500 mg = 625 mg prednisone
    low_dose = r.uniform(0.15, 0.96, n)
    gcmax = np.where(high, high_dose, low_dose)
    b.put_num("gc_max_mg_kg_day", gcmax, missing=0.015, applies=gc, decimals=2)
    p_cyc = _by(d, (0.92, 0.95, 0.97, 0.95, 0.62, 0.4))
    cyc = b.bern("cyc", p_cyc) & ~untreated
    b.put_yn("prior_cyclophosphamide", cyc, missing=0.008)
    r = b.rng("therapy_months")
    months = np.round(_logn(r, 28.0, 0.7, n))
    months = np.where(course == 2, np.round(_logn(r, 10.0, 0.8, n)), months)
    months = np.where(untreated, 0.0, np.clip(months, 1, 360))
    b.put_num("conventional_therapy_months", months, missing=0.012)
    duration = np.maximum(months + np.round(_logn(r, 8.0, 0.9, n)), 1)

    # immunomodulators: k drugs (Gumbel top-k by disease preference), naming style per row
    r = b.rng("immunomodulators")
    k_drugs = _choice(r, (0.015, 0.25, 0.38, 0.25, 0.105), n)
    k_drugs = np.where(untreated, 0, k_drugs)
    keys = np.log(DRUG_WEIGHTS[d]) + r.gumbel(size=(n, len(IMMUNOMODULATORS)))
    rank = np.argsort(np.argsort(-keys, axis=1, kind="stable"), axis=1, kind="stable")
    chosen = rank < k_drugs[:, None]
    mask = (chosen * (1 << np.arange(len(IMMUNOMODULATORS)))).sum(axis=1)
    style = _choice(r, DRUG_STYLE_P, n)
    extra = np.where(r.random(n) < 0.05, 1 + r.integers(0, len(EXTRA_DRUGS), n), 0)
    extra = np.where(iim & (r.random(n) < 0.06), 3, extra)  # tofacitinib for refractory DM
    drug_key = (mask * 4 + style) * (len(EXTRA_DRUGS) + 1) + extra
    drug_key[r.random(n) < 0.015] = -1  # not recorded
    b.cat["prior_immunomodulators"] = _drug_strings(drug_key)

    # ---- Ig, malignancy, misc exclusions -------------------------------
    r = b.rng("ig")
    rtx = chosen[:, IMMUNOMODULATORS.index("rituximab")]
    iga = _logn(r, 235.0, 0.42, n) * np.where(rtx, 0.8, 1.0)
    iga = np.where(r.random(n) < 0.002, r.uniform(1.0, 9.0, n), iga)  # selective IgA deficiency
    igg = _logn(r, _by(d, (1350.0, 1150.0, 1100.0, 1750.0, 1200.0, 1500.0)), 0.28, n)
    igg = igg * np.where(rtx, 0.72, 1.0)
    igg = np.where(r.random(n) < 0.006, r.uniform(180.0, 399.0, n), igg)  # hypogammaglobulinaemia
    ig_miss = r.random(n) < 0.015
    b.num["iga_mg_dl"] = np.where(ig_miss, np.nan, np.round(iga))
    b.num["igg_mg_dl"] = np.where(ig_miss, np.nan, np.round(igg))
    r = b.rng("investigational")
    has_inv = r.random(n) < 0.035
    b.put_num("days_since_investigational_drug", np.where(has_inv, np.floor(r.uniform(20, 700, n)), np.nan))
    r = b.rng("malignancy")
    cam = iim & (r.random(n) < np.where(iim_sub == 0, 0.07, 0.015))
    malig = (r.random(n) < 0.008 + 0.0006 * np.clip(age - 30, 0, None)) | cam
    years = np.where(cam, np.round(r.uniform(0.1, 2.0, n), 1), np.round(r.uniform(0.2, 18.0, n), 1))
    b.put_num("years_since_malignancy", np.where(malig, years, np.nan))
    b.put_yn("malignancy_excepted", ~cam & (r.random(n) < 0.28), applies=malig, missing=0.03)

    # ---- SSc -------------------------------------------------------------
    r = b.rng("ssc")
    sub = np.clip(ssc_sub, 0, 2)
    score = np.where(sub == 0, 15 + np.floor(r.uniform(0, 10, n)),
                     np.where(sub == 1, 8 + np.floor(r.uniform(0, 9, n)), 6 + np.floor(r.uniform(0, 8, n))))
    b.put_num("ssc_acr_eular_2013_score", score, applies=ssc, missing=0.008)
    dur = np.round(_logn(r, np.take([22.0, 42.0, 30.0], sub), 0.7, n))
    duration = np.where(ssc, np.clip(dur, 2, 400), duration)
    b.put_num("disease_duration_months", duration, missing=0.01)
    mrss = np.where(sub == 0, 22.0 - 0.08 * (duration - 24.0) + 8.0 * r.standard_normal(n),
                    np.where(sub == 1, 6.0 + 3.0 * r.standard_normal(n), 1.0 * r.random(n)))
    b.put_num("mrss", np.clip(np.round(mrss), 0, 51), applies=ssc, missing=0.008)
    early = duration < 24
    dm = np.where((sub == 0) & early, 12.0, np.where(sub == 0, -6.0, 0.0))
    b.put_num("mrss_change_6m_pct", dm + np.where(sub == 0, 24.0, 12.0) * r.standard_normal(n),
              applies=ssc, missing=0.08, decimals=1)
    b.put_num("fvc_change_6m_pct", np.where(ild, -4.5, 0.0) + np.where(ild, 7.0, 4.0) * r.standard_normal(n),
              applies=ssc, missing=0.10, decimals=1)
    b.put_num("dlco_change_6m_pct", np.where(ild, -5.0, 0.0) + np.where(ild, 9.0, 5.0) * r.standard_normal(n),
              applies=ssc, missing=0.12, decimals=1)
    ssc_codes = np.where(ssc & (r.random(n) >= 0.015), ssc_sub, -1).astype(np.int16)
    b.cat["ssc_subtype"] = (ssc_codes, ["diffuse", "limited", "sine"])
    b.put_yn("ssc_environmental", r.random(n) < 0.01, applies=ssc, missing=0.006)
    b.put_yn("renal_crisis_history", renal_crisis, applies=ssc, missing=0.005)
    ph_p = np.where((sub == 1)[:, None], [[0.78, 0.12, 0.07, 0.03]], [[0.88, 0.07, 0.04, 0.01]])
    ph = _choice(r, ph_p, n)
    b.cat["ph_risk"] = (np.where(ssc & (r.random(n) >= 0.02), ph, -1).astype(np.int16),
                        ["none", "low", "intermediate", "high"])
    b.put_yn("gave_active", r.random(n) < 0.02, applies=ssc, missing=0.006)

    # ---- IIM -------------------------------------------------------------
    r = b.rng("iim")
    isub = np.clip(iim_sub, 0, 5)
    p_def = np.take([0.85, 0.60, 0.70, 0.55, 0.70, 0.50], isub)
    p_poss = np.take([0.02, 0.06, 0.05, 0.12, 0.05, 0.25], isub)
    u = r.random(n)
    prob = np.where(u < p_def, r.uniform(90.0, 99.9, n),
                    np.where(u < 1 - p_poss, r.uniform(55.0, 90.0, n), r.uniform(25.0, 55.0, n)))
    b.put_num("iim_eular_acr_2017_prob_pct", prob, applies=iim, missing=0.015, decimals=1)
    b.cat["iim_subtype"] = (np.where(iim & (r.random(n) >= 0.01), iim_sub, -1).astype(np.int16),
                            list(IIM_SUBTYPES))
    mmt_mean = np.take([128.0, 122.0, 137.0, 112.0, 115.0, 130.0], isub)
    b.put_num("mmt8", np.clip(np.round(mmt_mean - 9.0 * act + 7.0 * r.standard_normal(n)), 0, 150),
              applies=iim, missing=0.015)
    b.put_num("phga_cm", np.clip(3.5 + 1.5 * act + r.standard_normal(n), 0, 10), applies=iim,
              missing=0.02, decimals=1)
    b.put_num("ptga_cm", np.clip(4.0 + 1.4 * act + 1.5 * r.standard_normal(n), 0, 10), applies=iim,
              missing=0.03, decimals=1)
    em_mean = np.take([2.6, 1.2, 2.8, 0.8, 0.5, 1.5], isub) + np.where(ild, 1.0, 0.0)
    b.put_num("extramuscular_activity_cm", np.clip(em_mean + 0.8 * act + 1.4 * r.standard_normal(n), 0, 10),
              applies=iim, missing=0.03, decimals=1)
    haq = np.clip(0.8 + 0.35 * act + 0.35 * r.standard_normal(n), 0, 3)
    b.put_num("haq_di", np.round(haq * 8) / 8, applies=iim, missing=0.03, decimals=3)
    b.put_num("muscle_enzyme_x_uln", enzyme, applies=iim, missing=0.02, decimals=1)
    b.put_yn("msa_positive", r.random(n) < np.take([0.92, 0.50, 1.0, 0.85, 0.05, 0.50], isub),
             applies=iim, missing=0.02)
    b.put_yn("rp_ild", rp_ild, applies=iim, missing=0.008)
    b.put_yn("drug_induced_myopathy", r.random(n) < 0.012, applies=iim, missing=0.005)
    b.put_yn("cancer_associated_myositis", cam, applies=iim, missing=0.006)

    # ---- AAV -------------------------------------------------------------
    r = b.rng("aav")
    asub = np.clip(aav_sub, 0, 2)
    b.put_yn("aav_acr_eular_2022_met", r.random(n) < 0.95, applies=aav, missing=0.01)
    b.cat["aav_subtype"] = (np.where(aav & (r.random(n) >= 0.01), aav_sub, -1).astype(np.int16),
                            list(AAV_SUBTYPES))
    b.put_yn("anca_pr3_pos", r.random(n) < np.take([0.70, 0.05, 0.03], asub), applies=aav, missing=0.01)
    b.put_yn("anca_mpo_pos", r.random(n) < np.take([0.25, 0.93, 0.35], asub), applies=aav, missing=0.01)
    bvas = np.clip(np.round(17.0 + 5.0 * renal_aav + 6.0 * r.standard_normal(n)), 0, 63)
    b.put_num("bvas", bvas, applies=aav, missing=0.015)
    b.put_num("bvas_major_items", r.poisson(0.3 + 0.06 * bvas), applies=aav, missing=0.015)
    b.put_num("bvas_minor_items", r.poisson(0.8 + 0.14 * bvas), applies=aav, missing=0.015)
    b.put_yn("renal_hematuria_proteinuria", renal_aav, applies=aav, missing=0.008)
    b.put_yn("alveolar_hemorrhage_ventilation", r.random(n) < 0.015, applies=aav, missing=0.005)
    b.put_yn("dialysis_or_plasmapheresis", r.random(n) < np.where(egfr < 15, 0.55, 0.015),
             applies=aav, missing=0.005)
    b.put_yn("kidney_transplant", r.random(n) < 0.008, applies=aav, missing=0.005)

    # ---- SjS -------------------------------------------------------------
    r = b.rng("sjs")
    ssa = r.random(n) < 0.86
    items = ((r.random(n) < 0.6) * 3 + (r.random(n) < 0.7) + (r.random(n) < 0.7) + (r.random(n) < 0.6))
    b.put_num("sjs_acr_eular_2016_score", 3 * ssa + items, applies=sjs, missing=0.025)
    b.put_yn("sjs_aecg_2002_met", r.random(n) < np.where(ssa, 0.9, 0.7), applies=sjs, missing=0.025)
    b.put_yn("anti_ssa_ro60_pos", ssa, applies=sjs, missing=0.01)
    ess = np.round(_logn(r, 9.5, 0.55, n) + 3.0 * leuko + 3.0 * ild)
    b.put_num("essdai", np.clip(ess, 0, 123), applies=sjs, missing=0.015)
    b.put_yn("cirrhosis", r.random(n) < 0.015, applies=sjs, missing=0.005)
    b.put_yn("aa_mds_mpd", r.random(n) < 0.008, applies=sjs, missing=0.005)
    b.put_yn("drug_induced_thrombocytopenia", r.random(n) < 0.008, applies=sjs, missing=0.005)
    b.put_yn("ttp_tma", r.random(n) < 0.005, applies=sjs, missing=0.005)

    # ---- APS -------------------------------------------------------------
    r = b.rng("aps")
    b.put_yn("aps_sydney_2006_met", r.random(n) < 0.95, applies=aps, missing=0.01)
    b.put_yn("aps_primary", np.where(other_ctd, r.random(n) < 0.1, r.random(n) < 0.97), applies=aps, missing=0.01)
    b.put_yn("apl_medium_high_titer", r.random(n) < 0.92, applies=aps, missing=0.01)
    count = np.where(r.random(n) < 0.05, 1, 2 + r.poisson(1.5, n))
    b.put_num("apl_positive_count", count, applies=aps, missing=0.015)
    interval = np.where(count >= 2, np.round(_logn(r, 48.0, 0.75, n)), 0.0)
    b.put_num("apl_interval_weeks", interval, applies=aps, missing=0.02)
    caps = r.random(n) < 0.02
    b.put_yn("recurrent_thrombosis_on_anticoagulation", r.random(n) < 0.78, applies=aps, missing=0.01)
    organs = np.where(caps, 3 + r.poisson(0.8, n), np.minimum(r.poisson(1.0, n), 2))
    b.put_num("caps_organ_count", organs, applies=aps, missing=0.01)
    b.put_yn("caps_onset_within_1_week", caps | (r.random(n) < 0.03), applies=aps, missing=0.01)
    b.put_yn("caps_small_vessel_occlusion", caps & (r.random(n) < 0.85) | (r.random(n) < 0.02),
             applies=aps, missing=0.015)
    b.put_yn("aps_obstetric", female & (r.random(n) < 0.18), applies=aps, missing=0.01)
    b.put_yn("aps_neurologic", r.random(n) < 0.17, applies=aps, missing=0.01)
    return d



# ---------------------------------------------------------------------------
# columns drawn from their recipe in fields.yaml
# ---------------------------------------------------------------------------


def _table(d: np.ndarray, value) -> np.ndarray | float:
    """A recipe number: a constant, or per row from a per-disease table (codes, other, default)."""
    if not isinstance(value, dict):
        return float(value)
    row = [value.get(c, value.get(DEFAULT, np.nan)) for c in (*DISEASES, OTHER)]
    return np.asarray(row, dtype=np.float64)[d]


def _recipe_values(b: _Builder, f: Field, d: np.ndarray, applies: np.ndarray | None) -> None:
    rec = f.synth
    assert rec is not None
    r = b.rng(rec.stream or f.name)
    n = b.n
    if rec.yes_share is not None:
        b.put_yn(f.name, r.random(n) < _table(d, rec.yes_share), missing=rec.missing, applies=applies)
        return
    if rec.choice is not None:
        p = np.stack([np.broadcast_to(_table(d, rec.choice[c]), (n,)) for c in f.categories], axis=1)
        codes = _choice(r, p, n)
        if applies is not None:
            codes[~applies] = -1
        codes[b.rng("missing:" + f.name).random(n) < rec.missing] = -1
        b.cat[f.name] = (codes, list(f.categories))
        return
    if rec.normal is not None:
        v = _table(d, rec.normal.mean) + _table(d, rec.normal.sd) * r.standard_normal(n)
    elif rec.lognormal is not None:
        v = _logn(r, _table(d, rec.lognormal.median), _table(d, rec.lognormal.sigma), n)
    elif rec.uniform is not None:
        v = _table(d, rec.uniform.low) + (_table(d, rec.uniform.high) - _table(d, rec.uniform.low)) * r.random(n)
    else:
        assert rec.event is not None
        v = _event_days(r, _table(d, rec.event.p), rec.event.mean_days, n, int(rec.event.cap))
    if rec.clip is not None:
        v = np.clip(v, rec.clip[0], rec.clip[1])
    b.put_num(f.name, v, missing=rec.missing, applies=applies, decimals=rec.decimals)


def _from_recipes(b: _Builder, d: np.ndarray) -> None:
    """Draw every column whose recipe is a distribution (over a model value of the same name), and
    check that the clinical model produced every column whose recipe names it."""
    for f in FIELDS:
        rec = f.synth
        if rec is None or rec.model is not None:
            if rec is not None and not any(f.name in t for t in (b.num, b.yn, b.cat, b.txt)):
                raise ValueError(f"fields.yaml: {f.name}: synth model {rec.model!r} does not generate this "
                                 "column; give it a distribution (yes_share, normal, lognormal, uniform, event, choice)")
            continue
        for table in (b.num, b.yn, b.cat, b.txt):
            table.pop(f.name, None)
        applies = None if f.block == "common" else d == DISEASES.index(f.block)
        _recipe_values(b, f, d, applies)


def _drug_strings(key: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes and labels for the drug-list column; strings are built once per distinct key."""
    uniq, inv = np.unique(key, return_inverse=True)
    labels: list[str] = []
    n_extra = len(EXTRA_DRUGS) + 1
    for k in uniq.tolist():
        if k < 0:
            labels.append("")
            continue
        extra = k % n_extra
        mask, style = divmod(k // n_extra, 4)
        names = [DRUG_NAMES[drug][style] for j, drug in enumerate(IMMUNOMODULATORS) if mask >> j & 1]
        if extra:
            names.append(EXTRA_DRUGS[extra - 1])
        if not names:
            labels.append("none" if style != 3 else "无")
        elif style == 3:
            labels.append("、".join(names) if k % 2 else ";".join(names))
        else:
            labels.append("; ".join(names) if style == 1 else ";".join(names))
    codes = inv.ravel().astype(np.int32)
    if len(uniq) and uniq[0] < 0:
        codes = codes - 1  # the "" label sits at index 0; map it to -1 (empty)
        labels = labels[1:]
    return codes, labels


# ---------------------------------------------------------------------------
# data-entry problems (ground truth kept)
# ---------------------------------------------------------------------------

YES_TYPOS = ("yse", "Y es", "yess", "是", "ys")
NO_TYPOS = ("noo", "n0", "否", "nao", "mo")
TYPO_COLUMNS = (
    "consent_signed", "hbcab_pos", "tb_latent", "hrct_ggo", "prior_glucocorticoid",
    "prior_cyclophosphamide", "other_ctd", "hbsag_pos", "severe_heart_disease",
    "msa_positive", "anti_ssa_ro60_pos", "renal_hematuria_proteinuria",
)
# (kind, column, weight); every value produced is outside the column's plausible range
NUMERIC_SLIPS = (
    ("unit_slip", "hemoglobin_g_l", 0.16),   # g/dL instead of g/L
    ("unit_slip", "tbil_umol_l", 0.07),      # mg/dL instead of µmol/L
    ("unit_slip", "wbc_10e9_l", 0.06),       # cells/µL instead of ×10⁹/L
    ("unit_slip", "igg_mg_dl", 0.06),        # g/L instead of mg/dL
    ("unit_slip", "fvc_pct_pred", 0.04),     # fraction instead of %
    ("impossible", "age_years", 0.08),       # 212, birth year typed
    ("impossible", "egfr_ml_min_1_73m2", 0.05),  # negative
    ("impossible", "mrss", 0.05),            # > 51
    ("impossible", "haq_di", 0.03),          # > 3
    ("impossible", "essdai", 0.03),          # > 123
)
TYPO_WEIGHT = 0.37


def _inject(b: _Builder) -> list[tuple[int, str, str, str]]:
    """Overwrite a few cells with data-entry problems; returns (row0, column, value, kind)."""
    n = b.n
    r = b.rng("inject")
    k = int(round(n * INJECTION_RATE))
    if k == 0:
        return []
    rows = np.sort(r.choice(n, size=k, replace=False))
    weights = np.array([w for _, _, w in NUMERIC_SLIPS] + [TYPO_WEIGHT])
    kind_idx = _choice(r, weights, k)
    out: list[tuple[int, str, str, str]] = []
    u = r.random(k)
    pick = r.integers(0, 1 << 30, k)
    for j, (kind, col, _w) in enumerate(NUMERIC_SLIPS):
        sel = rows[kind_idx == j]
        vals = b.num[col][sel]
        ok = ~np.isnan(vals)
        sel, vals = sel[ok], vals[ok]
        uu = u[kind_idx == j][ok]
        if col == "hemoglobin_g_l":
            new = np.round(vals / 10.0, 1)
        elif col == "tbil_umol_l":
            new = np.round(np.minimum(vals, 16.0) / 17.1, 2)
        elif col == "wbc_10e9_l":
            new = np.round(vals * 1000.0, -1)
        elif col == "igg_mg_dl":
            new = np.round(vals / 100.0, 1)
        elif col == "fvc_pct_pred":
            new = np.round(vals / 100.0, 2)
        elif col == "age_years":
            new = np.where(uu < 0.5, 212.0, 2025.0 - vals)
        elif col == "egfr_ml_min_1_73m2":
            new = -vals
        elif col == "mrss":
            new = np.where(uu < 0.5, 75.0, 52.0 + np.floor(uu * 30))
        elif col == "haq_di":
            new = np.round(vals * 10 + 4, 1)
        else:  # essdai
            new = vals + 124.0
        b.num[col][sel] = new
        out += [(int(i), col, _fmt(v), kind) for i, v in zip(sel.tolist(), new.tolist(), strict=True)]
    # yes/no typos: a column among TYPO_COLUMNS where the cell is filled
    sel = rows[kind_idx == len(NUMERIC_SLIPS)]
    p = pick[kind_idx == len(NUMERIC_SLIPS)]
    filled = np.stack([b.yn[c][sel] >= 0 for c in TYPO_COLUMNS], axis=1)
    # first filled column at or after a random start, cycling
    start = p % len(TYPO_COLUMNS)
    order = (start[:, None] + np.arange(len(TYPO_COLUMNS))[None, :]) % len(TYPO_COLUMNS)
    cand = np.take_along_axis(filled, order, axis=1)
    has = cand.any(axis=1)
    col_idx = np.take_along_axis(order, cand.argmax(axis=1)[:, None], axis=1)[:, 0]
    for c in range(len(TYPO_COLUMNS)):
        m = has & (col_idx == c)
        if not m.any():
            continue
        name = TYPO_COLUMNS[c]
        rr = sel[m]
        truth = b.yn[name][rr]
        t = (p[m] // len(TYPO_COLUMNS)) % len(YES_TYPOS)
        text = np.where(truth == 1, np.take(YES_TYPOS, t), np.take(NO_TYPOS, t))
        b.typos[name] = (rr, text)
        out += [(int(i), name, str(v), "typo") for i, v in zip(rr.tolist(), text.tolist(), strict=True)]
    out.sort()
    return out


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


# ---------------------------------------------------------------------------
# assembling the frame
# ---------------------------------------------------------------------------


def _yn_array(codes: np.ndarray, style: int, upper: np.ndarray, typos) -> pa.Array:
    no, yes = YN_STYLES[style]
    labels = [no, yes, no.upper(), yes.upper()]
    c = codes.astype(np.int32)
    c = np.where((c >= 0) & upper, c + 2, c)
    if typos is not None:
        rows, text = typos
        uniq, inv = np.unique(text, return_inverse=True)
        c[rows] = len(labels) + inv.ravel()
        labels += uniq.tolist()
    return _dict_array(c, labels)


def _dict_array(codes: np.ndarray, labels: list[str]) -> pa.Array:
    idx = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(labels, pa.string())).cast(pa.string())


def _assemble(b: _Builder, columns: list[str]) -> pd.DataFrame:
    r = b.rng("yn-style")
    styles = {name: int(s) for name, s in zip(
        [f.name for f in FIELDS if f.kind == "yesno"],
        _choice(r, YN_STYLE_P, sum(f.kind == "yesno" for f in FIELDS)).tolist(), strict=True)}
    typos = b.typos
    arrays = []
    for name in columns:  # columns are released from the builder as they are converted
        f = FIELD_BY_NAME[name]
        if name in b.txt:
            arrays.append(b.txt.pop(name))
        elif f.kind == "yesno":
            upper = b.rng("yn-case:" + name).random(b.n) < 0.02
            arrays.append(_yn_array(b.yn.pop(name), styles[name], upper, typos.get(name)))
        elif name in b.cat:
            codes, labels = b.cat.pop(name)
            arrays.append(_dict_array(codes, labels))
        else:
            arrays.append(pa.array(b.num.pop(name), pa.float64(), from_pandas=True))
    table = pa.table(arrays, names=columns)
    del arrays
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    frame.index = pd.RangeIndex(b.n)
    return frame


def generate(
    n: int,
    seed: int,
    *,
    errors: bool = True,
    drop_columns: tuple[str, ...] | list[str] = (),
    profile: str = "full",
    return_injections: bool = False,
):
    """A synthetic raw candidate cohort of `n` rows, deterministic for `seed`.

    errors: inject ~0.5 % data-entry problems (unit slips, yes/no typos,
    impossible values). drop_columns / profile: leave out contract columns
    (a site that does not collect them). With return_injections=True returns
    (frame, injections) where injections has INJECTION_COLUMNS: 1-based data
    row, patient_id, column, value as written, kind (unit_slip / impossible /
    typo) and the loader issue kind expected (implausible / cell_error).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive whole number, not {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, not {seed!r}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    drop = set(PROFILES[profile]) | set(drop_columns)
    unknown = sorted(drop - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"not contract columns: {', '.join(unknown)}")
    if drop & {"patient_id", "disease"}:
        raise ValueError("patient_id and disease are required and cannot be dropped")
    b = _Builder(int(n), int(seed))
    d = _model(b)
    _from_recipes(b, d)
    injected = _inject(b) if errors else []
    columns = [c for c in FIELD_NAMES if c not in drop]
    frame = _assemble(b, columns)
    if not return_injections:
        return frame
    ids = frame["patient_id"].to_numpy()
    kept = [t for t in injected if t[1] not in drop]
    inj = pd.DataFrame({
        "row": np.array([t[0] + 1 for t in kept], dtype=np.int64),
        "patient_id": pd.Series([ids[t[0]] for t in kept], dtype="str"),
        "column": pd.Series([t[1] for t in kept], dtype="str"),
        "value": pd.Series([t[2] for t in kept], dtype="str"),
        "kind": pd.Series([t[3] for t in kept], dtype="str"),
        "expect": pd.Series(["cell_error" if t[3] == "typo" else "implausible" for t in kept], dtype="str"),
    }, columns=list(INJECTION_COLUMNS))
    return frame, inj


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.replace_schema_metadata(None)  # no pandas/version metadata in the file


def _csv_bytes(frame: pd.DataFrame, bom: bool = True) -> bytes:
    import csv

    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    table = _arrow_table(frame)
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(list(frame.columns))
    # quote nothing unless some text cell holds a delimiter, quote or line break
    special = any(
        pc.any(pc.match_substring_regex(col, r'[,"\r\n]')).as_py()
        for col in table.columns if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
    )
    body = io.BytesIO()
    pacsv.write_csv(table, body, pacsv.WriteOptions(
        include_header=False, quoting_style="needed" if special else "none"))
    return (b"\xef\xbb\xbf" if bom else b"") + head.getvalue().encode("utf-8") + body.getvalue()


# Row groups of 131,072 rows: readers that go parallel by row group (DuckDB, Spark) use every
# core; a 1M-row group was read by one thread (DuckDB engine at 1M: 18.3 s → 14.3 s on 2 cores).
ROW_GROUP_ROWS = 1 << 17


def write_cohort(frame: pd.DataFrame, path) -> Path:
    """Write a raw cohort as CSV (UTF-8 with BOM so Excel shows Chinese text),
    Parquet (zstd, no pandas metadata, byte-identical across runs) or xlsx,
    chosen by the file extension."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".csv":
        path.write_bytes(_csv_bytes(frame))
    elif ext == ".parquet":
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(
            _arrow_table(frame), sink,
            compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL,
            use_dictionary=True, write_statistics=True, row_group_size=ROW_GROUP_ROWS,
            store_schema=False,
        )
        path.write_bytes(sink.getvalue())
    elif ext == ".xlsx":
        if len(frame) > XLSX_MAX_ROWS:
            raise ValueError(f"xlsx holds at most {XLSX_MAX_ROWS:,} data rows; use .csv or .parquet")
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            frame.to_excel(xw, index=False, sheet_name="cohort")
    else:
        raise ValueError(f"unsupported output type {ext or '(no extension)'!r}; use .csv, .parquet or .xlsx")
    return path


CHUNK_ROWS = 1_000_000  # larger Parquet cohorts are generated and written a chunk at a time


def _chunk_seed(seed: int, k: int) -> int:
    if k == 0:
        return seed
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{k}".encode()).digest()[:4], "little")


def write_cohort_chunked(n: int, seed: int, path, chunk_rows: int = CHUNK_ROWS, **kw) -> tuple[Path, int]:
    """A Parquet cohort of `n` rows with bounded memory: chunk k (of `chunk_rows` rows) is
    `generate(rows, seed of (seed, k))`, written as its own row group; patient IDs run on
    across chunks. Identical to `write_cohort(generate(n, seed))` when n <= chunk_rows.
    Returns (path, number of injected problems)."""
    import pyarrow.parquet as pq

    path = Path(path)
    width = max(6, len(str(n)))
    writer = None
    injected = 0
    try:
        for k, start in enumerate(range(0, n, chunk_rows)):
            rows = min(chunk_rows, n - start)
            frame, inj = generate(rows, _chunk_seed(seed, k), return_injections=True, **kw)
            injected += len(inj)
            if n > chunk_rows:
                ids = np.strings.add("ZJU2-", np.strings.zfill(np.arange(start + 1, start + rows + 1).astype(np.str_),
                                                                width))
                frame["patient_id"] = pd.array(ids.astype(object), dtype="str")
            table = _arrow_table(frame)
            del frame
            if writer is None:
                writer = pq.ParquetWriter(
                    path, table.schema, compression=PARQUET_COMPRESSION,
                    compression_level=PARQUET_COMPRESSION_LEVEL, use_dictionary=True, write_statistics=True,
                    store_schema=False,
                )
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            del table
    finally:
        if writer is not None:
            writer.close()
    return path, injected


def write_bundle(directory) -> tuple[Path, Path]:
    """Regenerate the bundled data/cohort.parquet and data/cohort_sample.csv."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frame = generate(BUNDLE_N, BUNDLE_SEED)
    p1 = write_cohort(frame, directory / "cohort.parquet")
    p2 = write_cohort(frame.head(SAMPLE_N), directory / "cohort_sample.csv")
    return p1, p2


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line on stderr, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return v


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--format=omop" in argv or any(a == "--format" and b == "omop" for a, b in zip(argv, argv[1:], strict=False)):
        from .synth_omop import main as omop_main  # an OMOP CDM v5.4 DuckDB database instead

        return omop_main(argv)
    p = _Parser(
        prog="eligibility synth",
        description="Generate a synthetic candidate cohort (raw hospital-extract form).",
    )
    p.add_argument("--n", type=_positive, default=BUNDLE_N, help=f"rows (default {BUNDLE_N})")
    p.add_argument("--seed", type=_seed, default=BUNDLE_SEED, help=f"random seed (default {BUNDLE_SEED})")
    p.add_argument("-o", "--output", help="output file: .csv, .parquet or .xlsx")
    p.add_argument("--profile", choices=sorted(PROFILES), default="full",
                   help="site profile: which contract columns the extract has (default full)")
    p.add_argument("--drop", default="", help="comma-separated contract columns to leave out")
    p.add_argument("--clean", action="store_true", help="no injected data-entry problems")
    p.add_argument("--injections", help="also write the injected problems (ground truth) to this .csv")
    p.add_argument("--bundle", metavar="DIR",
                   help=f"regenerate DIR/cohort.parquet ({BUNDLE_N} rows, seed {BUNDLE_SEED}) "
                        f"and DIR/cohort_sample.csv (first {SAMPLE_N} rows)")
    args = p.parse_args(argv)
    if args.bundle:
        if args.output:
            p.error("use either --bundle DIR or -o FILE, not both")
        for path in write_bundle(args.bundle):
            print(path)
        return 0
    if not args.output:
        p.error("an output file is required (-o FILE.csv|.parquet|.xlsx)")
    ext = Path(args.output).suffix.lower()
    if ext not in (".csv", ".parquet", ".xlsx"):
        p.error(f"output must end in .csv, .parquet or .xlsx, not {ext or '(no extension)'!r}")
    if ext == ".xlsx" and args.n > XLSX_MAX_ROWS:
        p.error(f"xlsx holds at most {XLSX_MAX_ROWS:,} rows; use .csv or .parquet")
    if args.injections and not args.injections.lower().endswith(".csv"):
        p.error("--injections must be a .csv file")
    drop = tuple(c.strip() for c in args.drop.split(",") if c.strip())
    if ext == ".parquet" and args.n > CHUNK_ROWS and not args.injections:
        try:
            _, injected = write_cohort_chunked(args.n, args.seed, args.output, errors=not args.clean,
                                               drop_columns=drop, profile=args.profile)
        except ValueError as e:
            p.error(str(e))
        except OSError as e:
            p.exit(2, f"{p.prog}: error: cannot write {args.output}: {e.strerror or e}\n")
        print(f"{args.output}: {args.n:,} rows (generated {CHUNK_ROWS:,} at a time, "
              f"Parquet row groups of {ROW_GROUP_ROWS:,}), {injected} injected data-entry problems", file=sys.stderr)
        return 0
    try:
        frame, inj = generate(args.n, args.seed, errors=not args.clean, drop_columns=drop,
                              profile=args.profile, return_injections=True)
    except ValueError as e:
        p.error(str(e))
    try:
        write_cohort(frame, args.output)
        if args.injections:
            from .export import write_csv

            write_csv(inj, args.injections)  # Excel-safe, like every CSV this project writes
    except OSError as e:
        p.exit(2, f"{p.prog}: error: cannot write {args.output}: {e.strerror or e}\n")
    print(f"{args.output}: {len(frame):,} rows, {frame.shape[1]} columns, "
          f"{len(inj)} injected data-entry problems", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
