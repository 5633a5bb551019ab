"""`synth --format omop`: the synthetic cohort as an OMOP CDM v5.4 DuckDB database.

The clean synthetic cohort (eligibility.synth.generate, no injected errors) is
written as the warehouse would hold it at one as-of (screening) date:

- `person` (birth date giving `age_years` at the as-of date, Gender concept),
  `observation_period`, `death` (a few extra deceased persons), `cdm_source`;
- a vocabulary subset holding exactly the catalog's codes (eligibility/protocol/
  mapping.yaml) with their real vocabulary_id/concept_code pairs and display
  names, 'Maps to' rows from ICD-10-CM to SNOMED (and LOINC 33914-3 -> 77147-7,
  as in Athena), concept_ancestor rows (self rows, SNOMED parents, ATC classes
  -> RxNorm ingredients -> products). concept_ids are this generator's own
  numbering (a reader must resolve codes, never ids);
- `measurement`: per lab value, the value itself as the latest record within the
  catalog's look-back window (in one of the accepted units, e.g. haemoglobin in
  g/dL, bilirubin in mg/dL), older values (some in units the catalog does not
  know), and for some persons a newer value after the as-of date; a missing lab
  gets only stale values outside the window;
- `condition_occurrence` / `procedure_occurrence`: one record per yes fact, SNOMED
  (standard) or ICD-10-CM (source, mapped or unmapped), dated inside the window;
- `drug_exposure`: glucocorticoid, cyclophosphamide and immunomodulator
  exposures spanning `conventional_therapy_months`, G-CSF, IV/oral antibiotics
  (route concept), live vaccines (CVX) ending `days_since_*` days before the
  as-of date, plus courses after the as-of date.

Persons of the cohort's non-trial diseases get no indication code (the importer
lists them as left out). `expected_cohort()` gives, per mapped field, what the
importer must reproduce.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .fields import DISEASES
from .mapping import load_mapping
from .mapping.models import (
    CategoryRule,
    Code,
    ConditionRule,
    DrugListRule,
    DrugRule,
    LabRule,
    MalignancyRule,
)
from .omop_ddl import columns, create_sql

DEFAULT_AS_OF = dt.date(2026, 6, 30)
EHR_TYPE = 32817  # Type Concept "EHR"
N_DECEASED_PER_1000 = 5
DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25

# Synthetic vocabulary choices for the ICD-10-CM -> SNOMED 'Maps to' rows of the
# test CDM (approximating Athena; a code absent here stays unmapped, as happens).
ICD_MAPS_TO: dict[str, str] = {
    "M34.0": "89155008", "M34.1": "89155008", "M34.9": "89155008",
    "M33.10": "396230008", "M33.90": "396230008", "M33.20": "31384009",
    "M31.30": "195353004", "M31.31": "195353004", "M31.7": "239928004", "M30.1": "82275008",
    "M35.00": "83901003", "M35.01": "83901003", "M35.02": "83901003", "M35.09": "83901003",
    "D68.61": "26843008", "M32.9": "55464009", "M06.9": "69896004",
    "I50.9": "84114007", "I21.9": "22298006", "I20.9": "194828000", "I49.9": "698247007",
    "I48.91": "49436004", "A15.0": "56717001", "A15.9": "56717001", "A19.9": "56717001",
    "B20": "86406008", "Z21": "86406008", "B18.1": "61977001", "Z22.51": "61977001",
    "B18.2": "128302006", "B19.20": "50711007", "D84.9": "234532001", "D83.9": "234532001",
    "K74.60": "19943007", "K74.69": "19943007", "K70.30": "19943007",
    "D61.9": "306058006", "D46.9": "109995007", "C50.919": "254837009", "C18.9": "363406005",
    "C80.1": "363346000", "C44.91": "254701007", "D06.9": "92564006",
}
# SNOMED is-a (child -> parent) among catalog codes, for concept_ancestor
SNOMED_PARENT: dict[str, str] = {
    "88805009": "84114007", "49436004": "698247007", "254837009": "363346000",
    "363406005": "363346000", "254701007": "363346000", "61977001": "66071002",
    "128302006": "50711007", "93761005": "363346000", "109838007": "363346000", "94260004": "363346000",
}
# RxNorm ingredient -> products listed in the catalog (ingredient is their ancestor)
RX_PRODUCTS: dict[str, tuple[str, ...]] = {"723": ("562251",), "7984": ("834102",), "2231": ("309043",),
                                           "8640": ("312617",)}
LOINC_MAPS_TO = {"33914-3": "77147-7"}
# units the catalog does not accept, written on older values ("reported, not guessed")
FOREIGN_UNITS: dict[str, str] = {
    "hemoglobin_g_l": "mmol/L", "wbc_10e9_l": "10*6/L", "alt_u_l": "ukat/L", "ast_u_l": "ukat/L",
    "tbil_umol_l": "mmol/L", "egfr_ml_min_1_73m2": "mL/s", "iga_mg_dl": "umol/L",
    "igg_mg_dl": "umol/L", "weight_kg": "[oz_av]", "inr": "%", "pt_s": "min",
    "anc_10e9_l": "10*6/L",
}
# per lab field: (value unit, share) choices for the value the importer must find
VALUE_UNITS: dict[str, tuple[tuple[str, float], ...]] = {
    "hemoglobin_g_l": (("g/L", 0.6), ("g/dL", 0.4)),
    "wbc_10e9_l": (("10*9/L", 0.5), ("10*3/uL", 0.5)),
    "anc_10e9_l": (("10*9/L", 0.5), ("10*3/uL", 0.5)),
    "alt_u_l": (("U/L", 0.7), ("[IU]/L", 0.3)),
    "ast_u_l": (("U/L", 0.7), ("[IU]/L", 0.3)),
    "tbil_umol_l": (("umol/L", 0.6), ("mg/dL", 0.4)),
    "inr": (("{INR}", 0.7), ("", 0.3)),
    "pt_s": (("s", 1.0),),
    "egfr_ml_min_1_73m2": (("mL/min/{1.73_m2}", 1.0),),
    "iga_mg_dl": (("mg/dL", 0.7), ("g/L", 0.3)),
    "igg_mg_dl": (("mg/dL", 0.7), ("g/L", 0.3)),
    "weight_kg": (("kg", 0.9), ("[lb_av]", 0.1)),
}


# unrelated labs a warehouse also holds (not in the catalog): realistic table size for benchmarks
OTHER_LABS: tuple[tuple[str, str, str, float, float], ...] = (
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.9, 0.25),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 95.0, 15.0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.2, 0.4),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 140.0, 3.0),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 250.0, 60.0),
)


@dataclass
class Ids:
    """Running id counters when a CDM is written in chunks of persons."""

    person: int = 0  # cohort persons written so far
    dead: int = 0  # extra deceased persons written so far
    dead_base: int = 0  # person_id of the first deceased person, minus 1 (after every cohort person)
    records: dict[str, int] = field(default_factory=dict)

    def next_ids(self, table: str, k: int) -> np.ndarray:
        start = self.records.get(table, 0)
        self.records[table] = start + k
        return np.arange(start + 1, start + k + 1, dtype=np.int64)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


# ---------------------------------------------------------------------------
# vocabulary
# ---------------------------------------------------------------------------

_DOMAIN = {"lab": "Measurement", "condition": "Condition", "disease": "Condition", "category": "Condition",
           "malignancy": "Condition", "drug": "Drug", "drug_list": "Drug", "sex": "Gender"}


class Vocab:
    """The vocabulary subset: concept rows keyed by (vocabulary_id, concept_code)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict] = {}
        self.rel: list[tuple[int, int, str]] = []
        self.anc: set[tuple[int, int, int]] = set()

    def add(self, vocab: str, code: str, name: str, domain: str, cls: str, standard: str | None) -> int:
        key = (vocab, code)
        if key not in self.rows:
            self.rows[key] = dict(concept_id=1_000_000 + len(self.rows) + 1, concept_name=name[:255],
                                  domain_id=domain, vocabulary_id=vocab, concept_class_id=cls,
                                  standard_concept=standard, concept_code=code)
        return self.rows[key]["concept_id"]

    def id(self, vocab: str, code: str) -> int:
        return self.rows[(vocab, code)]["concept_id"]

    def standard_id(self, vocab: str, code: str) -> int:
        """The standard concept a record holds for this code (0 if unmapped non-standard)."""
        row = self.rows[(vocab, code)]
        if row["standard_concept"] == "S":
            return row["concept_id"]
        for a, b, r in self.rel:
            if a == row["concept_id"] and r == "Maps to":
                return b
        return 0


def build_vocab() -> Vocab:
    m = load_mapping()
    v = Vocab()
    v.rows[("None", "No matching concept")] = dict(
        concept_id=0, concept_name="No matching concept", domain_id="Metadata", vocabulary_id="None",
        concept_class_id="Undefined", standard_concept=None, concept_code="No matching concept")
    v.rows[("Type Concept", "OMOP4976890")] = dict(
        concept_id=EHR_TYPE, concept_name="EHR", domain_id="Type Concept", vocabulary_id="Type Concept",
        concept_class_id="Type Concept", standard_concept="S", concept_code="OMOP4976890")

    def add_code(c: Code, domain: str) -> int:
        cls = {"LOINC": "Lab Test", "SNOMED": "Clinical Finding", "ICD10CM": "ICD10 code",
               "RxNorm": "Ingredient", "ATC": f"ATC {len(c.code) if len(c.code) < 5 else 5}th",
               "CVX": "CVX", "Gender": "Gender", "UCUM": "Unit"}[c.vocabulary]
        if c.vocabulary == "RxNorm" and not c.expand:
            cls = "Clinical Drug"
        if c.vocabulary == "SNOMED" and domain == "Procedure":
            cls = "Procedure"
        standard = None if c.vocabulary == "ICD10CM" else ("C" if c.vocabulary == "ATC" else "S")
        if c.vocabulary == "LOINC" and c.code in LOINC_MAPS_TO:
            standard = None
        if c.vocabulary == "CVX":
            domain = "Drug"
        return v.add(c.vocabulary, c.code, c.display, domain, cls, standard)

    for rule in m.fields:
        domain = _DOMAIN.get(rule.kind, "Observation")
        for codes in rule.code_sets().values():
            for c in codes:
                d = "Procedure" if isinstance(rule, ConditionRule) and rule.tables[0] == "procedure" \
                    and c.vocabulary == "SNOMED" else domain
                add_code(c, d)
    for codes in m.routes.values():
        for c in codes:
            v.add(c.vocabulary, c.code, c.display, "Route", "Qualifier Value", "S")
    # products and ingredients the generator writes that the catalog names only by class
    v.add("RxNorm", "7984", "penicillin V", "Drug", "Ingredient", "S")
    v.add("RxNorm", "2231", "cephalexin", "Drug", "Ingredient", "S")
    for group in m.unit_groups.values():
        for unit in group:
            if unit:
                v.add("UCUM", unit, unit, "Unit", "Unit", "S")
    for unit in FOREIGN_UNITS.values():
        v.add("UCUM", unit, unit, "Unit", "Unit", "S")
    for code, name, unit, _mu, _sd in OTHER_LABS:
        v.add("LOINC", code, name, "Measurement", "Lab Test", "S")
        v.add("UCUM", unit, unit, "Unit", "Unit", "S")

    # Maps to (and the reverse 'Mapped from')
    for icd, snomed in ICD_MAPS_TO.items():
        if ("ICD10CM", icd) in v.rows and ("SNOMED", snomed) in v.rows:
            v.rel.append((v.id("ICD10CM", icd), v.id("SNOMED", snomed), "Maps to"))
    for src, dst in LOINC_MAPS_TO.items():
        v.rel.append((v.id("LOINC", src), v.id("LOINC", dst), "Maps to"))
    v.rel += [(b, a, "Mapped from") for a, b, r in list(v.rel) if r == "Maps to"]
    # ancestors: self rows for standard/classification concepts, then parents
    for row in v.rows.values():
        if row["standard_concept"] in ("S", "C"):
            v.anc.add((row["concept_id"], row["concept_id"], 0))
    for child, parent in SNOMED_PARENT.items():
        v.anc.add((v.id("SNOMED", parent), v.id("SNOMED", child), 1))
    for ing, products in RX_PRODUCTS.items():
        for p in products:
            v.anc.add((v.id("RxNorm", ing), v.id("RxNorm", p), 1))
    atc_members = {
        "H02AB": ("8640", "8638", "6902", "3264", "5492"),
        "L03AA": ("68442", "338036"),
        "J01": ("723", "2193", "11124", "2551", "82122", "18631", "3640", "7984", "2231"),
    }
    for atc, ings in atc_members.items():
        for ing in ings:
            v.anc.add((v.id("ATC", atc), v.id("RxNorm", ing), 2))
            for p in RX_PRODUCTS.get(ing, ()):
                v.anc.add((v.id("ATC", atc), v.id("RxNorm", p), 3))
    return v


def vocab_tables(v: Vocab) -> dict[str, pd.DataFrame]:
    start, end = dt.date(1970, 1, 1), dt.date(2099, 12, 31)
    concept = pd.DataFrame(list(v.rows.values()))
    concept["valid_start_date"], concept["valid_end_date"], concept["invalid_reason"] = start, end, None
    rel = pd.DataFrame(v.rel, columns=["concept_id_1", "concept_id_2", "relationship_id"])
    rel["valid_start_date"], rel["valid_end_date"], rel["invalid_reason"] = start, end, None
    anc = pd.DataFrame(sorted(v.anc), columns=["ancestor_concept_id", "descendant_concept_id",
                                                "min_levels_of_separation"])
    anc["max_levels_of_separation"] = anc["min_levels_of_separation"]
    return {"concept": concept, "concept_relationship": rel, "concept_ancestor": anc}


# ---------------------------------------------------------------------------
# the cohort, normalised
# ---------------------------------------------------------------------------


def source_cohort(n: int, seed: int) -> pd.DataFrame:
    """The clean synthetic cohort, parsed to contract types (bool yes/no, floats,
    canonical disease and drug-list strings)."""
    from .loader import validate_frame
    from .synth import generate

    return validate_frame(generate(n, seed, errors=False), "synthetic").frame


def expected_cohort(src: pd.DataFrame) -> pd.DataFrame:
    """What import-omop must reproduce from the CDM of `src` (same row order):
    values for the mapped fields, with the catalog's absence rules applied."""
    m = load_mapping()
    out = pd.DataFrame({"patient_id": src["patient_id"].astype("string")})
    trial = src["disease"].isin(list(DISEASES))
    out["disease"] = src["disease"].where(trial)
    out["age_years"] = src["age_years"]
    out["sex"] = src["sex"].astype("string")
    for rule in m.fields:
        f = rule.field
        if isinstance(rule, LabRule):
            out[f] = src[f].astype("float64")
        elif isinstance(rule, ConditionRule):
            yes = src[f].fillna(False).astype(bool)
            absent = rule.absent or m.defaults.absent
            flags = yes.to_numpy().astype(object)
            if absent != "no":
                flags[~yes.to_numpy()] = None  # no record: unknown
            out[f] = pd.array(flags, dtype="boolean")
        elif isinstance(rule, DrugRule) and rule.value == "ever":
            out[f] = pd.array(src[f].fillna(False).astype(bool), dtype="boolean")
        elif isinstance(rule, DrugRule):
            out[f] = src[f].astype("float64")
        elif isinstance(rule, DrugListRule):
            # categories without an RxNorm ingredient in the catalog are not written to the CDM
            mappable = {c for c, codes in rule.categories.items() if codes[0].vocabulary == "RxNorm"}
            lists = src[f].astype("string").fillna("none").to_numpy(dtype=object)
            kept = [";".join(d for d in s.split(";") if d in mappable) for s in lists]
            out[f] = pd.array([k or "none" for k in kept], dtype="string")
        elif isinstance(rule, MalignancyRule):
            out[f] = src[f].astype("float64")
            has = src[f].notna()
            exc = src["malignancy_excepted"].fillna(False).astype(bool)
            out["malignancy_excepted"] = pd.array(np.where(has, exc, None), dtype="boolean")
        elif isinstance(rule, CategoryRule) and rule.kind == "category":
            out[f] = src[f].astype("string")
    # AAV without a recorded subtype is coded as MPA (the generator needs some AAV code)
    out["aav_subtype"] = out["aav_subtype"].mask((out["disease"] == "AAV") & out["aav_subtype"].isna(), "MPA")
    # months of conventional therapy: written as exposure spans only when some drug is mappable
    months = src["conventional_therapy_months"].astype("float64").fillna(0.0)
    any_drug = out["prior_glucocorticoid"].fillna(False) | out["prior_cyclophosphamide"].fillna(False) \
        | (out["prior_immunomodulators"] != "none")
    out["conventional_therapy_months"] = months.where(any_drug.to_numpy(dtype=bool), 0.0)
    return out


# storage precision of value_as_number (NUMERIC = DECIMAL(18,3) in the DuckDB DDL): a value
# written in another unit comes back within this many contract units times the factor
STORED_DECIMALS = 3


# ---------------------------------------------------------------------------
# the CDM
# ---------------------------------------------------------------------------


class _Rows:
    """Column lists of one event table, appended in vectorised blocks."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **cols) -> None:
        n = max(len(np.atleast_1d(c)) for c in cols.values())
        self.parts.append({k: (np.full(n, c) if np.ndim(c) == 0 else np.asarray(c)) for k, c in cols.items()})

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame()
        keys = list(dict.fromkeys(k for p in self.parts for k in p))
        return pd.DataFrame({k: np.concatenate([p[k] if k in p else np.full(len(next(iter(p.values()))), None)
                                                for p in self.parts]) for k in keys})


def _days(as_of: dt.date, back: np.ndarray) -> np.ndarray:
    return (np.datetime64(as_of, "D") - back.astype("timedelta64[D]")).astype("datetime64[D]")


def _pick(rng: np.random.Generator, ids: list[int], n: int) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64)[rng.integers(0, len(ids), n)]


def build_cdm(src: pd.DataFrame, *, seed: int, as_of: dt.date, vocab: Vocab | None = None,
              ids: Ids | None = None, with_vocabulary: bool = True, other_labs: int = 0,
              ) -> dict[str, pd.DataFrame]:
    """The CDM tables of `src`'s persons (plus a few deceased ones). `ids` continues the
    numbering of earlier chunks; `other_labs` adds that many unrelated lab rows per person."""
    m = load_mapping()
    v = vocab or build_vocab()
    n = len(src)
    ids = ids or Ids(dead_base=n)
    pid = ids.person + np.arange(1, n + 1, dtype=np.int64)
    tables: dict[str, pd.DataFrame] = vocab_tables(v) if with_vocabulary else {}

    # ---- person, observation period, death --------------------------------
    r = _rng(seed, "omop:person")
    n_dead = max(1, n * N_DECEASED_PER_1000 // 1000)
    age = src["age_years"].to_numpy(dtype=np.float64)
    age = np.where(np.isnan(age), 50, age)
    dead_age = r.integers(30, 80, n_dead).astype(np.float64)
    all_age = np.concatenate([age, dead_age])
    dead_pid = ids.dead_base + ids.dead + np.arange(1, n_dead + 1, dtype=np.int64)
    all_pid = np.concatenate([pid, dead_pid])
    # birth date with completed years == age at as_of: as_of - age years - 0..364 days
    birth_year_day = np.datetime64(as_of, "D") - r.integers(0, 364, n + n_dead).astype("timedelta64[D]")
    by = birth_year_day.astype("datetime64[Y]").astype(int) + 1970 - all_age.astype(int)
    md = (birth_year_day - birth_year_day.astype("datetime64[Y]").astype("datetime64[D]")).astype(int)
    birth = (by - 1970).astype("datetime64[Y]").astype("datetime64[D]") + np.minimum(md, 364)
    # Feb 29 in a non-leap year would roll over: keep it a valid date and the age exact
    bdt = pd.DatetimeIndex(birth)
    sex = np.concatenate([src["sex"].astype("string").fillna("").to_numpy(dtype=object),
                          r.choice(np.array(["F", "M"], dtype=object), n_dead)])
    gender = np.select([sex == "F", sex == "M"], [v.id("Gender", "F"), v.id("Gender", "M")], 0)
    names = np.concatenate([src["patient_id"].astype(str).to_numpy(dtype=object),
                          np.array([f"DEAD-{ids.dead + i:06d}" for i in range(1, n_dead + 1)], dtype=object)])
    tables["person"] = pd.DataFrame({
        "person_id": all_pid, "gender_concept_id": gender, "year_of_birth": bdt.year,
        "month_of_birth": bdt.month, "day_of_birth": bdt.day, "birth_datetime": bdt,
        "race_concept_id": 0, "ethnicity_concept_id": 0, "person_source_value": names,
        "gender_source_value": sex,
    })
    op_start = _days(as_of, r.integers(5 * 365, 15 * 365, n + n_dead))
    op_end = _days(as_of, -r.integers(0, 200, n + n_dead))
    tables["observation_period"] = pd.DataFrame({
        "observation_period_id": all_pid, "person_id": all_pid, "observation_period_start_date": op_start,
        "observation_period_end_date": op_end, "period_type_concept_id": EHR_TYPE})
    tables["death"] = pd.DataFrame({
        "person_id": dead_pid, "death_date": _days(as_of, r.integers(1, 900, n_dead)),
        "death_type_concept_id": EHR_TYPE})

    # ---- measurements -------------------------------------------------------
    meas = _Rows()
    for rule in m.fields:
        if not isinstance(rule, LabRule):
            continue
        f = rule.field
        r = _rng(seed, "omop:lab:" + f)
        val = src[f].to_numpy(dtype=np.float64)
        has = ~np.isnan(val)
        code_ids = [v.id("LOINC", c.code) for c in rule.codes]
        std_ids = [v.standard_id("LOINC", c.code) for c in rule.codes]
        group = m.unit_groups[rule.unit]
        units = VALUE_UNITS[f]
        u_idx = r.choice(len(units), n, p=[p for _u, p in units])
        unit_code = np.array([u for u, _p in units], dtype=object)[u_idx]
        fac = np.array([group[u] for u, _p in units])[u_idx]
        k = r.integers(0, len(code_ids), n)
        look = rule.lookback_days
        back = r.integers(0, max(1, look // 2), n)
        # the value: latest within the window
        sel = has
        loinc = np.array([c.code for c in rule.codes], dtype=object)
        _meas(meas, v, pid[sel], np.asarray(std_ids)[k[sel]], np.asarray(code_ids)[k[sel]],
              loinc[k[sel]], _days(as_of, back[sel]), val[sel] / fac[sel], unit_code[sel])
        # older values (1-2), some in a foreign unit
        for j in range(2):
            sel = r.random(n) < (0.8 if j == 0 else 0.4)
            older = back + r.integers(1, 3 * look, n)
            older = np.where(has, older, np.maximum(older, look + 1))  # missing lab: only stale values
            noise = np.where(np.isnan(val), np.nanmedian(val) if has.any() else 1.0, val) * r.uniform(0.7, 1.3, n)
            foreign = r.random(n) < 0.15
            ucode = np.where(foreign, FOREIGN_UNITS[f], unit_code)
            ufac = np.where(foreign, 1.0, fac)
            _meas(meas, v, pid[sel], np.asarray(std_ids)[k[sel]], np.asarray(code_ids)[k[sel]],
                  loinc[k[sel]], _days(as_of, older[sel]),
                  np.round(noise[sel] / ufac[sel], 4), ucode[sel])
        # a newer value after the as-of date (must be ignored)
        sel = r.random(n) < 0.3
        _meas(meas, v, pid[sel], np.asarray(std_ids)[k[sel]], np.asarray(code_ids)[k[sel]],
              loinc[k[sel]], _days(as_of, -r.integers(1, 60, n)[sel]),
              np.round(np.where(has, val, 1.0)[sel] * 1.5 / fac[sel], 4), unit_code[sel])
    for j in range(other_labs):
        r = _rng(seed, f"omop:other_lab:{j}")
        k = r.integers(0, len(OTHER_LABS), n)
        lab_codes = np.array([c for c, *_ in OTHER_LABS], dtype=object)[k]
        cids = np.array([v.id("LOINC", c) for c, *_ in OTHER_LABS], dtype=np.int64)[k]
        mu = np.array([x[3] for x in OTHER_LABS])[k]
        sd = np.array([x[4] for x in OTHER_LABS])[k]
        lab_units = np.array([x[2] for x in OTHER_LABS], dtype=object)[k]
        _meas(meas, v, pid, cids, cids, lab_codes, _days(as_of, r.integers(-30, 3 * 365, n)),
              np.round(mu + sd * r.standard_normal(n), 2), lab_units)
    mf = meas.frame()
    mf.insert(0, "measurement_id", ids.next_ids("measurement", len(mf)))
    mf["measurement_type_concept_id"] = EHR_TYPE
    tables["measurement"] = mf

    # ---- conditions and procedures -------------------------------------------
    cond, proc = _Rows(), _Rows()
    disease = src["disease"].astype("string").fillna("").to_numpy(dtype=object)
    for rule in m.fields:
        r = _rng(seed, "omop:cond:" + rule.field)
        if isinstance(rule, CategoryRule):
            if rule.kind == "disease":
                cat = disease
            else:
                cat = src[rule.field].astype("string").fillna("").to_numpy(dtype=object)
            for name, codes in rule.categories.items():
                sel = cat == name
                if rule.kind == "category" or not sel.any():
                    continue
                if name == "AAV":  # subtype-specific code, so the subtype is coded too
                    continue
                _cond(cond, v, r, codes, pid[sel], _days(as_of, r.integers(60, 3000, sel.sum())))
            if rule.kind == "category":  # AAV codes come from the subtype (GPA/MPA/EGPA)
                aav = disease == "AAV"
                for name, codes in rule.categories.items():
                    sel = aav & (cat == name)
                    _cond(cond, v, r, codes, pid[sel], _days(as_of, r.integers(60, 3000, sel.sum())))
                sel = aav & (cat == "")
                _cond(cond, v, r, rule.categories["MPA"], pid[sel], _days(as_of, r.integers(60, 3000, sel.sum())))
        elif isinstance(rule, ConditionRule):
            yes = src[rule.field].fillna(False).to_numpy(dtype=bool)
            win = int(rule.lookback_years * DAYS_PER_YEAR) if rule.lookback_years else 20 * 365
            target = proc if rule.tables[0] == "procedure" else cond
            _cond(target, v, r, rule.codes, pid[yes], _days(as_of, r.integers(0, max(1, win - 1), yes.sum())))
            if rule.lookback_years:  # an old, resolved episode outside the window (must not count)
                old = ~yes & (r.random(n) < 0.02)
                start = _days(as_of, r.integers(win + 400, win + 2000, old.sum()))
                _cond(target, v, r, rule.codes, pid[old], start, end=start + np.timedelta64(30, "D"))
        elif isinstance(rule, MalignancyRule):
            years = src[rule.field].to_numpy(dtype=np.float64)
            has = ~np.isnan(years)
            exc = src["malignancy_excepted"].fillna(False).to_numpy(dtype=bool)
            back = np.round(np.nan_to_num(years) * DAYS_PER_YEAR).astype(np.int64)
            main = [c for c in rule.codes if c.code != "363346000"]  # a specific cancer
            sel = has & exc
            _cond(cond, v, r, rule.excepted, pid[sel], _days(as_of, back[sel]))
            sel = has & ~exc
            _cond(cond, v, r, tuple(main), pid[sel], _days(as_of, back[sel]))
            # an older excepted skin cancer before a later non-excepted one changes nothing
            sel = has & ~exc & (r.random(n) < 0.2)
            _cond(cond, v, r, rule.excepted[:1], pid[sel], _days(as_of, back[sel] + 400))
    for name, rows in (("condition_occurrence", cond), ("procedure_occurrence", proc)):
        fr = rows.frame()
        if name == "procedure_occurrence":
            fr = fr.rename(columns={"concept_id": "procedure_concept_id", "source_id": "procedure_source_concept_id",
                                    "source_value": "procedure_source_value", "start": "procedure_date",
                                    "end": "procedure_end_date"})
            fr.insert(0, "procedure_occurrence_id", ids.next_ids(name, len(fr)))
            fr["procedure_type_concept_id"] = EHR_TYPE
        else:
            fr = fr.rename(columns={"concept_id": "condition_concept_id", "source_id": "condition_source_concept_id",
                                    "source_value": "condition_source_value", "start": "condition_start_date",
                                    "end": "condition_end_date"})
            fr.insert(0, "condition_occurrence_id", ids.next_ids(name, len(fr)))
            fr["condition_type_concept_id"] = EHR_TYPE
        tables[name] = fr

    tables["drug_exposure"] = _drugs(src, v, pid, seed, as_of, ids)
    tables["observation"] = pd.DataFrame()
    tables["visit_occurrence"] = pd.DataFrame()
    ids.person += n
    ids.dead += n_dead
    if not with_vocabulary:
        return tables
    tables["cdm_source"] = pd.DataFrame([{
        "cdm_source_name": "eligibility synthetic CDM", "cdm_source_abbreviation": "elig-synth",
        "cdm_holder": "synthetic", "source_release_date": as_of, "cdm_release_date": as_of,
        "cdm_version": "5.4", "cdm_version_concept_id": 0, "vocabulary_version": "catalog subset"}])
    return tables


def _meas(rows: _Rows, v: Vocab, pid, std, src_id, codes, date, value, unit) -> None:
    if len(pid) == 0:
        return
    unit = np.asarray(unit, dtype=object)
    names, inv = np.unique(unit.astype(str), return_inverse=True)
    uid = np.array([v.id("UCUM", u) if u else 0 for u in names], dtype=np.int64)[inv.ravel()]
    rows.add(person_id=pid, measurement_concept_id=std, measurement_date=date,
             measurement_datetime=date.astype("datetime64[s]") + np.timedelta64(8 * 3600, "s"),
             value_as_number=value.astype(np.float64), unit_concept_id=uid,
             measurement_source_value=np.asarray(codes, dtype=object), measurement_source_concept_id=src_id,
             unit_source_value=unit)


def _cond(rows: _Rows, v: Vocab, r, codes, pid, start, end=None) -> None:
    if len(pid) == 0:
        return
    k = r.integers(0, len(codes), len(pid))
    src = np.array([v.id(c.vocabulary, c.code) for c in codes], dtype=np.int64)[k]
    std = np.array([v.standard_id(c.vocabulary, c.code) for c in codes], dtype=np.int64)[k]
    val = np.array([c.code for c in codes], dtype=object)[k]
    end = np.full(len(pid), np.datetime64("NaT"), dtype="datetime64[D]") if end is None else end
    rows.add(person_id=pid, concept_id=std, start=start, end=end, source_value=val, source_id=src)


def _drugs(src: pd.DataFrame, v: Vocab, pid: np.ndarray, seed: int, as_of: dt.date, ids: Ids) -> pd.DataFrame:
    m = load_mapping()
    rows = _Rows()
    n = len(src)
    r = _rng(seed, "omop:drugs")
    oral, iv = v.id("SNOMED", "26643006"), v.id("SNOMED", "47625008")

    def add(sel, code: str, vocab: str, start, end, route=0, route_src="") -> None:
        if not np.any(sel):
            return
        cid = v.id(vocab, code)
        rows.add(person_id=pid[sel], drug_concept_id=cid, drug_exposure_start_date=start[sel],
                 drug_exposure_end_date=end[sel], route_concept_id=route, drug_source_value=code,
                 drug_source_concept_id=cid, route_source_value=route_src)

    # conventional therapy: one span of `months` ending shortly before as-of,
    # each drug exposure inside it; the first drug covers all of it
    months = src["conventional_therapy_months"].to_numpy(dtype=np.float64)
    span = np.round(np.nan_to_num(months) * DAYS_PER_MONTH).astype(np.int64)
    gap = r.integers(1, 30, n)
    end = _days(as_of, gap)
    start = end - span.astype("timedelta64[D]")
    gc = src["prior_glucocorticoid"].fillna(False).to_numpy(dtype=bool)
    cyc = src["prior_cyclophosphamide"].fillna(False).to_numpy(dtype=bool)
    drugs = src["prior_immunomodulators"].astype("string").fillna("").to_numpy(dtype=object)
    covered = np.zeros(n, dtype=bool)
    listing = next(rule for rule in m.fields if isinstance(rule, DrugListRule))
    cats = [(name, codes[0]) for name, codes in listing.categories.items() if codes[0].vocabulary == "RxNorm"]
    spans = [("prednisone", gc, "8640", oral), ("cyclophosphamide", cyc, "3002", iv)]
    uniq, inv = np.unique(drugs.astype(str), return_inverse=True)
    inv = inv.ravel()
    for name, code in cats:
        has = np.array([name in s.split(";") for s in uniq], dtype=bool)[inv]
        spans.append((name, has, code.code, oral if name != "rituximab" else iv))
    for _name, has, rx, route in spans:
        first = has & ~covered & (span > 0)
        add(first, rx, "RxNorm", start, end, route)
        later = has & covered & (span > 0)
        mid = start + (span * r.uniform(0.2, 0.6, n)).astype("timedelta64[D]")
        add(later, rx, "RxNorm", mid, end - (span * 0.1).astype("timedelta64[D]"), route)
        none_span = has & (span == 0)  # a drug without a duration: a single day
        add(none_span, rx, "RxNorm", end, end, route)
        covered |= has & (span > 0)

    def days_since(field: str, codes: list[tuple[str, str]], route: int, length: int) -> None:
        d = src[field].to_numpy(dtype=np.float64)
        has = ~np.isnan(d)
        e = _days(as_of, np.nan_to_num(d).astype(np.int64))
        s = e - np.timedelta64(length, "D")
        k = r.integers(0, len(codes), n)
        for i, (vocab, code) in enumerate(codes):
            add(has & (k == i), code, vocab, s, e, route)

    days_since("days_since_gcsf", [("RxNorm", "68442"), ("RxNorm", "338036")], 0, 4)
    days_since("days_since_iv_antibiotics", [("RxNorm", "2193"), ("RxNorm", "11124")], iv, 7)
    days_since("days_since_oral_antibiotics", [("RxNorm", "723"), ("RxNorm", "562251"), ("RxNorm", "834102")],
               oral, 7)
    days_since("days_since_live_vaccine", [("CVX", "03"), ("CVX", "121"), ("CVX", "37")], 0, 0)
    # noise: an oral antibiotic given IV-route-less... and courses after the as-of date
    after = r.random(n) < 0.05
    s = _days(as_of, -r.integers(1, 90, n))
    add(after, "2193", "RxNorm", s, s + np.timedelta64(5, "D"), iv)
    add(after, "8640", "RxNorm", s, s + np.timedelta64(30, "D"), oral)
    fr = rows.frame()
    fr.insert(0, "drug_exposure_id", ids.next_ids("drug_exposure", len(fr)))
    fr["drug_type_concept_id"] = EHR_TYPE
    return fr


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def write_cdm(tables: dict[str, pd.DataFrame], path, *, append: bool = False) -> Path:
    """Create the CDM file with every table (or, with `append`, add rows to it)."""
    import duckdb

    path = Path(path)
    if path.exists() and not append:
        path.unlink()
    con = duckdb.connect(str(path))
    try:
        for name, frame in tables.items():
            if not append:
                con.execute(create_sql(name))
            if frame is None or frame.empty:
                continue
            cols = [c for c in columns(name) if c in frame.columns]
            arrow = pa.Table.from_pandas(frame[cols], preserve_index=False)
            con.register("_src", arrow)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _src")
            con.unregister("_src")
    finally:
        con.close()
    return path


def generate_cdm(n: int, seed: int, path, *, as_of: dt.date = DEFAULT_AS_OF, chunk: int = 100_000,
                 other_labs: int = 0) -> Path:
    """The synthetic cohort of `n` persons as a CDM file, built `chunk` persons at a time."""
    src = source_cohort(n, seed)
    v = build_vocab()
    ids = Ids(dead_base=n)
    for i, a in enumerate(range(0, n, chunk)):
        part = src.iloc[a:a + chunk].reset_index(drop=True)
        tables = build_cdm(part, seed=seed if i == 0 else seed * 1000 + i, as_of=as_of, vocab=v, ids=ids,
                           with_vocabulary=i == 0, other_labs=other_labs)
        write_cdm(tables, path, append=i > 0)
        del tables
    return Path(path)


# ---------------------------------------------------------------------------
# CLI: python -m eligibility synth --format omop --n N -o cdm.duckdb
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from .synth import BUNDLE_N, BUNDLE_SEED, _Parser
    from .synth import _positive as positive

    def iso(text: str) -> dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None

    p = _Parser(prog="eligibility synth --format omop",
                description="Write the synthetic cohort as an OMOP CDM v5.4 DuckDB database.")
    p.add_argument("--format", choices=["omop"], required=True)
    p.add_argument("--n", type=positive, default=BUNDLE_N, help=f"persons of the cohort (default {BUNDLE_N})")
    p.add_argument("--seed", type=positive, default=BUNDLE_SEED, help=f"random seed (default {BUNDLE_SEED})")
    p.add_argument("-o", "--output", required=True, help="DuckDB file to write (.duckdb); replaced if it exists")
    p.add_argument("--other-labs", type=int, default=0,
                   help="unrelated lab rows per person (warehouse-sized measurement table; default 0)")
    p.add_argument("--as-of", type=iso, default=DEFAULT_AS_OF,
                   help=f"the screening date the CDM is built around (default {DEFAULT_AS_OF})")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.output)
    if out.suffix.lower() not in (".duckdb", ".db"):
        p.error(f"output must end in .duckdb, not {out.suffix or '(no extension)'!r}")
    try:
        generate_cdm(args.n, args.seed, out, as_of=args.as_of, other_labs=max(0, args.other_labs))
    except OSError as e:
        p.exit(2, f"{p.prog}: error: cannot write {out}: {e.strerror or e}\n")
    print(f"{out}: OMOP CDM v5.4 with {args.n:,} cohort persons (+ deceased), as of {args.as_of}",
          file=sys.stderr)
    return 0
