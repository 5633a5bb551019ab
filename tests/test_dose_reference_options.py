"""BOIN's options against R: tests/data/dose/boin_get_oc.json holds R BOIN 2.7.2 `get.oc`
figures (10,000 trials each) for the start level, n.earlystop, cutoff.eli, extrasafe with
its offset, p.saf/p.tox and cohorts of one, produced by tests/data/dose/boin_get_oc.R.

Each figure is compared with our own 10,000-trial run within 4 Monte Carlo standard
errors of the difference (see `_tolerance`) plus the 4th printed decimal: selection % per level and of stopping, mean patients and DLTs per level, mean
N and DLTs, and R's overdosing risks (share of trials with > 60 % / > 80 % of the
maximum sample size above the MTD).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import dose_reference as R
import numpy as np
import pytest

from eligibility.dose.designs import DesignOptions
from eligibility.dose.simulate import simulate_trials

DATA = json.loads((Path(__file__).parent / "data" / "dose" / "boin_get_oc.json").read_text(encoding="utf-8"))
TRIALS = 10_000
Z = 4.0
PRINTED = 0.00005

OPTION_NAMES = {"startdose": "start_level", "n.earlystop": "n_earlystop", "cutoff.eli": "cutoff_eli",
                "extrasafe": "extrasafe", "offset": "offset", "p.saf": "p1", "p.tox": "p2"}


def _options(case: dict) -> DesignOptions:
    kw = {OPTION_NAMES[k]: v for k, v in case["options"].items()}
    if "start_level" in kw:
        kw["start_level"] = int(kw["start_level"]) - 1  # R counts levels from 1
    return DesignOptions(target=case["target"], **kw)


def _run(case: dict, seed: int):
    return simulate_trials("boin", case["p_true"], options=_options(case), cohort_size=case["cohortsize"],
                           max_n=case["ncohort"] * case["cohortsize"], n_trials=TRIALS, seed=seed)


def _measures(run, case: dict) -> dict[str, list[tuple[float, float]]]:
    """Our value and per-trial SD of each of get.oc's figures."""
    share, mean = R.share_sd, R.mean_sd
    k = len(case["p_true"])
    out = {
        "selpercent": [share(run.selected == i) for i in range(k)],
        "npatients": [mean(run.n_per_level[:, i]) for i in range(k)],
        "ntox": [mean(run.dlt_per_level[:, i]) for i in range(k)],
        "totaln": [mean(run.n_per_level.sum(axis=1))],
        "totaltox": [mean(run.dlt_per_level.sum(axis=1))],
        "percentstop": [share(run.stopped_early)],
    }
    rates = np.asarray(case["p_true"])
    if np.any(np.isclose(rates, case["target"])):
        above = run.n_per_level[:, rates > case["target"] + 1e-12].sum(axis=1)
        npts = case["ncohort"] * case["cohortsize"]
        out["overdose60"] = [share(above > 0.6 * npts)]
        out["overdose80"] = [share(above > 0.8 * npts)]
    return out


SHARES = {"selpercent", "percentstop", "overdose60", "overdose80"}


def _tolerance(name: str, value: float, sd: float, ref: float, max_n: int) -> float:
    """4 SE of the difference. A share's SE uses the two runs' pooled rate, so that an
    event seen once in R's 10,000 trials and never in ours is not a disagreement; a mean's
    SE uses our run's spread, floored at three trials' worth of its range (max_n / T each)."""
    if name in SHARES:
        p = (value + ref) / 200.0
        se = 100.0 * math.sqrt(p * (1.0 - p) * 2.0 / TRIALS)
    else:
        se = max(sd * math.sqrt(2.0 / TRIALS), 3.0 * max_n / TRIALS / Z)
    return Z * se + PRINTED


def _disagreements(case: dict, seed: int) -> list[str]:
    ours = _measures(_run(case, seed), case)
    max_n = case["ncohort"] * case["cohortsize"]
    bad = []
    for name, values in ours.items():
        ref = case[name] if isinstance(case[name], list) else [case[name]]
        for i, ((value, sd), r) in enumerate(zip(values, ref, strict=True)):
            tol = _tolerance(name, value, sd, r, max_n)
            if abs(value - r) > tol:
                bad.append(f"{name}[{i}]: ours {value:.3f} vs R {r:.3f} (tolerance {tol:.3f})")
    return bad


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["id"] for c in DATA["cases"]])
def test_boin_options_agree_with_r_get_oc(case):
    assert not _disagreements(case, seed=2026), case["id"]


def test_the_comparison_can_fail():
    """A design option that changes the answer is caught: our run without the case's
    early-stopping option disagrees with R's run with it."""
    case = next(c for c in DATA["cases"] if c["id"] == "n_earlystop_9")
    assert _disagreements({**case, "options": {}}, seed=2026)
