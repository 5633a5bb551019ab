"""Seeded, vectorised simulation of dose-escalation trials and their operating characteristics.

All trials advance in lockstep: each step treats one cohort in every still-running
trial at once (numpy arrays over trials, a Python loop only over cohort steps —
at most 2K for 3+3, ⌊max_n / cohort size⌋ for BOIN / i3+3). Results depend only on
the inputs and the seed (``np.random.default_rng(seed)``).

Operating characteristics are the ones BOIN's ``get.oc`` and escalation's
``simulate_trials`` report: % selecting each level as MTD, % with no MTD, mean
patients and DLTs per level, mean / 10th / 90th percentile of patients treated,
% stopped early.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eligibility.dose.designs import DesignOptions, interval_tables, select_mtd_batch
from eligibility.dose.registry import CALENDAR_DESIGNS, DESIGN_NAMES, AccrualModel

#: Days per month used to turn monthly rates into days (365.25 / 12).
DAYS_PER_MONTH = 365.25 / 12

OC_KEYS: tuple[str, ...] = (
    "mtd_selection_pct",
    "no_mtd_pct",
    "mean_n_per_level",
    "mean_dlt_per_level",
    "mean_n_total",
    "n_total_p10",
    "n_total_p90",
    "pct_correct",
    "pct_patients_at_mtd",
    "pct_patients_above_mtd",
    "early_stop_pct",
)

#: Why a simulated trial ended (``SimulationRun.stop_reason``).
STOP_MAX_N = 0  # used the maximum sample size (3+3: its rule ended the trial)
STOP_SAFETY = 1  # lowest level too toxic: no MTD
STOP_N_EARLYSTOP = 2  # n_earlystop patients at the current level and the rule said stay


@dataclass(frozen=True)
class SimulationRun:
    """Per-trial results of a simulation (arrays over T trials, K levels).

    ``selected``: MTD level per trial (0-based), −1 = no MTD. ``stop_reason``: one of
    STOP_MAX_N / STOP_SAFETY / STOP_N_EARLYSTOP per trial; ``stopped_early`` is
    ``stop_reason == STOP_SAFETY`` — the trial stopped because the lowest level was too
    toxic (3+3: lowest level exceeded; BOIN / i3+3: lowest level eliminated or the
    extra-safe rule), R get.oc's "percentage of early stopping". ``n_cohorts``: cohorts
    treated per trial. ``duration_days``: per-trial duration from the calendar simulation
    (TITE-BOIN, BF-BOIN), None for the cohort-by-cohort designs (their duration comes from
    the timeline: cohorts × (fill + DLT window)); ``entry_days``: calendar designs, each
    trial's patient entry days in order (inf-padded), which the timeline draws.
    """

    design: str
    true_dlt: tuple[float, ...]
    target: float
    cohort_size: int
    max_n: int
    seed: int | None
    n_per_level: np.ndarray
    dlt_per_level: np.ndarray
    selected: np.ndarray
    stop_reason: np.ndarray
    n_cohorts: np.ndarray
    options: DesignOptions = field(default_factory=DesignOptions)
    duration_days: np.ndarray | None = None
    backfill_per_level: np.ndarray | None = None
    entry_days: np.ndarray | None = None

    @property
    def n_trials(self) -> int:
        return int(self.selected.shape[0])

    @property
    def stopped_early(self) -> np.ndarray:
        return self.stop_reason == STOP_SAFETY

    @property
    def n_total(self) -> np.ndarray:
        return self.n_per_level.sum(axis=1)

    @property
    def dlt_total(self) -> np.ndarray:
        return self.dlt_per_level.sum(axis=1)


def validate_inputs(
    design: str,
    true_dlt: Sequence[float],
    target: float,
    cohort_size: int,
    max_n: int,
    n_trials: int,
) -> tuple[str, np.ndarray]:
    """Check simulation inputs; raise ValueError with a one-line message.

    A maximum sample size that is not a whole number of cohorts is refused (it is
    never cut silently)."""
    design_norm = str(design).strip().lower()
    if design_norm not in DESIGN_NAMES:
        raise ValueError(f"design must be one of {', '.join(DESIGN_NAMES)}; got {design!r}")
    rates = np.asarray(list(true_dlt), dtype=float)
    if rates.ndim != 1 or rates.size < 1:
        raise ValueError("need at least one dose level (one true DLT rate per level)")
    for i, r in enumerate(rates, start=1):
        if not math.isfinite(r) or not 0.0 <= r <= 1.0:
            raise ValueError(f"true DLT rate of level {i} must be within [0, 1], got {r:g}")
    if not (math.isfinite(target) and 0.0 < target < 1.0):
        raise ValueError(f"target DLT rate must be strictly between 0 and 1, got {target:g}")
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"number of trials must be a whole number ≥ 1, got {n_trials}")
    if design_norm != "3+3":
        if int(cohort_size) != cohort_size or cohort_size < 1:
            raise ValueError(f"cohort size must be a whole number ≥ 1, got {cohort_size}")
        if int(max_n) != max_n or max_n < cohort_size:
            raise ValueError(
                f"maximum sample size ({max_n}) must be at least the cohort size ({cohort_size})"
            )
        if max_n % cohort_size:
            lo = max_n - max_n % cohort_size
            raise ValueError(
                f"maximum sample size ({max_n}) is not a multiple of the cohort size ({cohort_size}); "
                f"use {lo} or {lo + cohort_size}"
            )
    return design_norm, rates


def _resolve_options(target: float | None, options: DesignOptions | None) -> DesignOptions:
    if options is None:
        return DesignOptions(target=0.30 if target is None else float(target))
    if target is not None and not math.isclose(float(target), options.target):
        raise ValueError(f"target given twice: {target:g} and options.target {options.target:g}")
    return options


def simulate_trials(
    design: str,
    true_dlt: Sequence[float],
    *,
    target: float | None = None,
    cohort_size: int = 3,
    max_n: int = 30,
    n_trials: int = 10_000,
    seed: int | None = 1,
    options: DesignOptions | None = None,
    accrual: AccrualModel | None = None,
) -> SimulationRun:
    """Simulate ``n_trials`` trials of ``design`` under ``true_dlt`` (one rate per level).

    ``options`` carries the design's options (start level, n_earlystop, cutoff_eli,
    extrasafe / offset, p1 / p2, eps1 / eps2, the 3+3 variant); ``target`` alone is a
    shortcut for ``DesignOptions(target=...)``. 3+3 ignores the target, ``cohort_size``
    and ``max_n`` (cohorts of 3, at most 6 per level). BOIN and i3+3 treat
    max_n / cohort_size cohorts unless a stopping rule ends the trial, then select the
    MTD as BOIN's select.mtd. TITE-BOIN and BF-BOIN run in calendar time and need
    ``accrual`` (arrival rate of eligible patients and the DLT window).
    """
    opt = _resolve_options(target, options)
    design, rates = validate_inputs(design, true_dlt, opt.target, cohort_size, max_n, n_trials)
    opt.validate(rates.size)
    rng = np.random.default_rng(seed)
    duration = backfill = entries = None
    if design == "3+3":
        out = _run_three_plus_three(rates, int(n_trials), rng, opt)
        cohort_size, max_n = 3, 6 * rates.size
    elif design in CALENDAR_DESIGNS:
        if accrual is None:
            raise ValueError(f"{design} runs in calendar time: give the accrual rate and DLT window")
        from eligibility.dose.calendar import run_calendar  # noqa: PLC0415 - avoids an import cycle

        cal = run_calendar(design, rates, opt, int(cohort_size), int(max_n), int(n_trials), rng, accrual)
        out = (cal.n, cal.y, cal.selected, cal.stop_reason, cal.n_cohorts)
        duration, backfill, entries = cal.duration_days, cal.backfill_n, cal.entry_days
    else:
        out = _run_interval(design, rates, opt, int(cohort_size), int(max_n), int(n_trials), rng)
    n, y, sel, reason, cohorts = out
    return SimulationRun(
        design=design,
        true_dlt=tuple(float(r) for r in rates),
        target=float(opt.target),
        cohort_size=int(cohort_size),
        max_n=int(max_n),
        seed=seed,
        n_per_level=n,
        dlt_per_level=y,
        selected=sel,
        stop_reason=reason,
        n_cohorts=cohorts,
        options=opt,
        duration_days=duration,
        backfill_per_level=backfill,
        entry_days=entries,
    )


def _run_three_plus_three(rates: np.ndarray, t_count: int, rng: np.random.Generator, opt: DesignOptions):
    """Lockstep 3+3 (same rule as designs.three_plus_three_next, vectorised)."""
    k = rates.size
    d = np.full(t_count, opt.start_level, dtype=np.int64)
    n = np.zeros((t_count, k), dtype=np.int64)
    y = np.zeros((t_count, k), dtype=np.int64)
    sel = np.full(t_count, -1, dtype=np.int64)
    reason = np.full(t_count, STOP_MAX_N, dtype=np.int64)
    cohorts = np.zeros(t_count, dtype=np.int64)
    active = np.ones(t_count, dtype=bool)
    expand_lower = opt.deescalation or opt.six_at_mtd
    for _ in range(2 * k):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        dd = d[idx]
        draws = rng.binomial(3, rates[dd])
        n[idx, dd] += 3
        y[idx, dd] += draws
        cohorts[idx] += 1
        nd = n[idx, dd]
        yd = y[idx, dd]
        top = dd == k - 1
        above = np.zeros(idx.size, dtype=bool)
        below_top = ~top
        above[below_top] = n[idx[below_top], dd[below_top] + 1] > 0
        first = nd == 3
        stay = first & (yd == 1)
        passed = (first & (yd == 0)) | (~first & (yd <= 1))
        exceeded = ~passed & ~stay
        judged = passed & (top | above)
        if opt.six_at_mtd:  # a level declared with 3 patients first gets 3 more
            stay |= judged & first
            judged &= ~first
        escalate = passed & ~(top | above)
        lowest = dd == 0
        no_mtd = exceeded & lowest
        ex_up = exceeded & ~lowest
        lower_n = np.zeros(idx.size, dtype=np.int64)
        lower_n[ex_up] = n[idx[ex_up], dd[ex_up] - 1]
        stop_lower = ex_up & ((lower_n >= 6) | ((lower_n == 3) & (not expand_lower)))
        deesc = ex_up & ~stop_lower
        sel[idx[judged]] = dd[judged]
        sel[idx[stop_lower]] = dd[stop_lower] - 1
        reason[idx[no_mtd]] = STOP_SAFETY
        active[idx[judged | stop_lower | no_mtd]] = False
        d[idx[escalate]] += 1
        d[idx[deesc]] -= 1
    if active.any():  # cannot happen: every level takes at most 2 cohorts
        raise RuntimeError("3+3 simulation did not terminate within 2K cohorts")
    return n, y, sel, reason, cohorts


def _run_interval(
    design: str,
    rates: np.ndarray,
    opt: DesignOptions,
    cohort_size: int,
    max_n: int,
    t_count: int,
    rng: np.random.Generator,
):
    """Lockstep BOIN / i3+3 as R get.oc: cohorts until max_n, the safety stop or n_earlystop."""
    k = rates.size
    dec_tab, elim_tab, safe_tab = interval_tables(design, opt, max_n)
    d = np.full(t_count, opt.start_level, dtype=np.int64)
    n = np.zeros((t_count, k), dtype=np.int64)
    y = np.zeros((t_count, k), dtype=np.int64)
    reason = np.full(t_count, STOP_MAX_N, dtype=np.int64)
    cohorts = np.zeros(t_count, dtype=np.int64)
    active = np.ones(t_count, dtype=bool)
    elim_from = np.full(t_count, k, dtype=np.int64)
    for _ in range(max_n // cohort_size):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        dd = d[idx]
        draws = rng.binomial(cohort_size, rates[dd])
        n[idx, dd] += cohort_size
        y[idx, dd] += draws
        cohorts[idx] += 1
        nd = n[idx, dd]
        yd = y[idx, dd]
        elim_now = elim_tab[nd, yd]
        ef = np.where(elim_now, np.minimum(elim_from[idx], dd), elim_from[idx])
        elim_from[idx] = ef
        lowest = dd == 0
        stop = lowest & (elim_now | safe_tab[nd, yd])
        dec = dec_tab[nd, yd].astype(np.int64)
        dec = np.where(dd >= ef, -1, dec)
        up = (dec == 1) & (dd < k - 1) & (dd + 1 < ef)
        down = (dec == -1) & (dd > 0)
        newd = dd + up.astype(np.int64) - down.astype(np.int64)
        converged = ~stop & (newd == dd) & (nd >= opt.n_earlystop)
        reason[idx[stop]] = STOP_SAFETY
        reason[idx[converged]] = STOP_N_EARLYSTOP
        active[idx[stop | converged]] = False
        keep = ~stop
        d[idx[keep]] = newd[keep]
    sel = select_mtd_batch(n, y, opt.target, opt.cutoff_eli, opt.extrasafe, opt.offset)
    sel[reason == STOP_SAFETY] = -1
    return n, y, sel, reason, cohorts


def true_mtd(true_dlt: Sequence[float], target: float | None) -> int | None:
    """The true MTD: the level whose true DLT rate is closest to the target (0-based).

    None without a target or when two levels are equally close (the rates then do not
    define one MTD)."""
    if target is None:
        return None
    gaps = np.abs(np.asarray(true_dlt, dtype=float) - float(target))
    best = np.flatnonzero(np.isclose(gaps, gaps.min(), rtol=0.0, atol=1e-12))
    return int(best[0]) if best.size == 1 else None


def _pct(mask: np.ndarray) -> float:
    return float(100.0 * np.count_nonzero(mask) / mask.size)


def operating_characteristics(run: SimulationRun, mtd_target: float | None | bool = True) -> dict:
    """Operating characteristics as R get.oc reports them, and more.

    Batch-contract keys (OC_KEYS) plus: ``pct_stopped_early`` (= ``early_stop_pct``, kept
    for older callers), ``n_earlystop_pct`` (% ended by the n_earlystop rule),
    ``true_mtd`` (0-based, None when undefined), ``pct_select_above_mtd`` (over-dosing
    selection), ``mean_n_at_mtd`` / ``mean_n_above_mtd``, ``overdose60_pct`` /
    ``overdose80_pct`` (R get.oc: % of trials treating more than 60% / 80% of the
    maximum sample size at levels whose true rate exceeds the target),
    ``mean_dlt_total``, ``n_total_sd`` and, for calendar designs, ``duration_*`` (days).

    ``mtd_target``: True uses the run's target to define the true MTD (BOIN, i3+3 and
    calendar designs; for 3+3 pass the target explicitly), None/False: no MTD-based keys.
    Percentages are 0–100; % of patients at / above the MTD are ratios of the means
    (R BF-BOIN's "percentpatients"); percentiles use numpy's linear interpolation.
    """
    t_count = run.n_trials
    k = run.n_per_level.shape[1]
    n_total = run.n_total
    sel = run.selected
    target = run.target if mtd_target is True else (None if mtd_target is False else mtd_target)
    mtd = true_mtd(run.true_dlt, target)
    mean_n = run.n_per_level.mean(axis=0)
    total_mean = float(n_total.mean())
    out: dict = {
        "mtd_selection_pct": [float(100.0 * np.count_nonzero(sel == i) / t_count) for i in range(k)],
        "no_mtd_pct": _pct(sel < 0),
        "mean_n_per_level": [float(v) for v in mean_n],
        "mean_dlt_per_level": [float(v) for v in run.dlt_per_level.mean(axis=0)],
        "mean_n_total": total_mean,
        "n_total_p10": float(np.percentile(n_total, 10)),
        "n_total_p90": float(np.percentile(n_total, 90)),
        "n_total_sd": float(n_total.std(ddof=1)) if t_count > 1 else 0.0,
        "mean_dlt_total": float(run.dlt_total.mean()),
        "early_stop_pct": _pct(run.stop_reason == STOP_SAFETY),
        "n_earlystop_pct": _pct(run.stop_reason == STOP_N_EARLYSTOP),
        "true_mtd": mtd,
        "pct_correct": None,
        "pct_select_above_mtd": None,
        "mean_n_at_mtd": None,
        "mean_n_above_mtd": None,
        "pct_patients_at_mtd": None,
        "pct_patients_above_mtd": None,
    }
    out["pct_stopped_early"] = out["early_stop_pct"]
    if mtd is not None:
        at = float(mean_n[mtd])
        above = float(mean_n[mtd + 1 :].sum())
        out.update(
            pct_correct=_pct(sel == mtd),
            pct_select_above_mtd=_pct(sel > mtd),
            mean_n_at_mtd=at,
            mean_n_above_mtd=above,
            pct_patients_at_mtd=100.0 * at / total_mean if total_mean else 0.0,
            pct_patients_above_mtd=100.0 * above / total_mean if total_mean else 0.0,
        )
    if target is not None:
        toxic = np.asarray(run.true_dlt) > target
        over = run.n_per_level[:, toxic].sum(axis=1)
        out["overdose60_pct"] = _pct(over > 0.6 * run.max_n)
        out["overdose80_pct"] = _pct(over > 0.8 * run.max_n)
    if run.duration_days is not None:
        days = run.duration_days
        out.update(
            duration_mean_days=float(days.mean()),
            duration_p10_days=float(np.percentile(days, 10)),
            duration_p50_days=float(np.percentile(days, 50)),
            duration_p90_days=float(np.percentile(days, 90)),
        )
    if run.backfill_per_level is not None:
        out["mean_backfill_per_level"] = [float(v) for v in run.backfill_per_level.mean(axis=0)]
    return out


def simulate(
    design: str,
    true_dlt: Sequence[float],
    *,
    target: float | None = None,
    cohort_size: int = 3,
    max_n: int = 30,
    n_trials: int = 10_000,
    seed: int | None = 1,
    options: DesignOptions | None = None,
    accrual: AccrualModel | None = None,
) -> dict:
    """Simulate and summarise: :func:`simulate_trials` then :func:`operating_characteristics`
    (3+3 defines the true MTD only when ``target`` is given; it does not use it otherwise)."""
    run = simulate_trials(
        design,
        true_dlt,
        target=target,
        cohort_size=cohort_size,
        max_n=max_n,
        n_trials=n_trials,
        seed=seed,
        options=options,
        accrual=accrual,
    )
    return operating_characteristics(run, mtd_target=True if run.design != "3+3" else target)


def trial_duration_days(
    n_cohorts: np.ndarray | Sequence[int] | int,
    fill_days: float,
    dlt_window_days: float,
    screening_during_window: bool = False,
) -> np.ndarray:
    """Days from the opening of cohort 1 to the close of the last cohort's DLT window.

    Default (the spec: the next cohort opens only after the window of the current one
    closes): each cohort takes fill + window, so duration = cohorts × (fill + window).
    With ``screening_during_window=True`` eligible patients found during a window wait
    for the next cohort: duration = fill + window + (cohorts − 1) × max(fill, window).
    Infinite when fill_days is infinite (nobody eligible).
    """
    c = np.asarray(n_cohorts, dtype=float)
    if fill_days < 0 or dlt_window_days < 0:
        raise ValueError("fill time and DLT window must be ≥ 0 days")
    if not math.isfinite(fill_days):
        return np.where(c > 0, np.inf, 0.0)
    if screening_during_window:
        out = fill_days + dlt_window_days + (c - 1) * max(fill_days, dlt_window_days)
        return np.where(c > 0, out, 0.0)
    return c * (fill_days + dlt_window_days)


def duration_distribution(
    n_cohorts: np.ndarray | Sequence[int],
    fill_days: float,
    dlt_window_days: float,
    screening_during_window: bool = False,
) -> dict:
    """Mean and 10/50/90th percentiles (days) of trial duration from per-trial cohort counts."""
    days = trial_duration_days(n_cohorts, fill_days, dlt_window_days, screening_during_window)
    if days.size == 0:
        raise ValueError("no trials given")
    if not np.all(np.isfinite(days)):
        return {"mean_days": math.inf, "p10_days": math.inf, "p50_days": math.inf, "p90_days": math.inf}
    return {
        "mean_days": float(days.mean()),
        "p10_days": float(np.percentile(days, 10)),
        "p50_days": float(np.percentile(days, 50)),
        "p90_days": float(np.percentile(days, 90)),
    }
