"""write_arrow: an Arrow table written in batches gives the same bytes as the one CSV writer."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from eligibility.export import to_csv_bytes, write_arrow


def _table() -> pa.Table:
    frame = pd.DataFrame({
        "patient_id": ["P1", "P2", "=HYPERLINK(\"x\")", "P4", "P5"],
        "value": ["-5", "+cmd|' /C calc'!A0", "", "3.5", "@SUM(1)"],
        "n": [1.0, None, 3.0, 4.0, 5.0],
    })
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.set_column(0, "patient_id", table.column("patient_id").dictionary_encode())


@pytest.mark.parametrize("batch_rows", [1, 2, 5, 100])
def test_csv_in_batches_equals_whole_frame(tmp_path, batch_rows):
    table = _table()
    path = write_arrow(table, tmp_path / "t.csv", batch_rows=batch_rows)
    assert path.read_bytes() == to_csv_bytes(table.to_pandas())


def test_csv_is_excel_safe(tmp_path):
    text = write_arrow(_table(), tmp_path / "t.csv", batch_rows=2).read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "'+cmd" in text and "'@SUM" in text
    assert "\r\nP1,-5," in text  # a plain negative number is left as it is


def test_empty_table_writes_the_header(tmp_path):
    text = write_arrow(_table().slice(0, 0), tmp_path / "t.csv").read_bytes().decode("utf-8-sig")
    assert text == "patient_id,value,n\r\n"


@pytest.mark.parametrize("batch_rows", [1, 2, 100])
def test_parquet_round_trip(tmp_path, batch_rows):
    table = _table()
    back = pd.read_parquet(write_arrow(table, tmp_path / "t.parquet", batch_rows=batch_rows))
    want = table.to_pandas().astype({"patient_id": "str"})  # dictionary columns are written as text
    pd.testing.assert_frame_equal(back, want)


def test_parquet_of_an_empty_table(tmp_path):
    back = pd.read_parquet(write_arrow(_table().slice(0, 0), tmp_path / "t.parquet"))
    assert list(back.columns) == ["patient_id", "value", "n"] and len(back) == 0


@pytest.mark.parametrize("sizes", [(2, 3), (1, 1, 1, 1, 1)])
def test_screen_writer_in_batches_equals_whole_frame(tmp_path, sizes):
    """`screen --engine duckdb` writes DuckDB's batches (122,880 rows each) one after
    another: every batch after the first must end its lines as the first does (CRLF)."""
    from eligibility.database.screen_cli import _write

    frame = _table().to_pandas().assign(status="eligible", disease="SSc", assessed="1/1")
    frame["patient_id"] = frame["patient_id"].astype(object)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    batches = [frame.iloc[s:s + n].reset_index(drop=True) for s, n in zip(starts, sizes, strict=True)]
    out = tmp_path / "screened.csv"
    counts = _write(iter(pa.Table.from_pandas(b, preserve_index=False) for b in batches), out)
    assert out.read_bytes() == to_csv_bytes(frame)
    assert counts["eligible"] == len(frame)


def test_screen_writer_parquet_when_the_first_batch_has_an_empty_column(tmp_path):
    """The Parquet schema must not come from the first batch alone: a first batch in which
    nobody has an unknown criterion would type `unknown` as null and refuse the next one."""
    from eligibility.database.screen_cli import _write

    def batch(unknown):
        return pd.DataFrame({"patient_id": pd.array(["P1"], dtype="string"), "disease": pd.array(["SSc"], dtype="string"),
                             "status": ["eligible"], "unknown": [unknown], "assessed": ["2/3"]})

    out = tmp_path / "screened.parquet"
    counts = _write(iter([pa.Table.from_pandas(batch(u), preserve_index=False) for u in (None, "EXC-1")]), out)
    back = pd.read_parquet(out)
    assert back["unknown"].tolist()[1] == "EXC-1" and pd.isna(back["unknown"].tolist()[0])
    assert counts["eligible"] == 2 and counts["eligible_on_assessed"] == 2
