"""``python -m eligibility dose-sim``: simulate a dose-escalation design (batch contract).

    python -m eligibility dose-sim --design {3+3,boin,i3+3,tite-boin,bf-boin}
        --true-dlt 0.05,0.10,0.20 [--target 0.30] [--cohort-size 3] [--max-n 30]
        [--start-level K] [--n-earlystop N] [--cutoff-eli P] [--extrasafe [--offset P]]
        [--p1 P --p2 P] [--eps1 P --eps2 P] [--no-deescalation] [--six-at-mtd]
        [--accrual-per-month R] [--dlt-window-days D] [--n-cap N] [--response r1,r2,…]
        --trials 10000 --seed 1 [--json | --decision-table]

With ``--json`` prints one JSON object with the OC_KEYS (``mtd_selection_pct``,
``no_mtd_pct``, ``mean_n_per_level``, ``mean_dlt_per_level``, ``mean_n_total``,
``n_total_p10``, ``n_total_p90``, ``pct_correct``, ``pct_patients_at_mtd``,
``pct_patients_above_mtd``, ``early_stop_pct``) and, for TITE-BOIN / BF-BOIN, the
duration keys; without it, a plain-text table. ``--decision-table`` prints the
design's decision table as CSV (Excel-safe). 3+3 ignores ``--cohort-size`` and
``--max-n`` and uses ``--target`` only to define the true MTD for ``pct_correct``.
A maximum sample size that is not a multiple of the cohort size is refused. Bad
arguments: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from eligibility.dose.designs import N_EARLYSTOP_OFF, DesignOptions
from eligibility.dose.registry import DESIGN_NAMES, AccrualModel, design_info
from eligibility.dose.settings import MAX_LEVELS
from eligibility.dose.simulate import OC_KEYS, operating_characteristics, simulate_trials

PROG = "dose-sim"
CALENDAR_KEYS: tuple[str, ...] = ("duration_mean_days", "duration_p10_days", "duration_p90_days")
#: option flag → DesignOptions field, to refuse options the design does not use.
_OPTION_FLAGS = {
    "--n-earlystop": "n_earlystop", "--cutoff-eli": "cutoff_eli", "--extrasafe": "extrasafe",
    "--offset": "offset", "--p1": "p1", "--p2": "p2", "--eps1": "eps1", "--eps2": "eps2",
    "--no-deescalation": "deescalation", "--six-at-mtd": "six_at_mtd", "--stay-1-of-3": "stay_1_of_3",
}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise _UsageError(message)


def _parse_rates(text: str, flag: str = "--true-dlt") -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise _UsageError(f"{flag}: expected comma-separated rates like 0.05,0.10,0.20, got {text!r}")
    rates = []
    for i, p in enumerate(parts, start=1):
        try:
            r = float(p)
        except ValueError:
            raise _UsageError(f"{flag}: rate {i} ({p!r}) is not a number") from None
        if not math.isfinite(r) or not 0.0 <= r <= 1.0:
            raise _UsageError(f"{flag}: rate {i} ({p}) must be within [0, 1]")
        rates.append(r)
    if len(rates) > MAX_LEVELS:
        raise _UsageError(f"{flag}: at most {MAX_LEVELS} dose levels, got {len(rates)}")
    return rates


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Simulate a dose-escalation design (seeded, vectorised).")
    p.add_argument("--design", required=True, help=", ".join(DESIGN_NAMES))
    p.add_argument("--true-dlt", required=True, help="assumed true DLT rate per level, e.g. 0.05,0.10,0.20")
    p.add_argument("--target", type=float, default=None, help="target DLT rate; default 0.30 (3+3: only for pct_correct)")
    p.add_argument("--cohort-size", type=int, default=3, help="cohort size (not 3+3); default 3")
    p.add_argument("--max-n", type=int, default=30, help="maximum patients, a multiple of the cohort size (not 3+3); default 30")
    p.add_argument("--start-level", type=int, default=1, help="starting dose level, 1-based; default 1")
    p.add_argument("--n-earlystop", type=int, default=None,
                   help=f"stop once this many patients are at the current level and the rule says stay (default {N_EARLYSTOP_OFF}: off)")
    p.add_argument("--cutoff-eli", type=float, default=None, help="elimination cut-off; default 0.95")
    p.add_argument("--extrasafe", action="store_true", help="stricter stopping rule for the lowest level")
    p.add_argument("--offset", type=float, default=None, help="extra-safe offset (with --extrasafe); default 0.05")
    p.add_argument("--p1", type=float, default=None, help="BOIN p1 (sets λe); default 0.6 × target")
    p.add_argument("--p2", type=float, default=None, help="BOIN p2 (sets λd); default 1.4 × target")
    p.add_argument("--eps1", type=float, default=None, help="i3+3 interval half-width below the target; default 0.05")
    p.add_argument("--eps2", type=float, default=None, help="i3+3 interval half-width above the target; default 0.05")
    p.add_argument("--no-deescalation", action="store_true", help="3+3 without de-escalation (R escalation's default)")
    p.add_argument("--six-at-mtd", action="store_true", help="3+3: 6 patients at the declared MTD")
    p.add_argument("--stay-1-of-3", action="store_true", help="BOIN family: 1 DLT in 3 means stay (bfboin three.plus.three)")
    p.add_argument("--accrual-per-month", type=float, default=None, help="TITE-BOIN / BF-BOIN: eligible patients per month")
    p.add_argument("--dlt-window-days", type=float, default=28.0, help="TITE-BOIN / BF-BOIN: DLT window; default 28")
    p.add_argument("--n-cap", type=int, default=12, help="BF-BOIN: most patients per backfilled level; default 12")
    p.add_argument("--response", default=None, help="BF-BOIN: true response rate per level (a response opens a level to backfill)")
    p.add_argument("--trials", type=int, default=10_000, help="simulated trials; default 10000")
    p.add_argument("--seed", type=int, default=1, help="random seed; default 1")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--decision-table", action="store_true", help="print the decision table as CSV")
    return p


def _given(ns: argparse.Namespace, flag: str) -> bool:
    value = getattr(ns, flag.lstrip("-").replace("-", "_"))
    return value not in (None, False)


def _options(ns: argparse.Namespace, design: str, n_levels: int) -> DesignOptions:
    info = design_info(design)
    for flag, field in _OPTION_FLAGS.items():
        if _given(ns, flag) and field not in info.options:
            raise _UsageError(f"{flag} does not apply to {info.label}")
    if _given(ns, "--offset") and not ns.extrasafe:
        raise _UsageError("--offset needs --extrasafe")
    target = 0.30 if ns.target is None else ns.target
    if not (math.isfinite(target) and 0.0 < target < 1.0):
        raise _UsageError(f"--target must be strictly between 0 and 1, got {target:g}")
    if not 1 <= ns.start_level <= n_levels:
        raise _UsageError(f"--start-level must be between 1 and {n_levels} (the number of levels), got {ns.start_level}")
    kw: dict = {"target": target, "start_level": ns.start_level - 1, "extrasafe": ns.extrasafe,
                "deescalation": not ns.no_deescalation, "six_at_mtd": ns.six_at_mtd, "stay_1_of_3": ns.stay_1_of_3}
    for name in ("n_earlystop", "cutoff_eli", "offset", "p1", "p2", "eps1", "eps2"):
        if getattr(ns, name) is not None:
            kw[name] = getattr(ns, name)
    opt = DesignOptions(**kw)
    try:
        return opt.validate(n_levels)
    except ValueError as exc:
        raise _UsageError(f"--{str(exc)}" if str(exc).startswith(("n-earlystop", "cutoff-eli", "offset", "eps"))
                          else str(exc)) from None


def _accrual(ns: argparse.Namespace, design: str, n_levels: int) -> AccrualModel | None:
    calendar = design_info(design).calendar
    if not calendar:
        for flag in ("--accrual-per-month", "--response"):
            if _given(ns, flag):
                raise _UsageError(f"{flag} applies to tite-boin and bf-boin only")
        return None
    if ns.accrual_per_month is None:
        raise _UsageError(f"--accrual-per-month is required for {design} (eligible patients per month)")
    response = None
    if ns.response is not None:
        if design != "bf-boin":
            raise _UsageError("--response applies to bf-boin only")
        response = tuple(_parse_rates(ns.response, "--response"))
    try:
        return AccrualModel(per_month=ns.accrual_per_month, dlt_window_days=ns.dlt_window_days,
                            n_cap=ns.n_cap, response=response).validate(n_levels)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _validate(ns: argparse.Namespace) -> tuple[str, list[float], DesignOptions, AccrualModel | None]:
    design = ns.design.strip().lower()
    if design not in DESIGN_NAMES:
        raise _UsageError(f"--design must be one of {', '.join(DESIGN_NAMES)}, got {ns.design!r}")
    rates = _parse_rates(ns.true_dlt)
    if ns.trials < 1:
        raise _UsageError(f"--trials must be at least 1, got {ns.trials}")
    if design != "3+3":
        if ns.cohort_size < 1:
            raise _UsageError(f"--cohort-size must be at least 1, got {ns.cohort_size}")
        if ns.max_n < ns.cohort_size:
            raise _UsageError(f"--max-n ({ns.max_n}) must be at least the cohort size ({ns.cohort_size})")
        if ns.max_n % ns.cohort_size:
            lo = ns.max_n - ns.max_n % ns.cohort_size
            raise _UsageError(f"--max-n ({ns.max_n}) is not a multiple of --cohort-size ({ns.cohort_size}); "
                              f"use {lo} or {lo + ns.cohort_size}")
    opt = _options(ns, design, len(rates))
    return design, rates, opt, _accrual(ns, design, len(rates))


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def _text_table(design: str, oc: dict) -> str:
    k = len(oc["mtd_selection_pct"])
    lines = [f"design {design}", f"{'level':>6} {'% MTD':>8} {'mean n':>8} {'mean DLT':>9}"]
    for i in range(k):
        lines.append(
            f"{'DL' + str(i + 1):>6} {oc['mtd_selection_pct'][i]:8.2f} "
            f"{oc['mean_n_per_level'][i]:8.2f} {oc['mean_dlt_per_level'][i]:9.2f}"
        )
    lines.append(f"no MTD: {oc['no_mtd_pct']:.2f}%   stopped early (lowest level too toxic): {oc['early_stop_pct']:.2f}%"
                 f"   stopped by n-earlystop: {oc['n_earlystop_pct']:.2f}%")
    lines.append(f"patients: mean {oc['mean_n_total']:.2f}, p10 {oc['n_total_p10']:g}, p90 {oc['n_total_p90']:g}")
    mtd = oc["true_mtd"]
    lines.append(f"true MTD: {'none defined' if mtd is None else 'DL' + str(mtd + 1)}; correct selection "
                 f"{_fmt(oc['pct_correct'])}%; patients at MTD {_fmt(oc['pct_patients_at_mtd'])}%, "
                 f"above {_fmt(oc['pct_patients_above_mtd'])}%")
    if "duration_mean_days" in oc:
        lines.append(f"duration (days): mean {oc['duration_mean_days']:.1f}, p10 {oc['duration_p10_days']:.1f}, "
                     f"p90 {oc['duration_p90_days']:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``dose-sim``; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        design, rates, opt, accrual = _validate(ns)
    except _UsageError as exc:
        msg = " ".join(str(exc).split())
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if ns.decision_table:
        from eligibility.dose.tables import decision_table_export  # noqa: PLC0415
        from eligibility.export import to_csv_bytes  # noqa: PLC0415

        if not design_info(design).uses_target:
            print(f"{PROG}: error: --decision-table needs an interval design (boin, i3+3, tite-boin, bf-boin)",
                  file=sys.stderr)
            return 2
        sys.stdout.write(to_csv_bytes(decision_table_export(design, opt, ns.max_n)).decode("utf-8-sig"))
        return 0
    run = simulate_trials(design, rates, cohort_size=ns.cohort_size, max_n=ns.max_n, n_trials=ns.trials,
                          seed=ns.seed, options=opt, accrual=accrual)
    mtd_target = True if design != "3+3" else ns.target
    oc = operating_characteristics(run, mtd_target=mtd_target)
    if ns.json:
        keys = OC_KEYS + (CALENDAR_KEYS if accrual is not None else ())
        print(json.dumps({key: oc[key] for key in keys}, allow_nan=False))
    else:
        print(_text_table(design, oc))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
