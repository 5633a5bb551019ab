"""Dose-escalation decision rules: 3+3, BOIN and i3+3.

Pure functions, no state, no randomness. Level indices are 0-based here
(level 0 = DL1); labels are the caller's business. The rules follow
/work/shared/spec/dose-escalation.md, which words each design's published rule:

* 3+3 — the conventional algorithmic design (Storer 1989, "Design and analysis
  of phase I clinical trials", Biometrics 45:925-937), as the spec words it,
  including de-escalation to a lower level that has 3 patients (3 more are
  treated there) and the top-level rule.
* BOIN — Liu S, Yuan Y. Bayesian optimal interval designs for phase I clinical
  trials. J R Stat Soc C 2015;64(3):507-523 (boundaries λe/λd, elimination
  rule and MTD selection as in the BOIN R package's get.boundary / get.oc /
  select.mtd).
* i3+3 — Liu M, Wang SJ, Ji Y. The i3+3 design for phase I clinical trials.
  J Biopharm Stat 2020;30(2):294-304 (equivalence interval [φ−ε1, φ+ε2]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Design = Literal["3+3", "boin", "i3+3"]
DESIGNS: tuple[str, ...] = ("3+3", "boin", "i3+3")

#: Elimination cut-off: a level is eliminated when Pr(p > φ | data) exceeds it.
ELIMINATION_CUTOFF = 0.95
#: Elimination is only assessed once a level has at least this many patients.
ELIMINATION_MIN_N = 3
#: Tolerance for rate-vs-boundary comparisons (boundaries are inclusive).
_EPS = 1e-12

# Decision codes shared by the interval designs (and the decision tables).
ESCALATE = 1
STAY = 0
DEESCALATE = -1


# --------------------------------------------------------------------------
# Beta posterior tail via the binomial identity (no scipy needed)
# --------------------------------------------------------------------------


def binomial_cdf(k: int, n: int, p: float) -> float:
    """Pr(Binomial(n, p) ≤ k), summed exactly term by term."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    return float(sum(math.comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(k + 1)))


def prob_rate_exceeds(y: int, n: int, target: float) -> float:
    """Pr(p > target | y DLTs in n) under a Beta(1, 1) prior.

    The posterior is Beta(y + 1, n − y + 1). For integer a, b,
    Pr(Beta(a, b) > φ) = Pr(Binomial(a + b − 1, φ) ≤ a − 1), so this is
    Pr(Binomial(n + 1, φ) ≤ y) — exact, no numerical integration.
    """
    if not 0 <= y <= n:
        raise ValueError(f"DLT count {y} must be between 0 and n = {n}")
    return binomial_cdf(y, n + 1, target)


def is_eliminated(y: int, n: int, target: float, cutoff: float = ELIMINATION_CUTOFF) -> bool:
    """BOIN / i3+3 safety rule: eliminate when n ≥ 3 and Pr(p > φ | data) > cutoff."""
    return n >= ELIMINATION_MIN_N and prob_rate_exceeds(y, n, target) > cutoff


def elimination_threshold(n: int, target: float, cutoff: float = ELIMINATION_CUTOFF) -> int | None:
    """Smallest DLT count y ≤ n that eliminates a level with n patients (None: none does)."""
    if n < ELIMINATION_MIN_N:
        return None
    for y in range(n + 1):
        if is_eliminated(y, n, target, cutoff):
            return y
    return None


# --------------------------------------------------------------------------
# BOIN
# --------------------------------------------------------------------------


def _check_target(target: float) -> None:
    if not (isinstance(target, int | float) and 0.0 < float(target) < 1.0):
        raise ValueError(f"target DLT rate must be strictly between 0 and 1, got {target!r}")


def boin_boundaries(
    target: float, p1: float | None = None, p2: float | None = None
) -> tuple[float, float]:
    """BOIN escalation / de-escalation boundaries (λe, λd), Liu & Yuan 2015, eq. (2).

    λe = log((1−p1)/(1−φ)) / log(φ(1−p1) / (p1(1−φ)))
    λd = log((1−φ)/(1−p2)) / log(p2(1−φ) / (φ(1−p2)))
    with the recommended defaults p1 = 0.6φ and p2 = 1.4φ.
    For φ = 0.30: λe = 0.2364, λd = 0.3585.
    """
    _check_target(target)
    phi = float(target)
    p1 = 0.6 * phi if p1 is None else float(p1)
    p2 = 1.4 * phi if p2 is None else float(p2)
    if not 0.0 < p1 < phi < p2 < 1.0:
        raise ValueError(f"BOIN needs 0 < p1 < target < p2 < 1 (got p1={p1}, target={phi}, p2={p2})")
    lam_e = math.log((1 - p1) / (1 - phi)) / math.log(phi * (1 - p1) / (p1 * (1 - phi)))
    lam_d = math.log((1 - phi) / (1 - p2)) / math.log(p2 * (1 - phi) / (phi * (1 - p2)))
    return lam_e, lam_d


def boin_decision(y: int, n: int, target: float) -> int:
    """BOIN decision for the current level: escalate (+1) if y/n ≤ λe,
    de-escalate (−1) if y/n ≥ λd, else stay (0). Liu & Yuan 2015.

    Elimination is a separate rule (see :func:`is_eliminated`).
    """
    if n < 1 or not 0 <= y <= n:
        raise ValueError(f"need n ≥ 1 and 0 ≤ y ≤ n (got y={y}, n={n})")
    lam_e, lam_d = boin_boundaries(target)
    rate = y / n
    if rate <= lam_e + _EPS:
        return ESCALATE
    if rate >= lam_d - _EPS:
        return DEESCALATE
    return STAY


def boin_count_table(target: float = 0.30, max_n: int = 30) -> pd.DataFrame:
    """BOIN boundaries as DLT counts for n = 1..max_n (as BOIN's get.boundary prints them).

    Columns: ``n``; ``escalate_if_le`` (escalate if DLTs ≤ this); ``deescalate_if_ge``
    (de-escalate if DLTs ≥ this); ``eliminate_if_ge`` (eliminate the level and all
    above if DLTs ≥ this; <NA> when n < 3 or no count eliminates).
    For φ = 0.30 and n = 3, 6, 9, 12: escalate ≤ 0, 1, 2, 2; de-escalate ≥ 2, 3, 4, 5;
    eliminate ≥ 3, 4, 5, 7.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be ≥ 1, got {max_n}")
    rows = []
    for n in range(1, max_n + 1):
        ys = range(n + 1)
        esc = max((y for y in ys if boin_decision(y, n, target) == ESCALATE), default=-1)
        de = min((y for y in ys if boin_decision(y, n, target) == DEESCALATE), default=None)
        rows.append(
            {
                "n": n,
                "escalate_if_le": esc,
                "deescalate_if_ge": de,
                "eliminate_if_ge": elimination_threshold(n, target),
            }
        )
    frame = pd.DataFrame(rows)
    for col in ("deescalate_if_ge", "eliminate_if_ge"):
        frame[col] = frame[col].astype("Int64")
    return frame


# --------------------------------------------------------------------------
# i3+3
# --------------------------------------------------------------------------


def i3p3_decision(
    y: int, n: int, target: float, eps1: float = 0.05, eps2: float = 0.05
) -> int:
    """i3+3 decision (Liu, Wang & Ji 2020), equivalence interval EI = [φ−ε1, φ+ε2]:

    * y/n below EI → escalate (+1);
    * y/n inside EI (ends included) → stay (0);
    * y/n above EI → stay if (y−1)/n is below EI, else de-escalate (−1).

    Elimination (Pr(p > φ | data) > 0.95, n ≥ 3) is the separate safety rule.
    """
    _check_target(target)
    if n < 1 or not 0 <= y <= n:
        raise ValueError(f"need n ≥ 1 and 0 ≤ y ≤ n (got y={y}, n={n})")
    lower, upper = target - eps1, target + eps2
    rate = y / n
    if rate < lower - _EPS:
        return ESCALATE
    if rate <= upper + _EPS:
        return STAY
    if (y - 1) / n < lower - _EPS:
        return STAY
    return DEESCALATE


_LETTER = {ESCALATE: "E", STAY: "S", DEESCALATE: "D"}


def i3p3_table(target: float = 0.30, max_n: int = 12, eps1: float = 0.05, eps2: float = 0.05) -> pd.DataFrame:
    """i3+3 decision table: rows y = 0..max_n DLTs, columns n = 1..max_n treated.

    Cells: "E" escalate, "S" stay, "D" de-escalate, "DU" de-escalate and eliminate
    this level and all above (unacceptable), "" where y > n.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be ≥ 1, got {max_n}")
    data = {}
    for n in range(1, max_n + 1):
        col = []
        for y in range(max_n + 1):
            if y > n:
                col.append("")
            elif is_eliminated(y, n, target):
                col.append("DU")
            else:
                col.append(_LETTER[i3p3_decision(y, n, target, eps1, eps2)])
        data[n] = col
    frame = pd.DataFrame(data, index=pd.RangeIndex(0, max_n + 1, name="y"))
    frame.columns.name = "n"
    return frame


def interval_tables(
    design: str, target: float, max_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables for the interval designs, indexed [n, y] for 0 ≤ y ≤ n ≤ max_n.

    Returns (decision, eliminate): ``decision`` holds +1/0/−1 (row n = 0 unused),
    ``eliminate`` is True where the safety rule eliminates the level.
    """
    if design not in ("boin", "i3+3"):
        raise ValueError(f"interval tables exist for 'boin' and 'i3+3', not {design!r}")
    rule = boin_decision if design == "boin" else i3p3_decision
    dec = np.zeros((max_n + 1, max_n + 1), dtype=np.int8)
    elim = np.zeros((max_n + 1, max_n + 1), dtype=bool)
    for n in range(1, max_n + 1):
        for y in range(n + 1):
            dec[n, y] = rule(y, n, target)
            elim[n, y] = is_eliminated(y, n, target)
    return dec, elim


def interval_next(
    n: list[int] | tuple[int, ...],
    y: list[int] | tuple[int, ...],
    current: int,
    eliminated_from: int,
    design: str,
    target: float,
) -> tuple[int | None, int]:
    """One step of BOIN / i3+3 after a cohort at ``current`` (as BOIN's get.oc):

    1. if n ≥ 3 and Pr(p > φ | data) > 0.95, eliminate ``current`` and all above;
       if ``current`` is the lowest level, the trial stops with no MTD;
    2. escalate (unless at the top or the next level is eliminated), stay, or
       de-escalate (unless at the lowest) by the design's rule; an eliminated
       level is always left downwards.

    Returns (next level or None when the trial stops, new eliminated_from), where
    levels ≥ eliminated_from are eliminated (K when none).
    """
    k = len(n)
    yc, nc = y[current], n[current]
    if is_eliminated(yc, nc, target):
        eliminated_from = min(eliminated_from, current)
        if current == 0:
            return None, eliminated_from
    rule = boin_decision if design == "boin" else i3p3_decision
    dec = rule(yc, nc, target)
    if current >= eliminated_from:
        dec = DEESCALATE
    if dec == ESCALATE and current < k - 1 and current + 1 < eliminated_from:
        return current + 1, eliminated_from
    if dec == DEESCALATE and current > 0:
        return current - 1, eliminated_from
    return current, eliminated_from


# --------------------------------------------------------------------------
# MTD selection by isotonic regression (BOIN select.mtd)
# --------------------------------------------------------------------------


def pava(values: list[float] | np.ndarray, weights: list[float] | np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the non-decreasing fit to ``values``."""
    x = [float(v) for v in values]
    w = [float(v) for v in weights]
    blocks: list[list[float]] = []  # [mean, weight, count]
    for xi, wi in zip(x, w, strict=True):
        blocks.append([xi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for mean, _, count in blocks:
        out.extend([mean] * int(count))
    return np.asarray(out, dtype=float)


def select_mtd(
    n: list[int] | tuple[int, ...] | np.ndarray,
    y: list[int] | tuple[int, ...] | np.ndarray,
    target: float,
    cutoff: float = ELIMINATION_CUTOFF,
) -> int | None:
    """MTD at the end of a BOIN / i3+3 trial, as BOIN's ``select.mtd`` (Yan, Zhang,
    Liu & Yuan 2020, J Stat Softw 94(13), "BOIN: An R Package for Designing Single-Agent
    and Drug-Combination Dose-Finding Trials Using Bayesian Optimal Interval Designs").

    * levels with n ≥ 3 and Pr(p > φ | Beta(1,1), data) > 0.95 are eliminated with
      all levels above; if the lowest is eliminated there is no MTD (None);
    * over tried (n > 0), non-eliminated levels, p̂ = (y + 0.05)/(n + 0.1) is made
      non-decreasing by PAVA weighted by 1/Var (Beta(0.05, 0.05) posterior variance);
    * ties are broken as select.mtd does, by adding i·1e-10 to the i-th estimate,
      so among tied estimates above the target the lower level wins and among
      tied estimates below the target the higher level wins;
    * the level whose estimate is closest to φ is the MTD (0-based index).
    """
    n_arr = np.asarray(n, dtype=int)
    y_arr = np.asarray(y, dtype=int)
    k = len(n_arr)
    elim_from = k
    for i in range(k):
        if is_eliminated(int(y_arr[i]), int(n_arr[i]), target, cutoff):
            elim_from = i
            break
    if elim_from == 0:
        return None
    adm = [i for i in range(elim_from) if n_arr[i] > 0]
    if not adm:
        return None
    ya = y_arr[adm].astype(float)
    na = n_arr[adm].astype(float)
    phat = (ya + 0.05) / (na + 0.1)
    var = (ya + 0.05) * (na - ya + 0.05) / ((na + 0.1) ** 2 * (na + 0.1 + 1))
    fit = pava(phat, 1.0 / var) + np.arange(1, len(adm) + 1) * 1e-10
    return adm[int(np.argmin(np.abs(fit - target)))]


def select_mtd_batch(
    n: np.ndarray, y: np.ndarray, target: float, cutoff: float = ELIMINATION_CUTOFF
) -> np.ndarray:
    """Vectorised :func:`select_mtd` over trials: n, y of shape (T, K) → (T,) with −1 = no MTD.

    The isotonic fit uses the max–min formula of isotonic regression
    (Robertson, Wright & Dykstra 1988, Thm 1.4.4): fit_i = max_{s≤i} min_{t≥i} Av(s, t),
    which equals PAVA; non-admissible levels get weight 0 and so drop out.
    """
    n = np.asarray(n, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    t_count, k = n.shape
    max_n = int(n.max()) if n.size else 0
    # elimination lookup [n, y]
    elim_tab = np.zeros((max_n + 1, max_n + 1), dtype=bool)
    for nn in range(ELIMINATION_MIN_N, max_n + 1):
        thr = elimination_threshold(nn, target, cutoff)
        if thr is not None:
            elim_tab[nn, thr : nn + 1] = True
    elim = elim_tab[n, y]
    # eliminated from the first eliminated level upwards
    elim_any = np.cumsum(elim, axis=1) > 0
    adm = (n > 0) & ~elim_any
    ya = y.astype(float)
    na = n.astype(float)
    phat = (ya + 0.05) / (na + 0.1)
    var = (ya + 0.05) * (na - ya + 0.05) / ((na + 0.1) ** 2 * (na + 1.1))
    w = np.where(adm, 1.0 / var, 0.0)
    cw = np.concatenate([np.zeros((t_count, 1)), np.cumsum(w, axis=1)], axis=1)
    cwv = np.concatenate([np.zeros((t_count, 1)), np.cumsum(w * phat, axis=1)], axis=1)
    fit = np.full((t_count, k), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(k):
            best = np.full(t_count, -np.inf)
            for s in range(i + 1):
                worst = np.full(t_count, np.inf)
                for t in range(i, k):
                    denom = cw[:, t + 1] - cw[:, s]
                    av = np.where(denom > 0, (cwv[:, t + 1] - cwv[:, s]) / denom, np.inf)
                    worst = np.minimum(worst, av)
                best = np.maximum(best, worst)
            fit[:, i] = best
    rank = np.cumsum(adm, axis=1)
    score = np.where(adm, np.abs(fit + rank * 1e-10 - target), np.inf)
    choice = np.argmin(score, axis=1)
    has_any = adm.any(axis=1)
    return np.where(has_any, choice, -1).astype(np.int64)


# --------------------------------------------------------------------------
# 3+3
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreePlusThreeStep:
    """Outcome of one 3+3 decision.

    ``next_level`` is the level that treats the next cohort of 3 (None once the
    trial stops); ``mtd`` is the selected MTD when stopped (None = no MTD).
    """

    action: Literal["escalate", "stay", "de-escalate", "stop"]
    next_level: int | None = None
    mtd: int | None = None


def three_plus_three_next(
    n: list[int] | tuple[int, ...], y: list[int] | tuple[int, ...], current: int
) -> ThreePlusThreeStep:
    """3+3 decision after a cohort of 3 at ``current`` (Storer 1989, as the spec words it).

    ``n``/``y``: patients and DLTs per level *including* the cohort just treated.

    * 0/3 → escalate; at the top level → stop, top level is the MTD.
    * 1/3 → 3 more at the same level; then ≤ 1/6 → escalate (top: MTD is the top),
      ≥ 2/6 → MTD exceeded.
    * ≥ 2/3 → MTD exceeded.
    * A level reached by de-escalation (the level above it was tried) with ≤ 1/6
      is the MTD; with ≥ 2/6 it too is exceeded.
    * When ``current`` is exceeded: lowest level → stop, no MTD; else if the
      next-lower level has 6 → stop, it is the MTD; if it has 3 → treat 3 more there.
    """
    k = len(n)
    if not 0 <= current < k:
        raise ValueError(f"current level {current} outside 0..{k - 1}")
    nc, yc = n[current], y[current]
    if nc not in (3, 6) or not 0 <= yc <= nc:
        raise ValueError(f"3+3 needs 3 or 6 patients at the current level (got y={yc}, n={nc})")
    above_tried = current < k - 1 and n[current + 1] > 0
    top = current == k - 1
    if nc == 3:
        if above_tried:
            raise ValueError(
                "a 3+3 level reached by de-escalation has 6 patients before it is judged"
            )
        if yc == 1:
            return ThreePlusThreeStep("stay", next_level=current)
        passed = yc == 0
    else:  # 6 patients
        passed = yc <= 1
    if passed:
        if top or above_tried:
            return ThreePlusThreeStep("stop", mtd=current)
        return ThreePlusThreeStep("escalate", next_level=current + 1)
    # MTD exceeded at `current`
    if current == 0:
        return ThreePlusThreeStep("stop", mtd=None)
    lower = current - 1
    if n[lower] >= 6:
        return ThreePlusThreeStep("stop", mtd=lower)
    return ThreePlusThreeStep("de-escalate", next_level=lower)


def three_plus_three_sample_size(n_levels: int) -> dict[str, int]:
    """3+3 sample size bounds for K levels: minimum 3, all-escalate 3K, maximum 6K."""
    if n_levels < 1:
        raise ValueError(f"need at least one dose level, got {n_levels}")
    return {"minimum": 3, "all_escalate": 3 * n_levels, "maximum": 6 * n_levels}
