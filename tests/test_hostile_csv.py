"""Hostile CSV files (encodings, structure, disguised types, memory budget) through
`screen` and the upload path. Every file is built here."""

from __future__ import annotations

import codecs
import csv
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_support import issues_of, run_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from eligibility.loader import CohortError, load_cohort

HEADER = "patient_id,disease,age_years,sex\n"

# ---------------------------------------------------------------------------
# 1. encodings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_western_legacy_encoding_read_as_such_with_a_visible_warning(encoding, tmp_path, capsys):
    text = HEADER + "MÜLLER-0001,Sjögren,45,F\nGARÇON-2,sclérodermie,50,M\nP3,SSc,61,F\n"
    if encoding == "cp1252":
        text = text.replace("P3", "P3–“x”")  # cp1252-only characters (0x96, 0x93, 0x94)
    data = text.encode(encoding)
    # The trap: these bytes also decode as GB18030 (MÜLLER -> M躄LER).
    assert data.decode("gb18030", "replace") != text
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 0
    ids = o.cohort.frame["patient_id"].tolist()
    assert ids[0] == "MÜLLER-0001" and ids[1] == "GARÇON-2"
    assert o.results["patient_id"].tolist()[:2] == ["MÜLLER-0001", "GARÇON-2"]
    assert o.cohort.frame["disease"].iloc[0] == "SjS"
    (enc,) = issues_of(o.cohort, "encoding")
    assert enc.severity == "warning" and "not UTF-8" in enc.problem and "line 2" in enc.problem
    assert any(ln.startswith("warning: file") and "Windows-1252" in ln or "Latin-1" in ln for ln in o.lines)


def test_gbk_chinese_still_read_as_chinese(tmp_path, capsys):
    data = (HEADER + "张伟-1,系统性硬化症,45,女\n李娜-2,干燥综合征,50,女\n").encode("gbk")
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.cohort.frame["patient_id"].tolist() == ["张伟-1", "李娜-2"]
    assert o.cohort.frame["disease"].tolist() == ["SSc", "SjS"]
    (enc,) = issues_of(o.cohort, "encoding")
    assert enc.severity == "info" and "GB" in enc.problem


@pytest.mark.parametrize("bom,codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_with_bom_read(bom, codec, tmp_path, capsys):
    data = bom + (HEADER + "MÜLLER-1,Sjögren,45,F\n张伟,SSc,50,M\n").encode(codec)
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 0 and o.cohort.frame["patient_id"].tolist() == ["MÜLLER-1", "张伟"]
    assert "UTF-16" in issues_of(o.cohort, "encoding")[0].problem


def test_utf16_without_bom_refused_naming_it(tmp_path, capsys):
    o = run_both((HEADER + "P1,SSc,45,F\n").encode("utf-16-le"), "c.csv", tmp_path, capsys)
    assert o.rc == 2 and "UTF-16" in o.error and "UTF-8" in o.error


def test_utf8_file_with_one_undecodable_line_names_the_line(tmp_path, capsys):
    lines = [HEADER.strip()] + [f"Pé{i},Sjögren,40,F" for i in range(10)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data = data.replace("Pé7".encode(), b"P\xe97")  # one Latin-1 byte on file line 9
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 2 and "line 9 is not valid UTF-8" in o.error and "0xE9" in o.error


def test_big5_refused_naming_the_encoding(tmp_path, capsys):
    names = ["陳大文", "林美玲", "黃志明", "張家豪", "李淑芬", "王建國", "吳雅婷", "劉俊傑", "蔡佩珊", "楊宗翰"]
    diseases = ["系統性硬化症", "乾燥症候群", "抗磷脂症候群", "皮肌炎", "血管炎"]
    rows = "".join(f"{names[i % 10]}{i},{diseases[i % 5]},{40 + i},女\n" for i in range(30))
    data = (HEADER + rows).encode("big5")
    data.decode("gb18030")  # the trap: Big5 bytes are valid GB18030 too
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 2 and "Big5" in o.error and "UTF-8" in o.error


# ---------------------------------------------------------------------------
# 3. CSV structure
# ---------------------------------------------------------------------------


def test_header_line_of_any_length(tmp_path, capsys):
    extra = [f"site_specific_column_{i:05d}" for i in range(6000)]  # ~170 kB header
    header = ",".join(["patient_id", "disease", "age_years", *extra])
    row = ",".join(["P1", "SSc", "45", *(["x"] * len(extra))])
    data = (header + "\n" + row + "\n").encode()
    assert len(header) > 110_000
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 0 and o.cohort.frame["age_years"].tolist() == [45.0]
    assert len(o.cohort.extra_columns) == 6000


def test_ragged_rows_kept_and_named(tmp_path, capsys):
    data = (HEADER + "P1,SSc,45,F\nP2,IIM,50\nP3,AAV,61,M,surprise,more\nP4,APS,33,F,\nP5,SjS,40,F\n").encode()
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 0 and o.results["patient_id"].tolist() == ["P1", "P2", "P3", "P4", "P5"]
    ragged = {i.row: i for i in issues_of(o.cohort, "ragged_row")}
    short, long_, trailing = ragged[2], ragged[3], ragged[4]
    assert short.patient_id == "P2" and "line 3" in short.problem and short.severity == "warning"
    assert pd.isna(o.cohort.frame["sex"].iloc[1])
    assert long_.value == "surprise,more" and "line 4" in long_.problem and long_.severity == "warning"
    assert o.cohort.frame["sex"].iloc[2] == "M"
    assert trailing.severity == "info" and "empty field" in trailing.problem
    assert any("row 2 (patient_id P2)" in ln and "line 3" in ln for ln in o.lines)
    assert any("row 3 (patient_id P3)" in ln and "'surprise,more'" in ln for ln in o.lines)


def test_unterminated_quote_names_the_line(tmp_path, capsys):
    data = (HEADER + 'P1,SSc,45,F\nP2,"IIM,50,F\nP3,AAV,61,M\n').encode()
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 2 and "line 3" in o.error and "never closed" in o.error


def test_empty_lines_between_rows_kept_and_reported(tmp_path, capsys):
    data = (HEADER + "P1,SSc,45,F\n\nP2,IIM,50,F\n\r\nP3,AAV,61,M\n\n\n").encode()
    o = run_both(data, "c.csv", tmp_path, capsys)
    assert o.rc == 0
    assert o.results["patient_id"].tolist() == ["P1", "", "P2", "", "P3"]  # row numbers do not shift
    empty = [i.row for i in issues_of(o.cohort, "empty_row") if i.row]
    assert empty == [2, 4]
    assert any(i.row is None and "after the last data row" in i.problem for i in issues_of(o.cohort, "empty_row"))
    assert "warning: row 2 (no patient_id)" in o.stderr


def test_empty_disease_reported(tmp_path, capsys):
    o = run_both((HEADER + "P1,,45,F\nP2,SSc,50,F\n").encode(), "c.csv", tmp_path, capsys)
    assert o.rc == 0 and o.results["status"].iloc[0] == "pending"
    assert any(ln.startswith("error: row 1 (patient_id P1), column disease") for ln in o.lines)


def _xlsx_bytes() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["patient_id", "disease", "age_years"])
    ws.append(["X1", "SSc", 45])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"patient_id": ["Q1", "Q2"], "disease": ["IIM", "APS"]}), buf)
    return buf.getvalue()


@pytest.mark.parametrize("make,what,ids", [(_xlsx_bytes, "xlsx", ["X1"]), (_parquet_bytes, "Parquet", ["Q1", "Q2"])])
def test_binary_file_under_a_csv_name_is_recognised(make, what, ids, tmp_path, capsys):
    o = run_both(make(), "cohort.csv", tmp_path, capsys)
    assert o.rc == 0 and o.cohort.frame["patient_id"].tolist() == ids
    (note,) = issues_of(o.cohort, "file_type")
    assert what in note.problem and note.severity == "warning"
    assert any(what in ln and ".csv" in ln for ln in o.lines)


def test_text_under_a_parquet_name_is_told_so(tmp_path, capsys):
    o = run_both((HEADER + "P1,SSc,45,F\n").encode(), "c.parquet", tmp_path, capsys)
    assert o.rc == 2 and "holds text" in o.error and ".csv" in o.error


# ---------------------------------------------------------------------------
# 8. messages stay short; 10. memory budget
# ---------------------------------------------------------------------------


def test_huge_cell_is_shortened_on_stderr(tmp_path, capsys):
    big = "9" * 1_000_000 + "x"
    o = run_both((HEADER + f"P1,SSc,{big},F\n").encode(), "c.csv", tmp_path, capsys)
    assert o.rc == 0 and big not in o.stderr and max(map(len, o.lines)) < 1_000
    line = next(ln for ln in o.lines if "column age_years" in ln)
    assert "1,000,001 characters" in line and "row 1 (patient_id P1)" in line


def test_huge_duplicate_ids_shortened_in_the_one_line_error(tmp_path, capsys):
    big = "D" * 500_000
    o = run_both((HEADER + f"{big},SSc,45,F\n{big},SSc,50,F\n").encode(), "c.csv", tmp_path, capsys)
    assert o.rc == 2 and "duplicate patient_id" in o.error and len(o.stderr) < 1_000


def test_file_over_the_memory_budget_is_refused(monkeypatch, tmp_path):
    data = (HEADER + "".join(f"P{i},SSc,45,F\n" for i in range(5000))).encode()
    with pytest.raises(CohortError, match=r"over the limit of .* MB \(ELIGIBILITY_MAX_MEMORY_MB\)"):
        load_cohort(data, filename="c.csv", budget_bytes=len(data))
    monkeypatch.setenv("ELIGIBILITY_MAX_MEMORY_MB", "0.01")
    with pytest.raises(CohortError, match="over the limit"):
        load_cohort(data, filename="c.csv")
    monkeypatch.setenv("ELIGIBILITY_MAX_MEMORY_MB", "100")
    assert len(load_cohort(data, filename="c.csv")) == 5000
    with pytest.raises(CohortError, match="over the limit"):
        load_cohort(_parquet_bytes(), filename="c.parquet", budget_bytes=10)
    with pytest.raises(CohortError, match="over the limit"):
        load_cohort(_xlsx_bytes(), filename="c.xlsx", budget_bytes=1000)
    big = tmp_path / "big.csv"
    big.write_bytes(data)
    with pytest.raises(CohortError, match="big.csv: the file would take"):  # refused before reading
        load_cohort(big, budget_bytes=len(data) - 1)


# ---------------------------------------------------------------------------
# property: whatever the structure, every line after the header is a row, and
# every line whose field count differs from the header's is named
# ---------------------------------------------------------------------------


_CELL = st.sampled_from(["", "x", "45", "SSc", " ", "a b", '"q,uoted"', "é"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.just(None), st.lists(_CELL, min_size=1, max_size=7)), min_size=1, max_size=25))
def test_property_every_line_is_a_row_and_ragged_lines_are_named(lines):
    body = []
    for i, cells in enumerate(lines):
        if cells is None:
            body.append("")  # an empty line
        else:
            body.append(",".join([f"P{i}", *cells[1:]]))
    text = HEADER + "\n".join(body) + "\n"
    try:
        c = load_cohort(text.encode(), filename="c.csv")
    except CohortError as e:
        assert "no data rows" in str(e)  # only empty lines after the header
        assert all(ln is None for ln in lines)
        return
    last = max(i for i, ln in enumerate(lines) if ln is not None)
    assert len(c) == last + 1
    for i, cells in enumerate(lines[: last + 1]):
        if cells is None:
            assert c.frame["patient_id"].isna().iloc[i]
            continue
        assert c.frame["patient_id"].iloc[i] == f"P{i}"
        n_fields = len(next(csv.reader([body[i]])))
        named = [j for j in c.issues if j.kind == "ragged_row" and j.row == i + 1]
        assert bool(named) == (n_fields != 4), (body[i], named)
        if named:
            assert f"line {i + 2}" in named[0].problem
