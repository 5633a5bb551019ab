"""The catalog compiled to SQL (DuckDB through ibis) against the memory engine.

Every comparison is with the memory engine's own output on the same input: the
hand-worked cases of test_criteria.py, absent columns, switched-off criteria, the
×ULN rounding, washouts with unreadable cells, cell validation messages, the CLI's
output file and standard error, attribution tables and scenario diffs.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from factory import eligible_row, make_cohort
from test_criteria import ALL_CASES, _case_id

from eligibility import attribution as A
from eligibility.cli import main
from eligibility.database.backend import BackendError, duckdb
from eligibility.database.conformance import CASES, check
from eligibility.database.engine import DatabaseCohort, results_frame
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.scenario import resolve
from eligibility.screen import screen_frame, status_change
from eligibility.synth import generate, write_cohort


@pytest.fixture(scope="module")
def con():
    return duckdb()


def db_screen(con, cohort, scenario=None) -> pd.DataFrame:
    db = DatabaseCohort.from_cohort(con, cohort).materialize()
    return results_frame(db.evaluate(resolve(scenario or {})))


def assert_same(con, rows, scenario=None, present=None):
    cohort = make_cohort(rows, present)
    mem = screen_frame(cohort, resolve(scenario or {}))
    got = db_screen(con, cohort, scenario)
    pd.testing.assert_frame_equal(got, mem)


# -- conformance ------------------------------------------------------------------------
def test_duckdb_passes_the_kleene_suite(con):
    check(con)


def test_backend_that_turns_unknown_into_fail_is_refused(con):
    """SQL Server through ibis: NOT(x) compiled as IIF(x,1,0)=0, so NOT unknown is true."""

    def sqlserver_like(expr):
        out = con.execute(expr)
        if isinstance(out, pd.DataFrame):
            for c in out.columns:
                if out[c].dtype == object:
                    out[c] = [True if v is None else v for v in out[c]]
        return out

    with pytest.raises(BackendError, match="Kleene conformance case 'a AND b"):
        check(con, execute=sqlserver_like)


def test_a_case_the_backend_cannot_compile_is_named(con):
    """One broken case fails the combined query; each case is then asked alone."""

    def no_concat(expr):
        if "concat" in con.compile(expr).lower():
            raise RuntimeError("no concat_ws here")
        return con.execute(expr)

    with pytest.raises(BackendError, match="'concat_ws skips NULL' gave 'error: RuntimeError'"):
        check(con, execute=no_concat)


def test_every_conformance_case_can_fail(con):
    """Each case's expected answer differs from the all-NULL-is-false answer somewhere."""
    for case in CASES:
        if case.aggregate:
            continue
        assert any(v is None for v in case.expected) or case.name.startswith(("a IS NULL", "CASE", "coalesce",
                                                                             "concat", "double")), case.name


# -- the hand-worked cases ---------------------------------------------------------------
def test_hand_worked_cases_identical(con):
    groups: dict[str, list] = {}
    for case in ALL_CASES:
        groups.setdefault(case.scenario_key, []).append(case)
    for key, members in groups.items():
        rows = [eligible_row(c.disease, patient_id=f"R{i}", **c.changes) for i, c in enumerate(members)]
        cohort = make_cohort(rows)
        mem = screen_frame(cohort, resolve(json.loads(key)))
        got = db_screen(con, cohort, json.loads(key))
        for (case, m), g in zip(zip(members, mem.to_dict("records"), strict=True), got.to_dict("records"),
                                strict=True):
            assert g == m, _case_id(case)


@pytest.mark.parametrize("present", [
    ["age_years"], ["hemoglobin_g_l", "wbc_10e9_l", "disease_course", "prior_glucocorticoid"],
    [f for f in ("alt_u_l", "ast_u_l", "tbil_umol_l", "inr", "pt_s")],
])
def test_absent_columns_not_assessed_identically(con, present):
    rows = [eligible_row(d) for d in ("SSc", "IIM", "AAV", "SjS", "APS")] + [eligible_row("SSc", age_years=70)]
    assert_same(con, rows, present=present)


@pytest.mark.parametrize("scenario", [
    {"disabled": ["INC-2.hb"]}, {"disabled": ["EXC-2"]}, {"disabled": ["DX-1", "SSC-INC-4"]},
    {"parameters": {"require_cyclophosphamide": False, "min_immunomodulators": 0}},
    {"parameters": {"ssc_excluded_subtypes": [], "iim_included_subtypes": []}},
    {"parameters": {"ssc_excluded_subtypes": ["diffuse", "limited", "sine"]}},
    {"parameters": {"core_set_min_abnormal": 0}}, {"parameters": {"core_set_min_abnormal": 5}},
    {"parameters": {"unreadable_event_unknown": False}},
])
def test_scenarios_identical(con, scenario):
    rows = [eligible_row(d) for d in ("SSc", "IIM", "AAV", "SjS", "APS")]
    rows += [eligible_row("SSc", hemoglobin_g_l=50, ssc_subtype=None), eligible_row("IIM", iim_subtype=None,
                                                                                      phga_cm=None, ptga_cm=None),
             eligible_row("AAV", prior_immunomodulators=None, prior_cyclophosphamide=None),
             eligible_row(None), eligible_row("Lupus", age_years=None)]
    assert_same(con, rows, scenario)


def test_uln_limit_rounded_to_nine_places_both_ways(con):
    """1.5 × 1.2 = 1.7999999999999998 in floating point; the limit is 1.8 (criteria.md)."""
    rows = [eligible_row("SSc", inr=1.8, inr_uln=1.2, pt_s=None), eligible_row("SSc", inr=1.8),
            eligible_row("SSc", inr=1.79, inr_uln=1.2), eligible_row("SSc", alt_u_l=120, alt_uln_u_l=40),
            eligible_row("SSc", alt_u_l=120.0000001, alt_uln_u_l=None)]
    assert_same(con, rows, {"parameters": {"inr_max_x_uln": 1.5, "default_inr_uln": 1.2}})
    got = db_screen(con, make_cohort(rows), {"parameters": {"inr_max_x_uln": 1.5, "default_inr_uln": 1.2}})
    assert "INC-4.inr" in got.failed[0] and "INC-4.inr" in got.failed[1]  # < 1.8 is strict
    assert "INC-4.inr" not in got.failed[2]
    # without the row ULN column the default's limit is used
    assert_same(con, rows, present=[f for f in make_cohort(rows).present if f not in ("inr_uln", "alt_uln_u_l")])


# -- files: cell validation and the CLI ---------------------------------------------------
@pytest.fixture(scope="module")
def synth_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("db")
    frame = generate(1500, 11)
    paths = {}
    for ext in (".parquet", ".csv"):
        paths[ext] = write_cohort(frame, d / f"cohort{ext}")
    return paths


@pytest.fixture(params=["as_found", "cell_by_cell", "spelled_out", "joined"])
def lookup_mode(request, monkeypatch):
    """How text columns are parsed (database/lookup.py): as the data decide; every cell
    parsed (no lookups); every distinct value spelled out in CASEs; every column joined
    to a lookup table. The report and the outcomes must not depend on it."""
    from eligibility.database import lookup

    if request.param == "cell_by_cell":
        monkeypatch.setitem(lookup.MAX_DISTINCT, "duckdb", 0)
    elif request.param == "spelled_out":
        monkeypatch.setattr(lookup, "SPELLED_OUT", 1_000_000)
        monkeypatch.setitem(lookup.MAX_DISTINCT, "duckdb", 1_000_000)
    elif request.param == "joined":
        monkeypatch.setattr(lookup, "SPELLED_OUT", 0)
    return request.param


@pytest.mark.parametrize("ext", [".parquet", ".csv"])
def test_cell_validation_report_equals_the_loader(con, synth_files, ext, lookup_mode):
    path = synth_files[ext]
    mem = load_cohort(path)
    db = DatabaseCohort.open(con, str(path))
    assert [dataclasses.astuple(i) for i in db.issues] == [dataclasses.astuple(i) for i in mem.issues]
    assert any(i.kind == "cell_error" for i in mem.issues) and any(i.kind == "implausible" for i in mem.issues)
    pd.testing.assert_frame_equal(results_frame(db.evaluate()), screen_frame(mem))


def _write_csv(path, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


def test_messy_cells_report_and_outcomes_equal(con, tmp_path, lookup_mode):
    base = {k: v for k, v in eligible_row("SSc").items() if v is not None}
    rows = [
        dict(base, patient_id="A1", days_since_iv_antibiotics="abc", sex="female", hemoglobin_g_l=" 5,0"),
        dict(base, patient_id="A2", consent_signed="maybe", disease="systemic sclerosis", age_years="NaN"),
        dict(base, patient_id="A3", prior_immunomodulators="MMF / snake oil", bvas_major_items=1.5),
        dict(base, patient_id="", ssc_subtype="LIMITED ", screening_date="2024-02-30", alt_u_l=9000),
        {k: "" for k in base},
        dict(base, patient_id="A5", disease="Lupus", days_since_live_vaccine="inf", hemoglobin_g_l=8),
        {k: "" for k in base},
    ]
    path = tmp_path / "messy.csv"
    _write_csv(path, rows)
    mem = load_cohort(path)
    db = DatabaseCohort.open(con, str(path))
    assert [dataclasses.astuple(i) for i in db.issues] == [dataclasses.astuple(i) for i in mem.issues]
    for scenario in ({}, {"parameters": {"unreadable_event_unknown": False}}):
        pd.testing.assert_frame_equal(results_frame(db.evaluate(resolve(scenario))),
                                      screen_frame(mem, resolve(scenario)))
    got = results_frame(db.evaluate())
    assert "EXC-6.iv" in got.unknown[0]  # an unreadable washout date is unknown, not "never"


def test_native_number_columns_with_and_without_nan_or_infinity(con, tmp_path):
    """A Parquet number column is read as it is only when it holds no NaN or infinity
    (`cells.finite_columns`); where it does, those cells are reported and missing, as the
    loader reads them. Both kinds of column in one file, every non-finite value and a
    column that is all missing."""
    import math

    from eligibility.database.cells import finite_columns
    from eligibility.database.source import parse_input, raw_table
    from eligibility.fields import FIELD_BY_NAME

    base = {k: v for k, v in eligible_row("SSc").items() if v is not None}
    odd = [math.nan, math.inf, -math.inf, 120.0, None, 95.0]
    rows = [dict(base, patient_id=f"N{i}", hemoglobin_g_l=odd[i], weight_kg=60.0 + i, iga_mg_dl=None)
            for i in range(len(odd))]
    frame = pd.DataFrame(rows)
    frame["iga_mg_dl"] = frame["iga_mg_dl"].astype("float64")
    path = tmp_path / "native.parquet"
    frame.to_parquet(path, index=False)
    raw = raw_table(con, parse_input(str(path)), [])
    numbers = {c: FIELD_BY_NAME[c] for c in ("hemoglobin_g_l", "weight_kg", "iga_mg_dl")}
    assert finite_columns(raw, numbers) == {"weight_kg", "iga_mg_dl"}
    mem = load_cohort(path)
    db = DatabaseCohort.open(con, str(path))
    assert [dataclasses.astuple(i) for i in db.issues] == [dataclasses.astuple(i) for i in mem.issues]
    assert sum(i.column == "hemoglobin_g_l" and i.kind == "cell_error" for i in db.issues) == 2  # ±inf
    pd.testing.assert_frame_equal(results_frame(db.evaluate()), screen_frame(mem))


@pytest.mark.parametrize("out_ext", [".csv", ".parquet"])
def test_results_file_left_out_when_the_batches_fail_midway(con, synth_files, tmp_path, out_ext):
    """A failure after some batches were written (an engine error) reaches the caller as
    itself, and neither the file nor its side file is left (the Parquet writer is closed
    while its file is still open: closed after it, the error became 'write to closed file')."""
    from eligibility.database.engine import result_batches
    from eligibility.database.screen_cli import _write

    ev = DatabaseCohort.open(con, str(synth_files[".parquet"])).evaluate()

    def failing():
        for k, batch in enumerate(result_batches(ev, rows_per_batch=64)):
            if k == 2:
                raise RuntimeError("engine gone")
            yield batch

    out = tmp_path / f"results{out_ext}"
    with pytest.raises(RuntimeError, match="engine gone"):
        _write(failing(), out)
    assert not out.exists() and not (tmp_path / f"results{out_ext}.part").exists()


def _cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("out_ext", [".csv", ".parquet"])
def test_cli_same_file_and_messages(synth_files, tmp_path, capsys, out_ext):
    src = str(synth_files[".csv"])
    a, b = tmp_path / f"mem{out_ext}", tmp_path / f"db{out_ext}"
    code_a, err_a = _cli(["screen", src, "-o", str(a)], capsys)
    code_b, err_b = _cli(["screen", src, "-o", str(b), "--engine", "duckdb"], capsys)
    assert code_a == code_b == 0
    assert err_b.replace(str(b), str(a)) == err_a
    if out_ext == ".csv":
        assert b.read_bytes() == a.read_bytes()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(b), pd.read_parquet(a))


def test_cli_duckdb_table_input(synth_files, tmp_path, capsys):
    import duckdb as ddb

    dbfile = tmp_path / "warehouse.duckdb"
    c = ddb.connect(str(dbfile))
    c.execute(f"CREATE TABLE referrals AS SELECT * FROM read_parquet('{synth_files['.parquet']}')")
    c.close()
    a, b = tmp_path / "mem.csv", tmp_path / "db.csv"
    _cli(["screen", str(synth_files[".parquet"]), "-o", str(a)], capsys)
    code, _ = _cli(["screen", f"duckdb:{dbfile}?table=referrals", "-o", str(b), "--engine", "duckdb"], capsys)
    assert code == 0
    assert b.read_bytes() == a.read_bytes()


@pytest.mark.parametrize("rows_or_text, fragment", [
    ([{"patient_id": "A", "disease": "SSc"}, {"patient_id": "A", "disease": "IIM"}], "duplicate patient_id: A"),
    ([{"patient_id": "A", "age_years": 3}], "missing required column(s): disease"),
])
def test_cli_refusals_identical(tmp_path, capsys, rows_or_text, fragment):
    path = tmp_path / "bad.csv"
    _write_csv(path, rows_or_text)
    out = tmp_path / "out.csv"
    code_a, err_a = _cli(["screen", str(path), "-o", str(out)], capsys)
    code_b, err_b = _cli(["screen", str(path), "-o", str(out), "--engine", "duckdb"], capsys)
    assert code_a == code_b == 2 and err_a == err_b and fragment in err_b
    assert not out.exists()


# -- attribution, diffs and pages ----------------------------------------------------------
@pytest.fixture(scope="module")
def bundled(con):
    mem = load_cohort("data/cohort.parquet")
    db = DatabaseCohort.open(con, "data/cohort.parquet")
    return mem, Evaluator.for_cohort(mem), db


@pytest.mark.parametrize("scenario", [{}, {"parameters": {"age_max": 75, "hb_min_g_l": 50},
                                           "disabled": ["EXC-2.kidney"]}])
def test_attribution_tables_equal(bundled, scenario):
    _, evaluator, db = bundled
    ev = evaluator.evaluate(resolve(scenario))
    attr = db.evaluate(resolve(scenario)).attribution()
    pd.testing.assert_frame_equal(attr.status_counts(), A.status_counts(ev))
    for g in [None, *attr.groups()]:
        pd.testing.assert_frame_equal(attr.criterion_table(g), A.criterion_table(ev, g), check_dtype=False)
        pd.testing.assert_frame_equal(attr.cause_impact(g), A.cause_impact(ev, g), check_dtype=False)
        got, want = attr.attrition(g), A.attrition(ev, g)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        assert got.attrs == want.attrs
        pd.testing.assert_frame_equal(attr.combinations(g), A.combinations(ev, g), check_dtype=False)
        pd.testing.assert_frame_equal(attr.criterion_totals(g), A.criterion_totals(ev, g), check_dtype=False)


def test_scenario_diff_equal(bundled):
    mem, evaluator, db = bundled
    before, after = resolve({}), resolve({"parameters": {"age_max": 75, "hb_min_g_l": 50}})
    want_s, want_p = status_change(evaluator.evaluate(before), evaluator.evaluate(after), mem.frame)
    got_s, got_p = db.status_change(db.evaluate(before), db.evaluate(after))
    pd.testing.assert_frame_equal(got_s, want_s, check_dtype=False)
    pd.testing.assert_frame_equal(got_p, want_p, check_dtype=False)
    assert len(got_p) > 0


def test_patient_pages_cover_the_results_in_order(bundled):
    mem, evaluator, db = bundled
    ev = db.evaluate()
    full = screen_frame(mem)
    pages = [ev.patients(offset=o, limit=700) for o in range(0, len(full), 700)]
    got = pd.concat(pages, ignore_index=True)
    assert list(got["row"]) == list(range(1, len(full) + 1))
    assert list(got["status"]) == list(full["status"])
    inel = ev.patients(status="ineligible", group="SSc", limit=50)
    assert set(inel.status) == {"ineligible"} and set(inel.disease) == {"SSc"} and len(inel) == 50
    exc = ev.patients(failed="INC-1", limit=10_000)
    assert len(exc) == full.failed.str.split(";").map(lambda x: "INC-1" in x).sum()


def test_evicted_scenarios_free_their_tables(con):
    """What-ifs past the cache size drop the evicted scenarios' tables; results stay right."""
    from eligibility.database import engine

    cohort = make_cohort([eligible_row(d) for d in ("SSc", "IIM", "AAV")])
    db = DatabaseCohort.from_cohort(con, cohort).materialize()

    def names():  # ibis 12's list_tables calls a DuckDB 1 cursor method
        return {r[0] for r in con.raw_sql("SELECT table_name FROM information_schema.tables").fetchall()}

    before = names()
    for hb in range(50, 50 + engine._CACHED_SCENARIOS + 3):
        scenario = resolve({"parameters": {"hb_min_g_l": hb}})
        pd.testing.assert_frame_equal(results_frame(db.evaluate(scenario)), screen_frame(cohort, scenario))
    added = names() - before
    assert len(added) == 3 * engine._CACHED_SCENARIOS  # a code view, a patient table, a text view each


def test_scenario_evaluated_in_the_opening_pass(con, synth_files):
    """`open(…, scenario)` evaluates that scenario in the same pass as the checks; later
    scenarios keep the parsed values first (small cohorts) and agree as well."""
    path = synth_files[".parquet"]
    mem = load_cohort(path)
    relaxed = resolve({"parameters": {"age_max": 75, "hb_min_g_l": 50}, "disabled": ["EXC-2.kidney"]})
    db = DatabaseCohort.open(con, str(path), relaxed)
    first = db.evaluate(relaxed)
    assert db.evaluate(relaxed) is first and not db.materialized
    pd.testing.assert_frame_equal(results_frame(first), screen_frame(mem, relaxed))
    pd.testing.assert_frame_equal(results_frame(db.evaluate()), screen_frame(mem))
    assert db.materialized


def test_cell_report_in_row_order_whatever_order_the_engine_returns(con, tmp_path, monkeypatch):
    """Should an engine return the flagged rows out of order, the report must still be the
    loader's, row by row, checks in order within a row."""
    import pyarrow as pa

    from eligibility.database import cells

    base = {k: v for k, v in eligible_row("SSc").items() if v is not None}
    rows = [dict(base, patient_id=f"B{i}", consent_signed="maybe" if i % 2 else "yes",
                 hemoglobin_g_l="abc" if i % 3 == 0 else 120, sex="female" if i % 4 == 0 else "F")
            for i in range(12)]
    path = tmp_path / "unordered.csv"
    _write_csv(path, rows)
    plain = cells._report_batches

    def reversed_batches(t, size):
        table = pa.Table.from_batches(list(plain(t, size)))
        table = table.take(pa.array(range(table.num_rows - 1, -1, -1)))
        half = table.num_rows // 2
        yield from (table.slice(half).to_batches() + table.slice(0, half).to_batches())

    monkeypatch.setattr(cells, "_report_batches", reversed_batches)
    db = DatabaseCohort.open(con, str(path))
    monkeypatch.setattr(cells, "_report_batches", plain)
    mem = load_cohort(path)
    assert [dataclasses.astuple(i) for i in db.issues] == [dataclasses.astuple(i) for i in mem.issues]
    assert sum(i.kind == "cell_error" for i in mem.issues) >= 8


def test_every_reading_alternative_identical(con, synth_files):
    """A scenario's contested readings (readings.yaml) change the rules in the database too."""
    from eligibility.catalog import default_catalog

    path = synth_files[".parquet"]
    mem = load_cohort(path)
    db = DatabaseCohort.open(con, str(path))
    base = screen_frame(mem)
    changed = 0
    for name, reading in default_catalog().readings.items():
        for alt in reading.alternatives:
            scenario = resolve({"readings": {name: alt}})
            want = screen_frame(mem, scenario)
            pd.testing.assert_frame_equal(results_frame(db.evaluate(scenario)), want, obj=f"{name}={alt}")
            changed += not want.equals(base)
    assert changed >= 3  # the readings do change outcomes on this cohort


def test_codes_of_a_unit_that_needs_a_subquery(con, synth_files, monkeypatch):
    """Were a unit's truth to compile to more than a column expression, the codes are taken
    over one compiled SELECT of every truth: the same results, opened and in a what-if."""
    from eligibility.database import outcomes

    path = synth_files[".parquet"]
    mem = load_cohort(path)
    monkeypatch.setattr(outcomes, "_plain_projection", lambda select: False)
    used = []
    over = outcomes._codes_over_subquery
    monkeypatch.setattr(outcomes, "_codes_over_subquery", lambda *a: used.append(a[-1]) or over(*a))
    db = DatabaseCohort.open(con, str(path))
    pd.testing.assert_frame_equal(results_frame(db.evaluate()), screen_frame(mem))
    what_if = resolve({"parameters": {"hb_min_g_l": 95}})
    pd.testing.assert_frame_equal(results_frame(db.evaluate(what_if)), screen_frame(mem, what_if))
    assert True in used and False in used  # the first pass's packed codes and the plain ones
