"""Benchmark the synthetic cohort generator: time and peak memory for 1,000,000 rows.

Each measurement runs in a fresh subprocess so its VmHWM is that run's own peak
resident memory (whole process: numpy, Arrow and pandas buffers included).

    .venv/bin/python benchmarks/bench_synth.py            # 1,000,000 rows
    .venv/bin/python benchmarks/bench_synth.py --n 200000 --write

Budget: generation of 1,000,000 rows in <= 30 s and <= 4 GB peak on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME_BUDGET_S = 30.0
MEMORY_BUDGET_MB = 4096.0

CHILD = r"""
import json, sys, tempfile, time, os
t0 = time.perf_counter()
from eligibility.synth import generate, write_cohort
from eligibility.memory import peak_rss_mib
t_import = time.perf_counter() - t0
n, seed, write = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
rss0 = peak_rss_mib()
t = time.perf_counter()
frame = generate(n, seed)
t_gen = time.perf_counter() - t
rss_gen = peak_rss_mib()
out = {"n": n, "columns": frame.shape[1], "import_s": t_import, "generate_s": t_gen,
       "rss_before_mb": rss0, "peak_rss_generate_mb": rss_gen,
       "frame_mb": frame.memory_usage(deep=True).sum() / 2**20}
if write:
    with tempfile.TemporaryDirectory() as d:
        for ext in (".parquet", ".csv"):
            p = os.path.join(d, "cohort" + ext)
            t = time.perf_counter()
            write_cohort(frame, p)
            out["write" + ext.replace(".", "_") + "_s"] = time.perf_counter() - t
            out["size" + ext.replace(".", "_") + "_mb"] = os.path.getsize(p) / 2**20
    out["peak_rss_with_write_mb"] = peak_rss_mib()
print(json.dumps(out))
"""


def run(n: int, seed: int, write: bool) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(seed), "1" if write else "0"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1, help="runs (each in a fresh process)")
    p.add_argument("--write", action="store_true", help="also time writing Parquet and CSV")
    args = p.parse_args(argv)
    results = [run(args.n, args.seed, args.write) for _ in range(args.repeat)]
    best = min(results, key=lambda r: r["generate_s"])
    peak = max(r["peak_rss_generate_mb"] for r in results)
    print(f"rows                 {best['n']:,} x {best['columns']} columns")
    print(f"generate             {best['generate_s']:.2f} s   (budget {TIME_BUDGET_S:.0f} s; "
          f"best of {len(results)})")
    print(f"peak RSS (generate)  {peak:,.0f} MB (budget {MEMORY_BUDGET_MB:,.0f} MB; "
          f"interpreter + imports {best['rss_before_mb']:,.0f} MB)")
    print(f"frame in memory      {best['frame_mb']:,.0f} MB")
    if args.write:
        print(f"write parquet        {best['write_parquet_s']:.2f} s, {best['size_parquet_mb']:,.1f} MB")
        print(f"write csv            {best['write_csv_s']:.2f} s, {best['size_csv_mb']:,.1f} MB")
        print(f"peak RSS (+ writes)  {best['peak_rss_with_write_mb']:,.0f} MB")
    ok = best["generate_s"] <= TIME_BUDGET_S and peak <= MEMORY_BUDGET_MB
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
