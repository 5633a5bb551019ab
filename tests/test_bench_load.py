"""The load benchmark's measurement (figures only in benchmarks/, never timed here)."""

from __future__ import annotations

import pytest

from eligibility import bench_load
from eligibility.synth import generate, write_cohort


@pytest.mark.parametrize("kind", bench_load.KINDS)
def test_one_measurement_reports_its_figures(kind, tmp_path):
    path = write_cohort(generate(50, 3), tmp_path / ("c.parquet" if kind.endswith("parquet") else "c.csv"))
    out = bench_load._child(kind, str(path))
    assert out["kind"] == kind and out["rows"] == 50
    assert out["seconds"] > 0 and out["peak_rss_mib"] >= max(out["start_rss_mib"], out["steady_rss_mib"]) > 0
    assert ("arrow_table_mib" in out) == (kind == "pyarrow_parquet")


def test_child_command_line_refuses_anything_else(capsys):
    assert bench_load.main(["--bogus"]) == 2
    assert "usage" in capsys.readouterr().err
