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
from dataclasses import dataclass

import numpy as np

from eligibility.dose.designs import DESIGNS, interval_tables, select_mtd_batch

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
)


@dataclass(frozen=True)
class SimulationRun:
    """Per-trial results of a simulation (arrays over T trials, K levels).

    ``selected``: MTD level per trial (0-based), −1 = no MTD. ``stopped_early``:
    the trial stopped because the lowest level was too toxic (3+3: lowest level
    exceeded; BOIN / i3+3: lowest level eliminated before max_n) — as get.oc's
    "percentage of early stopping". ``n_cohorts``: cohorts treated per trial.
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
    stopped_early: np.ndarray
    n_cohorts: np.ndarray

    @property
    def n_trials(self) -> int:
        return int(self.selected.shape[0])

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
    """Check simulation inputs; raise ValueError with a one-line message."""
    design_norm = str(design).strip().lower()
    if design_norm not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}; got {design!r}")
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
    return design_norm, rates


def simulate_trials(
    design: str,
    true_dlt: Sequence[float],
    *,
    target: float = 0.30,
    cohort_size: int = 3,
    max_n: int = 30,
    n_trials: int = 10_000,
    seed: int | None = 1,
) -> SimulationRun:
    """Simulate ``n_trials`` trials of ``design`` under ``true_dlt`` (one rate per level).

    3+3 ignores ``target``, ``cohort_size`` and ``max_n`` (cohorts of 3, at most
    6 per level). BOIN and i3+3 treat ⌊max_n / cohort_size⌋ cohorts unless the
    lowest level is eliminated, then select the MTD as BOIN's select.mtd.
    """
    design, rates = validate_inputs(design, true_dlt, target, cohort_size, max_n, n_trials)
    rng = np.random.default_rng(seed)
    if design == "3+3":
        out = _run_three_plus_three(rates, int(n_trials), rng)
        cohort_size, max_n = 3, 6 * rates.size
    else:
        out = _run_interval(design, rates, float(target), int(cohort_size), int(max_n), int(n_trials), rng)
    n, y, sel, early, cohorts = out
    return SimulationRun(
        design=design,
        true_dlt=tuple(float(r) for r in rates),
        target=float(target),
        cohort_size=int(cohort_size),
        max_n=int(max_n),
        seed=seed,
        n_per_level=n,
        dlt_per_level=y,
        selected=sel,
        stopped_early=early,
        n_cohorts=cohorts,
    )


def _run_three_plus_three(rates: np.ndarray, t_count: int, rng: np.random.Generator):
    """Lockstep 3+3 (same rule as designs.three_plus_three_next, vectorised)."""
    k = rates.size
    d = np.zeros(t_count, dtype=np.int64)
    n = np.zeros((t_count, k), dtype=np.int64)
    y = np.zeros((t_count, k), dtype=np.int64)
    sel = np.full(t_count, -1, dtype=np.int64)
    early = np.zeros(t_count, dtype=bool)
    cohorts = np.zeros(t_count, dtype=np.int64)
    active = np.ones(t_count, dtype=bool)
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
        stop_here = passed & (top | above)
        escalate = passed & ~(top | above)
        lowest = dd == 0
        no_mtd = exceeded & lowest
        ex_up = exceeded & ~lowest
        lower_n = np.zeros(idx.size, dtype=np.int64)
        lower_n[ex_up] = n[idx[ex_up], dd[ex_up] - 1]
        stop_lower = ex_up & (lower_n >= 6)
        deesc = ex_up & (lower_n < 6)
        sel[idx[stop_here]] = dd[stop_here]
        sel[idx[stop_lower]] = dd[stop_lower] - 1
        early[idx[no_mtd]] = True
        active[idx[stop_here | stop_lower | no_mtd]] = False
        d[idx[escalate]] += 1
        d[idx[deesc]] -= 1
    if active.any():  # cannot happen: every path ends within 2K cohorts
        raise RuntimeError("3+3 simulation did not terminate within 2K cohorts")
    return n, y, sel, early, cohorts


def _run_interval(
    design: str,
    rates: np.ndarray,
    target: float,
    cohort_size: int,
    max_n: int,
    t_count: int,
    rng: np.random.Generator,
):
    """Lockstep BOIN / i3+3 (as get.oc): cohorts until max_n or the lowest level is eliminated."""
    k = rates.size
    dec_tab, elim_tab = interval_tables(design, target, max_n)
    d = np.zeros(t_count, dtype=np.int64)
    n = np.zeros((t_count, k), dtype=np.int64)
    y = np.zeros((t_count, k), dtype=np.int64)
    early = np.zeros(t_count, dtype=bool)
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
        ef = elim_from[idx]
        ef = np.where(elim_now, np.minimum(ef, dd), ef)
        elim_from[idx] = ef
        stop = elim_now & (dd == 0)
        early[idx[stop]] = True
        active[idx[stop]] = False
        dec = dec_tab[nd, yd].astype(np.int64)
        dec = np.where(dd >= ef, -1, dec)
        up = (dec == 1) & (dd < k - 1) & (dd + 1 < ef)
        down = (dec == -1) & (dd > 0)
        newd = dd + up.astype(np.int64) - down.astype(np.int64)
        keep = ~stop
        d[idx[keep]] = newd[keep]
    sel = select_mtd_batch(n, y, target)
    sel[early] = -1
    return n, y, sel, early, cohorts


def operating_characteristics(run: SimulationRun) -> dict:
    """Summary of a run: the batch-contract keys plus ``pct_stopped_early``.

    Percentages are 0–100; percentiles use numpy's default linear interpolation.
    """
    t_count = run.n_trials
    k = run.n_per_level.shape[1]
    n_total = run.n_total
    sel = run.selected
    return {
        "mtd_selection_pct": [float(100.0 * np.count_nonzero(sel == i) / t_count) for i in range(k)],
        "no_mtd_pct": float(100.0 * np.count_nonzero(sel < 0) / t_count),
        "mean_n_per_level": [float(v) for v in run.n_per_level.mean(axis=0)],
        "mean_dlt_per_level": [float(v) for v in run.dlt_per_level.mean(axis=0)],
        "mean_n_total": float(n_total.mean()),
        "n_total_p10": float(np.percentile(n_total, 10)),
        "n_total_p90": float(np.percentile(n_total, 90)),
        "pct_stopped_early": float(100.0 * np.count_nonzero(run.stopped_early) / t_count),
    }


def simulate(
    design: str,
    true_dlt: Sequence[float],
    *,
    target: float = 0.30,
    cohort_size: int = 3,
    max_n: int = 30,
    n_trials: int = 10_000,
    seed: int | None = 1,
) -> dict:
    """Simulate and summarise: :func:`simulate_trials` then :func:`operating_characteristics`."""
    run = simulate_trials(
        design,
        true_dlt,
        target=target,
        cohort_size=cohort_size,
        max_n=max_n,
        n_trials=n_trials,
        seed=seed,
    )
    return operating_characteristics(run)


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
