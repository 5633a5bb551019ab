"""Agreement with published operating characteristics (tests/data/dose/, with their sources).

Zhao, Yuan, Korn & Freidlin (2024, Clin Cancer Res) Table 4 gives BOIN and BF-BOIN
operating characteristics for 12 scenarios. BOIN agrees within 4 Monte Carlo SE on every
printed figure (one cell that does not add up in the source is listed in the data file);
BF-BOIN agrees on selection and over-dosing, and its patient counts and durations are
checked separately: our implementation follows R bfboin 0.1.1 and falls short of the
paper in the scenarios with most backfilling (see ``test_bf_boin_backfill_counts_*``).
"""

from __future__ import annotations

from functools import cache

import dose_reference as R
import pytest

TABLE = R.load_table4()
SETTINGS = TABLE["settings"]
COLUMNS = TABLE["columns"]
SKIP = {(c["scenario"], c["method"], c["column"]) for c in TABLE["known_inconsistent"]}
BOIN_SCENARIOS = ["1", "2", "3", "4", "5"]  # 6-12 repeat these toxicity rates
ALL = list(TABLE["scenarios"])
SELECTION = ("correct_selection_pct", "overdose_selection_pct")


@cache
def _rows(method: str, scenario: str) -> list[dict]:
    sc = TABLE["scenarios"][scenario]
    run = R.table4_run(method, sc, SETTINGS)
    return [r for r in R.compare(R.table4_measures(run, SETTINGS["target"]), sc[method], COLUMNS)
            if (scenario, method, r["column"]) not in SKIP]


def _fmt(bad: list[dict]) -> str:
    return "; ".join(f"{r['column']}: ours {r['ours']:.2f} vs {r['reference']} (z = {r['z']:.1f})" for r in bad)


@pytest.mark.parametrize("scenario", BOIN_SCENARIOS)
def test_boin_matches_table4(scenario):
    bad = [r for r in _rows("BOIN", scenario) if not r["ok"]]
    assert not bad, _fmt(bad)


@pytest.mark.parametrize("scenario", ALL)
def test_bf_boin_selection_matches_table4(scenario):
    bad = [r for r in _rows("BF-BOIN", scenario) if r["column"] in SELECTION and not r["ok"]]
    assert not bad, _fmt(bad)


@pytest.mark.parametrize("scenario", ["1", "2", "6"])
def test_bf_boin_backfill_counts_match_where_backfill_is_light(scenario):
    bad = [r for r in _rows("BF-BOIN", scenario) if not r["ok"]]
    assert not bad, _fmt(bad)


@pytest.mark.parametrize("scenario", ["5", "9", "12"])
def test_bf_boin_backfill_counts_known_shortfall_where_backfill_is_heavy(scenario):
    """Known disagreement, kept visible: with the MTD at the top level most patients are
    backfilled, and we (as bfboin 0.1.1) count ~1.5-1.8 fewer of them than the paper
    and end ~0.4 months earlier. If this starts agreeing, the test says so."""
    rows = {r["column"]: r for r in _rows("BF-BOIN", scenario)}
    assert rows["mean_n_total"]["ours"] < rows["mean_n_total"]["reference"] - rows["mean_n_total"]["tolerance"]
    assert rows["patients_at_mtd_n"]["ok"]
