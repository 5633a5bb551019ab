"""OMOP CDM import: round trip from the synthetic CDM, renumbered concept ids, a CDM
from someone else's ETL, window boundaries and the command line."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.cli import main as cli_main
from eligibility.importers.omop import _union_months, connect, import_omop
from eligibility.mapping import load_mapping, side_paths
from eligibility.mapping.models import LabRule
from eligibility.omop_ddl import CONCEPT_ID_COLUMNS, TABLES, columns, create_sql
from eligibility.synth_omop import (
    DEFAULT_AS_OF,
    STORED_DECIMALS,
    build_cdm,
    expected_cohort,
    source_cohort,
    write_cdm,
)

AS_OF = DEFAULT_AS_OF


def _tolerance(field: str) -> float:
    """value_as_number is DECIMAL(18,3): a value stored in another unit is exact to
    half a unit in the 3rd decimal times the conversion factor."""
    rule = next(r for r in load_mapping().fields if r.field == field)
    if not isinstance(rule, LabRule):
        return 1e-9
    biggest = max(load_mapping().unit_groups[rule.unit].values())
    return biggest * 0.5 * 10.0**-STORED_DECIMALS + 1e-9


def _compare(expected: pd.DataFrame, got: pd.DataFrame) -> dict[str, int]:
    """Column -> number of patients whose imported value differs from the expected one."""
    exp = expected.set_index("patient_id").loc[got["patient_id"]]
    g = got.set_index("patient_id")
    bad = {}
    for c in exp.columns:
        e, v = exp[c], g[c]
        if e.dtype == "boolean":
            e = e.map({True: "yes", False: "no"})
        if pd.api.types.is_float_dtype(e) or pd.api.types.is_integer_dtype(e):
            ok = (e.isna() & v.isna()) | ((e.astype(float) - v.astype(float)).abs() <= _tolerance(c))
        else:
            ok = (e.isna() & v.isna()) | (e.astype(object) == v.astype(object))
        n = int((~ok.fillna(False)).sum())
        if n:
            bad[c] = n
    return bad


@pytest.fixture(scope="module")
def round_trip_10k(tmp_path_factory):
    src = source_cohort(10_000, 11)
    path = tmp_path_factory.mktemp("cdm") / "cdm.duckdb"
    write_cdm(build_cdm(src, seed=11, as_of=AS_OF), path)
    result = import_omop(connect(str(path)), as_of=AS_OF)
    return src, result


@pytest.fixture(scope="module")
def small_cdm(tmp_path_factory):
    src = source_cohort(800, 5)
    path = tmp_path_factory.mktemp("cdm") / "small.duckdb"
    write_cdm(build_cdm(src, seed=5, as_of=AS_OF), path)
    return src, path


def test_round_trip_10k_reproduces_every_mapped_field(round_trip_10k):
    src, result = round_trip_10k
    expected = expected_cohort(src)
    mapped = {r.field for r in load_mapping().fields} | {"malignancy_excepted"}
    assert mapped <= set(result.cohort.columns)
    assert _compare(expected, result.cohort) == {}
    # the values are not trivially empty: every mapped field is filled for someone
    for f in mapped:
        assert result.cohort[f].notna().any(), f
    assert (result.cohort["screening_date"] == AS_OF.isoformat()).all()


def test_round_trip_accounts_for_every_person(round_trip_10k):
    src, result = round_trip_10k
    left = result.left_out
    imported = set(result.cohort["patient_id"])
    assert not imported & set(left["patient_id"])
    non_trial = src.loc[~src["disease"].isin(["SSc", "IIM", "AAV", "SjS", "APS"]), "patient_id"]
    assert set(non_trial) <= set(left["patient_id"])
    assert set(src["patient_id"]) - set(non_trial) == imported
    dead = left[left["patient_id"].str.startswith("DEAD-")]
    assert len(dead) > 0 and (dead["reason"] == "deceased on or before the as-of date").all()
    assert len(imported) + len(left) == len(src) + len(dead)


def test_round_trip_provenance_gives_source_code_date_and_original_unit(round_trip_10k):
    _src, result = round_trip_10k
    prov = result.provenance
    hb = prov[prov["field"] == "hemoglobin_g_l"]
    assert set(hb["original_unit"]) == {"g/L", "g/dL"}
    assert (hb["concept_code"] == "718-7").all() and (hb["source_table"] == "measurement").all()
    in_gdl = hb[hb["original_unit"] == "g/dL"]
    assert np.allclose(in_gdl["value"].astype(float), in_gdl["original_value"].astype(float) * 10, atol=1e-6)
    dates = pd.to_datetime(hb["date"])
    assert (dates <= pd.Timestamp(AS_OF)).all() and (dates > pd.Timestamp(AS_OF) - pd.Timedelta(days=90)).all()
    # every filled lab cell has exactly one provenance row
    c = result.cohort
    assert len(hb) == c["hemoglobin_g_l"].notna().sum()
    merged = hb.merge(c[["patient_id", "hemoglobin_g_l"]], on="patient_id")
    assert np.allclose(merged["value"].astype(float), merged["hemoglobin_g_l"], atol=1e-6)
    dx = prov[prov["field"] == "disease"]
    assert set(dx["vocabulary_id"]) == {"SNOMED", "ICD10CM"}
    assert set(dx["source_table"]) == {"condition_occurrence"}


def test_renumbering_every_concept_id_gives_the_same_cohort(small_cdm, tmp_path):
    src, path = small_cdm
    before = import_omop(connect(str(path)), as_of=AS_OF)
    moved = tmp_path / "renumbered.duckdb"
    shutil.copy(path, moved)
    con = duckdb.connect(str(moved))
    for table, cols in CONCEPT_ID_COLUMNS.items():
        for col in cols:  # 0 stays "No matching concept"
            con.execute(f"UPDATE {table} SET {col} = {col} * 7 + 90000000 WHERE {col} <> 0")
    old = con.execute("SELECT min(concept_id) FROM concept WHERE concept_id <> 0").fetchone()[0]
    con.close()
    assert old > 90_000_000
    after = import_omop(connect(str(moved)), as_of=AS_OF)
    pd.testing.assert_frame_equal(before.cohort, after.cohort)
    key = list(before.provenance.columns)

    def rows(frame):
        return frame.astype(str).sort_values(key).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(before.provenance), rows(after.provenance))
    pd.testing.assert_frame_equal(before.report, after.report)
    pd.testing.assert_frame_equal(before.left_out, after.left_out)
    assert _compare(expected_cohort(src), after.cohort) == {}


# ---------------------------------------------------------------------------
# a CDM by someone else's ETL: Athena-style ids, extra tables, other units
# ---------------------------------------------------------------------------

D = dt.date


def _concept(cid, name, vocab, code, standard="S", domain="Condition", cls="Clinical Finding"):
    return dict(concept_id=cid, concept_name=name, domain_id=domain, vocabulary_id=vocab,
                concept_class_id=cls, standard_concept=standard, concept_code=code,
                valid_start_date=D(1970, 1, 1), valid_end_date=D(2099, 12, 31), invalid_reason=None)


def _write(path, data: dict[str, list[dict]], extra_sql: tuple[str, ...] = ()) -> None:
    con = duckdb.connect(str(path))
    for name in data:
        con.execute(create_sql(name) if name in TABLES else name)
    for name, rows in data.items():
        if name not in TABLES or not rows:
            continue
        frame = pd.DataFrame(rows)
        frame = frame[[c for c in columns(name) if c in frame.columns]]
        con.register("_rows", frame)
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _rows")
        con.unregister("_rows")
    for sql in extra_sql:
        con.execute(sql)
    con.close()


def _other_etl(path, *, extra_persons=(), extra_meas=(), extra_cond=(), extra_drug=(), deaths=()):
    concepts = [
        _concept(0, "No matching concept", "None", "No matching concept", None, "Metadata", "Undefined"),
        _concept(8532, "FEMALE", "Gender", "F", domain="Gender", cls="Gender"),
        _concept(8507, "MALE", "Gender", "M", domain="Gender", cls="Gender"),
        _concept(3000963, "Hemoglobin [Mass/volume] in Blood", "LOINC", "718-7", domain="Measurement", cls="Lab Test"),
        _concept(3006923, "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "LOINC",
                 "1742-6", domain="Measurement", cls="Lab Test"),
        _concept(8713, "gram per deciliter", "UCUM", "g/dL", domain="Unit", cls="Unit"),
        _concept(8753, "millimole per liter", "UCUM", "mmol/L", domain="Unit", cls="Unit"),
        _concept(8645, "unit per liter", "UCUM", "U/L", domain="Unit", cls="Unit"),
        _concept(134442, "Systemic sclerosis", "SNOMED", "89155008"),
        _concept(35207835, "Systemic sclerosis, unspecified", "ICD10CM", "M34.9", None, cls="ICD10 code"),
        _concept(254443, "Sjogren's syndrome", "SNOMED", "83901003"),
        _concept(316139, "Heart failure", "SNOMED", "84114007"),
        _concept(4229440, "Chronic congestive heart failure", "SNOMED", "88805009"),
        _concept(45557009, "Kidney transplant status", "ICD10CM", "Z94.0", None, cls="ICD10 code"),
        _concept(21602723, "Glucocorticoids", "ATC", "H02AB", "C", "Drug", "ATC 4th"),
        _concept(1551099, "prednisone", "RxNorm", "8640", domain="Drug", cls="Ingredient"),
        _concept(19078925, "prednisone 5 MG Oral Tablet", "RxNorm", "312617", domain="Drug", cls="Clinical Drug"),
        _concept(4132161, "Oral", "SNOMED", "26643006", domain="Route", cls="Qualifier Value"),
    ]
    rel = [dict(concept_id_1=35207835, concept_id_2=134442, relationship_id="Maps to",
                valid_start_date=D(1970, 1, 1), valid_end_date=D(2099, 12, 31), invalid_reason=None)]
    anc = [dict(ancestor_concept_id=a, descendant_concept_id=b, min_levels_of_separation=lv,
                max_levels_of_separation=lv)
           for a, b, lv in [(316139, 316139, 0), (316139, 4229440, 1), (21602723, 1551099, 1),
                            (21602723, 19078925, 2), (1551099, 19078925, 1), (134442, 134442, 0),
                            (254443, 254443, 0), (3000963, 3000963, 0), (3006923, 3006923, 0)]]
    persons = [
        dict(person_id=11, gender_concept_id=8532, year_of_birth=1980, month_of_birth=3, day_of_birth=9,
             race_concept_id=0, ethnicity_concept_id=0),
        dict(person_id=12, gender_concept_id=8507, year_of_birth=1975, month_of_birth=None, day_of_birth=None,
             race_concept_id=0, ethnicity_concept_id=0),
        dict(person_id=13, gender_concept_id=8532, year_of_birth=1990, month_of_birth=1, day_of_birth=1,
             race_concept_id=0, ethnicity_concept_id=0),
        *extra_persons,
    ]
    meas = [  # person 11: Hb in g/dL (known), ALT with no unit concept but 'IU/L' text
        dict(measurement_id=1, person_id=11, measurement_concept_id=3000963, measurement_date=D(2026, 6, 1),
             measurement_type_concept_id=32817, value_as_number=11.2, unit_concept_id=8713,
             unit_source_value="g/dl"),
        dict(measurement_id=2, person_id=11, measurement_concept_id=3006923, measurement_date=D(2026, 6, 2),
             measurement_type_concept_id=32817, value_as_number=142, unit_concept_id=0, unit_source_value="IU/L"),
        # person 12: Hb in mmol/L, an extra unit the catalog does not know
        dict(measurement_id=3, person_id=12, measurement_concept_id=3000963, measurement_date=D(2026, 6, 3),
             measurement_type_concept_id=32817, value_as_number=7.4, unit_concept_id=8753,
             unit_source_value="mmol/L"),
        *extra_meas,
    ]
    cond = [
        dict(condition_occurrence_id=1, person_id=11, condition_concept_id=134442,
             condition_start_date=D(2020, 1, 1), condition_type_concept_id=32817,
             condition_source_value="M34.9", condition_source_concept_id=35207835),
        dict(condition_occurrence_id=2, person_id=11, condition_concept_id=4229440,
             condition_start_date=D(2024, 1, 1), condition_type_concept_id=32817),
        dict(condition_occurrence_id=3, person_id=12, condition_concept_id=254443,
             condition_start_date=D(2019, 5, 5), condition_type_concept_id=32817),
        # unmapped ICD code: only the source concept says it
        dict(condition_occurrence_id=4, person_id=12, condition_concept_id=0,
             condition_start_date=D(2015, 5, 5), condition_type_concept_id=32817,
             condition_source_value="Z94.0", condition_source_concept_id=45557009),
        *extra_cond,
    ]
    drugs = [
        dict(drug_exposure_id=1, person_id=11, drug_concept_id=19078925, drug_exposure_start_date=D(2025, 1, 1),
             drug_exposure_end_date=D(2025, 7, 1), drug_type_concept_id=32817, route_concept_id=4132161),
        *extra_drug,
    ]
    _write(path, {
        "concept": concepts, "concept_relationship": rel, "concept_ancestor": anc, "person": persons,
        "measurement": meas, "condition_occurrence": cond, "drug_exposure": drugs,
        "death": list(deaths),
        "CREATE TABLE note (note_id integer, person_id integer, note_text TEXT)": [],
        "CREATE TABLE x_site_lab_extract (person_id integer, analyte varchar, result varchar)": [],
    }, extra_sql=("INSERT INTO x_site_lab_extract VALUES (11, 'Hb', '112 g/L')",))


def test_cdm_from_another_etl_fills_what_its_codes_allow_and_reports_the_rest(tmp_path):
    path = tmp_path / "their.duckdb"
    _other_etl(path)
    r = import_omop(connect(str(path)), as_of=AS_OF)
    c = r.cohort.set_index("patient_id")
    # no person_source_value: ids are person_id
    assert list(c.index) == ["11", "12"]
    assert c.loc["11", "disease"] == "SSc" and c.loc["12", "disease"] == "SjS"
    assert c.loc["11", "hemoglobin_g_l"] == pytest.approx(112.0)
    assert c.loc["11", "alt_u_l"] == pytest.approx(142.0)  # 'IU/L' text, unit_concept_id 0
    assert pd.isna(c.loc["12", "hemoglobin_g_l"])  # mmol/L: reported, not guessed
    assert c.loc["11", "severe_heart_disease"] == "yes"  # descendant of heart failure
    assert c.loc["12", "severe_heart_disease"] == "no"
    assert c.loc["12", "kidney_transplant"] == "yes"  # unmapped ICD source concept
    assert c.loc["11", "prior_glucocorticoid"] == "yes"  # clinical drug under ATC H02AB
    assert c.loc["11", "conventional_therapy_months"] == pytest.approx(181 / 30.4375, abs=0.05)
    assert c.loc["11", "age_years"] == 46 and c.loc["12", "age_years"] == 50  # mid-year birth assumed
    # codes absent from their vocabulary: columns absent (not assessed), listed in the report
    assert "weight_kg" not in c.columns and "egfr_ml_min_1_73m2" not in c.columns
    rep = r.report
    assert ((rep["kind"] == "unknown_unit") & (rep["patient_id"] == "12")
            & rep["detail"].str.contains("mmol/L")).any()
    missing = rep[rep["kind"] == "code_not_in_vocabulary"]
    assert {"weight_kg", "egfr_ml_min_1_73m2"} <= set(missing["field"])
    assert list(r.left_out["patient_id"]) == ["13"]
    assert "no condition code" in r.left_out["reason"].iloc[0]


def _lab(mid, pid, day, value, unit=8713):
    return dict(measurement_id=mid, person_id=pid, measurement_concept_id=3000963, measurement_date=day,
                measurement_type_concept_id=32817, value_as_number=value, unit_concept_id=unit)


def _ssc(cid, pid):
    return dict(condition_occurrence_id=cid, person_id=pid, condition_concept_id=134442,
                condition_start_date=D(2020, 1, 1), condition_type_concept_id=32817)


def _person(pid):
    return dict(person_id=pid, gender_concept_id=8532, year_of_birth=1980, month_of_birth=AS_OF.month,
                day_of_birth=AS_OF.day, race_concept_id=0, ethnicity_concept_id=0)


def test_lab_window_and_death_boundaries(tmp_path):
    look = next(r for r in load_mapping().fields if r.field == "hemoglobin_g_l").lookback_days
    first_in = AS_OF - dt.timedelta(days=look - 1)
    path = tmp_path / "edges.duckdb"
    people = [_person(p) for p in (21, 22, 23, 24, 25, 26)]
    _other_etl(path, extra_persons=people, extra_cond=[_ssc(100 + p, p) for p in (21, 22, 23, 24, 25, 26)],
               extra_meas=[
                   _lab(101, 21, AS_OF, 10.0), _lab(102, 21, AS_OF + dt.timedelta(days=1), 5.0),
                   _lab(103, 22, first_in, 9.0),
                   _lab(104, 23, first_in - dt.timedelta(days=1), 8.0),
                   _lab(105, 24, AS_OF - dt.timedelta(days=3), 12.0), _lab(106, 24, AS_OF - dt.timedelta(days=2), 7.0, 8753),
               ],
               deaths=[dict(person_id=25, death_date=AS_OF), dict(person_id=26, death_date=AS_OF + dt.timedelta(days=1))])
    r = import_omop(connect(str(path)), as_of=AS_OF)
    c = r.cohort.set_index("patient_id")
    assert c.loc["21", "hemoglobin_g_l"] == 100.0  # on the as-of date: in; the day after: ignored
    assert c.loc["22", "hemoglobin_g_l"] == 90.0  # first day of the window: in
    assert pd.isna(c.loc["23", "hemoglobin_g_l"])  # one day older: out
    assert pd.isna(c.loc["24", "hemoglobin_g_l"])  # latest has an unknown unit: empty, older not used
    assert c.loc["21", "age_years"] == 46  # birthday on the as-of date counts
    left = r.left_out.set_index("patient_id")["reason"]
    assert left["25"] == "deceased on or before the as-of date"
    assert "26" in c.index


def test_condition_window_and_days_since_boundaries(tmp_path):
    m = load_mapping()
    tb = next(r for r in m.fields if r.field == "tb_active")
    cutoff = AS_OF - dt.timedelta(days=round(tb.lookback_years * 365.25))
    path = tmp_path / "cond.duckdb"
    tb_concept = "INSERT INTO concept VALUES (434557, 'Tuberculosis', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '56717001', DATE '1970-01-01', DATE '2099-12-31', NULL)"

    def tbc(cid, pid, end):
        return dict(condition_occurrence_id=cid, person_id=pid, condition_concept_id=434557,
                    condition_start_date=D(2020, 1, 1), condition_end_date=end, condition_type_concept_id=32817)

    def pred(did, pid, end):
        return dict(drug_exposure_id=did, person_id=pid, drug_concept_id=1551099,
                    drug_exposure_start_date=D(2025, 1, 1), drug_exposure_end_date=end,
                    drug_type_concept_id=32817)

    _other_etl(path, extra_persons=[_person(p) for p in (31, 32, 33)],
               extra_cond=[_ssc(200 + p, p) for p in (31, 32, 33)]
               + [tbc(301, 31, cutoff), tbc(302, 32, cutoff - dt.timedelta(days=1)), tbc(303, 33, None)],
               extra_drug=[pred(401, 31, AS_OF), pred(402, 32, AS_OF + dt.timedelta(days=30)),
                           pred(403, 33, AS_OF - dt.timedelta(days=10))])
    con = duckdb.connect(str(path))
    con.execute(tb_concept)
    con.close()
    c = import_omop(connect(str(path)), as_of=AS_OF).cohort.set_index("patient_id")
    assert c.loc["31", "tb_active"] == "yes"  # ended on the first day of the window
    assert c.loc["32", "tb_active"] == "no"  # ended the day before
    assert c.loc["33", "tb_active"] == "yes"  # no end date: ongoing
    assert c.loc["31", "prior_glucocorticoid"] == "yes"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400), st.integers(0, 120)), min_size=1, max_size=25))
def test_union_of_exposure_spans_matches_a_day_count(spans):
    as_of = pd.Timestamp("2026-06-30")
    base = pd.Timestamp("2025-06-01")
    rows = pd.DataFrame({
        "person_id": [p for p, _s, _l in spans],
        "start": [base + pd.Timedelta(days=s) for _p, s, _l in spans],
        "end": [base + pd.Timedelta(days=s + n) for _p, s, n in spans],
    })
    got = _union_months(rows, as_of)
    for person, group in rows.groupby("person_id"):
        days: set[int] = set()
        for s, e in zip(group["start"], group["end"].clip(upper=as_of), strict=True):
            if e > s:
                days |= set(range((s - base).days, (e - base).days))
        # union of half-open day intervals [start, end): its length in months
        assert got[person] == pytest.approx(round(len(days) / 30.4375, 1), abs=1e-9)


def test_cli_writes_cohort_provenance_and_report(small_cdm, tmp_path, capsys):
    _src, path = small_cdm
    out = tmp_path / "cohort.parquet"
    assert cli_main(["import-omop", str(path), "-o", str(out), "--as-of", AS_OF.isoformat()]) == 0
    paths = side_paths(out)
    cohort = pd.read_parquet(out)
    assert len(cohort) > 0 and all(p.exists() for p in paths.values())
    left = pd.read_parquet(paths["left-out"])
    assert list(left.columns) == ["patient_id", "reason"] and len(left) > 0
    err = capsys.readouterr().err
    assert "imported" in err and "left out" in err
    from eligibility.loader import load_cohort

    loaded = load_cohort(out)  # the output is a valid contract cohort
    assert not [i for i in loaded.issues if i.severity == "error" and i.kind != "missing_column"]


@pytest.mark.parametrize(
    "args",
    [["/no/such/cdm.duckdb", "-o", "x.parquet"], ["{cdm}", "-o", "x.txt"], ["{cdm}", "-o", "x.csv", "--as-of", "30/06/2026"]],
)
def test_cli_bad_input_is_one_line_exit_2(small_cdm, tmp_path, capsys, args):
    _src, path = small_cdm
    argv = [a.replace("{cdm}", str(path)).replace("x.", str(tmp_path / "x.")) for a in args]
    assert cli_main(["import-omop", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_not_a_cdm_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "plain.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE person (person_id integer)")
    con.close()
    assert cli_main(["import-omop", str(path), "-o", str(tmp_path / "o.csv")]) == 2
    assert "not an OMOP CDM" in capsys.readouterr().err


def test_synth_format_omop_command(tmp_path):
    from eligibility.synth import main as synth_main

    out = tmp_path / "cdm.duckdb"
    assert synth_main(["--format", "omop", "--n", "50", "--seed", "3", "-o", str(out)]) == 0
    con = duckdb.connect(str(out), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    n_person = con.execute("SELECT count(*) FROM person").fetchone()[0]
    pairs = con.execute("SELECT count(*) FROM concept WHERE vocabulary_id = 'LOINC' AND concept_code = '718-7'").fetchone()[0]
    after = con.execute(f"SELECT count(*) FROM measurement WHERE measurement_date > DATE '{AS_OF}'").fetchone()[0]
    con.close()
    assert {"person", "measurement", "condition_occurrence", "drug_exposure", "concept",
            "concept_relationship", "concept_ancestor", "observation_period", "death"} <= tables
    assert n_person > 50 and pairs == 1 and after > 0
    with pytest.raises(SystemExit):
        synth_main(["--format", "omop", "--n", "5", "-o", str(tmp_path / "cdm.csv")])


def test_cdm_written_in_chunks_imports_the_same_and_numbers_uniquely(tmp_path):
    from eligibility.synth_omop import generate_cdm

    path = tmp_path / "chunks.duckdb"
    generate_cdm(600, 9, path, chunk=250, other_labs=2)
    con = duckdb.connect(str(path), read_only=True)
    for table, key in (("person", "person_id"), ("measurement", "measurement_id"),
                       ("drug_exposure", "drug_exposure_id"), ("condition_occurrence", "condition_occurrence_id")):
        n, distinct = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
        assert n == distinct > 0, table
    other = con.execute("SELECT count(*) FROM measurement WHERE measurement_source_value = '2160-0'").fetchone()[0]
    con.close()
    assert other > 0  # unrelated labs are there and ignored
    result = import_omop(connect(str(path)), as_of=AS_OF)
    assert _compare(expected_cohort(source_cohort(600, 9)), result.cohort) == {}


def test_connection_url_reads_the_same_cdm(small_cdm, tmp_path):
    _src, path = small_cdm
    copy = tmp_path / "url.duckdb"
    shutil.copy(path, copy)
    by_file = import_omop(connect(str(path)), as_of=AS_OF)
    by_url = import_omop(connect(f"duckdb://{copy}"), as_of=AS_OF)
    pd.testing.assert_frame_equal(by_file.cohort, by_url.cohort)


def test_events_of_persons_missing_from_the_person_table_are_left_out_and_noted(small_cdm, tmp_path):
    """An ETL that deleted persons but kept their events: those events fill nobody (not the
    last person, not a neighbour) and a note counts them per table."""
    _src, path = small_cdm
    before = import_omop(connect(str(path)), as_of=AS_OF)
    orphaned = tmp_path / "orphans.duckdb"
    shutil.copy(path, orphaned)
    con = duckdb.connect(str(orphaned))
    gone = con.execute("SELECT max(person_id), min(person_id) FROM person").fetchone()
    moved = [gone[0] + 1, gone[1] - 1, (gone[0] + gone[1]) // 2 + 10_000_000]  # after, before, between
    for table in ("measurement", "condition_occurrence", "drug_exposure"):
        key = f"{table}_id"
        for new in moved:  # a copy of the first person's events under an id nobody has
            con.execute(f"CREATE TEMP TABLE x AS SELECT * FROM {table} WHERE person_id = {gone[1]}")
            con.execute(f"UPDATE x SET person_id = {new}, {key} = {key} + 900000000")
            con.execute(f"INSERT INTO {table} SELECT * FROM x")
            con.execute("DROP TABLE x")
        assert con.execute(f"SELECT count(*) FROM {table} WHERE person_id = {moved[0]}").fetchone()[0] > 0, table
    con.close()
    after = import_omop(connect(str(orphaned)), as_of=AS_OF)
    pd.testing.assert_frame_equal(before.cohort, after.cohort)
    def rows(frame):  # row order follows the database's
        return frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(before.provenance), rows(after.provenance))
    noted = [n for n in after.notes if "not in the person table" in n]
    assert {n.split(" matched ")[1].split(" row")[0] for n in noted} == {"measurement", "condition_occurrence",
                                                                      "drug_exposure"}


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(-5, 10**7), unique=True, max_size=30), st.lists(st.integers(-10, 10**7 + 5), max_size=30),
       st.booleans())
def test_person_positions_by_lookup_table_or_binary_search(persons, queries, dense):
    """Event person ids -> positions in the person table (-1 when absent), whichever way is used."""
    from eligibility.importers.omop import _People

    ids = np.sort(np.array(persons, dtype=np.int64))
    if dense:
        ids = ids[ids < 200]  # close together: the lookup-table path
        queries = [q % 250 - 5 for q in queries]
    people = _People(pd.Series(ids), pd.Series([f"P{i}" for i in ids], dtype=object))
    want = [int(np.flatnonzero(ids == q)[0]) if q in ids else -1 for q in queries]
    assert people._positions(queries).tolist() == want
    assert people.known(queries).tolist() == [w >= 0 for w in want]
