"""`bench --json` plumbing on small inputs (the figures themselves are measured, never asserted)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
from factory import eligible_row, make_cohort

from eligibility import bench
from eligibility import bench_targets as T


def test_column_buffers_cover_every_kind_without_copies():
    f = pd.DataFrame({
        "x": np.array([1.0, np.nan, 3.0]),
        "yn": pd.array([True, None, False], dtype="boolean"),
        "cat": pd.Categorical(["a", None, "b"]),
        "s": pd.array(["p", None, "q"], dtype=pd.ArrowDtype(pa.string())),
    })
    bufs = T.column_buffers(f, ["x", "yn", "cat", "s"])
    assert np.shares_memory(bufs[0], f["x"].to_numpy())
    assert len(bufs) >= 5 and all(isinstance(b, np.ndarray) for b in bufs)
    assert T.read_floor(bufs) >= 0


def test_catalog_fields_of_a_cohort_are_columns_it_has():
    cohort = make_cohort([eligible_row("SSc"), eligible_row("IIM")])
    names = T._catalog_fields(cohort.frame)
    assert "hemoglobin_g_l" in names and "disease" in names
    assert set(names) <= set(cohort.frame.columns)


def _result(value=1.5):
    engine = {"cold_s": 0.6, "floor_s": 0.1, "one_param_s": 0.02, "peak_rss_mb": 1800.0, "steady_rss_mb": 1000.0}
    figures = [{"figure": k, "what": what, "value": None if k == "whatif_rerun_ms" else value, "target": t,
                "ok": None if k == "whatif_rerun_ms" else value <= t} for k, (t, what) in T.TARGETS.items()]
    return {"machine": "test", "repeat": 3, "load_before": 1.0, "load_after": 2.0, "rows": [10, 30],
            "figures": figures, "parts": {"arrow_table_mb": 900.0, "engine": {"10": engine, "30": engine},
                                          "load": {"error": "x"}, "whatif": {"error": {"message": "x"}}}}


def test_markdown_has_one_row_per_figure_with_its_parts():
    text = T.markdown(_result())
    rows = [line for line in text.splitlines() if line.startswith("| ") and "figure" not in line]
    assert len(rows) == len(T.TARGETS)
    assert "| 1.50 | 0.600 s / 0.100 s | ≤ 6.0 | yes |" in text
    assert "not measured" in text  # the What-if figure without a result


def test_markdown_from_a_saved_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_result(7.0)))
    assert bench.main(["--markdown", "--from", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 7.00 |" in out and "| no |" in out
