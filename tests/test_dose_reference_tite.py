"""TITE-BOIN against R: tests/data/dose/titeboin_get_oc.json holds R TITEgBOIN 0.4.0
``get_oc_TITE_QuasiBOIN`` (TITE = TRUE) figures for six scenarios (MTD low, middle, at the
top, a toxic lowest level, faster accrual, and n.earlystop with extrasafe), produced by
tests/data/dose/titeboin_get_oc.R.

R's time unit is the DLT window (maxt = 1) and ``accrual`` is patients per window, so we
run a window of one month (``DAYS_PER_MONTH`` days) at ``accrual`` patients per month and
read durations in months. Each figure is compared with our own 10,000-trial run within
4 Monte Carlo standard errors of the difference plus the 4th printed decimal, as
tests/test_dose_reference_options.py: selection % per level and of no selection (R's
``percentstop`` is the share of trials selecting no dose), mean patients and DLTs per
level, mean N and DLTs, and the mean duration (SE from both runs' spreads; R prints its SD).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import dose_reference as R
import numpy as np
import pytest

from eligibility.dose.designs import DesignOptions
from eligibility.dose.registry import AccrualModel
from eligibility.dose.simulate import DAYS_PER_MONTH, STOP_N_EARLYSTOP, STOP_SAFETY, simulate_trials

DATA = json.loads((Path(__file__).parent / "data" / "dose" / "titeboin_get_oc.json").read_text(encoding="utf-8"))
SETTINGS = DATA["settings"]
R_TRIALS = DATA["ntrial"]
TRIALS = 10_000
Z = 4.0
PRINTED = 0.00005
SHARES = {"selpercent", "percentstop"}
OPTION_NAMES = {"n.earlystop": "n_earlystop", "extrasafe": "extrasafe", "offset": "offset"}


def _run(case: dict, seed: int, **accrual_changes):
    opt = DesignOptions(target=case["target"], cutoff_eli=SETTINGS["cutoff.eli"],
                        start_level=SETTINGS["startdose"] - 1,
                        **{OPTION_NAMES[k]: v for k, v in case["options"].items()})
    acc = AccrualModel(per_month=case["accrual"], dlt_window_days=SETTINGS["maxt"] * DAYS_PER_MONTH,
                       max_pending=SETTINGS["maxpen"], late_onset=SETTINGS["alpha1"])
    acc = AccrualModel(**{**acc.__dict__, **accrual_changes})
    cs = SETTINGS["cohortsize"]
    return simulate_trials("tite-boin", case["p_true"], options=opt, cohort_size=cs,
                           max_n=SETTINGS["ncohort"] * cs, n_trials=TRIALS, seed=seed, accrual=acc)


def _measures(run, k: int) -> dict[str, list[tuple[float, float]]]:
    """Our value and per-trial SD of each of get_oc_TITE_QuasiBOIN's figures."""
    share, mean = R.share_sd, R.mean_sd
    return {
        "selpercent": [share(run.selected == i) for i in range(k)],
        "percentstop": [share(run.selected < 0)],
        "npatients": [mean(run.n_per_level[:, i]) for i in range(k)],
        "ntox": [mean(run.dlt_per_level[:, i]) for i in range(k)],
        "totaln": [mean(run.n_total)],
        "totaltox": [mean(run.dlt_total)],
        "duration": [mean(run.duration_days / DAYS_PER_MONTH)],
    }


def _tolerance(name: str, value: float, sd: float, ref: float, ref_sd: float | None, max_n: int) -> float:
    """4 SE of the difference: pooled rate for a share; for a mean our spread (and R's,
    where printed), floored at three trials' worth of its range (max_n / T each)."""
    if name in SHARES:
        p = (value + ref) / 200.0
        se = 100.0 * math.sqrt(p * (1.0 - p) * (1.0 / TRIALS + 1.0 / R_TRIALS))
    elif ref_sd is not None:
        se = math.sqrt(sd**2 / TRIALS + ref_sd**2 / R_TRIALS)
    else:
        se = max(sd * math.sqrt(1.0 / TRIALS + 1.0 / R_TRIALS), 3.0 * max_n / TRIALS / Z)
    return Z * se + PRINTED


def comparison(case: dict, seed: int, **accrual_changes) -> list[dict]:
    ours = _measures(_run(case, seed, **accrual_changes), len(case["p_true"]))
    max_n = SETTINGS["ncohort"] * SETTINGS["cohortsize"]
    rows = []
    for name, values in ours.items():
        ref = case[name] if isinstance(case[name], list) else [case[name]]
        ref_sd = case["sdduration"] if name == "duration" else None
        for i, ((value, sd), r) in enumerate(zip(values, ref, strict=True)):
            tol = _tolerance(name, value, sd, r, ref_sd, max_n)
            rows.append({"figure": f"{name}[{i}]", "ours": value, "r": r, "tolerance": tol,
                         "ok": abs(value - r) <= tol})
    return rows


def _disagreements(case: dict, seed: int, **accrual_changes) -> list[str]:
    return [f"{r['figure']}: ours {r['ours']:.3f} vs R {r['r']:.3f} (tolerance {r['tolerance']:.3f})"
            for r in comparison(case, seed, **accrual_changes) if not r["ok"]]


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["id"] for c in DATA["cases"]])
def test_tite_boin_agrees_with_r_titegboin(case):
    assert not _disagreements(case, seed=2026), case["id"]


def test_the_comparison_can_fail():
    """A convention that changes the answer is caught: suspending accrual only when every
    patient at the level is pending (instead of more than half) shortens the trial and
    moves patients, and disagrees with R's run."""
    case = next(c for c in DATA["cases"] if c["id"] == "fast_accrual_mtd_at_4")
    bad = _disagreements(case, seed=2026, max_pending=1.0)
    assert any(b.startswith("duration") for b in bad)


def test_n_earlystop_ends_the_trial_on_a_lowest_level_hold_as_r():
    """R's next_TITE_QuasiBOIN counts de-escalation at the lowest level as "stay" even while
    its pending patients hold accrual, so n.earlystop ends the trial at once. One level,
    n_earlystop = 3, no pending-share suspension, early DLTs: the trial ends at the first
    decision after the cohort, by elimination only if all three DLTs are already seen.
    Waiting for the pending patients instead turns most of these trials into eliminations
    (about 16 % would end by n_earlystop)."""
    run = simulate_trials("tite-boin", [0.95], options=DesignOptions(target=0.3, n_earlystop=3), max_n=9,
                          n_trials=2000, seed=4,
                          accrual=AccrualModel(per_month=4, dlt_window_days=28, max_pending=1.0, late_onset=0.1))
    assert np.all(run.n_total == 3)
    assert np.mean(run.stop_reason == STOP_N_EARLYSTOP) > 0.45
    assert np.all(np.isin(run.stop_reason, [STOP_N_EARLYSTOP, STOP_SAFETY]))
