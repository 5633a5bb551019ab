"""Loading speed and memory against pyarrow's own readers, measured side by side.

`load_figures(n, repeat)` generates an `n`-row synthetic cohort as Parquet and CSV
(cached under the temporary directory), then times, interleaved, `load_cohort` and
`pyarrow.parquet.read_table(path).to_pandas()` / `pyarrow.csv.read_csv(path).to_pandas()`
on the same files. Every measurement runs in a fresh child process, so its peak RSS
(VmHWM, `memory.peak_rss_mib`) is its own; imports happen before the clock starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

SEED = 20260101
KINDS = ("loader_parquet", "pyarrow_parquet", "loader_csv", "pyarrow_csv")


def _rss_mib() -> float:
    """Current resident set size of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(kind: str, path: str) -> dict:
    """One measurement in this (fresh) process."""
    import time

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from .loader import load_cohort
    from .memory import peak_rss_mib

    start_rss = _rss_mib()
    t0 = time.perf_counter()
    if kind.startswith("loader"):
        obj = load_cohort(path)
    elif kind == "pyarrow_parquet":
        obj = pq.read_table(path).to_pandas()
    else:
        obj = pacsv.read_csv(path).to_pandas()
    seconds = time.perf_counter() - t0
    out = {"kind": kind, "seconds": seconds, "rows": len(obj),
           # the kernel updates the high-water mark lazily: never below what is resident now
           "peak_rss_mib": max(peak_rss_mib(), _rss_mib(), start_rss),
           "steady_rss_mib": _rss_mib(), "start_rss_mib": start_rss,
           "arrow_pool_mib": pa.total_allocated_bytes() / 2**20}
    if kind == "pyarrow_parquet":
        out["arrow_table_mib"] = pq.read_table(path).nbytes / 2**20
    return out


def _measure(kind: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "eligibility.bench_load", "--child", kind, str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cohort_files(n: int, directory: Path | None = None) -> tuple[Path, Path]:
    """The n-row synthetic cohort as Parquet and CSV (generated once, then reused)."""
    import pyarrow.parquet as pq

    from .synth import _csv_bytes, write_cohort_chunked

    d = directory or Path(tempfile.gettempdir()) / "eligibility-bench-load"
    d.mkdir(parents=True, exist_ok=True)
    parquet, csv = d / f"cohort{n}.parquet", d / f"cohort{n}.csv"
    if not parquet.exists():
        tmp = parquet.with_suffix(".tmp")
        write_cohort_chunked(n, SEED, tmp)
        tmp.replace(parquet)
    if not csv.exists():
        tmp = csv.with_suffix(".tmp")
        tmp.write_bytes(_csv_bytes(pq.read_table(parquet).to_pandas()))
        tmp.replace(csv)
    return parquet, csv


def load_figures(n: int, repeat: int, directory: Path | None = None) -> dict:
    """Medians over `repeat` interleaved rounds; ratios are loader / pyarrow of the same run."""
    parquet, csv = cohort_files(n, directory)
    runs: dict[str, list[dict]] = {k: [] for k in KINDS}
    load = [os.getloadavg()[0]]
    for _ in range(repeat):
        for kind in KINDS:
            runs[kind].append(_measure(kind, parquet if kind.endswith("parquet") else csv))
        load.append(os.getloadavg()[0])

    def med(kind: str, key: str) -> float:
        return median(r[key] for r in runs[kind])

    table_mib = med("pyarrow_parquet", "arrow_table_mib")
    out = {
        "rows": n, "repeat": repeat,
        "load_average_1min": {"min": min(load), "max": max(load)},
        "arrow_table_mib": round(table_mib, 1),
        "parquet_bytes": parquet.stat().st_size, "csv_bytes": csv.stat().st_size,
    }
    for fmt in ("parquet", "csv"):
        ours, base = med(f"loader_{fmt}", "seconds"), med(f"pyarrow_{fmt}", "seconds")
        out[fmt] = {
            "loader_s": round(ours, 3), "pyarrow_s": round(base, 3), "ratio": round(ours / base, 2),
            "loader_peak_rss_mib": round(med(f"loader_{fmt}", "peak_rss_mib"), 1),
            "pyarrow_peak_rss_mib": round(med(f"pyarrow_{fmt}", "peak_rss_mib"), 1),
            "loader_steady_rss_mib": round(med(f"loader_{fmt}", "steady_rss_mib"), 1),
            "loader_arrow_pool_mib": round(med(f"loader_{fmt}", "arrow_pool_mib"), 1),
            "start_rss_mib": round(med(f"loader_{fmt}", "start_rss_mib"), 1),
            "peak_rss_per_arrow_table": round(med(f"loader_{fmt}", "peak_rss_mib") / table_mib, 2),
            "steady_rss_per_arrow_table": round(med(f"loader_{fmt}", "steady_rss_mib") / table_mib, 2),
            # the same without the interpreter and its imports (start_rss_mib)
            "peak_rss_net_per_arrow_table": round(
                (med(f"loader_{fmt}", "peak_rss_mib") - med(f"loader_{fmt}", "start_rss_mib")) / table_mib, 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "--child":
        print(json.dumps(_child(args[1], args[2])))
        return 0
    print("usage: python -m eligibility.bench_load --child KIND PATH (see benchmarks/bench_load.py)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
