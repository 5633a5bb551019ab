"""Cohort loader: formats, normalisation, cell errors, fatal input problems."""

from __future__ import annotations

import io
import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from eligibility.fields import FIELDS
from eligibility.loader import (
    Cohort,
    CohortError,
    Issue,
    load_cohort,
    validate_frame,
    write_report,
)

BASE = [
    {"patient_id": "P1", "disease": "SSc", "age_years": "45", "sex": "F", "consent_signed": "yes"},
    {"patient_id": "P2", "disease": "AAV", "age_years": "60", "sex": "M", "consent_signed": "no"},
    {"patient_id": "P3", "disease": "APS", "age_years": "", "sex": "", "consent_signed": ""},
]


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(rows[0])
    out = io.StringIO()
    pd.DataFrame(rows, columns=columns).to_csv(out, index=False)
    return out.getvalue()


def load_csv(text: str, encoding: str = "utf-8", **kw) -> Cohort:
    return load_cohort(text.encode(encoding), filename="cohort.csv", **kw)


def one(rows: dict | list[dict], **kw) -> Cohort:
    rows = rows if isinstance(rows, list) else [rows]
    rows = [{"patient_id": f"P{i}", "disease": "SSc", **r} for i, r in enumerate(rows, 1)]
    return load_csv(csv_text(rows), **kw)


def kinds(c: Cohort, kind: str) -> list[Issue]:
    return [i for i in c.issues if i.kind == kind]


# ---------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------


def test_csv_utf8(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(csv_text(BASE), encoding="utf-8")
    c = load_cohort(p)
    assert len(c) == 3 and c.source == "c.csv"
    assert list(c.frame["patient_id"]) == ["P1", "P2", "P3"]
    assert isinstance(c.frame.index, pd.RangeIndex)
    assert c.frame["age_years"].dtype == np.float64
    assert c.frame["consent_signed"].dtype == "boolean"
    assert list(c.frame["sex"].cat.categories) == ["F", "M"]
    assert not kinds(c, "encoding") and not kinds(c, "cell_error")
    assert c.present == frozenset(BASE[0])
    # also from a str path and a file object
    assert len(load_cohort(str(p))) == 3
    with p.open("rb") as fh:
        assert len(load_cohort(fh)) == 3


def test_csv_utf8_bom():
    c = load_cohort(b"\xef\xbb\xbf" + csv_text(BASE).encode(), filename="x.CSV")
    assert "patient_id" in c.present and len(c) == 3
    assert not kinds(c, "renamed_column")


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_csv_chinese_encodings(encoding):
    rows = [dict(r) for r in BASE]
    rows[0]["disease"] = "系统性硬化症"
    rows[1]["disease"] = "ANCA相关性血管炎"
    rows[0]["prior_immunomodulators"] = "羟氯喹、吗替麦考酚酯"
    rows[1]["prior_immunomodulators"] = "none"
    rows[2]["prior_immunomodulators"] = ""
    rows[2]["note"] = "备注" + ("\U0002000b" if encoding == "gb18030" else "")
    text = csv_text(rows, [*rows[0], "note"])
    c = load_csv(text, encoding=encoding)
    assert list(c.frame["disease"]) == ["SSc", "AAV", "APS"]
    assert c.frame["prior_immunomodulators"].iloc[0] == "antimalarial;mycophenolate"
    enc = kinds(c, "encoding")
    assert len(enc) == 1 and enc[0].severity == "info" and "GB" in enc[0].problem


def test_csv_not_utf8_late_in_file():
    """Encoding detected even when the first 64 KiB are plain ASCII."""
    rows = [{"patient_id": f"P{i}", "disease": "SSc", "note": "x" * 50} for i in range(2000)]
    rows[-1]["note"] = "中文"
    c = load_csv(csv_text(rows), encoding="gbk")
    assert len(c) == 2000 and kinds(c, "encoding")


def test_tab_and_semicolon_delimiters():
    for sep in ("\t", ";"):
        text = f"patient_id{sep}disease{sep}age_years\nP1{sep}SSc{sep}40\n"
        c = load_cohort(text.encode(), filename="a.txt")
        assert c.frame["age_years"].tolist() == [40.0]


def test_parquet_native_dtypes(tmp_path):
    df = pd.DataFrame(
        {
            "patient_id": [101, 102, 103],
            "disease": ["SSc", "myositis", None],
            "age_years": [40, 50, 61],
            "hemoglobin_g_l": [120.5, np.nan, 13.0],
            "consent_signed": pd.array([True, None, False], dtype="boolean"),
            "hiv_pos": [1.0, 0.0, np.nan],
            "tb_active": [1, 0, 2],
            "screening_date": pd.to_datetime(["2024-01-05", None, "2024-03-01"]),
            "sex": ["f", "M", "female"],
            "bvas_major_items": [1.0, 2.5, None],
        }
    )
    p = tmp_path / "c.parquet"
    df.to_parquet(p, index=False)
    c = load_cohort(p)
    f = c.frame
    assert list(f["patient_id"]) == ["101", "102", "103"]
    assert list(f["disease"].fillna("?")) == ["SSc", "IIM", "?"]
    assert f["age_years"].dtype == np.float64
    assert f["consent_signed"].tolist() == [True, pd.NA, False]
    assert f["hiv_pos"].tolist() == [True, False, pd.NA]
    assert f["tb_active"].tolist() == [True, False, pd.NA]
    assert f["screening_date"].dtype.kind == "M"
    assert f["screening_date"].iloc[0] == pd.Timestamp("2024-01-05")
    assert pd.isna(f["screening_date"].iloc[1])
    assert f["sex"].tolist() == ["F", "M", "F"]
    errs = kinds(c, "cell_error")
    assert {(i.row, i.column, i.value) for i in errs} == {
        (3, "tb_active", "2"),
        (2, "bvas_major_items", "2.5"),
        (3, "disease", None),  # an empty disease is reported
    }
    assert [i.patient_id for i in kinds(c, "implausible")] == ["103"]
    assert kinds(c, "implausible")[0].value == "13"


def test_parquet_patient_id_as_index(tmp_path):
    df = pd.DataFrame({"patient_id": ["A", "B"], "disease": ["SSc", "IIM"]}).set_index("patient_id")
    p = tmp_path / "c.pq"
    df.to_parquet(p)
    assert list(load_cohort(p).frame["patient_id"]) == ["A", "B"]


def _xlsx(sheets: dict[str, list[list]]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


HEADER = ["patient_id", "disease", "age_years", "consent_signed", "screening_date"]
ROWS = [
    ["P1", "SSc", 45, True, pd.Timestamp("2024-01-05").to_pydatetime()],
    ["P2", "pSS", "52", "y", "2024/02/03"],
    [1003, "GPA", 60.0, 0, None],
]


def test_xlsx_first_sheet():
    data = _xlsx({"cohort": [HEADER, *ROWS], "other": [["x"], [1]]})
    c = load_cohort(data, filename="c.xlsx")
    f = c.frame
    assert list(f["patient_id"]) == ["P1", "P2", "1003"]
    assert list(f["disease"]) == ["SSc", "SjS", "AAV"]
    assert f["age_years"].tolist() == [45.0, 52.0, 60.0]
    assert f["consent_signed"].tolist() == [True, True, False]
    assert f["screening_date"].tolist()[:2] == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-02-03")]
    assert not kinds(c, "cell_error")
    (sheet,) = kinds(c, "sheet")  # which sheet was read, and the others listed
    assert "'cohort'" in sheet.problem and "other sheets: 'other'" in sheet.problem


def test_xlsx_named_sheet_and_index():
    data = _xlsx({"notes": [["hello"]], "Cohort B": [HEADER, *ROWS[:2]]})
    assert len(load_cohort(data, filename="c.xlsx", sheet="Cohort B")) == 2
    assert len(load_cohort(data, filename="c.xlsm", sheet="cohort b")) == 2
    assert len(load_cohort(data, filename="c.xlsx", sheet=1)) == 2
    with pytest.raises(CohortError, match="no sheet named 'nope'"):
        load_cohort(data, filename="c.xlsx", sheet="nope")


def test_xlsx_data_on_second_sheet():
    data = _xlsx({"README": [["About this export"], ["generated by HIS"]], "data": [HEADER, *ROWS]})
    c = load_cohort(data, filename="c.xlsx")
    assert len(c) == 3
    (issue,) = kinds(c, "sheet")
    assert issue.severity == "info" and "'data'" in issue.problem


def test_xlsx_title_rows_and_empty_rows():
    rows = [
        ["Screening export 2024"],
        [],
        HEADER,
        ROWS[0],
        [None, None, None, None, None],
        ROWS[1],
        ["", " ", None, None, None],
        ROWS[2],
        [],
        [None, "   "],
    ]
    c = load_cohort(_xlsx({"s": rows}), filename="c.xlsx")
    # Empty rows between data rows are kept (no row lost); trailing ones are leftovers.
    assert c.frame["patient_id"].tolist()[::2] == ["P1", "P2", "1003"]
    assert len(c) == 5 and c.frame["patient_id"].isna().tolist() == [False, True, False, True, False]
    assert "row 3" in kinds(c, "sheet")[0].problem
    empty = kinds(c, "empty_row")
    assert [i.row for i in empty if i.row] == [2, 4] and all(i.severity == "warning" for i in empty if i.row)
    assert any(i.row is None and "after the last data row" in i.problem for i in empty)
    assert list(c.row_numbers) == [1, 2, 3, 4, 5]


def test_csv_title_rows_and_empty_rows():
    text = "Export,,\n,,\npatient_id,disease,age_years\nP1,SSc,40\n,,\nP2,SSc,x\n , ,\n"
    c = load_csv(text)
    assert c.frame["patient_id"].tolist()[::2] == ["P1", "P2"] and len(c) == 3
    assert [i.row for i in kinds(c, "empty_row")] == [None, 2]
    (err,) = kinds(c, "cell_error")
    assert (err.row, err.patient_id, err.value) == (3, "P2", "x")


# ---------------------------------------------------------------------------
# cell values
# ---------------------------------------------------------------------------

YES = ["true", "TRUE", "True", "yes", "YES", "Yes", "y", "Y", "1", " yes ", "1.0"]
NO = ["false", "FALSE", "no", "No", "n", "N", "0", "  0", "0.0"]


@pytest.mark.parametrize("spelling,expected", [(s, True) for s in YES] + [(s, False) for s in NO])
def test_yesno_spellings(spelling, expected):
    c = one({"hiv_pos": spelling})
    assert c.frame["hiv_pos"].iloc[0] is expected or c.frame["hiv_pos"].iloc[0] == expected
    assert not kinds(c, "cell_error")


@pytest.mark.parametrize("bad", ["maybe", "2", "positive", "yess", "+", "-1"])
def test_yesno_bad(bad):
    c = one([{"hiv_pos": bad}, {"hiv_pos": "no"}])
    assert len(c) == 2
    assert pd.isna(c.frame["hiv_pos"].iloc[0])
    (err,) = kinds(c, "cell_error")
    assert (err.row, err.patient_id, err.column, err.value) == (1, "P1", "hiv_pos", bad)
    assert err.severity == "error" and "yes/no" in err.problem


@pytest.mark.parametrize(
    "text,value", [("12.5", 12.5), (" 12 ", 12.0), ("1e3", 1000.0), ("-3", -3.0), (".5", 0.5), ("+7", 7.0)]
)
def test_numbers_parse(text, value):
    c = one({"days_since_gcsf": text})
    assert c.frame["days_since_gcsf"].iloc[0] == value
    assert not kinds(c, "cell_error")


@pytest.mark.parametrize("bad", ["12,5", "abc", "85 g/L", "nan", "inf", "1.2.3", "--1", "<5"])
def test_numbers_bad(bad):
    c = one([{"hemoglobin_g_l": "100"}, {"hemoglobin_g_l": bad}])
    assert np.isnan(c.frame["hemoglobin_g_l"].iloc[1])
    (err,) = kinds(c, "cell_error")
    assert (err.row, err.patient_id, err.column, err.value) == (2, "P2", "hemoglobin_g_l", bad)
    assert "not a number" in err.problem


def test_whole_number_fields():
    c = one([{"bvas_major_items": "2"}, {"bvas_major_items": "2.5"}])
    assert c.frame["bvas_major_items"].iloc[0] == 2
    assert np.isnan(c.frame["bvas_major_items"].iloc[1])
    (err,) = kinds(c, "cell_error")
    assert err.row == 2 and "whole" in err.problem


def test_implausible_kept_and_warned():
    c = one([{"hemoglobin_g_l": "12"}, {"hemoglobin_g_l": "30"}, {"hemoglobin_g_l": "251"}, {"hemoglobin_g_l": "250"}])
    assert c.frame["hemoglobin_g_l"].tolist() == [12.0, 30.0, 251.0, 250.0]  # never converted
    warns = kinds(c, "implausible")
    assert [(w.row, w.value, w.severity) for w in warns] == [(1, "12", "warning"), (3, "251", "warning")]
    assert "g/dL" in warns[0].problem and "g/L" in warns[0].problem
    assert "g/dL" not in warns[1].problem
    assert not kinds(c, "cell_error")


def test_negative_days_accepted_as_number():
    c = one({"days_since_live_vaccine": "-5"})
    assert c.frame["days_since_live_vaccine"].iloc[0] == -5
    assert not kinds(c, "cell_error")


@pytest.mark.parametrize(
    "given,code",
    [
        ("SSc", "SSc"), ("ssc", "SSc"), ("systemic sclerosis", "SSc"), ("Scleroderma", "SSc"),
        ("dermatomyositis", "IIM"), ("Polymyositis", "IIM"), ("myositis", "IIM"), ("IIM", "IIM"),
        ("inflammatory myopathy", "IIM"),
        ("GPA", "AAV"), ("mpa", "AAV"), ("ANCA vasculitis", "AAV"), ("ANCA-associated vasculitis", "AAV"),
        ("granulomatosis with polyangiitis", "AAV"), ("microscopic polyangiitis", "AAV"),
        ("Sjogren", "SjS"), ("Sjögren", "SjS"), ("Sjögren's syndrome", "SjS"), ("Sjögren’s syndrome", "SjS"),
        ("pSS", "SjS"), ("sjs", "SjS"),
        ("antiphospholipid syndrome", "APS"), ("APS", "APS"), ("  aps ", "APS"),
    ],
)
def test_disease_synonyms(given, code):
    c = load_csv(csv_text([{"patient_id": "P1", "disease": given}]))
    assert c.frame["disease"].iloc[0] == code
    assert not kinds(c, "unrecognised_disease")


def test_disease_unrecognised_kept():
    c = load_csv(csv_text([{"patient_id": "P1", "disease": " lupus "}, {"patient_id": "P2", "disease": ""}]))
    assert c.frame["disease"].iloc[0] == "lupus"
    assert pd.isna(c.frame["disease"].iloc[1])
    assert c.frame["disease"].dtype == "string"
    (info,) = kinds(c, "unrecognised_disease")
    assert info.severity == "info" and info.value == "lupus" and info.row == 1
    (empty,) = kinds(c, "cell_error")  # the empty disease is reported, the row kept
    assert (empty.row, empty.patient_id, empty.column) == (2, "P2", "disease") and "DX-1" in empty.problem


def test_category_case_and_bad():
    c = one(
        [
            {"sex": "f", "ssc_subtype": "LIMITED", "iim_subtype": "ibm", "ph_risk": "None"},
            {"sex": "Male", "ssc_subtype": "Diffuse", "iim_subtype": "Other", "ph_risk": "HIGH"},
            {"sex": "x", "ssc_subtype": "", "iim_subtype": "DM", "ph_risk": "very high"},
        ]
    )
    f = c.frame
    assert f["sex"].tolist()[:2] == ["F", "M"] and pd.isna(f["sex"].iloc[2])
    assert f["ssc_subtype"].tolist()[:2] == ["limited", "diffuse"] and pd.isna(f["ssc_subtype"].iloc[2])
    assert f["iim_subtype"].tolist() == ["IBM", "other", "DM"]
    assert f["ph_risk"].tolist()[:2] == ["none", "high"]
    assert list(f["iim_subtype"].cat.categories) == ["DM", "PM", "ASS", "IMNM", "IBM", "other"]
    assert {(i.row, i.column) for i in kinds(c, "cell_error")} == {(3, "sex"), (3, "ph_risk")}


@pytest.mark.parametrize(
    "given,canon,count",
    [
        ("hydroxychloroquine", "antimalarial", 1),
        ("HCQ; MMF", "antimalarial;mycophenolate", 2),
        ("MMF, mycophenolate mofetil, CellCept", "mycophenolate", 1),
        ("mycophenolic acid", "mycophenolate", 1),
        ("AZA+MTX/LEF", "azathioprine;leflunomide;methotrexate", 3),
        ("FK506；tacrolimus", "tacrolimus", 1),
        ("CsA、ciclosporin", "cyclosporine", 1),
        ("cyclosporine A", "cyclosporine", 1),
        ("RTX; MabThera; Rituxan", "rituximab", 1),
        ("Benlysta", "belimumab", 1),
        ("Actemra, RoActemra, TCZ", "tocilizumab", 1),
        ("tetatercept; RC18; Tai'ai", "telitacicept", 1),
        ("chloroquine; antimalarials", "antimalarial", 1),
        ("None", "none", 0),
        (" NONE ", "none", 0),
    ],
)
def test_drug_synonyms(given, canon, count):
    c = one({"prior_immunomodulators": given})
    assert c.frame["prior_immunomodulators"].iloc[0] == canon
    assert c.frame["n_prior_immunomodulators"].iloc[0] == count
    assert not kinds(c, "unrecognised_drug")


def test_drug_empty_and_unrecognised():
    c = one([{"prior_immunomodulators": ""}, {"prior_immunomodulators": "MTX; unobtainium; foo"}])
    f = c.frame
    assert pd.isna(f["prior_immunomodulators"].iloc[0]) and np.isnan(f["n_prior_immunomodulators"].iloc[0])
    assert f["prior_immunomodulators"].iloc[1] == "methotrexate"
    assert f["n_prior_immunomodulators"].iloc[1] == 1
    (w,) = kinds(c, "unrecognised_drug")
    assert w.severity == "warning" and w.row == 2 and "unobtainium" in w.problem and "foo" in w.problem
    assert list(f.columns)[-1] == "n_prior_immunomodulators"


def test_dates():
    c = one(
        [
            {"screening_date": "2024-01-05"},
            {"screening_date": "2024/1/5"},
            {"screening_date": "2024.01.05"},
            {"screening_date": "2024-01-05 10:30:00"},
            {"screening_date": "05/01/2024"},
            {"screening_date": "2024-02-30"},
            {"screening_date": ""},
        ]
    )
    d = c.frame["screening_date"]
    assert d.dtype.kind == "M"
    assert d.iloc[:4].tolist() == [pd.Timestamp("2024-01-05")] * 4
    assert d.iloc[4:].isna().all()
    assert [i.row for i in kinds(c, "cell_error")] == [5, 6]


def test_empty_patient_id_kept_as_cell_error():
    c = load_csv("patient_id,disease\nP1,SSc\n  ,IIM\n,APS\n")
    assert len(c) == 3
    assert c.frame["patient_id"].isna().tolist() == [False, True, True]
    errs = kinds(c, "cell_error")
    assert [(e.row, e.column) for e in errs] == [(2, "patient_id"), (3, "patient_id")]


# ---------------------------------------------------------------------------
# columns
# ---------------------------------------------------------------------------


def test_extra_missing_renamed_columns(monkeypatch):
    text = " Patient_ID ,DISEASE,Hemoglobin_G_L,ward,alt_u_l\nP1,SSc,120,A,30\n"
    c = load_csv(text)
    assert c.present == {"patient_id", "disease", "hemoglobin_g_l", "alt_u_l"}
    assert "ward" not in c.frame.columns and c.extra_columns == ("ward",)
    assert list(c.frame.columns) == ["patient_id", "disease", "hemoglobin_g_l", "alt_u_l"]
    renamed = {i.column for i in kinds(c, "renamed_column")}
    assert renamed == {"Patient_ID", "DISEASE", "Hemoglobin_G_L"}
    assert all(i.severity == "info" for i in kinds(c, "renamed_column") + kinds(c, "extra_column"))
    missing = {i.column: i for i in kinds(c, "missing_column")}
    assert "hemoglobin_g_l" not in missing and "age_years" in missing
    assert all(i.severity == "warning" for i in missing.values())
    assert missing["age_years"].problem.endswith("INC-1 not assessed for everyone")
    # optional columns (per-patient ULNs, weight) absent: no issue at all
    assert not {"weight_kg", "alt_uln_u_l", "inr_uln"} & set(missing)
    assert "prior_immunomodulators" in missing and "n_prior_immunomodulators" not in c.frame


def test_missing_column_names_criteria(monkeypatch):
    fake = types.ModuleType("eligibility.catalog")
    fake.parts_reading_field = lambda name: ["INC-2.hb", "EXC-2.hb"] if name == "hemoglobin_g_l" else []
    monkeypatch.setitem(sys.modules, "eligibility.catalog", fake)
    c = load_csv("patient_id,disease\nP1,SSc\n")
    (hb,) = [i for i in kinds(c, "missing_column") if i.column == "hemoglobin_g_l"]
    assert "INC-2.hb" in hb.problem and "EXC-2.hb" in hb.problem and "not assessed" in hb.problem


def test_missing_column_names_the_criteria_it_disables():
    c = load_csv("patient_id,disease\nP1,SSc\n")
    missing = {i.column: i for i in kinds(c, "missing_column")}
    assert missing["tb_latent"].problem.endswith("EXC-4.latent not assessed for everyone")
    assert missing["screening_date"].severity == "warning"
    assert "weight_kg" not in missing  # optional: its absence changes nothing


def test_duplicate_column_header():
    c = load_csv("patient_id,disease,age_years,AGE_YEARS\nP1,SSc,40,99\n")
    assert c.frame["age_years"].tolist() == [40.0]
    assert any(i.kind == "extra_column" and i.severity == "warning" for i in c.issues)


# ---------------------------------------------------------------------------
# fatal problems
# ---------------------------------------------------------------------------


def test_fatal_missing_patient_id():
    with pytest.raises(CohortError, match="patient_id") as e:
        load_csv("id,disease\nP1,SSc\n")
    assert "\n" not in str(e.value) and "disease" not in str(e.value).split("(")[0]


def test_fatal_missing_disease():
    with pytest.raises(CohortError, match="missing required column.*disease"):
        load_csv("patient_id,dx\nP1,SSc\n")


def test_fatal_missing_both():
    with pytest.raises(CohortError, match="patient_id, disease"):
        load_csv("a,b\n1,2\n")


def test_fatal_duplicate_ids():
    with pytest.raises(CohortError, match=r"duplicate patient_id: P1 \(rows 1, 3\), P2 \(rows 2, 4\)") as e:
        load_csv("patient_id,disease\nP1,SSc\nP2,SSc\nP1,IIM\n P2 ,AAV\nP3,SSc\n,SSc\n,IIM\n")
    assert "P3" not in str(e.value)


def test_fatal_many_duplicate_ids():
    rows = "".join(f"D{i:02d},SSc\nD{i:02d},SSc\n" for i in range(15))
    with pytest.raises(CohortError) as e:
        load_csv("patient_id,disease\n" + rows)
    msg = str(e.value)
    assert "D00" in msg and "D09" in msg and "D10" not in msg and "and 5 more" in msg


@pytest.mark.parametrize(
    "data,filename,match",
    [
        (b"", "c.csv", "empty"),
        (b"patient_id,disease\n", "c.csv", "no data rows"),
        (b"not a parquet file", "c.parquet", "Parquet"),
        (b"PK\x03\x04garbage", "c.xlsx", "xlsx"),
        (b"patient_id,disease\nP1,SSc\n", "c.json", "unsupported file type"),
        (b"patient_id,disease\nP1,SSc\n", "c.xls", "unsupported file type"),
        (b"\xff\xfe\x00\xd8", "c.csv", "UTF-16"),
    ],
)
def test_fatal_unreadable(data, filename, match):
    with pytest.raises(CohortError, match=match) as e:
        load_cohort(data, filename=filename)
    assert "\n" not in str(e.value)


def test_fatal_missing_file(tmp_path):
    with pytest.raises(CohortError, match="cannot read"):
        load_cohort(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------
# validate_frame, report, progress
# ---------------------------------------------------------------------------


def test_validate_frame_objects():
    raw = pd.DataFrame(
        {
            "patient_id": ["a", "b"],
            "disease": ["SSc", "IIM"],
            "age_years": [30, "x"],
            "hiv_pos": [True, "n"],
        },
        dtype=object,
    )
    c = validate_frame(raw, source="mem")
    assert c.frame["age_years"].tolist()[0] == 30.0 and np.isnan(c.frame["age_years"].iloc[1])
    assert c.frame["hiv_pos"].tolist() == [True, False]
    assert [(i.row, i.column, i.value) for i in kinds(c, "cell_error")] == [(2, "age_years", "x")]


def test_report_frame_and_write_report(tmp_path):
    c = one([{"hemoglobin_g_l": "12"}, {"hemoglobin_g_l": "abc"}])
    rf = c.report_frame()
    assert list(rf.columns) == ["row", "patient_id", "column", "value", "problem", "severity", "kind"]
    assert len(rf) == len(c.issues)
    write_report(c, tmp_path / "r.csv")
    back = pd.read_csv(tmp_path / "r.csv")
    assert len(back) == len(c.issues) and set(back["kind"]) >= {"implausible", "cell_error"}
    write_report(c, tmp_path / "r.json")
    js = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert len(js) == len(c.issues) and {"row", "patient_id", "kind"} <= set(js[0])
    assert any(r["kind"] == "cell_error" and r["row"] == 2 and r["value"] == "abc" for r in js)
    with pytest.raises(ValueError):
        write_report(c, tmp_path / "r.txt")


def test_report_frame_empty():
    raw = pd.DataFrame({f.name: ["x"] for f in FIELDS if f.kind in ("id", "disease")})
    raw["disease"] = ["SSc"]
    c = validate_frame(raw)
    rf = c.report_frame()
    assert list(rf.columns)[0] == "row"


def test_progress_called():
    calls = []
    load_csv(csv_text(BASE), progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_all_contract_columns_typed():
    row = {}
    for f in FIELDS:
        row[f.name] = {
            "id": "P1", "disease": "SSc", "number": "1", "yesno": "yes", "date": "2024-01-01",
            "druglist": "MTX", "category": f.categories[0] if f.categories else "",
        }[f.kind]
    c = load_csv(csv_text([row]))
    assert not [i for i in c.issues if i.severity != "info" and i.kind != "implausible"]
    for f in FIELDS:
        dtype = c.frame[f.name].dtype
        expected = {
            "number": lambda d: d == np.float64,
            "yesno": lambda d: d == "boolean",
            "category": lambda d: isinstance(d, pd.CategoricalDtype),
            "disease": lambda d: d == "string",
            "id": lambda d: d == "string",
            "druglist": lambda d: d == "string",
            "date": lambda d: d.kind == "M",
        }[f.kind]
        assert expected(dtype), (f.name, dtype)


# ---------------------------------------------------------------------------
# property: rows are never lost, one cell error per junk cell
# ---------------------------------------------------------------------------

GOOD = {
    "age_years": st.sampled_from(["", "40", "12.5", " 7 ", "1e2"]),
    "hemoglobin_g_l": st.sampled_from(["", "120", "99.5"]),
    "hiv_pos": st.sampled_from(["", "yes", "N", "0", "TRUE"]),
    "sex": st.sampled_from(["", "F", "m", "female"]),
    "ph_risk": st.sampled_from(["", "none", "Low"]),
    "screening_date": st.sampled_from(["", "2024-01-02", "2023/12/31"]),
    "bvas_major_items": st.sampled_from(["", "0", "3"]),
    "prior_immunomodulators": st.sampled_from(["", "none", "MTX;HCQ"]),
}
JUNK = {
    "age_years": st.sampled_from(["abc", "12,5", "??", "1..2", "x1"]),
    "hemoglobin_g_l": st.sampled_from(["85 g/L", "high", "-"]),
    "hiv_pos": st.sampled_from(["maybe", "2", "pos", "yess"]),
    "sex": st.sampled_from(["X", "unknown", "FM"]),
    "ph_risk": st.sampled_from(["very", "mid"]),
    "screening_date": st.sampled_from(["yesterday", "2024-13-01", "1/2/2024"]),
    "bvas_major_items": st.sampled_from(["1.5", "many"]),
}


@st.composite
def junk_frames(draw):
    n = draw(st.integers(1, 25))
    cols = draw(st.lists(st.sampled_from(sorted(GOOD)), unique=True, max_size=len(GOOD)))
    ids = [f"ID{k}" for k in draw(st.permutations(range(n)))]
    rows, junk = [], 0
    for i in range(n):
        row = {"patient_id": ids[i], "disease": draw(st.sampled_from(["SSc", "gpa", "lupus", ""]))}
        for c in cols:
            if c in JUNK and draw(st.booleans()) and draw(st.booleans()):
                row[c] = draw(JUNK[c])
                junk += 1
            else:
                row[c] = draw(GOOD[c])
        rows.append(row)
    return rows, ["patient_id", "disease", *cols], ids, junk


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk_frames(), st.sampled_from(["csv", "frame"]))
def test_property_rows_preserved(case, how):
    rows, columns, ids, junk = case
    if how == "csv":
        c = load_csv(csv_text(rows, columns))
    else:
        c = validate_frame(pd.DataFrame(rows, columns=columns))
    assert len(c) == len(rows)
    assert list(c.frame["patient_id"]) == ids
    empty_disease = sum(1 for r in rows if not r["disease"])
    assert len(kinds(c, "cell_error")) == junk + empty_disease
    assert all(1 <= i.row <= len(rows) for i in kinds(c, "cell_error"))


def test_delimiter_found_by_header_behind_title():
    text = "Export, 2024\npatient_id\tdisease\tage_years\nP1\tSSc\t40\n"
    c = load_cohort(text.encode(), filename="a.tsv")
    assert c.frame["age_years"].tolist() == [40.0]
    assert kinds(c, "sheet")
