"""Load a synthetic cohort (Parquet and CSV) against pyarrow's readers, side by side.

    .venv/bin/python benchmarks/bench_load.py --n 1000000 --repeat 3

Prints one JSON object (eligibility.bench_load.load_figures): medians of the loader and of
`pyarrow.parquet.read_table(...).to_pandas()` / `pyarrow.csv.read_csv(...).to_pandas()` on
the same files, measured interleaved in fresh child processes, their ratios, peak and
steady-state RSS and the Arrow table size. Targets (issue 13): Parquet ratio <= 2.0, CSV
ratio <= 2.5, peak RSS / Arrow table <= 2.0, steady state <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eligibility.bench_load import load_figures  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--dir", type=Path, help="where the generated files are kept (default: temp dir)")
    args = p.parse_args()
    print(json.dumps(load_figures(args.n, args.repeat, args.dir), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
