"""Simulation: determinism, invariants, and agreement with exact enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eligibility.dose.designs import DesignOptions
from eligibility.dose.exact import exact_operating_characteristics, three_plus_three_exact
from eligibility.dose.registry import AccrualModel
from eligibility.dose.simulate import (
    OC_KEYS,
    STOP_SAFETY,
    duration_distribution,
    operating_characteristics,
    simulate,
    simulate_trials,
    trial_duration_days,
    true_mtd,
)

RATES = [0.05, 0.10, 0.20]


def test_keys_and_determinism():
    a = simulate("boin", RATES, n_trials=2000, seed=7)
    b = simulate("boin", RATES, n_trials=2000, seed=7)
    c = simulate("boin", RATES, n_trials=2000, seed=8)
    assert a == b
    assert a != c
    assert set(OC_KEYS) <= set(a)
    assert a["early_stop_pct"] == a["pct_stopped_early"]
    assert len(a["mtd_selection_pct"]) == 3
    assert sum(a["mtd_selection_pct"]) + a["no_mtd_pct"] == pytest.approx(100.0)


def test_percentiles_use_numpy_linear_default():
    run = simulate_trials("3+3", RATES, n_trials=3001, seed=3)
    oc = operating_characteristics(run)
    assert oc["n_total_p10"] == float(np.percentile(run.n_total, 10))
    assert oc["n_total_p90"] == float(np.percentile(run.n_total, 90))
    assert oc["mean_n_total"] == pytest.approx(sum(oc["mean_n_per_level"]))


def test_33_invariants():
    run = simulate_trials("3+3", [0.2, 0.3, 0.4, 0.5], n_trials=5000, seed=11)
    assert np.all(run.n_per_level % 3 == 0)
    assert np.all(run.n_per_level <= 6)
    assert np.all(run.n_total == 3 * run.n_cohorts)
    assert np.all(run.dlt_per_level <= run.n_per_level)
    # no MTD exactly when stopped early (lowest exceeded)
    assert np.array_equal(run.selected == -1, run.stopped_early)
    # a selected MTD was tried
    chosen = run.selected >= 0
    assert np.all(run.n_per_level[np.flatnonzero(chosen), run.selected[chosen]] > 0)


def test_interval_designs_stop_at_max_n():
    for design in ("boin", "i3+3"):
        run = simulate_trials(design, [0.3, 0.45, 0.6], n_trials=3000, seed=5, max_n=18, cohort_size=3)
        full = ~run.stopped_early
        assert np.all(run.n_total <= 18)
        assert np.all(run.n_total[full] == 18)
        assert np.all(run.n_cohorts[full] == 6)
        assert np.all(run.selected[run.stopped_early] == -1)


def test_max_n_not_a_multiple_of_the_cohort_size_is_refused():
    for design in ("boin", "i3+3"):
        with pytest.raises(ValueError, match=r"maximum sample size \(32\) is not a multiple of the cohort size \(3\); use 30 or 33"):
            simulate_trials(design, RATES, max_n=32, cohort_size=3, n_trials=10)
    assert simulate_trials("boin", RATES, max_n=33, cohort_size=3, n_trials=10).n_total.max() <= 33


def test_33_ignores_target_cohort_and_max_n():
    a = simulate("3+3", RATES, n_trials=1000, seed=2)
    b = simulate("3+3", RATES, n_trials=1000, seed=2, target=0.2, cohort_size=5, max_n=7)
    mtd_keys = {"true_mtd", "pct_correct", "pct_select_above_mtd", "mean_n_at_mtd", "mean_n_above_mtd",
                "pct_patients_at_mtd", "pct_patients_above_mtd", "overdose60_pct", "overdose80_pct"}
    assert {k: v for k, v in a.items() if k not in mtd_keys} == {k: v for k, v in b.items() if k not in mtd_keys}
    assert a["pct_correct"] is None  # 3+3 without a target defines no true MTD
    assert b["true_mtd"] == 2 and b["pct_correct"] == b["mtd_selection_pct"][2]


@pytest.mark.parametrize("bad", [
    dict(design="crm"), dict(true_dlt=[]), dict(true_dlt=[0.1, 1.5]), dict(n_trials=0),
    dict(design="boin", target=1.0), dict(design="boin", cohort_size=0),
    dict(design="boin", max_n=2, cohort_size=3),
])
def test_bad_inputs_raise(bad):
    kwargs = dict(design="3+3", true_dlt=RATES, n_trials=10)
    kwargs.update(bad)
    with pytest.raises(ValueError):
        simulate(kwargs.pop("design"), kwargs.pop("true_dlt"), **kwargs)


# ---------------------------------------------------------------- exact enumeration


def test_exact_all_zero_rates():
    ex = three_plus_three_exact([0.0, 0.0, 0.0, 0.0])
    assert ex["mtd_selection_pct"] == [0.0, 0.0, 0.0, 100.0]
    assert ex["no_mtd_pct"] == 0.0
    assert ex["mean_n_total"] == 12.0
    assert ex["n_total_distribution"] == {12: 1.0}
    assert ex["mean_dlt_per_level"] == [0.0] * 4


def test_exact_all_one_rates():
    ex = three_plus_three_exact([1.0, 1.0, 1.0])
    assert ex["no_mtd_pct"] == 100.0
    assert ex["mtd_selection_pct"] == [0.0, 0.0, 0.0]
    assert ex["mean_n_per_level"] == [3.0, 0.0, 0.0]
    assert ex["n_total_distribution"] == {3: 1.0}


def test_exact_single_level_closed_form():
    p = 0.2
    q = 1 - p
    p0, p1 = q**3, 3 * p * q**2
    ex = three_plus_three_exact([p])
    # MTD = the level if 0/3, or 1/3 then 0/3 more
    assert ex["mtd_selection_pct"][0] == pytest.approx(100 * (p0 + p1 * p0))
    assert ex["mean_n_total"] == pytest.approx(3 + 3 * p1)


def test_exact_probabilities_sum_to_one():
    for design in ("3+3", "boin", "i3+3"):
        ex = exact_operating_characteristics(design, [0.1, 0.3, 0.5], max_n=12)
        assert sum(ex["mtd_selection_pct"]) + ex["no_mtd_pct"] == pytest.approx(100.0)
        assert sum(ex["n_total_distribution"].values()) == pytest.approx(1.0)


def _agree(sim: dict, run, ex: dict, t_count: int):
    k = len(ex["mtd_selection_pct"])
    for i in range(k):
        p = ex["mtd_selection_pct"][i] / 100
        se = math.sqrt(max(p * (1 - p), 1e-12) / t_count) * 100
        assert abs(sim["mtd_selection_pct"][i] - ex["mtd_selection_pct"][i]) <= 4 * se + 1e-9, i
        sd = run.n_per_level[:, i].std()
        se_n = max(sd / math.sqrt(t_count), 1e-12)
        assert abs(sim["mean_n_per_level"][i] - ex["mean_n_per_level"][i]) <= 4 * se_n + 1e-9, i
        sd_y = run.dlt_per_level[:, i].std()
        assert abs(sim["mean_dlt_per_level"][i] - ex["mean_dlt_per_level"][i]) <= 4 * max(
            sd_y / math.sqrt(t_count), 1e-12
        ) + 1e-9
    p = ex["no_mtd_pct"] / 100
    se = math.sqrt(max(p * (1 - p), 1e-12) / t_count) * 100
    assert abs(sim["no_mtd_pct"] - ex["no_mtd_pct"]) <= 4 * se + 1e-9


@pytest.mark.parametrize(
    "rates", [[0.05, 0.10, 0.20], [0.10, 0.30, 0.50], [0.30, 0.40, 0.60, 0.80], [0.0, 0.5, 1.0]]
)
def test_33_simulation_matches_exact(rates):
    t_count = 10_000
    run = simulate_trials("3+3", rates, n_trials=t_count, seed=2024)
    _agree(operating_characteristics(run), run, three_plus_three_exact(rates), t_count)


@pytest.mark.parametrize("design", ["boin", "i3+3"])
@pytest.mark.parametrize("rates", [[0.05, 0.10, 0.20], [0.25, 0.45, 0.6]])
def test_interval_simulation_matches_exact(design, rates):
    t_count = 5000
    kw = dict(target=0.30, cohort_size=3, max_n=12)
    run = simulate_trials(design, rates, n_trials=t_count, seed=99, **kw)
    ex = exact_operating_characteristics(design, rates, **kw)
    _agree(operating_characteristics(run), run, ex, t_count)


def test_interval_cohort_size_one_matches_exact():
    kw = dict(target=0.25, cohort_size=1, max_n=7)
    run = simulate_trials("boin", [0.2, 0.4], n_trials=5000, seed=4, **kw)
    ex = exact_operating_characteristics("boin", [0.2, 0.4], **kw)
    _agree(operating_characteristics(run), run, ex, 5000)


# ---------------------------------------------------------------- duration


def test_duration_sequential_and_overlapping():
    assert trial_duration_days([1, 3], 10.0, 28).tolist() == [38.0, 114.0]
    # overlap: f + w + (c-1) max(f, w)
    assert trial_duration_days([1, 3], 10.0, 28, True).tolist() == [38.0, 94.0]
    assert trial_duration_days([3], 40.0, 28, True).tolist() == [148.0]


def test_duration_distribution_percentiles():
    counts = np.array([3, 4, 4, 5, 6])
    out = duration_distribution(counts, 10.0, 20)
    days = counts * 30.0
    assert out["mean_days"] == pytest.approx(days.mean())
    assert out["p10_days"] == pytest.approx(np.percentile(days, 10))
    assert out["p90_days"] == pytest.approx(np.percentile(days, 90))
    assert duration_distribution(counts, math.inf, 20)["mean_days"] == math.inf


# ---------------------------------------------------------------- options against exact enumeration


OPTION_CASES = [
    ("boin", dict(n_earlystop=9), [0.05, 0.25, 0.45]),
    ("boin", dict(extrasafe=True, offset=0.10), [0.30, 0.45, 0.6]),
    ("boin", dict(cutoff_eli=0.85, start_level=1), [0.20, 0.35, 0.5]),
    ("boin", dict(p1=0.12, p2=0.45), [0.10, 0.30, 0.50]),
    ("boin", dict(stay_1_of_3=True, target=0.25), [0.10, 0.25, 0.40]),
    ("i3+3", dict(eps1=0.10, eps2=0.02, n_earlystop=9), [0.10, 0.30, 0.50]),
    ("i3+3", dict(start_level=2, extrasafe=True), [0.25, 0.40, 0.55]),
]


@pytest.mark.parametrize("design,opts,rates", OPTION_CASES)
def test_interval_options_match_exact(design, opts, rates):
    t_count = 5000
    options = DesignOptions(**opts)
    run = simulate_trials(design, rates, n_trials=t_count, seed=31, max_n=15, options=options)
    ex = exact_operating_characteristics(design, rates, max_n=15, options=options)
    oc = operating_characteristics(run)
    _agree(oc, run, ex, t_count)
    for key in ("early_stop_pct", "n_earlystop_pct"):
        p = ex[key] / 100
        assert abs(oc[key] - ex[key]) <= 4 * 100 * math.sqrt(max(p * (1 - p), 1e-12) / t_count) + 1e-9, key


@pytest.mark.parametrize("opts", [dict(deescalation=False), dict(six_at_mtd=True),
                                  dict(deescalation=False, six_at_mtd=True), dict(start_level=1)])
@pytest.mark.parametrize("rates", [[0.05, 0.15, 0.30], [0.20, 0.40, 0.60]])
def test_33_variants_match_exact(opts, rates):
    options = DesignOptions(**opts)
    run = simulate_trials("3+3", rates, n_trials=10_000, seed=77, options=options)
    ex = exact_operating_characteristics("3+3", rates, options=options)
    _agree(operating_characteristics(run), run, ex, 10_000)
    if options.six_at_mtd:  # the declared MTD always has 6 patients
        chosen = run.selected >= 0
        assert np.all(run.n_per_level[np.flatnonzero(chosen), run.selected[chosen]] == 6)


def test_33_without_deescalation_changes_results_materially():
    rates = [0.05, 0.15, 0.30, 0.45]
    with_ = exact_operating_characteristics("3+3", rates)
    without = exact_operating_characteristics("3+3", rates, options=DesignOptions(deescalation=False))
    assert without["mean_n_total"] < with_["mean_n_total"]
    assert max(abs(a - b) for a, b in zip(with_["mtd_selection_pct"], without["mtd_selection_pct"], strict=True)) > 1


def test_n_earlystop_shortens_trials_and_is_reported():
    base = simulate("boin", [0.05, 0.10, 0.20], n_trials=3000, seed=4)
    early = simulate("boin", [0.05, 0.10, 0.20], n_trials=3000, seed=4, options=DesignOptions(n_earlystop=9))
    assert base["n_earlystop_pct"] == 0.0 and base["mean_n_total"] == 30.0
    assert early["n_earlystop_pct"] > 50 and early["mean_n_total"] < 25


# ---------------------------------------------------------------- MTD-based measures


def test_true_mtd_closest_to_target_ties_undefined():
    assert true_mtd([0.05, 0.10, 0.20], 0.30) == 2
    assert true_mtd([0.25, 0.41, 0.45], 0.25) == 0
    assert true_mtd([0.20, 0.40], 0.30) is None
    assert true_mtd([0.20, 0.40], None) is None


def test_mtd_measures_by_hand():
    run = simulate_trials("boin", [0.10, 0.30, 0.50], n_trials=4000, seed=12)
    oc = operating_characteristics(run)
    assert oc["true_mtd"] == 1
    assert oc["pct_correct"] == pytest.approx(100 * np.mean(run.selected == 1))
    assert oc["pct_select_above_mtd"] == pytest.approx(100 * np.mean(run.selected == 2))
    total = run.n_per_level.sum(axis=1).mean()
    assert oc["pct_patients_at_mtd"] == pytest.approx(100 * run.n_per_level[:, 1].mean() / total)
    assert oc["pct_patients_above_mtd"] == pytest.approx(100 * run.n_per_level[:, 2].mean() / total)
    over = run.n_per_level[:, 2]
    assert oc["overdose60_pct"] == pytest.approx(100 * np.mean(over > 0.6 * 30))
    assert oc["early_stop_pct"] == pytest.approx(100 * np.mean(run.stop_reason == STOP_SAFETY))
    assert oc["no_mtd_pct"] >= oc["early_stop_pct"]


# ---------------------------------------------------------------- TITE-BOIN and BF-BOIN


def _z(a: float, b: float, sd_a: float, sd_b: float, n: int) -> float:
    se = math.sqrt((sd_a**2 + sd_b**2) / n)
    return abs(a - b) / se if se else 0.0


def test_tite_boin_with_slow_accrual_is_boin():
    """When every window closes before the next patient arrives nobody is pending, so
    TITE-BOIN takes BOIN's decisions (Yuan et al. 2018); it agrees within 4 SE."""
    rates = [0.10, 0.25, 0.45]
    opt = DesignOptions(target=0.25)
    t = 6000
    boin = simulate_trials("boin", rates, options=opt, max_n=18, n_trials=t, seed=5)
    tite = simulate_trials("tite-boin", rates, options=opt, max_n=18, n_trials=t, seed=6,
                           accrual=AccrualModel(per_month=0.01, dlt_window_days=28))
    for i in range(3):
        pa, pb = np.mean(boin.selected == i), np.mean(tite.selected == i)
        assert _z(pa, pb, math.sqrt(pa * (1 - pa)), math.sqrt(pb * (1 - pb)), t) < 4
        a, b = boin.n_per_level[:, i], tite.n_per_level[:, i]
        assert _z(a.mean(), b.mean(), a.std(), b.std(), t) < 4


def test_tite_boin_fast_accrual_suspends_and_is_shorter_than_waiting():
    rates = [0.05, 0.10, 0.20]
    acc = AccrualModel(per_month=6, dlt_window_days=28)
    tite = simulate_trials("tite-boin", rates, n_trials=1000, seed=3, accrual=acc)
    bf0 = simulate_trials("bf-boin", rates, n_trials=1000, seed=3,
                          accrual=AccrualModel(per_month=6, dlt_window_days=28, response=(0.0, 0.0, 0.0)))
    assert tite.duration_days.mean() < bf0.duration_days.mean()  # no waiting for full windows
    assert np.all(tite.n_total <= 30) and np.all(tite.dlt_per_level <= tite.n_per_level)
    again = simulate_trials("tite-boin", rates, n_trials=1000, seed=3, accrual=acc)
    assert np.array_equal(again.duration_days, tite.duration_days)


def test_tite_boin_suspends_while_most_patients_are_pending():
    """Instant arrivals and no DLT. With no pending patient allowed, every cohort waits for
    the previous one's windows: 10 cohorts take 10 × 28 days (plus arrival gaps of minutes).
    With the 50% rule the trial waits only while more than half of the current level is
    pending: 28 days at each of DL1, DL2, DL3 before the first decision there, then cohorts
    run two windows at a time — between the two extremes."""
    acc = dict(per_month=100_000, dlt_window_days=28)
    strict = simulate_trials("tite-boin", [0.0, 0.0, 0.0], n_trials=200, seed=1,
                             accrual=AccrualModel(max_pending=0.0, **acc))
    assert np.all(strict.n_cohorts == 10)
    assert np.all(strict.duration_days >= 280.0) and np.all(strict.duration_days < 280.5)
    half = simulate_trials("tite-boin", [0.0, 0.0, 0.0], n_trials=200, seed=1, accrual=AccrualModel(**acc))
    assert np.all(half.duration_days >= 3 * 28 + 28) and np.all(half.duration_days < 280)
    # with max_pending = 1 nobody waits: the trial is as long as one window plus accrual
    fast = simulate_trials("tite-boin", [0.0, 0.0, 0.0], n_trials=200, seed=1,
                           accrual=AccrualModel(per_month=100_000, dlt_window_days=28, max_pending=1.0))
    assert np.all(fast.duration_days < 28.5)


def test_bf_boin_without_responses_is_boin():
    rates = [0.10, 0.25, 0.45]
    opt = DesignOptions(target=0.25, n_earlystop=9)
    t = 6000
    boin = simulate_trials("boin", rates, options=opt, n_trials=t, seed=8)
    bf = simulate_trials("bf-boin", rates, options=opt, n_trials=t, seed=9,
                         accrual=AccrualModel(per_month=3, response=(0.0, 0.0, 0.0)))
    assert bf.backfill_per_level.sum() == 0
    for i in range(3):
        a, b = boin.n_per_level[:, i], bf.n_per_level[:, i]
        assert _z(a.mean(), b.mean(), a.std(), b.std(), t) < 4
        pa, pb = np.mean(boin.selected == i), np.mean(bf.selected == i)
        assert _z(pa, pb, math.sqrt(pa * (1 - pa)), math.sqrt(pb * (1 - pb)), t) < 4


def test_bf_boin_backfills_only_cleared_lower_levels_within_the_cap():
    rates = [0.02, 0.05, 0.10, 0.25]
    acc = AccrualModel(per_month=8, response=None, n_cap=12)
    run = simulate_trials("bf-boin", rates, options=DesignOptions(target=0.25), n_trials=2000, seed=2, accrual=acc)
    bf = run.backfill_per_level
    assert bf.sum() > 0
    assert np.all(bf[:, -1] == 0)  # the top level is never below the current one
    assert np.all(bf <= acc.n_cap + 1)
    oc = operating_characteristics(run)
    assert {"duration_mean_days", "duration_p10_days", "duration_p90_days"} <= set(oc)
    assert oc["duration_p10_days"] <= oc["duration_mean_days"] <= oc["duration_p90_days"]


def test_calendar_designs_need_accrual():
    with pytest.raises(ValueError, match="calendar time"):
        simulate_trials("tite-boin", RATES, n_trials=10)
    with pytest.raises(ValueError, match="accrual must be more than 0"):
        simulate_trials("bf-boin", RATES, n_trials=10, accrual=AccrualModel(per_month=0))
