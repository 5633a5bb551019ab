"""Dose-escalation decision rules: 3+3, BOIN and i3+3 (and the options a statistician sets).

Pure functions, no state, no randomness. Level indices are 0-based here
(level 0 = DL1); labels are the caller's business. The rules follow
/work/shared/spec/dose-escalation.md and, for every option, the BOIN R package
2.7.2 (CRAN, files R/get.boundary.R, R/get.oc.R, R/select.mtd.R):

* 3+3 — the conventional algorithmic design (Storer 1989, Biometrics 45:925-937), as the
  spec words it, with de-escalation to a lower level that has 3 patients (Korn et al. 1994).
  ``deescalation=False`` is the variant without it (R ``escalation``'s default: when a
  level is exceeded the next-lower level is the MTD, whatever it holds);
  ``six_at_mtd=True`` requires 6 patients at the declared MTD (3 more are treated at a
  level that would be declared with only 3, the top level included).
* BOIN — Liu S, Yuan Y. J R Stat Soc C 2015;64(3):507-523. Boundaries as R get.boundary
  counts them: escalate if y ≤ ⌊λe·n⌋, de-escalate if y ≥ ⌈λd·n⌉ (λd·n whole: +1) capped
  at the elimination count; eliminate when n ≥ 3 and Pr(p > φ | y, n; Beta(1,1)) >
  cutoff.eli; ``extrasafe`` stops the trial when the lowest level has n ≥ 3 and
  Pr(p1 > φ | data) > cutoff.eli − offset; ``n_earlystop`` stops the trial (MTD
  selected) once the current level has that many patients and the rule says stay.
* i3+3 — Liu M, Wang SJ, Ji Y. J Biopharm Stat 2020;30(2):294-304 (equivalence interval
  [φ−ε1, φ+ε2]), with the same elimination / stopping rules as BOIN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

Design = Literal["3+3", "boin", "i3+3"]
#: Designs whose cohorts are simulated cohort by cohort (no calendar time).
COHORT_DESIGNS: tuple[str, ...] = ("3+3", "boin", "i3+3")

#: Elimination cut-off default (R get.oc ``cutoff.eli``).
ELIMINATION_CUTOFF = 0.95
#: Elimination is only assessed once a level has at least this many patients.
ELIMINATION_MIN_N = 3
#: R get.oc's default n.earlystop (100 "essentially turns off" the rule).
N_EARLYSTOP_OFF = 100
#: Tolerance R's get.boundary uses when λd·n is a whole number.
_R_TOL = 1e-12
#: Tolerance for rate-vs-interval comparisons (i3+3; ends included).
_EPS = 1e-12

# Decision codes shared by the interval designs (and the decision tables).
ESCALATE = 1
STAY = 0
DEESCALATE = -1


@dataclass(frozen=True)
class DesignOptions:
    """The options of a design, with R BOIN's defaults. ``start_level`` is 0-based.

    * ``target`` φ (BOIN, i3+3); ``p1``/``p2`` set λe/λd (None: 0.6φ and 1.4φ);
    * ``n_earlystop``: stop once the current level has this many patients and the rule
      says stay (default 100 = off, as R);
    * ``cutoff_eli``: elimination cut-off; ``extrasafe`` with ``offset``: the stricter
      stopping rule for the lowest level;
    * ``eps1``/``eps2``: i3+3 equivalence interval half-widths;
    * ``deescalation``/``six_at_mtd``: the 3+3 variant;
    * ``stay_1_of_3``: BOIN family: 1 DLT in 3 patients means stay (bfboin's
      ``three.plus.three``, the "3+3-like" rule; BOIN itself de-escalates there when
      λd·3 ≤ 1, i.e. for targets up to about 0.28).
    """

    target: float = 0.30
    start_level: int = 0
    n_earlystop: int = N_EARLYSTOP_OFF
    cutoff_eli: float = ELIMINATION_CUTOFF
    extrasafe: bool = False
    offset: float = 0.05
    p1: float | None = None
    p2: float | None = None
    eps1: float = 0.05
    eps2: float = 0.05
    deescalation: bool = True
    six_at_mtd: bool = False
    stay_1_of_3: bool = False

    @property
    def p_saf(self) -> float:
        return 0.6 * self.target if self.p1 is None else float(self.p1)

    @property
    def p_tox(self) -> float:
        return 1.4 * self.target if self.p2 is None else float(self.p2)

    def with_(self, **changes) -> DesignOptions:
        return replace(self, **changes)

    def validate(self, n_levels: int | None = None) -> DesignOptions:
        """Raise ValueError (one line, naming the option) for unusable values."""
        _check_target(self.target)
        if not 0.0 < self.p_saf < self.target < self.p_tox < 1.0:
            raise ValueError(
                f"p1 and p2 must satisfy 0 < p1 < target < p2 < 1 "
                f"(got p1={self.p_saf:g}, target={self.target:g}, p2={self.p_tox:g})"
            )
        if int(self.n_earlystop) != self.n_earlystop or self.n_earlystop < 1:
            raise ValueError(f"n-earlystop must be a whole number ≥ 1, got {self.n_earlystop}")
        if not (math.isfinite(self.cutoff_eli) and 0.0 < self.cutoff_eli < 1.0):
            raise ValueError(f"cutoff-eli must be strictly between 0 and 1, got {self.cutoff_eli:g}")
        if not (math.isfinite(self.offset) and 0.0 <= self.offset < 0.5):
            raise ValueError(f"offset must be within [0, 0.5) as in R BOIN, got {self.offset:g}")
        if self.extrasafe and self.cutoff_eli - self.offset <= 0.0:
            raise ValueError("cutoff-eli minus offset must stay above 0")
        for name, v in (("eps1", self.eps1), ("eps2", self.eps2)):
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name} must be ≥ 0, got {v:g}")
        if self.target - self.eps1 < 0.0 or self.target + self.eps2 >= 1.0:
            raise ValueError("the i3+3 interval [target − eps1, target + eps2] must lie within [0, 1)")
        if int(self.start_level) != self.start_level or self.start_level < 0:
            raise ValueError(f"start level must be a whole number ≥ 1, got {self.start_level + 1}")
        if n_levels is not None and self.start_level >= n_levels:
            raise ValueError(f"start level {self.start_level + 1} is above the top level ({n_levels})")
        return self


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
    """Smallest DLT count y in 1..n that eliminates a level with n patients (None: none
    does). R get.boundary searches from 1 DLT, so 0 DLTs never eliminate."""
    if n < ELIMINATION_MIN_N:
        return None
    for y in range(1, n + 1):
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


def boin_counts(n: int, options: DesignOptions | float = 0.30) -> tuple[int, int]:
    """(escalate if y ≤ b_e, de-escalate if y ≥ b_d) for n patients, exactly as R get.boundary:
    b_e = ⌊λe·n⌋; b_d = ⌈λd·n⌉, or λd·n + 1 when λd·n is whole; b_d capped at the
    elimination count."""
    opt = _as_options(options)
    lam_e, lam_d = boin_boundaries(opt.target, opt.p_saf, opt.p_tox)
    b_e = math.floor(lam_e * n)
    x = lam_d * n
    b_d = round(x) + 1 if abs(round(x) - x) < _R_TOL else math.ceil(x)
    elim = elimination_threshold(n, opt.target, opt.cutoff_eli)
    if elim is not None and b_d > elim:
        b_d = elim
    return b_e, b_d


def _as_options(options: DesignOptions | float) -> DesignOptions:
    return options if isinstance(options, DesignOptions) else DesignOptions(target=float(options))


def boin_decision(y: int, n: int, options: DesignOptions | float = 0.30) -> int:
    """BOIN decision for the current level: escalate (+1) if y ≤ b_e, de-escalate (−1)
    if y ≥ b_d, else stay (0), with the counts of :func:`boin_counts` (R get.boundary).

    Elimination is a separate rule (see :func:`is_eliminated`).
    """
    if n < 1 or not 0 <= y <= n:
        raise ValueError(f"need n ≥ 1 and 0 ≤ y ≤ n (got y={y}, n={n})")
    b_e, b_d = boin_counts(n, options)
    if n == 3 and y == 1 and isinstance(options, DesignOptions) and options.stay_1_of_3:
        return STAY if y > b_e else ESCALATE
    if y <= b_e:
        return ESCALATE
    if y >= b_d:
        return DEESCALATE
    return STAY


def boin_count_table(options: DesignOptions | float = 0.30, max_n: int = 30) -> pd.DataFrame:
    """BOIN boundaries as DLT counts for n = 1..max_n (as BOIN's get.boundary prints them).

    Columns: ``n``; ``escalate_if_le`` (escalate if DLTs ≤ this; −1: never);
    ``deescalate_if_ge`` (de-escalate if DLTs ≥ this; <NA>: never); ``eliminate_if_ge``
    (eliminate the level and all above if DLTs ≥ this; <NA> when n < 3 or no count eliminates).
    For φ = 0.30 and n = 3, 6, 9, 12: escalate ≤ 0, 1, 2, 2; de-escalate ≥ 2, 3, 4, 5;
    eliminate ≥ 3, 4, 5, 7.
    """
    opt = _as_options(options)
    if max_n < 1:
        raise ValueError(f"max_n must be ≥ 1, got {max_n}")
    rows = []
    for n in range(1, max_n + 1):
        b_e, b_d = boin_counts(n, opt)
        rows.append(
            {
                "n": n,
                "escalate_if_le": b_e,
                "deescalate_if_ge": b_d if b_d <= n else None,
                "eliminate_if_ge": elimination_threshold(n, opt.target, opt.cutoff_eli),
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
    y: int, n: int, target: float | DesignOptions = 0.30, eps1: float | None = None, eps2: float | None = None
) -> int:
    """i3+3 decision (Liu, Wang & Ji 2020), equivalence interval EI = [φ−ε1, φ+ε2]:

    * y/n below EI → escalate (+1);
    * y/n inside EI (ends included) → stay (0);
    * y/n above EI → stay if (y−1)/n is below EI, else de-escalate (−1).

    Elimination (Pr(p > φ | data) > cutoff, n ≥ 3) is the separate safety rule.
    """
    opt = _as_options(target)
    if eps1 is not None or eps2 is not None:
        opt = opt.with_(eps1=opt.eps1 if eps1 is None else eps1, eps2=opt.eps2 if eps2 is None else eps2)
    _check_target(opt.target)
    if n < 1 or not 0 <= y <= n:
        raise ValueError(f"need n ≥ 1 and 0 ≤ y ≤ n (got y={y}, n={n})")
    lower, upper = opt.target - opt.eps1, opt.target + opt.eps2
    rate = y / n
    if rate < lower - _EPS:
        return ESCALATE
    if rate <= upper + _EPS:
        return STAY
    if (y - 1) / n < lower - _EPS:
        return STAY
    return DEESCALATE


def rule_for(design: str):
    """The scalar decision rule of an interval design: f(y, n, options) → +1 / 0 / −1."""
    if design == "boin":
        return boin_decision
    if design == "i3+3":
        return i3p3_decision
    raise ValueError(f"interval rules exist for 'boin' and 'i3+3', not {design!r}")


_LETTER = {ESCALATE: "E", STAY: "S", DEESCALATE: "D"}


def i3p3_table(
    target: float | DesignOptions = 0.30, max_n: int = 12, eps1: float | None = None, eps2: float | None = None
) -> pd.DataFrame:
    """i3+3 decision table: rows y = 0..max_n DLTs, columns n = 1..max_n treated.

    Cells: "E" escalate, "S" stay, "D" de-escalate, "DU" de-escalate and eliminate
    this level and all above (unacceptable), "" where y > n.
    """
    opt = _as_options(target)
    if eps1 is not None or eps2 is not None:
        opt = opt.with_(eps1=opt.eps1 if eps1 is None else eps1, eps2=opt.eps2 if eps2 is None else eps2)
    if max_n < 1:
        raise ValueError(f"max_n must be ≥ 1, got {max_n}")
    data = {}
    for n in range(1, max_n + 1):
        col = []
        for y in range(max_n + 1):
            if y > n:
                col.append("")
            elif _eliminates(y, n, opt):
                col.append("DU")
            else:
                col.append(_LETTER[i3p3_decision(y, n, opt)])
        data[n] = col
    frame = pd.DataFrame(data, index=pd.RangeIndex(0, max_n + 1, name="y"))
    frame.columns.name = "n"
    return frame


def _eliminates(y: int, n: int, opt: DesignOptions) -> bool:
    """In-trial elimination as R get.oc applies it: y ≥ the get.boundary count (from 1 DLT)."""
    thr = elimination_threshold(n, opt.target, opt.cutoff_eli)
    return thr is not None and y >= thr


def _extrasafe_stops(y: int, n: int, opt: DesignOptions) -> bool:
    """R get.oc's extra-safe rule at the lowest level; R checks it only where an
    elimination count exists for n (it sits inside ``if (!is.na(b.elim[n[d]]))``)."""
    return (
        opt.extrasafe
        and n >= ELIMINATION_MIN_N
        and elimination_threshold(n, opt.target, opt.cutoff_eli) is not None
        and prob_rate_exceeds(y, n, opt.target) > opt.cutoff_eli - opt.offset
    )


def interval_tables(
    design: str, options: DesignOptions | float, max_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables for the interval designs, indexed [n, y] for 0 ≤ y ≤ n ≤ max_n.

    Returns (decision, eliminate, extrasafe_stop): ``decision`` holds +1/0/−1 (row n = 0
    unused), ``eliminate`` is True where the level is eliminated, ``extrasafe_stop``
    where the extra-safe rule stops the trial at the lowest level.
    """
    opt = _as_options(options)
    rule = rule_for(design)
    dec = np.zeros((max_n + 1, max_n + 1), dtype=np.int8)
    elim = np.zeros((max_n + 1, max_n + 1), dtype=bool)
    safe = np.zeros((max_n + 1, max_n + 1), dtype=bool)
    for n in range(1, max_n + 1):
        for y in range(n + 1):
            dec[n, y] = rule(y, n, opt)
            elim[n, y] = _eliminates(y, n, opt)
            safe[n, y] = _extrasafe_stops(y, n, opt)
    return dec, elim, safe


@dataclass(frozen=True)
class IntervalStep:
    """Outcome of one BOIN / i3+3 step: the next level (None once the trial stops),
    the lowest eliminated level (K when none) and why the trial stopped, if it did
    ("safety": lowest level too toxic, no MTD; "n_earlystop": enough patients at the level)."""

    next_level: int | None
    eliminated_from: int
    stop: Literal["safety", "n_earlystop"] | None = None


def interval_next(
    n: list[int] | tuple[int, ...],
    y: list[int] | tuple[int, ...],
    current: int,
    eliminated_from: int,
    design: str,
    options: DesignOptions | float,
) -> IntervalStep:
    """One step of BOIN / i3+3 after a cohort at ``current`` (as R get.oc):

    1. if the current level is eliminated, it and all above are; at the lowest level the
       trial stops (no MTD); so does the extra-safe rule at the lowest level;
    2. escalate (unless at the top or the next level is eliminated), stay, or
       de-escalate (unless at the lowest) by the design's rule; an eliminated
       level is always left downwards;
    3. if the level now has ≥ n_earlystop patients and the rule says stay, stop.
    """
    opt = _as_options(options)
    k = len(n)
    yc, nc = y[current], n[current]
    if _eliminates(yc, nc, opt):
        eliminated_from = min(eliminated_from, current)
        if current == 0:
            return IntervalStep(None, eliminated_from, "safety")
    if current == 0 and _extrasafe_stops(yc, nc, opt):
        return IntervalStep(None, eliminated_from, "safety")
    dec = rule_for(design)(yc, nc, opt)
    if current >= eliminated_from:
        dec = DEESCALATE
    nxt = current
    if dec == ESCALATE and current < k - 1 and current + 1 < eliminated_from:
        nxt = current + 1
    elif dec == DEESCALATE and current > 0:
        nxt = current - 1
    if nxt == current and nc >= opt.n_earlystop:
        return IntervalStep(None, eliminated_from, "n_earlystop")
    return IntervalStep(nxt, eliminated_from)


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
    extrasafe: bool = False,
    offset: float = 0.05,
) -> int | None:
    """MTD at the end of a BOIN / i3+3 trial, as BOIN's ``select.mtd`` (Yan, Zhang,
    Liu & Yuan 2020, J Stat Softw 94(13), "BOIN: An R Package for Designing Single-Agent
    and Drug-Combination Dose-Finding Trials Using Bayesian Optimal Interval Designs").

    * levels with n ≥ 3 and Pr(p > φ | Beta(1,1), data) > 0.95 are eliminated with
      all levels above; if the lowest is eliminated there is no MTD (None);
    * over tried (n > 0), non-eliminated levels, p̂ = (y + 0.05)/(n + 0.1) is made
      non-decreasing by PAVA weighted by 1/Var (Beta(0.05, 0.05) posterior variance);
    * with ``extrasafe``, the lowest level (and so every level) is also eliminated when
      n ≥ 3 and Pr(p > φ | data) > cutoff − offset;
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
    if extrasafe and n_arr[0] >= ELIMINATION_MIN_N and prob_rate_exceeds(int(y_arr[0]), int(n_arr[0]), target) > cutoff - offset:
        elim_from = 0
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
    n: np.ndarray,
    y: np.ndarray,
    target: float,
    cutoff: float = ELIMINATION_CUTOFF,
    extrasafe: bool = False,
    offset: float = 0.05,
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
    # select.mtd's own elimination (any y, unlike the in-trial table that starts at 1 DLT)
    elim_tab = np.zeros((max_n + 1, max_n + 1), dtype=bool)
    safe_tab = np.zeros((max_n + 1, max_n + 1), dtype=bool)
    for nn in range(ELIMINATION_MIN_N, max_n + 1):
        for yy in range(nn + 1):
            post = prob_rate_exceeds(yy, nn, target)
            elim_tab[nn, yy] = post > cutoff
            safe_tab[nn, yy] = extrasafe and post > cutoff - offset
    elim = elim_tab[n, y]
    elim[:, 0] |= safe_tab[n[:, 0], y[:, 0]]
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
    n: list[int] | tuple[int, ...],
    y: list[int] | tuple[int, ...],
    current: int,
    deescalation: bool = True,
    six_at_mtd: bool = False,
) -> ThreePlusThreeStep:
    """3+3 decision after a cohort of 3 at ``current`` (Storer 1989, as the spec words it).

    ``n``/``y``: patients and DLTs per level *including* the cohort just treated.

    * 0/3 → escalate; at the top level (or when the level above was tried) → stop, this
      level is the MTD (with ``six_at_mtd``: 3 more first).
    * 1/3 → 3 more at the same level; then ≤ 1/6 → passed as above, ≥ 2/6 → exceeded.
    * ≥ 2/3 → MTD exceeded.
    * When ``current`` is exceeded: lowest level → stop, no MTD; else if the
      next-lower level has 6 → stop, it is the MTD; if it has 3 → with
      ``deescalation`` (or ``six_at_mtd``) treat 3 more there, without → stop, it is
      the MTD (R ``escalation``'s default); if it is untried (a start above DL1) → treat 3 there.
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
        if yc == 1:
            return ThreePlusThreeStep("stay", next_level=current)
        passed = yc == 0
    else:  # 6 patients
        passed = yc <= 1
    if passed:
        if top or above_tried:
            if six_at_mtd and nc == 3:
                return ThreePlusThreeStep("stay", next_level=current)
            return ThreePlusThreeStep("stop", mtd=current)
        return ThreePlusThreeStep("escalate", next_level=current + 1)
    # MTD exceeded at `current`
    if current == 0:
        return ThreePlusThreeStep("stop", mtd=None)
    lower = current - 1
    if n[lower] >= 6:
        return ThreePlusThreeStep("stop", mtd=lower)
    if n[lower] == 3 and not (deescalation or six_at_mtd):
        return ThreePlusThreeStep("stop", mtd=lower)
    return ThreePlusThreeStep("de-escalate", next_level=lower)


def three_plus_three_sample_size(n_levels: int) -> dict[str, int]:
    """3+3 sample size bounds for K levels: minimum 3, all-escalate 3K, maximum 6K."""
    if n_levels < 1:
        raise ValueError(f"need at least one dose level, got {n_levels}")
    return {"minimum": 3, "all_escalate": 3 * n_levels, "maximum": 6 * n_levels}
