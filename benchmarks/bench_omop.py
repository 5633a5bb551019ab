"""Benchmark `import-omop`: 1,000,000 persons (~50M measurement rows), time and peak memory.

The CDM is generated once (`synth --format omop`, with unrelated lab rows so that the
measurement table has warehouse size) and kept at --cdm; the import then runs in a
fresh subprocess (the whole command, writing the cohort and its side files) so its VmHWM
is its own peak resident memory (Python, Arrow, pandas and DuckDB's buffers together).

    .venv/bin/python benchmarks/bench_omop.py                       # 1M persons
    .venv/bin/python benchmarks/bench_omop.py --n 100000 --cdm /tmp/cdm100k.duckdb

Budget: import of 1,000,000 persons in <= 120 s and <= 4 GB peak on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from eligibility.mapping.provenance import side_paths

ROOT = Path(__file__).resolve().parents[1]
TIME_BUDGET_S = 120.0
MEMORY_BUDGET_MB = 4096.0
OTHER_LABS = 20  # + ~30 catalog lab rows per person = ~50 measurement rows per person

# The command itself (`python -m eligibility import-omop CDM -o OUT`), writing the cohort and
# its side files, in a child whose VmHWM is its own peak.
CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from eligibility.cli import main
from eligibility.memory import peak_rss_mib
rc = main(["import-omop", sys.argv[1], "-o", sys.argv[2], "--as-of", sys.argv[3]])
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"exit": rc, "command_s": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": peak_rss_mib()}))
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
    from eligibility.synth_omop import DEFAULT_AS_OF

    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort.parquet"
        t0 = time.perf_counter()
        res = subprocess.run([py, "-c", CHILD, str(cdm), str(cohort), DEFAULT_AS_OF.isoformat()], cwd=ROOT,
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            print(res.stderr[-3000:], file=sys.stderr)
            return 1
        out = json.loads(res.stdout.strip().splitlines()[-1])
        out["output_rows"] = {k: pq.ParquetFile(p).metadata.num_rows
                              for k, p in {"cohort": cohort, **side_paths(cohort)}.items()}
    out.update(rows=sizes, wall_s=wall, load_average=os.getloadavg())
    out["within_budget"] = out["command_s"] <= TIME_BUDGET_S and out["peak_rss_mb"] <= MEMORY_BUDGET_MB
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
