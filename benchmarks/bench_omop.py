"""Benchmark `import-omop`: 1,000,000 persons (~50M measurement rows), time and peak memory.

The CDM is generated once (`synth --format omop`, with unrelated lab rows so that the
measurement table has warehouse size) and kept at --cdm; the import then runs in a
fresh subprocess so ru_maxrss is its own peak resident memory (Python, Arrow, pandas
and DuckDB's buffers together).

    .venv/bin/python benchmarks/bench_omop.py                       # 1M persons
    .venv/bin/python benchmarks/bench_omop.py --n 100000 --cdm /tmp/cdm100k.duckdb

Budget: import of 1,000,000 persons in <= 120 s and <= 4 GB peak on this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME_BUDGET_S = 120.0
MEMORY_BUDGET_MB = 4096.0
OTHER_LABS = 20  # + ~30 catalog lab rows per person = ~50 measurement rows per person

CHILD = r"""
import json, resource, sys, time, tempfile, os
t0 = time.perf_counter()
from eligibility.importers.omop import connect, import_omop
from eligibility.synth_omop import DEFAULT_AS_OF
from eligibility.mapping.provenance import side_paths
from eligibility.importers.omop import _write
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
r = import_omop(connect(sys.argv[1]), as_of=DEFAULT_AS_OF)
t_run = time.perf_counter() - t0
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "cohort.parquet")
    t1 = time.perf_counter()
    _write(r.cohort, __import__("pathlib").Path(out))
    for k, p in side_paths(out).items():
        _write({"provenance": r.provenance, "left-out": r.left_out, "report": r.report}[k], p)
    t_write = time.perf_counter() - t1
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_modules_s": t_import, "import_omop_s": t_run, "write_s": t_write,
                  "cpu_s": ru.ru_utime + ru.ru_stime,
                  "persons_imported": len(r.cohort), "left_out": len(r.left_out),
                  "provenance_rows": len(r.provenance),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--cdm", default="/tmp/eligibility-bench-cdm-1m.duckdb",
                   help="CDM file (generated if missing)")
    p.add_argument("--regenerate", action="store_true")
    args = p.parse_args(argv)
    cdm = Path(args.cdm)
    py = sys.executable
    if args.regenerate or not cdm.exists():
        t0 = time.perf_counter()
        subprocess.run([py, "-m", "eligibility", "synth", "--format", "omop", "--n", str(args.n),
                        "--other-labs", str(OTHER_LABS), "-o", str(cdm)], cwd=ROOT, check=True)
        print(f"generated {cdm} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    import duckdb

    con = duckdb.connect(str(cdm), read_only=True)
    sizes = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
             for t in ("person", "measurement", "condition_occurrence", "drug_exposure")}
    con.close()
    t0 = time.perf_counter()
    res = subprocess.run([py, "-c", CHILD, str(cdm)], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        print(res.stderr[-3000:], file=sys.stderr)
        return 1
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out.update(rows=sizes, wall_s=wall)
    total = out["import_modules_s"] + out["import_omop_s"]
    out["within_budget"] = total <= TIME_BUDGET_S and out["peak_rss_mb"] <= MEMORY_BUDGET_MB
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
