"""Benchmark the SQL engines against the memory engine on Parquet cohorts (issue 9).

Each (size, engine) runs in a fresh process so its peak RSS is its own. Cohorts are
written by `synth` in 1M-row row groups (bounded memory); `--workdir` keeps them for
the next run.

    .venv/bin/python benchmarks/bench_engines.py                       # 1M and 10M, duckdb + memory
    .venv/bin/python benchmarks/bench_engines.py --rows 30000000 --engines duckdb --workdir /data/bench
    .venv/bin/python benchmarks/bench_engines.py --rows 1000000 --engines spark

Targets: DuckDB at 10M: screen + attribute <= 20 s, peak RSS <= 3 GB; 30M completes
within the machine's memory; DuckDB at 1M within 3x the memory engine's time.

Up to ELIGIBILITY_KEEP_TYPED_ROWS rows (default 2,000,000) the DuckDB engine keeps the
parsed cohort as a temp table (what-ifs skip parsing); above it every scenario parses
the file again. ELIGIBILITY_DUCKDB_MEMORY (default 2GB) bounds DuckDB's memory; past it
DuckDB spills to the temp folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", default="1000000,10000000")
    p.add_argument("--engines", default="duckdb,memory")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workdir")
    p.add_argument("--json")
    a = p.parse_args()
    cmd = [sys.executable, "-m", "eligibility", "bench", "--engine", a.engines, "--rows", a.rows,
           "--repeat", str(a.repeat)]
    if a.workdir:
        cmd += ["--workdir", a.workdir]
    if a.json:
        cmd += ["--json", a.json]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
