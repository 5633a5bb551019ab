"""Benchmark: a 1,000,000-row CSV with one bad cell near the end (and one with a ragged row).

The bad cell must be named (row, patient_id, column, value) with every row kept, in about
the time of a clean file (pyarrow fast path). A ragged row sends the whole file through
Python's csv module (the slow path that can name the line): measured to show its cost.
Each load runs in a fresh subprocess so its VmHWM is that load's own peak.

    .venv/bin/python benchmarks/bench_hostile.py              # 1,000,000 rows
    .venv/bin/python benchmarks/bench_hostile.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from eligibility.loader import load_cohort
from eligibility.memory import peak_rss_mib
path, n = sys.argv[1], int(sys.argv[2])
rss0 = peak_rss_mib()
t = time.perf_counter()
c = load_cohort(path)
dt = time.perf_counter() - t
bad = [(i.row, i.patient_id, i.column, i.value, i.kind) for i in c.issues
       if i.kind in ("cell_error", "ragged_row") and i.value in ("4O", "spill")]
print(json.dumps({"rows": len(c), "load_s": dt, "rss_before_mb": rss0,
                  "peak_rss_mb": peak_rss_mib(), "named": bad}))
"""


def make_files(n: int, folder: Path) -> dict[str, Path]:
    from eligibility.synth import generate, write_cohort

    frame = generate(n, 7, errors=False)
    target = n - 10  # 0-based: data row n - 9
    frame["age_years"] = frame["age_years"].astype("string")
    frame.loc[target, "age_years"] = "4O"  # letter O: a typo a human makes
    clean = write_cohort(frame, folder / "one_bad_cell.csv")
    text = clean.read_bytes()
    lines = text.split(b"\n")
    lines[target + 1] = lines[target + 1] + b",spill"  # one row with an extra field
    ragged = folder / "one_ragged_row.csv"
    ragged.write_bytes(b"\n".join(lines))
    return {"one bad cell (fast path)": clean, "one ragged row (slow path)": ragged}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        files = make_files(args.n, Path(d))
        pid = None
        for label, path in files.items():
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.n)], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            size = path.stat().st_size / 2**20
            assert r["rows"] == args.n, r
            assert r["named"] and r["named"][0][0] == args.n - 9, r["named"]
            pid = pid or r["named"][0][1]
            print(f"{label}: {args.n:,} rows, {size:,.0f} MB file: load {r['load_s']:.2f} s, "
                  f"peak RSS {r['peak_rss_mb']:,.0f} MB ({r['peak_rss_mb'] / size:.1f}× the file), "
                  f"named: row {r['named'][0][0]:,} patient_id {r['named'][0][1]} "
                  f"column {r['named'][0][2]} value {r['named'][0][3]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
