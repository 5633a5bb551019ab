"""Calendar-time simulation of BOIN with late-onset toxicity (TITE-BOIN) and backfilling (BF-BOIN).

Patients arrive one at a time (a Poisson process at the eligible-patient rate), each is
followed for the DLT window, and decisions are taken when the next patient arrives, on
the data seen by then. All trials advance in lockstep (numpy arrays over trials); only
cohorts and suspension waits are Python loops. Times are in days.

* **TITE-BOIN** (Yuan Y, Lin R, Li D, Nie L, Warren KE. Clin Cancer Res 2018;24:4921-30),
  as R TITEgBOIN 0.4.0 ``get_oc_TITE_QuasiBOIN`` (TITE = TRUE, uniform prior on the time
  to DLT): the next cohort is assigned when its first patient arrives; a pending patient
  counts with the fraction of the window followed (standardised total follow-up time), so
  p̂ = y / (n − pending + STFT) is compared with λe/λd; accrual is suspended (the arriving
  patient is turned away) while more than ``max_pending`` of the current level's patients
  are pending, and at the lowest level when p̂ ≥ λd with someone pending; elimination
  uses all treated patients and the DLTs seen so far; n_earlystop ends the trial on a
  "stay" (de-escalation at the lowest level included, even while it holds accrual). The
  trial ends after max_n patients (or a stopping rule), its duration is the last entry
  plus one window; the MTD is selected on complete data as BOIN's select.mtd. Checked
  against get_oc_TITE_QuasiBOIN on six scenarios in tests/test_dose_reference_tite.py.
* **BF-BOIN** (Zhao Y, Yuan Y, Korn EL, Freidlin B. Clin Cancer Res 2024;30:673-9), as R
  bfboin 0.1.1 ``get.oc.bf``: escalation cohorts wait for their full DLT window, as BOIN;
  patients arriving meanwhile are backfilled to the highest cleared lower level that is
  open (a response seen there if response rates are given, the level's own and pooled
  data below λd, at most ``n_cap`` patients); at each escalation decision the backfill
  data count, with the pooled-conflict rule of the paper when a lower level disagrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eligibility.dose.designs import (
    DesignOptions,
    boin_boundaries,
    elimination_threshold,
    select_mtd_batch,
)
from eligibility.dose.registry import AccrualModel

DAYS_PER_MONTH = 365.25 / 12
_STOP_MAX_N, _STOP_SAFETY, _STOP_N_EARLYSTOP = 0, 1, 2


@dataclass(frozen=True)
class CalendarResult:
    n: np.ndarray
    y: np.ndarray
    selected: np.ndarray
    stop_reason: np.ndarray
    n_cohorts: np.ndarray
    duration_days: np.ndarray
    backfill_n: np.ndarray | None
    entry_days: np.ndarray  # (T, M): each trial's entry days in order, inf-padded


def weibull_dlt_times(
    rng: np.random.Generator, p: np.ndarray, window: float, late_onset: float
) -> np.ndarray:
    """Time to DLT (days; ``inf`` when none within the window) for patients with DLT
    probability ``p`` by the end of the window, a share ``late_onset`` of the DLTs in its
    second half (Weibull, as the TITE-BOIN and BF-BOIN simulation code)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0 - 1e-12)
    u = rng.random(p.shape)
    out = np.full(p.shape, np.inf)
    pos = p > 0
    if not pos.any():
        return out
    pp = p[pos]
    half = (1.0 - late_onset) * pp
    shape = np.log(np.log(1.0 - pp) / np.log(1.0 - half)) / math.log(2.0)
    scale = -np.log(1.0 - pp) / window**shape
    t = (-np.log(u[pos]) / scale) ** (1.0 / shape)
    out[pos] = np.where(t <= window, t, np.inf)
    return out


def run_calendar(
    design: str,
    rates: np.ndarray,
    opt: DesignOptions,
    cohort_size: int,
    max_n: int,
    t_count: int,
    rng: np.random.Generator,
    accrual: AccrualModel,
) -> CalendarResult:
    accrual.validate(rates.size)
    if design == "tite-boin":
        return _run_tite(rates, opt, cohort_size, max_n, t_count, rng, accrual)
    if design == "bf-boin":
        return _run_backfill(rates, opt, cohort_size, max_n, t_count, rng, accrual)
    raise ValueError(f"no calendar simulation for {design!r}")


class _Patients:
    """Patients of every trial: arrays (T, max_n) filled left to right."""

    def __init__(self, t_count: int, capacity: int):
        self.enter = np.full((t_count, capacity), np.inf)
        self.dlt_at = np.full((t_count, capacity), np.inf)  # days after entry; inf: no DLT
        self.dose = np.full((t_count, capacity), -1, dtype=np.int64)
        self.count = np.zeros(t_count, dtype=np.int64)

    def add(self, idx: np.ndarray, enter: np.ndarray, dose: np.ndarray, dlt_at: np.ndarray) -> None:
        pos = self.count[idx]
        self.enter[idx, pos] = enter
        self.dose[idx, pos] = dose
        self.dlt_at[idx, pos] = dlt_at
        self.count[idx] += 1

    def seen(self, idx: np.ndarray, now: np.ndarray, k: int, window: float):
        """Per trial in ``idx`` and level at time ``now``: treated n, DLTs seen y,
        pending count and standardised follow-up of the pending (Σ follow-up / window)."""
        enter = self.enter[idx]
        dlt = self.dlt_at[idx]
        dose = self.dose[idx]
        t = now[:, None]
        treated = dose >= 0
        tox_seen = treated & (enter + dlt <= t)
        done = treated & (tox_seen | (enter + window <= t))
        pending = treated & ~done
        follow = np.where(pending, np.clip(t - enter, 0.0, window), 0.0) / window
        rows = idx.size
        cell = (np.arange(rows)[:, None] * k + np.maximum(dose, 0)).ravel()  # (trial, level) bin

        def per_level(weights: np.ndarray) -> np.ndarray:
            return np.bincount(cell, weights=weights.ravel(), minlength=rows * k).reshape(rows, k)

        n = per_level(treated.astype(float)).astype(np.int64)
        y = per_level(tox_seen.astype(float)).astype(np.int64)
        pend = per_level(pending.astype(float)).astype(np.int64)
        stft = per_level(follow)
        return n, y, pend, stft

    def totals(self, k: int):
        treated = self.dose >= 0
        onehot = self.dose[:, :, None] == np.arange(k)[None, None, :]
        tox = treated & np.isfinite(self.dlt_at)
        return (onehot & treated[:, :, None]).sum(axis=1), (onehot & tox[:, :, None]).sum(axis=1)


def _posterior_exceeds_table(target: float, max_n: int) -> np.ndarray:
    """Pr(p > φ | y, n; Beta(1,1)) for 0 ≤ y ≤ n ≤ max_n (Binomial identity)."""
    out = np.zeros((max_n + 1, max_n + 1))
    for n in range(max_n + 1):
        for y in range(n + 1):
            out[n, y] = sum(math.comb(n + 1, i) * target**i * (1 - target) ** (n + 1 - i) for i in range(y + 1))
    return out


def _run_tite(rates, opt, cohort_size, max_n, t_count, rng, acc):
    k = rates.size
    window = float(acc.dlt_window_days)
    lam_e, lam_d = boin_boundaries(opt.target, opt.p_saf, opt.p_tox)
    post = _posterior_exceeds_table(opt.target, max_n)
    pts = _Patients(t_count, max_n)
    d = np.full(t_count, opt.start_level, dtype=np.int64)
    elim_from = np.full(t_count, k, dtype=np.int64)
    reason = np.full(t_count, _STOP_MAX_N, dtype=np.int64)
    cohorts = np.zeros(t_count, dtype=np.int64)
    t_dec = np.zeros(t_count)
    active = np.ones(t_count, dtype=bool)
    n_cohorts = max_n // cohort_size
    for c in range(n_cohorts):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        when = t_dec[idx].copy()
        for j in range(cohort_size):
            if j:
                when = when + _gaps(rng, acc, idx.size)
            pts.add(idx, when, d[idx], weibull_dlt_times(rng, rates[d[idx]], window, acc.late_onset))
        cohorts[idx] += 1
        t_dec[idx] = when
        if c == n_cohorts - 1:
            break
        # decide at the next arrival; while suspended, that patient is turned away
        waiting = idx
        while waiting.size:
            t_dec[waiting] += _gaps(rng, acc, waiting.size)
            n, y, pend, stft = pts.seen(waiting, t_dec[waiting], k, window)
            rows = np.arange(waiting.size)
            cur = d[waiting]
            # elimination: first level (n ≥ 3) with Pr(p > φ | y seen, n treated) > cutoff
            elim_lv = (n >= 3) & (post[n, y] > opt.cutoff_eli)
            first = np.where(elim_lv.any(axis=1), elim_lv.argmax(axis=1), k)
            ef = np.minimum(elim_from[waiting], first)
            elim_from[waiting] = ef
            nc, yc, pc, sc = n[rows, cur], y[rows, cur], pend[rows, cur], stft[rows, cur]
            extrasafe = opt.extrasafe & (cur == 0) & (nc >= 3) & (post[nc, yc] > opt.cutoff_eli - opt.offset)
            in_elim = cur >= ef
            safety = (in_elim & (ef == 0)) | extrasafe
            new = np.where(in_elim, ef - 1, cur)
            too_many_pending = ~in_elim & ~safety & (pc > nc * acc.max_pending)
            suspend = too_many_pending.copy()
            eff_n = nc - pc + sc
            with np.errstate(divide="ignore", invalid="ignore"):
                phat = np.where(pc == 0, yc / np.maximum(nc, 1), yc / eff_n)
            decide = ~in_elim & ~safety & ~suspend
            esc = decide & (phat <= lam_e)
            de = decide & ~esc & (phat >= lam_d)
            can_up = (cur < k - 1) & (cur + 1 < ef)
            up = esc & can_up
            down = de & (cur > 0)
            suspend |= de & (cur == 0) & (pc > 0)
            new = np.where(up, cur + 1, np.where(down, cur - 1, new))
            stay = decide & ~up & ~down
            # as R TITEgBOIN: n_earlystop ends the trial on a "stay", de-escalation at the
            # lowest level included even while its pending patients hold accrual
            converged = stay & ~too_many_pending & (nc >= opt.n_earlystop)
            reason[waiting[safety]] = _STOP_SAFETY
            reason[waiting[converged]] = _STOP_N_EARLYSTOP
            ended = safety | converged
            active[waiting[ended]] = False
            d[waiting[~safety]] = np.maximum(new[~safety], 0)
            held = suspend & ~ended
            if acc.arrivals == "poisson" and held.any():
                # Nothing changes until a pending patient's DLT or window end, or (DL1 hold)
                # until follow-up brings p̂ below λd; arrivals are memoryless, so the next
                # patient who can be taken is the first to arrive after that moment.
                ix = waiting[held]
                now = t_dec[ix]
                ends = pts.enter[ix] + np.minimum(pts.dlt_at[ix], window)
                ends = np.where((pts.dose[ix] >= 0) & (ends > now[:, None]), ends, np.inf).min(axis=1)
                low = (cur[held] == 0) & (pc[held] > 0) & ~(pc[held] > nc[held] * acc.max_pending)
                if low.any():
                    e = pts.enter[ix]
                    pend_at0 = (pts.dose[ix] == 0) & (e + np.minimum(pts.dlt_at[ix], window) > now[:, None])
                    need = yc[held] / lam_d - (nc[held] - pc[held])
                    t_star = (window * need + np.where(pend_at0, e, 0.0).sum(axis=1)) / np.maximum(pc[held], 1)
                    ends = np.where(low & (t_star > now), np.minimum(ends, t_star), ends)
                t_dec[ix] = np.where(np.isfinite(ends), np.maximum(now, ends), now)
            waiting = waiting[held]
    last_entry = np.where(pts.dose >= 0, pts.enter, -np.inf).max(axis=1)
    duration = last_entry + window
    n, y = pts.totals(k)
    sel = select_mtd_batch(n, y, opt.target, opt.cutoff_eli, opt.extrasafe, opt.offset)
    sel[reason == _STOP_SAFETY] = -1
    entries = np.sort(np.where(pts.dose >= 0, pts.enter, np.inf), axis=1)
    return CalendarResult(n, y, sel, reason, cohorts, duration, None, entries)


def _gaps(rng: np.random.Generator, acc: AccrualModel, size: int) -> np.ndarray:
    """Days between eligible arrivals: exponential (Poisson process) or uniform on [0, 2·mean]."""
    mean = DAYS_PER_MONTH / acc.per_month
    if acc.arrivals == "uniform":
        return rng.uniform(0.0, 2.0 * mean, size)
    return rng.exponential(mean, size)


def boundary_arrays(opt: DesignOptions, max_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R get.boundary's b.e, b.d (capped at elimination) and elimination counts for
    n = 0..max_n (index 0 repeats n = 1; a huge count where no count eliminates)."""
    from eligibility.dose.designs import boin_counts  # noqa: PLC0415 - keeps the header short

    b_e = np.zeros(max_n + 1, dtype=np.int64)
    b_d = np.zeros(max_n + 1, dtype=np.int64)
    for n in range(1, max_n + 1):
        b_e[n], b_d[n] = boin_counts(n, opt)
    b_e[0], b_d[0] = b_e[1], b_d[1]
    return b_e, b_d, elimination_counts(opt.target, opt.cutoff_eli, max_n)


_ESC, _STAY, _DE, _ELIM = 0, 1, 2, 3


def _run_backfill(rates, opt, cohort_size, max_n, t_count, rng, acc):
    """BF-BOIN, arrival by arrival, as bfboin 0.1.1 ``sim.one.trial`` (backfill to the highest open level)."""
    k = rates.size
    cs = cohort_size
    window = float(acc.dlt_window_days)
    cap = int(acc.n_cap)
    big_n = max_n + k * (cap + 1) + 1
    b_e, b_d, b_el = boundary_arrays(opt, big_n)
    post = _posterior_exceeds_table(opt.target, big_n)
    resp = None if acc.response is None else np.asarray(acc.response, dtype=float)
    levels = np.arange(k)

    d = np.full(t_count, opt.start_level, dtype=np.int64)
    ef = np.full(t_count, k, dtype=np.int64)
    n_esc = np.zeros((t_count, k), dtype=np.int64)
    y_esc = np.zeros((t_count, k), dtype=np.int64)
    coh_cal = np.full((t_count, cs), np.inf)
    coh_evt = np.zeros((t_count, cs), dtype=bool)
    coh_n = np.zeros(t_count, dtype=np.int64)
    bf_cal = np.full((t_count, k, cap + 1), np.inf)
    bf_evt = np.zeros((t_count, k, cap + 1), dtype=bool)
    bf_n = np.zeros((t_count, k), dtype=np.int64)
    first_resp = np.full((t_count, k), np.inf if resp is not None else -np.inf)
    cohort_no = np.ones(t_count, dtype=np.int64)
    entries = np.full((t_count, max_n + k * (cap + 1) + 1), np.inf)
    n_entries = np.zeros(t_count, dtype=np.int64)
    clock = np.zeros(t_count)
    started = np.zeros(t_count, dtype=bool)
    active = np.ones(t_count, dtype=bool)
    reason = np.full(t_count, _STOP_MAX_N, dtype=np.int64)

    def record(ix: np.ndarray) -> None:
        entries[ix, n_entries[ix]] = clock[ix]
        n_entries[ix] += 1

    def enrol_cohort(ix: np.ndarray) -> None:
        record(ix)
        lv = d[ix]
        t = weibull_dlt_times(rng, rates[lv], window, acc.late_onset)
        pos = coh_n[ix]
        coh_cal[ix, pos] = clock[ix] + np.minimum(t, window)
        coh_evt[ix, pos] = np.isfinite(t)
        coh_n[ix] += 1
        if resp is not None:
            hit = rng.random(ix.size) < resp[lv]
            h = ix[hit]
            first_resp[h, lv[hit]] = np.minimum(first_resp[h, lv[hit]], clock[h] + window)

    def seen_backfill(ix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        done = bf_cal[ix] < clock[ix, None, None]
        return done.sum(axis=2), (done & bf_evt[ix]).sum(axis=2)

    for _ in range(1_000_000):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        gap = _gaps(rng, acc, idx.size)
        clock[idx] = np.where(started[idx], clock[idx] + gap, 0.0)
        started[idx] = True
        open_slot = coh_n[idx] < cs
        ready = ~open_slot & (coh_cal[idx].max(axis=1) < clock[idx])
        below = levels[None, :] < d[idx, None]
        resp_seen = np.where(below, first_resp[idx], np.inf).min(axis=1) < clock[idx]
        backfill = ~open_slot & ~ready & (d[idx] > 0) & resp_seen
        if open_slot.any():
            enrol_cohort(idx[open_slot])
        if backfill.any():
            taken = _backfill_step(idx[backfill], d, n_esc, y_esc, coh_cal, coh_evt, bf_cal, bf_evt, bf_n,
                                   first_resp, clock, b_d, cap, rates, window, acc, rng, seen_backfill)
            if taken.size:
                record(taken)
        if not ready.any():
            continue
        ix = idx[ready]
        lv = d[ix]
        rows = np.arange(ix.size)
        n_esc[ix, lv] += cs
        y_esc[ix, lv] += coh_evt[ix].sum(axis=1)
        nb, yb = seen_backfill(ix)
        upto = levels[None, :] <= lv[:, None]
        n_tot = np.where(upto, n_esc[ix] + nb, 0)
        y_tot = np.where(upto, y_esc[ix] + yb, 0)
        n1 = np.maximum(n_tot, 1)
        dec = np.where(y_tot <= b_e[n1], _ESC, np.where(y_tot >= b_el[n1], _ELIM,
                                                         np.where(y_tot >= b_d[n1], _DE, _STAY)))
        if opt.stay_1_of_3:  # bfboin three.plus.three: 1/3 at the current level means stay
            cur13 = (n_tot[rows, lv] == 3) & (y_tot[rows, lv] == 1)
            dec[rows[cur13], lv[cur13]] = _STAY
        lower = levels[None, :] < lv[:, None]
        all_lower_esc = np.all(~lower | (dec == _ESC), axis=1)
        all_lower_ok = np.all(~lower | (dec <= _STAY), axis=1)
        dc = dec[rows, lv]
        nd = lv.copy()
        check = np.zeros(ix.size, dtype=bool)  # "stay": the n_earlystop rule may end the trial
        safety = np.zeros(ix.size, dtype=bool)
        ef_ix = ef[ix].copy()
        can_up = (lv < k - 1) & (lv + 1 < ef_ix)

        first_lv = lv == 0
        y0, n0 = y_tot[:, 0], n_tot[:, 0]
        extra0 = opt.extrasafe & (n0 >= 3) & (post[n0, y0] > opt.cutoff_eli - opt.offset)
        m = first_lv & (dc == _ESC)
        nd[m & can_up] += 1
        check |= m & ~can_up
        check |= first_lv & (dc == _STAY)
        safety |= first_lv & (dc == _ELIM)
        m = first_lv & (dc == _DE)
        if opt.extrasafe:
            safety |= m & extra0
        else:
            check |= m

        up_lv = ~first_lv
        plain_esc = up_lv & (dc == _ESC) & all_lower_esc
        nd[plain_esc & can_up] += 1
        check |= plain_esc & ~can_up
        plain_stay = up_lv & (dc == _STAY) & all_lower_ok
        check |= plain_stay
        plain_de = up_lv & (dc == _DE) & all_lower_ok
        plain_el = up_lv & (dc == _ELIM) & all_lower_ok
        nd[plain_de | plain_el] -= 1
        conflict = up_lv & ~(plain_esc | plain_stay | plain_de | plain_el)
        ef_ix = np.where((plain_el | (conflict & (dc == _ELIM))), np.minimum(ef_ix, lv), ef_ix)
        can_up = (lv < k - 1) & (lv + 1 < ef_ix)
        if conflict.any():
            bad = np.where(dc[:, None] == _ESC, dec != _ESC, dec >= _DE) & lower
            bstar = np.where(bad.any(axis=1), k - 1 - np.argmax(bad[:, ::-1], axis=1), 0)
            span = (levels[None, :] >= bstar[:, None]) & upto
            cy = np.cumsum(np.where(span, y_tot, 0), axis=1)
            cn = np.cumsum(np.where(span, n_tot, 0), axis=1)
            yp, npool = cy[rows, lv], cn[rows, lv]
            go_up = conflict & (yp <= b_e[np.maximum(npool, 1)])
            nd[go_up & can_up] += 1
            check |= go_up & ~can_up
            go_down = conflict & ~go_up & (yp >= b_d[np.maximum(npool, 1)])
            check |= conflict & ~go_up & ~go_down
            safe = span & (cy < b_d[np.maximum(cn, 1)])
            any_safe = safe.any(axis=1)
            hi_safe = k - 1 - np.argmax(safe[:, ::-1], axis=1)
            none = go_down & ~any_safe
            to_zero = none & (bstar == 0)
            stop0 = to_zero & ((y_tot[:, 0] >= b_el[np.maximum(n_tot[:, 0], 1)])
                               | (opt.extrasafe & (n_esc[ix, 0] >= 3)
                                  & (post[n_esc[ix, 0], y_esc[ix, 0]] > opt.cutoff_eli - opt.offset)))
            safety |= stop0
            nd = np.where(none & ~to_zero, bstar - 1, nd)
            nd = np.where(to_zero & ~stop0, 0, nd)
            some = go_down & any_safe
            check |= some & (hi_safe == lv)
            nd = np.where(some & (hi_safe != lv), hi_safe, nd)
        ef[ix] = ef_ix
        n_rec = n_tot[rows, nd]
        converged = check & ~safety & (n_rec >= opt.n_earlystop)
        reason[ix[safety]] = _STOP_SAFETY
        reason[ix[converged]] = _STOP_N_EARLYSTOP
        go_on = ~safety & ~converged
        cohort_no[ix[go_on]] += 1
        full = go_on & (cohort_no[ix] > max_n // cs)
        ended = ~go_on | full
        active[ix[ended]] = False
        nxt = ix[~ended]
        d[nxt] = nd[~ended]
        coh_cal[nxt] = np.inf
        coh_evt[nxt] = False
        coh_n[nxt] = 0
        if nxt.size:
            enrol_cohort(nxt)
    else:  # pragma: no cover - every trial ends once its cohorts are evaluated
        raise RuntimeError("BF-BOIN simulation did not end")
    end = coh_cal.max(axis=1)
    counted = bf_cal < end[:, None, None]
    n = n_esc + counted.sum(axis=2)
    y = y_esc + (counted & bf_evt).sum(axis=2)
    sel = select_mtd_batch(n, y, opt.target, opt.cutoff_eli, opt.extrasafe, opt.offset)
    sel[reason == _STOP_SAFETY] = -1
    cohorts = np.minimum(cohort_no, max_n // cs)
    return CalendarResult(n, y, sel, reason, cohorts, end, counted.sum(axis=2), entries)


def _backfill_step(ix, d, n_esc, y_esc, coh_cal, coh_evt, bf_cal, bf_evt, bf_n, first_resp, clock,
                   b_d, cap, rates, window, acc, rng, seen_backfill):
    """Backfill the arriving patient to the highest open cleared level below the current one
    (bfboin's conditions 1-4), or turn them away."""
    k = rates.size
    levels = np.arange(k)
    lv = d[ix]
    nb, yb = seen_backfill(ix)
    now = clock[ix]
    cur_done = coh_cal[ix] < now[:, None]
    n_cur = cur_done.sum(axis=1)
    y_cur = (cur_done & coh_evt[ix]).sum(axis=1)
    below = levels[None, :] < lv[:, None]
    n_tot = n_esc[ix] + nb
    y_tot = y_esc[ix] + yb
    # data of the level above each lower level (its backfill, or the current cohort's evaluated patients)
    nxt_is_cur = levels[None, :] + 1 == lv[:, None]
    shift_nb = np.concatenate([nb[:, 1:], np.zeros((ix.size, 1), dtype=nb.dtype)], axis=1)
    shift_yb = np.concatenate([yb[:, 1:], np.zeros((ix.size, 1), dtype=yb.dtype)], axis=1)
    shift_n = np.concatenate([n_esc[ix][:, 1:], np.zeros((ix.size, 1), dtype=np.int64)], axis=1)
    shift_y = np.concatenate([y_esc[ix][:, 1:], np.zeros((ix.size, 1), dtype=np.int64)], axis=1)
    n_plus = n_tot + np.where(nxt_is_cur, n_cur[:, None], shift_nb) + shift_n
    y_plus = y_tot + np.where(nxt_is_cur, y_cur[:, None], shift_yb) + shift_y
    cond1 = first_resp[ix] < now[:, None]
    cond2 = y_tot < b_d[np.maximum(n_tot, 1)]
    cond3 = y_plus < b_d[np.maximum(n_plus, 1)]
    cond4 = bf_n[ix] + n_esc[ix] <= cap
    safe = (cond2 | cond3) & below
    # a level that is not safe closes itself and every level above it
    unsafe_seen = np.cumsum(~safe & below, axis=1) > 0
    open_ = cond1 & cond4 & safe & ~unsafe_seen & below & (n_esc[ix] > 0)  # cleared = treated
    has = open_.any(axis=1)
    if not has.any():
        return ix[:0]
    tgt = k - 1 - np.argmax(open_[:, ::-1], axis=1)
    go = ix[has]
    lvl = tgt[has]
    t = weibull_dlt_times(rng, rates[lvl], window, acc.late_onset)
    pos = bf_n[go, lvl]
    bf_cal[go, lvl, pos] = clock[go] + np.minimum(t, window)
    bf_evt[go, lvl, pos] = np.isfinite(t)
    bf_n[go, lvl] += 1
    return go


def elimination_counts(target: float, cutoff: float, max_n: int) -> np.ndarray:
    """Elimination count per n (0..max_n) as R get.boundary (from 1 DLT); a large
    number where none eliminates."""
    out = np.full(max_n + 1, 10**6, dtype=np.int64)
    for n in range(max_n + 1):
        thr = elimination_threshold(n, target, cutoff)
        if thr is not None:
            out[n] = thr
    return out
