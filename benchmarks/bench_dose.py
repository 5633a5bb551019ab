"""Benchmark the dose-escalation simulation: 10,000 trials × 3 levels per design.

Median wall time of 5 runs (after one warm-up); target ≤ 1 s per design.

    /work/main/.venv/bin/python benchmarks/bench_dose.py [--trials 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eligibility.dose.simulate import simulate  # noqa: E402

TARGET_SECONDS = 1.0
RATES = [0.05, 0.10, 0.20]


def bench(design: str, trials: int, repeats: int) -> list[float]:
    simulate(design, RATES, n_trials=trials, seed=0)  # warm-up (tables, imports)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        simulate(design, RATES, n_trials=trials, seed=r + 1)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    ns = p.parse_args(argv)
    print(f"dose-escalation simulation: {ns.trials} trials x {len(RATES)} levels, "
          f"median of {ns.repeats} runs (BOIN / i3+3: cohort 3, max_n 30)")
    print(f"{'design':<8} {'median s':>10} {'min s':>10} {'max s':>10}  {'<= 1 s':>6}")
    ok = True
    for design in ("3+3", "boin", "i3+3"):
        times = bench(design, ns.trials, ns.repeats)
        med = statistics.median(times)
        ok &= med <= TARGET_SECONDS
        print(f"{design:<8} {med:10.4f} {min(times):10.4f} {max(times):10.4f}  "
              f"{'yes' if med <= TARGET_SECONDS else 'NO':>6}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
