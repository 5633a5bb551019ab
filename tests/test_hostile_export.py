"""One Excel-safe writer for every CSV: `screen -o`, `screen --report`, `synth --injections`
and the dashboard downloads (which call `export.to_csv_bytes`)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility import cli, export, synth

FORMULAS = ['=HYPERLINK("http://evil.example","click")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)",
            "\t=1", " =2", "\r=3"]


def cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_safe(rows: list[list[str]]) -> None:
    for row in rows:
        for c in row:
            bad = c.lstrip(" \t\r\n")[:1] in ("=", "+", "-", "@") or c[:1] in ("\t", "\r")
            if bad:
                assert export._PLAIN_NUMBER_RE.match(c), f"unsafe cell {c!r}"


def test_screen_report_and_output_are_neutralised(tmp_path, capsys):
    rows = ["patient_id,disease,age_years,=HYPERLINK(\"x\")"]
    def q(v: str) -> str:
        return '"' + v.replace('"', '""') + '"'

    rows += [f'{q(f)},SSc,{q(f) if i % 2 else "45"},x' for i, f in enumerate(FORMULAS)]
    src = tmp_path / "c.csv"
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, rep = tmp_path / "r.csv", tmp_path / "issues.csv"
    assert cli.main(["screen", str(src), "-o", str(out), "--report", str(rep)]) == 0
    for path in (out, rep):
        data = path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        assert_safe(cells(data))
    report = cells(rep.read_bytes())
    assert ["'" + FORMULAS[1]] in [[r[3]] for r in report[1:] if r[3].startswith("'=cmd")]
    assert any(r[1] == "'" + FORMULAS[1] for r in report[1:])  # patient_id column of the report
    # the quote is the only change: reading the file back gives the value after it
    ids = pd.read_csv(out, encoding="utf-8-sig", dtype=str)["patient_id"].tolist()
    assert [i[1:] if i.startswith("'") else i for i in ids] == [f.strip() for f in FORMULAS]


def test_synth_injections_go_through_the_writer(tmp_path, monkeypatch):
    calls = []
    real = export.write_csv
    monkeypatch.setattr(export, "write_csv", lambda frame, path: calls.append(path) or real(frame, path))
    inj = tmp_path / "inj.csv"
    assert synth.main(["--n", "300", "--seed", "3", "-o", str(tmp_path / "c.parquet"), "--injections", str(inj)]) == 0
    assert calls == [str(inj)]
    data = inj.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and len(cells(data)) > 1
    assert_safe(cells(data))


def test_plain_numbers_as_text_are_left_alone():
    frame = pd.DataFrame({"v": ["-5", "+3.5", "-1e3", "-", "-x", "=1", "ok", None]})
    got = cells(export.to_csv_bytes(frame))[1:]
    assert [r[0] for r in got] == ["-5", "+3.5", "-1e3", "'-", "'-x", "'=1", "ok", ""]


@settings(deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=20))
def test_property_every_text_cell_is_safe_and_recoverable(values):
    frame = pd.DataFrame({"v": pd.array(values, dtype="string")})
    back = cells(export.to_csv_bytes(frame))[1:]
    assert len(back) == len(values)
    for row, want in zip(back, values, strict=True):
        got = row[0] if row else ""
        assert got == want or got == "'" + want
        assert (got != want) == bool(export._FORMULA_RE.match(want) and not export._PLAIN_NUMBER_RE.match(want))


@pytest.mark.parametrize("header", ["=evil()", "@x", "+y"])
def test_column_names_neutralised(header):
    assert cells(export.to_csv_bytes(pd.DataFrame({header: [1]})))[0] == ["'" + header]
