"""Reference figures for the dose simulator (tests/data/dose/) and how we compare to them.

Each published figure is compared with our seeded 10,000-trial run within 4 Monte Carlo
standard errors, combined as sqrt(SE_ours² + SE_reference²) plus half the last printed
digit (the table rounds to 0.1). The reference's SE uses our run's spread and the
reference's number of simulated trials (``REFERENCE_TRIALS``, an assumption when the
source does not print it — see the data file's "inferred")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from eligibility.dose.designs import DesignOptions
from eligibility.dose.registry import AccrualModel
from eligibility.dose.simulate import DAYS_PER_MONTH, simulate_trials

DATA = Path(__file__).parent / "data" / "dose"
TABLE4 = DATA / "zhao2024_table4.json"
REFERENCE_TRIALS = 10_000
TRIALS = 10_000
Z = 4.0
ROUNDING = 0.05


def load_table4() -> dict:
    return json.loads(TABLE4.read_text(encoding="utf-8"))


def table4_run(method: str, scenario: dict, settings: dict, seed: int = 2024):
    """Our run of Table 4's ``method`` ("BOIN" or "BF-BOIN") in one scenario.

    BOIN runs through the calendar engine with zero response rates, so nothing is ever
    backfilled and the duration comes out too (bfboin's own BOIN comparison)."""
    options = DesignOptions(
        target=settings["target"], n_earlystop=settings["n_earlystop"], cutoff_eli=settings["cutoff_eli"],
        extrasafe=settings["extrasafe"], stay_1_of_3=True,
    )
    response = scenario["response"] if method == "BF-BOIN" else [0.0] * len(scenario["dlt"])
    accrual = AccrualModel(
        per_month=settings["accrual_per_month"], dlt_window_days=settings["dlt_window_months"] * DAYS_PER_MONTH,
        arrivals=settings["accrual"], n_cap=settings["backfill_cap_n"], response=tuple(response),
        late_onset=settings["late_onset_share"],
    )
    return simulate_trials("bf-boin", scenario["dlt"], options=options, cohort_size=settings["cohort_size"],
                           max_n=settings["max_n"], n_trials=TRIALS, seed=seed, accrual=accrual)


def table4_measures(run, target: float) -> dict[str, tuple[float, float]]:
    """Our value and its per-trial standard deviation for each Table 4 column."""
    rates = np.asarray(run.true_dlt)
    mtd = int(np.flatnonzero(np.isclose(rates, target))[0])
    sel = run.selected
    out: dict[str, tuple[float, float]] = {}
    for name, hit in (("correct_selection_pct", sel == mtd), ("overdose_selection_pct", sel > mtd)):
        p = hit.mean()
        out[name] = (100.0 * p, 100.0 * math.sqrt(p * (1 - p)))
    per = run.n_per_level
    for name, cols in (("patients_below_mtd_n", slice(0, mtd)), ("patients_at_mtd_n", slice(mtd, mtd + 1)),
                       ("patients_above_mtd_n", slice(mtd + 1, None)), ("mean_n_total", slice(None))):
        v = per[:, cols].sum(axis=1)
        out[name] = (float(v.mean()), float(v.std(ddof=1)))
    months = run.duration_days / DAYS_PER_MONTH
    out["mean_duration_months"] = (float(months.mean()), float(months.std(ddof=1)))
    return out


def compare(ours: dict[str, tuple[float, float]], reference: list, columns: list[str]) -> list[dict]:
    rows = []
    for col, ref in zip(columns, reference, strict=True):
        if ref is None:
            continue
        value, sd = ours[col]
        se = sd * math.sqrt(1.0 / TRIALS + 1.0 / REFERENCE_TRIALS)
        tol = Z * se + ROUNDING
        rows.append({"column": col, "ours": value, "reference": ref, "tolerance": tol,
                     "z": (value - ref) / se if se else 0.0, "ok": abs(value - ref) <= tol})
    return rows


def share_sd(hit) -> tuple[float, float]:
    """A percentage of trials and its per-trial standard deviation."""
    p = float(np.mean(hit))
    return 100.0 * p, 100.0 * math.sqrt(p * (1.0 - p))


def mean_sd(values) -> tuple[float, float]:
    """A mean over trials and its per-trial standard deviation."""
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1))
