"""``python -m eligibility dose-sim``: simulate a dose-escalation design (batch contract).

    python -m eligibility dose-sim --design {3+3,boin,i3+3} --true-dlt 0.05,0.10,0.20
        [--target 0.30] [--cohort-size 3] [--max-n 30] --trials 10000 --seed 1 --json

With ``--json`` prints one JSON object with ``mtd_selection_pct``, ``no_mtd_pct``,
``mean_n_per_level``, ``mean_dlt_per_level``, ``mean_n_total``, ``n_total_p10``,
``n_total_p90``; without it, a plain-text table. 3+3 ignores ``--target``,
``--cohort-size`` and ``--max-n``. Bad arguments: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from eligibility.dose.designs import DESIGNS
from eligibility.dose.settings import MAX_LEVELS
from eligibility.dose.simulate import OC_KEYS, operating_characteristics, simulate_trials

PROG = "dose-sim"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise _UsageError(message)


def _parse_rates(text: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise _UsageError(f"--true-dlt: expected comma-separated rates like 0.05,0.10,0.20, got {text!r}")
    rates = []
    for i, p in enumerate(parts, start=1):
        try:
            r = float(p)
        except ValueError:
            raise _UsageError(f"--true-dlt: rate {i} ({p!r}) is not a number") from None
        if not math.isfinite(r) or not 0.0 <= r <= 1.0:
            raise _UsageError(f"--true-dlt: rate {i} ({p}) must be within [0, 1]")
        rates.append(r)
    if len(rates) > MAX_LEVELS:
        raise _UsageError(f"--true-dlt: at most {MAX_LEVELS} dose levels, got {len(rates)}")
    return rates


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Simulate a dose-escalation design (seeded, vectorised).")
    p.add_argument("--design", required=True, help="3+3, boin or i3+3")
    p.add_argument("--true-dlt", required=True, help="assumed true DLT rate per level, e.g. 0.05,0.10,0.20")
    p.add_argument("--target", type=float, default=0.30, help="target DLT rate (BOIN, i3+3); default 0.30")
    p.add_argument("--cohort-size", type=int, default=3, help="cohort size (BOIN, i3+3); default 3")
    p.add_argument("--max-n", type=int, default=30, help="maximum patients (BOIN, i3+3); default 30")
    p.add_argument("--trials", type=int, default=10_000, help="simulated trials; default 10000")
    p.add_argument("--seed", type=int, default=1, help="random seed; default 1")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _validate(ns: argparse.Namespace) -> tuple[str, list[float]]:
    design = ns.design.strip().lower()
    if design not in DESIGNS:
        raise _UsageError(f"--design must be one of {', '.join(DESIGNS)}, got {ns.design!r}")
    rates = _parse_rates(ns.true_dlt)
    if ns.trials < 1:
        raise _UsageError(f"--trials must be at least 1, got {ns.trials}")
    if design != "3+3":
        if not (math.isfinite(ns.target) and 0.0 < ns.target < 1.0):
            raise _UsageError(f"--target must be strictly between 0 and 1, got {ns.target:g}")
        if ns.cohort_size < 1:
            raise _UsageError(f"--cohort-size must be at least 1, got {ns.cohort_size}")
        if ns.max_n < ns.cohort_size:
            raise _UsageError(
                f"--max-n ({ns.max_n}) must be at least the cohort size ({ns.cohort_size})"
            )
    return design, rates


def _text_table(design: str, oc: dict) -> str:
    k = len(oc["mtd_selection_pct"])
    lines = [
        f"design {design}",
        f"{'level':>6} {'% MTD':>8} {'mean n':>8} {'mean DLT':>9}",
    ]
    for i in range(k):
        lines.append(
            f"{'DL' + str(i + 1):>6} {oc['mtd_selection_pct'][i]:8.2f} "
            f"{oc['mean_n_per_level'][i]:8.2f} {oc['mean_dlt_per_level'][i]:9.2f}"
        )
    lines.append(f"no MTD: {oc['no_mtd_pct']:.2f}%   stopped early: {oc['pct_stopped_early']:.2f}%")
    lines.append(
        f"patients: mean {oc['mean_n_total']:.2f}, p10 {oc['n_total_p10']:g}, p90 {oc['n_total_p90']:g}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``dose-sim``; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        design, rates = _validate(ns)
    except _UsageError as exc:
        msg = " ".join(str(exc).split())
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    run = simulate_trials(
        design,
        rates,
        target=ns.target if design != "3+3" else 0.30,
        cohort_size=ns.cohort_size,
        max_n=ns.max_n,
        n_trials=ns.trials,
        seed=ns.seed,
    )
    oc = operating_characteristics(run)
    if ns.json:
        print(json.dumps({key: oc[key] for key in OC_KEYS}, allow_nan=False))
    else:
        print(_text_table(design, oc))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
