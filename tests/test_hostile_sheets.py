"""Hostile spreadsheets and Parquet files through `screen` and the upload path.
Every workbook is built here (openpyxl, then its XML edited where openpyxl cannot)."""

from __future__ import annotations

import datetime as dt
import io
import re
import tracemalloc
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_support import issues_of, run_both
from openpyxl import Workbook

from eligibility.loader import load_cohort
from eligibility.xlsx import FORMULA_PROBLEM, OLE_MAGIC

HEAD = ["patient_id", "disease", "age_years", "screening_date"]


def book(sheets: dict[str, list[list]], hidden: tuple[str, ...] = (), merges: dict[str, list[str]] | None = None,
         ) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
        if name in hidden:
            ws.sheet_state = "hidden"
        for rng in (merges or {}).get(name, []):
            ws.merge_cells(rng)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def edit_sheet(data: bytes, edit) -> bytes:
    """Rewrite xl/worksheets/sheet1.xml with `edit(xml) -> xml`."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = edit(body.decode()).encode()
            dst.writestr(info, body)
    return out.getvalue()


ROWS = [HEAD, ["P1", "SSc", 45, dt.datetime(2024, 1, 5)], ["P2", "IIM", 50, dt.datetime(2024, 2, 3)]]


# ---------------------------------------------------------------------------
# 2. spreadsheets
# ---------------------------------------------------------------------------


def test_first_visible_sheet_with_data_read_and_others_listed(tmp_path, capsys):
    data = book({"old": [HEAD, ["H1", "SSc", 1, None]], "notes": [["read me"]], "empty": [], "cohort": ROWS},
                hidden=("old",))
    o = run_both(data, "c.xlsx", tmp_path, capsys)
    assert o.rc == 0 and o.cohort.frame["patient_id"].tolist() == ["P1", "P2"]  # not the hidden 'old'
    (sheet,) = issues_of(o.cohort, "sheet")
    assert "read sheet 'cohort'" in sheet.problem
    assert "'old' (hidden)" in sheet.problem and "'notes' (no patient_id/disease header)" in sheet.problem
    assert "'empty' (empty)" in sheet.problem
    assert o.cohort.frame["screening_date"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-02-03")]


def test_only_hidden_sheets_have_data(tmp_path, capsys):
    o = run_both(book({"v": [], "h": ROWS}, hidden=("h",)), "c.xlsx", tmp_path, capsys)
    assert o.rc == 2 and "no visible sheet has data" in o.error and "'h' (hidden)" in o.error


def test_hidden_sheet_read_when_named(tmp_path, capsys):
    o = run_both(book({"v": [["x"]], "h": ROWS}, hidden=("h",)), "c.xlsx", tmp_path, capsys, sheet="h")
    assert o.rc == 0 and len(o.cohort) == 2


def test_merged_cells_take_the_top_left_value_and_each_fill_is_reported(tmp_path, capsys):
    rows = [HEAD, ["P1", "SSc", 45, None], ["P2", None, 50, None], ["P3", None, 61, None], ["P4", "APS", 30, None]]
    o = run_both(book({"s": rows}, merges={"s": ["B2:B4"]}), "c.xlsx", tmp_path, capsys)
    assert o.rc == 0 and o.cohort.frame["disease"].tolist() == ["SSc", "SSc", "SSc", "APS"]
    fills = issues_of(o.cohort, "merged_cell")
    assert [(i.row, i.patient_id, i.column, i.value) for i in fills] == [(2, "P2", "disease", "SSc"),
                                                                        (3, "P3", "disease", "SSc")]
    assert all("B2" in i.problem and "B2:B4" in i.problem for i in fills)
    assert sum("merged cell" in ln for ln in o.lines) == 2


def test_formula_without_saved_value_is_a_cell_error(tmp_path, capsys):
    rows = [HEAD, ["P1", "SSc", "=40+5", None], ["P2", "IIM", 50, None]]  # openpyxl saves no value
    o = run_both(book({"s": rows}), "c.xlsx", tmp_path, capsys)
    assert o.rc == 0 and pd.isna(o.cohort.frame["age_years"].iloc[0])
    (err,) = [i for i in issues_of(o.cohort, "cell_error") if i.column == "age_years"]
    assert (err.row, err.patient_id, err.value) == (1, "P1", "=40+5") and FORMULA_PROBLEM in err.problem
    assert "C2" in err.problem
    assert any(ln.startswith("error: row 1 (patient_id P1), column age_years") for ln in o.lines)


def test_formula_with_saved_value_and_error_values(tmp_path, capsys):
    def edit(xml: str) -> str:
        xml = re.sub(r'<c r="C2"([^>]*)><v>45</v></c>', r'<c r="C2"\1><f>40+5</f><v>45</v></c>', xml)
        return re.sub(r'<c r="C3"[^>]*><v>50</v></c>', '<c r="C3" t="e"><f>1/0</f><v>#DIV/0!</v></c>', xml)

    rows = [HEAD, ["P1", "SSc", 45, None], ["P2", "IIM", 50, None]]
    o = run_both(edit_sheet(book({"s": rows}), edit), "c.xlsx", tmp_path, capsys)
    assert o.cohort.frame["age_years"].iloc[0] == 45.0
    (err,) = [i for i in issues_of(o.cohort, "cell_error") if i.column == "age_years"]
    assert err.patient_id == "P2" and "#DIV/0!" in err.problem


def test_encrypted_workbook_says_so(tmp_path, capsys):
    # An encrypted xlsx is an OLE compound file holding these two streams (MS-OFFCRYPTO).
    data = OLE_MAGIC + bytes(500) + "EncryptionInfo".encode("utf-16-le") + bytes(100) + \
        "EncryptedPackage".encode("utf-16-le") + bytes(2000)
    o = run_both(data, "c.xlsx", tmp_path, capsys)
    assert o.rc == 2 and "encrypted" in o.error and "unprotected copy" in o.error
    o = run_both(OLE_MAGIC + bytes(3000), "c.xlsx", tmp_path, capsys)
    assert o.rc == 2 and ".xls" in o.error


def test_huge_declared_dimension_read_in_bounded_memory(tmp_path, capsys):
    def bomb(xml: str) -> str:
        xml = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', xml)
        stray = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>stray</t></is></c></row>'
        xml = xml.replace("</sheetData>", stray + "</sheetData>")
        return xml.replace("</worksheet>", '<mergeCells count="1"><mergeCell ref="B2:XFD1048576"/></mergeCells>'
                           "</worksheet>") if "<mergeCells" not in xml else xml

    data = edit_sheet(book({"s": ROWS}), bomb)
    tracemalloc.start()
    try:
        cohort = load_cohort(data, filename="c.xlsx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB"  # a dense read would need gigabytes
    assert cohort.frame["patient_id"].tolist() == ["P1", "P2"]
    (stray,) = issues_of(cohort, "outside_cell")
    assert "XFD1048576" in stray.problem and stray.value == "stray"
    o = run_both(data, "c.xlsx", tmp_path, capsys)
    assert o.rc == 0 and any("XFD1048576" in ln for ln in o.lines)


def test_big_numeric_ids_stay_exact_or_are_reported(tmp_path, capsys):
    # openpyxl (like Excel) stores numbers as doubles; other writers store integer literals.
    def ids(xml: str) -> str:
        xml = re.sub(r'(<c r="A2"[^>]*><v>)[^<]*', r"\g<1>12345678901234567890", xml)
        xml = re.sub(r'(<c r="A3"[^>]*><v>)[^<]*', r"\g<1>1.2345678901234567E+19", xml)
        return re.sub(r'(<c r="A4"[^>]*><v>)[^<]*', r"\g<1>9007199254740993", xml)

    rows = [HEAD, [1, "SSc", 45, None], [2, "IIM", 50, None], [3, "AAV", 30, None]]
    o = run_both(edit_sheet(book({"s": rows}), ids), "c.xlsx", tmp_path, capsys)
    got = o.cohort.frame["patient_id"].tolist()
    assert got[0] == "12345678901234567890" and got[2] == "9007199254740993"  # integer literals: exact
    (rounded,) = issues_of(o.cohort, "rounded_id")  # a double cannot hold it: said so
    assert rounded.row == 2 and "2^53" in rounded.problem and rounded.severity == "warning"
    assert o.results["patient_id"].tolist()[0] == "12345678901234567890"
    assert any("row 2" in ln and "2^53" in ln for ln in o.lines)


def test_big_float_ids_that_collapse_are_named(tmp_path, capsys):
    rows = [HEAD, [12345678901234567890, "SSc", 45, None], [12345678901234567891, "IIM", 50, None]]
    o = run_both(book({"s": rows}), "c.xlsx", tmp_path, capsys)  # both saved as 1.234567890123457e+19
    assert o.rc == 2 and "duplicate patient_id" in o.error


# ---------------------------------------------------------------------------
# 4. Parquet
# ---------------------------------------------------------------------------


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


@pytest.mark.parametrize("values", [
    [["SSc"], ["IIM", "AAV"]],
    [{"code": "SSc"}, {"code": "IIM"}],
])
def test_nested_contract_column_is_a_one_line_error_naming_it(values, tmp_path, capsys):
    data = parquet(pa.table({"patient_id": ["P1", "P2"], "disease": values}))
    o = run_both(data, "c.parquet", tmp_path, capsys)
    assert o.rc == 2 and "column 'disease'" in o.error and "flatten" in o.error


def test_nested_extra_column_is_ignored_and_said(tmp_path, capsys):
    data = parquet(pa.table({"patient_id": ["P1", "P2"], "disease": ["SSc", "IIM"], "notes": [["a"], []]}))
    o = run_both(data, "c.parquet", tmp_path, capsys)
    assert o.rc == 0 and any(i.column == "notes" and "nested" in i.problem for i in o.cohort.issues)


def test_timezone_aware_timestamps_are_dates(tmp_path, capsys):
    ts = pa.array([dt.datetime(2024, 1, 5, 23, 30, tzinfo=dt.UTC), None], type=pa.timestamp("us", tz="Asia/Shanghai"))
    data = parquet(pa.table({"patient_id": ["P1", "P2"], "disease": ["SSc", "IIM"], "screening_date": ts}))
    o = run_both(data, "c.parquet", tmp_path, capsys)
    assert o.rc == 0 and not issues_of(o.cohort, "cell_error")
    # 23:30 UTC is 07:30 next day in Shanghai: the local (recorded) date counts
    assert o.cohort.frame["screening_date"].iloc[0] == pd.Timestamp("2024-01-06")
    assert pd.isna(o.cohort.frame["screening_date"].iloc[1])


def test_duplicate_column_names_handled_as_in_csv(tmp_path, capsys):
    table = pa.Table.from_arrays(
        [pa.array(["P1", "P2"]), pa.array(["SSc", "IIM"]), pa.array([40.0, 50.0]), pa.array([99.0, 98.0])],
        names=["patient_id", "disease", "age_years", "age_years"])
    o = run_both(parquet(table), "c.parquet", tmp_path, capsys)
    assert o.rc == 0 and o.cohort.frame["age_years"].tolist() == [40.0, 50.0]
    assert any(i.kind == "extra_column" and "second column named 'age_years'" in i.problem for i in o.cohort.issues)
    csv_same = load_cohort(b"patient_id,disease,age_years,age_years\nP1,SSc,40,99\nP2,IIM,50,98\n", filename="c.csv")
    assert csv_same.frame["age_years"].tolist() == [40.0, 50.0]
