"""Benchmark the dose-escalation simulation: 10,000 trials × 3 levels per design.

Median wall time of 5 runs (after one warm-up); target ≤ 1 s per cohort-by-cohort design
and ≤ 5 s per calendar design (TITE-BOIN, BF-BOIN: 2 eligible patients a month, 28-day
window, as this trial's planning defaults).

    .venv/bin/python benchmarks/bench_dose.py [--trials 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eligibility.dose.designs import DesignOptions  # noqa: E402
from eligibility.dose.registry import AccrualModel  # noqa: E402
from eligibility.dose.simulate import simulate  # noqa: E402

RATES = [0.05, 0.10, 0.20]
CASES = [
    ("3+3", {}, None, 1.0),
    ("boin", {}, None, 1.0),
    ("boin", {"options": DesignOptions(n_earlystop=9, extrasafe=True)}, "n-earlystop 9, extrasafe", 1.0),
    ("i3+3", {}, None, 1.0),
    ("tite-boin", {"accrual": AccrualModel(per_month=2.0)}, "2/month, 28 d", 5.0),
    ("bf-boin", {"accrual": AccrualModel(per_month=2.0)}, "2/month, 28 d", 5.0),
]


def bench(design: str, kw: dict, trials: int, repeats: int) -> list[float]:
    simulate(design, RATES, n_trials=trials, seed=0, **kw)  # warm-up (tables, imports)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        simulate(design, RATES, n_trials=trials, seed=r + 1, **kw)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    ns = p.parse_args(argv)
    print(f"dose-escalation simulation: {ns.trials} trials x {len(RATES)} levels, "
          f"median of {ns.repeats} runs (cohort 3, max_n 30)")
    print(f"{'design':<34} {'median s':>10} {'min s':>10} {'max s':>10} {'target':>7} {'ok':>4}")
    ok = True
    for design, kw, note, target in CASES:
        times = bench(design, kw, ns.trials, ns.repeats)
        med = statistics.median(times)
        ok &= med <= target
        name = design + (f" ({note})" if note else "")
        print(f"{name:<34} {med:10.4f} {min(times):10.4f} {max(times):10.4f} {target:6.1f}s "
              f"{'yes' if med <= target else 'NO':>4}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
