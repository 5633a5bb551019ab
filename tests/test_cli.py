"""The batch command `python -m eligibility screen`: contract columns, exit statuses, messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from factory import eligible_row

from eligibility.cli import main
from eligibility.loader import load_cohort
from eligibility.screen import RESULT_COLUMNS, screen_frame


def _write(tmp_path, rows, name="cohort.csv"):
    path = tmp_path / name
    df = pd.DataFrame(rows)
    if name.endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return path


def _cohort(n_bad=True):
    rows = [eligible_row(d, patient_id=f"P{i}") for i, d in enumerate(["SSc", "IIM", "AAV", "SjS", "APS"])]
    rows.append(eligible_row("SSc", patient_id="P5", age_years=70))
    rows.append({**eligible_row("SSc", patient_id="P6", hemoglobin_g_l=None), "disease": "systemic sclerosis"})
    if n_bad:
        rows.append(eligible_row("IIM", patient_id="P7", consent_signed="maybe", alt_u_l="abc"))
    return rows


def test_screen_writes_contract_columns_in_input_order(tmp_path, capsys):
    src = _write(tmp_path, _cohort())
    out = tmp_path / "results.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert tuple(res.columns) == RESULT_COLUMNS
    assert list(res["patient_id"]) == [f"P{i}" for i in range(8)]
    by_id = res.set_index("patient_id")
    assert by_id.loc["P0", "status"] == "eligible"
    assert by_id.loc["P5", "status"] == "ineligible" and by_id.loc["P5", "first_reason"] == "INC-1"
    assert by_id.loc["P6", "disease"] == "SSc" and by_id.loc["P6", "status"] == "pending"
    assert by_id.loc["P6", "unknown"] == "INC-2.hb;EXC-2.hb"
    assert by_id.loc["P7", "status"] == "pending"
    err = capsys.readouterr().err
    assert "row 8 (patient_id P7), column consent_signed, value 'maybe'" in err
    assert "column alt_u_l, value 'abc'" in err


def test_screen_matches_engine_on_parquet_output(tmp_path):
    src = _write(tmp_path, _cohort(n_bad=False), "cohort.parquet")
    out = tmp_path / "results.parquet"
    assert main(["screen", str(src), "-o", str(out)]) == 0
    got = pd.read_parquet(out)
    want = screen_frame(load_cohort(src))
    assert got["status"].tolist() == want["status"].tolist()
    assert got["failed"].tolist() == want["failed"].tolist()


def test_scenario_file_is_applied(tmp_path):
    src = _write(tmp_path, _cohort(n_bad=False))
    scen = tmp_path / "s.json"
    scen.write_text(json.dumps({"name": "relax age", "parameters": {"age_max": 70}, "disabled": ["INC-7"]}))
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "--scenario", str(scen), "-o", str(out)]) == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("patient_id")
    assert res.loc["P5", "status"] == "eligible"


@pytest.mark.parametrize(
    ("rows_or_text", "fragment"),
    [
        ("not,a\ncohort,file\n", "patient_id"),
        (b"\x00\x01\x02garbage", ""),
    ],
)
def test_unusable_files_exit_2_without_output(tmp_path, capsys, rows_or_text, fragment):
    src = tmp_path / "bad.csv"
    if isinstance(rows_or_text, bytes):
        src = tmp_path / "bad.parquet"
        src.write_bytes(rows_or_text)
    else:
        src.write_text(rows_or_text)
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and fragment in err[0]
    assert not out.exists()


def test_missing_disease_column_named(tmp_path, capsys):
    src = tmp_path / "c.csv"
    pd.DataFrame({"patient_id": ["A", "B"], "age_years": [30, 40]}).to_csv(src, index=False)
    assert main(["screen", str(src), "-o", str(tmp_path / "r.csv")]) == 2
    assert "disease" in capsys.readouterr().err


def test_duplicate_ids_named(tmp_path, capsys):
    rows = _cohort(n_bad=False)
    rows[1]["patient_id"] = "P0"
    src = _write(tmp_path, rows)
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "P0" in err and "duplicate" in err.lower()
    assert not out.exists()


def test_missing_input_file(tmp_path, capsys):
    assert main(["screen", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "r.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["r.xlsx", "r.txt", "r"])
def test_output_extension_refused(tmp_path, capsys, name):
    src = _write(tmp_path, _cohort(n_bad=False))
    assert main(["screen", str(src), "-o", str(tmp_path / name)]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("scenario", "fragment"),
    [
        ({"parameters": {"age_maxx": 70}}, "age_maxx"),
        ({"parameters": {"age_max": -1}}, "age_max"),
        ({"parameters": {"min_immunomodulators": 1.5}}, "whole"),
        ({"parameters": {"ssc_excluded_subtypes": ["lmited"]}}, "lmited"),
        ({"disabled": ["INC-99"]}, "INC-99"),
        ({"parameterz": {}}, "parameterz"),
    ],
)
def test_invalid_scenario_refused(tmp_path, capsys, scenario, fragment):
    src = _write(tmp_path, _cohort(n_bad=False))
    scen = tmp_path / "s.json"
    scen.write_text(json.dumps(scenario))
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "--scenario", str(scen), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not out.exists()


def test_report_written(tmp_path):
    src = _write(tmp_path, _cohort())
    report = tmp_path / "issues.json"
    assert main(["screen", str(src), "-o", str(tmp_path / "r.csv"), "--report", str(report)]) == 0
    issues = json.loads(report.read_text())
    items = issues if isinstance(issues, list) else issues.get("issues", [])
    assert any(i["column"] == "consent_signed" and i["row"] == 8 for i in items)


def test_excel_formula_cells_neutralised(tmp_path):
    rows = _cohort(n_bad=False)
    rows[0]["patient_id"] = "=HYPERLINK(\"x\")"
    src = _write(tmp_path, rows)
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 0
    first = pd.read_csv(out, dtype=str).iloc[0]["patient_id"]
    assert first.startswith("'=")


def test_module_entry_point_and_unknown_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eligibility", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown command" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "eligibility", "screen"], capture_output=True, text=True)
    assert proc.returncode == 2


def test_empty_rows_between_patients_are_kept(tmp_path, capsys):
    src = tmp_path / "c.csv"
    src.write_text("patient_id,disease,age_years\nP1,SSc,40\n,,\nP3,SSc,30\n")
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert res["patient_id"].tolist() == ["P1", "", "P3"]
    assert res["status"].tolist()[1] == "pending"  # nothing known, DX-1 unknown
    assert "row 2 (no patient_id): empty row" in capsys.readouterr().err


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    src = _write(tmp_path, _cohort(n_bad=False))
    assert main(["screen", str(src), "-o", str(tmp_path / "no" / "such" / "r.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot write") and "Traceback" not in "".join(err)


def test_csv_output_has_bom_for_excel(tmp_path):
    rows = _cohort(n_bad=False)
    rows[0]["patient_id"] = "张三"
    src = _write(tmp_path, rows)
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(out, encoding="utf-8-sig", dtype=str)["patient_id"].iloc[0] == "张三"


def test_absent_column_message_follows_the_scenario(tmp_path, capsys):
    rows = _cohort(n_bad=False)
    for r in rows:
        r.pop("prior_cyclophosphamide")
    src = _write(tmp_path, rows)
    assert main(["screen", str(src), "-o", str(tmp_path / "a.csv")]) == 0
    assert "column prior_cyclophosphamide: column absent from the file: SSC-INC-4" in capsys.readouterr().err
    scen = tmp_path / "s.json"
    scen.write_text(json.dumps({"parameters": {"require_cyclophosphamide": False}}))
    assert main(["screen", str(src), "--scenario", str(scen), "-o", str(tmp_path / "b.csv")]) == 0
    assert "prior_cyclophosphamide" not in capsys.readouterr().err
    res = pd.read_csv(tmp_path / "b.csv", dtype=str, keep_default_na=False)
    assert "SSC-INC-4" not in res["not_assessed"].iloc[0]


def test_unreadable_washout_is_unknown_not_never(tmp_path):
    src = tmp_path / "c.csv"
    pd.DataFrame([
        {**eligible_row("SSc", patient_id="A"), "days_since_investigational_drug": "2 weeks"},
        {**eligible_row("SSc", patient_id="B"), "days_since_investigational_drug": 10},
        {**eligible_row("SSc", patient_id="C"), "days_since_investigational_drug": None},
    ]).to_csv(src, index=False)
    out = tmp_path / "r.csv"
    assert main(["screen", str(src), "-o", str(out)]) == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("patient_id")
    assert res.loc["A", "status"] == "pending" and res.loc["A", "unknown"] == "EXC-9"
    assert res.loc["B", "first_reason"] == "EXC-9"
    assert res.loc["C", "status"] == "eligible"  # empty = no such event
    literal = tmp_path / "s.json"
    literal.write_text(json.dumps({"parameters": {"unreadable_event_unknown": False}}))
    assert main(["screen", str(src), "--scenario", str(literal), "-o", str(out)]) == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("patient_id")
    assert res.loc["A", "status"] == "eligible"  # the contract's literal reading
