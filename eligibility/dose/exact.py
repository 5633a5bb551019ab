"""Exact operating characteristics by enumerating every trial path.

A forward pass over trial states (current level, patients and DLTs per level,
eliminated levels) carries the probability of reaching each state; each cohort
branches on its binomial DLT count and the design's scalar rule
(:mod:`eligibility.dose.designs`) decides what follows. States reached by
different paths merge, so 3+3 with 8 levels is still instant. These numbers are
the reference the Monte-Carlo simulation is tested against.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from eligibility.dose.designs import DesignOptions, interval_next, select_mtd, three_plus_three_next
from eligibility.dose.simulate import _resolve_options, validate_inputs


def _pmf(size: int, p: float) -> list[float]:
    return [math.comb(size, j) * p**j * (1.0 - p) ** (size - j) for j in range(size + 1)]


def exact_operating_characteristics(
    design: str,
    true_dlt: Sequence[float],
    *,
    target: float | None = None,
    cohort_size: int = 3,
    max_n: int = 30,
    options: DesignOptions | None = None,
    max_states: int = 2_000_000,
) -> dict:
    """Exact selection probabilities and expected patients / DLTs per level.

    Returns ``mtd_selection_pct``, ``no_mtd_pct``, ``mean_n_per_level``,
    ``mean_dlt_per_level``, ``mean_n_total``, ``pct_stopped_early`` / ``early_stop_pct``,
    ``n_earlystop_pct`` (as the simulation)
    plus ``n_total_distribution`` ({patients treated: probability}) and
    ``n_cohorts_distribution`` ({cohorts: probability}).
    BOIN / i3+3 enumeration grows with max_n; ``max_states`` guards against blow-up.
    """
    opt = _resolve_options(target, options)
    design, rates = validate_inputs(design, true_dlt, opt.target, cohort_size, max_n, 1)
    if design not in ("3+3", "boin", "i3+3"):
        raise ValueError(f"exact enumeration covers 3+3, BOIN and i3+3, not {design}")
    opt.validate(rates.size)
    k = rates.size
    if design == "3+3":
        cohort_size, n_steps = 3, 2 * k
    else:
        n_steps = max_n // cohort_size
    pmfs = [_pmf(cohort_size, float(p)) for p in rates]

    sel = [0.0] * k
    no_mtd = 0.0
    early = 0.0
    converged = 0.0
    mean_n = [0.0] * k
    mean_y = [0.0] * k
    n_total_dist: dict[int, float] = defaultdict(float)
    cohort_dist: dict[int, float] = defaultdict(float)

    def finish(prob: float, n: tuple[int, ...], y: tuple[int, ...], mtd: int | None, stopped: bool, step: int,
               by_n_earlystop: bool = False):
        nonlocal no_mtd, early, converged
        if mtd is None:
            no_mtd += prob
        else:
            sel[mtd] += prob
        if stopped:
            early += prob
        if by_n_earlystop:
            converged += prob
        for i in range(k):
            mean_n[i] += prob * n[i]
            mean_y[i] += prob * y[i]
        n_total_dist[sum(n)] += prob
        cohort_dist[step] += prob

    zeros = (0,) * k
    frontier: dict[tuple, float] = {(opt.start_level, zeros, zeros, k): 1.0}
    for step in range(1, n_steps + 1):
        nxt: dict[tuple, float] = defaultdict(float)
        for (d, n, y, elim_from), prob in frontier.items():
            for j, pj in enumerate(pmfs[d]):
                if pj == 0.0:
                    continue
                pr = prob * pj
                n2 = n[:d] + (n[d] + cohort_size,) + n[d + 1 :]
                y2 = y[:d] + (y[d] + j,) + y[d + 1 :]
                if design == "3+3":
                    res = three_plus_three_next(n2, y2, d, opt.deescalation, opt.six_at_mtd)
                    if res.action == "stop":
                        finish(pr, n2, y2, res.mtd, res.mtd is None, step)
                    else:
                        nxt[(res.next_level, n2, y2, k)] += pr
                    continue
                nxt_step = interval_next(n2, y2, d, elim_from, design, opt)
                if nxt_step.stop == "safety":
                    finish(pr, n2, y2, None, True, step)
                elif nxt_step.stop == "n_earlystop" or step == n_steps:
                    chosen = select_mtd(n2, y2, opt.target, opt.cutoff_eli, opt.extrasafe, opt.offset)
                    finish(pr, n2, y2, chosen, False, step, by_n_earlystop=nxt_step.stop == "n_earlystop")
                else:
                    nxt[(nxt_step.next_level, n2, y2, nxt_step.eliminated_from)] += pr
        frontier = nxt
        if len(frontier) > max_states:
            raise ValueError(
                f"exact enumeration needs more than {max_states} states; use the simulation"
            )
    if frontier:  # 3+3 always ends within 2K cohorts
        raise RuntimeError("enumeration left unfinished trial paths")
    total_n = sum(mean_n)
    return {
        "mtd_selection_pct": [100.0 * s for s in sel],
        "no_mtd_pct": 100.0 * no_mtd,
        "mean_n_per_level": mean_n,
        "mean_dlt_per_level": mean_y,
        "mean_n_total": total_n,
        "pct_stopped_early": 100.0 * early,
        "early_stop_pct": 100.0 * early,
        "n_earlystop_pct": 100.0 * converged,
        "n_total_distribution": dict(sorted(n_total_dist.items())),
        "n_cohorts_distribution": dict(sorted(cohort_dist.items())),
    }


def three_plus_three_exact(true_dlt: Sequence[float]) -> dict:
    """Exact 3+3 operating characteristics (see :func:`exact_operating_characteristics`)."""
    return exact_operating_characteristics("3+3", true_dlt)
