"""Simulation: determinism, invariants, and agreement with exact enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eligibility.dose.exact import exact_operating_characteristics, three_plus_three_exact
from eligibility.dose.simulate import (
    OC_KEYS,
    duration_distribution,
    operating_characteristics,
    simulate,
    simulate_trials,
    trial_duration_days,
)

RATES = [0.05, 0.10, 0.20]


def test_keys_and_determinism():
    a = simulate("boin", RATES, n_trials=2000, seed=7)
    b = simulate("boin", RATES, n_trials=2000, seed=7)
    c = simulate("boin", RATES, n_trials=2000, seed=8)
    assert a == b
    assert a != c
    assert set(a) == set(OC_KEYS) | {"pct_stopped_early"}
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
        run = simulate_trials(design, [0.3, 0.45, 0.6], n_trials=3000, seed=5, max_n=20, cohort_size=3)
        full = ~run.stopped_early
        assert np.all(run.n_total <= 18)
        assert np.all(run.n_total[full] == 18)  # floor(20/3) cohorts of 3
        assert np.all(run.n_cohorts[full] == 6)
        assert np.all(run.selected[run.stopped_early] == -1)


def test_33_ignores_target_cohort_and_max_n():
    a = simulate("3+3", RATES, n_trials=1000, seed=2)
    b = simulate("3+3", RATES, n_trials=1000, seed=2, target=0.2, cohort_size=5, max_n=7)
    assert a == b


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
