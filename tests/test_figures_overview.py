"""Unit tests of the Overview and Patients figure builders (pure functions of engine output)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factory import eligible_row

from eligibility.attribution import status_counts
from eligibility.evaluate import Evaluator
from eligibility.explain import explain_patient, near_misses
from eligibility.figures import SERIES_COLORS, STATUS_COLORS, STATUS_PATTERNS
from eligibility.figures.overview import (
    STATUS_TITLES,
    STATUSES,
    missingness_bars,
    status_by_group,
    status_label,
)
from eligibility.figures.patients import (
    OUTCOME_STYLE,
    near_miss_by_cause,
    outcome_label,
    patient_outcomes,
)
from eligibility.loader import validate_frame
from eligibility.quality import missingness
from eligibility.scenario import baseline, resolve


def _cohort(rows: list[dict]):
    frame = pd.DataFrame(rows)
    frame.insert(0, "patient_id", [f"P{i:03d}" for i in range(len(frame))])
    return validate_frame(frame, "test")


@pytest.fixture(scope="module")
def small():
    rows = [
        eligible_row("SSc"),
        eligible_row("SSc", hemoglobin_g_l=55),  # fails INC-2.hb / EXC-2.hb (near miss, 8 %)
        eligible_row("SSc", mrss=None),  # pending (SSC-INC-3 unknown)
        eligible_row("IIM"),
        eligible_row("IIM", age_years=70),  # fails INC-1
        eligible_row("AAV", egfr_ml_min_1_73m2=14.5),  # near miss on eGFR
        eligible_row("SjS"),
        eligible_row("APS", consent_signed=None),  # pending
        eligible_row("lupus"),  # not an indication: DX-1 fails
    ]
    cohort = _cohort(rows)
    evaluator = Evaluator.for_cohort(cohort)
    return cohort, evaluator, evaluator.evaluate()


def test_status_label_formats_count_and_share():
    assert status_label(1234, 16.78) == "1,234<br>16.8%"
    assert status_label(0, float("nan")) == "0<br>–"


def test_status_by_group_labels_equal_engine_counts(small):
    _, _, ev = small
    counts = status_counts(ev)
    groups = [g for g in counts.index if g != "All"]
    fig = status_by_group(counts, groups, title="Status")
    assert len(fig.data) == 3
    assert [t.name for t in fig.data] == [STATUS_TITLES[s] for s in STATUSES]
    for trace, status in zip(fig.data, STATUSES, strict=True):
        assert list(trace.y) == [int(counts.loc[g, status]) for g in groups]
        for g, text in zip(groups, trace.text, strict=True):
            n = int(counts.loc[g, status])
            pct = counts.loc[g, f"{status}_pct"]
            assert text == f"{n:,}<br>{pct:.1f}%"
        assert trace.marker.color == STATUS_COLORS[status]
        assert trace.marker.pattern.shape == STATUS_PATTERNS[status]
    # colour is not the only carrier: statuses also differ by pattern and carry text
    assert len({t.marker.pattern.shape for t in fig.data}) == 3
    assert fig.layout.yaxis.title.text == "Patients (n)"
    assert "Other diagnosis" in list(fig.data[0].x)  # the 'lupus' row is its own group
    assert fig.layout.title.text == "Status"


def test_status_by_group_single_group_and_totals(small):
    _, _, ev = small
    counts = status_counts(ev)
    fig = status_by_group(counts, ["SSc"])
    assert [list(t.x) for t in fig.data] == [["SSc"]] * 3
    total = sum(t.y[0] for t in fig.data)
    assert total == int(counts.loc["SSc", "screened"]) == 3
    assert [t.y[0] for t in fig.data] == [1, 1, 1]


def test_status_by_group_unknown_group_is_skipped(small):
    _, _, ev = small
    fig = status_by_group(status_counts(ev), ["SSc", "nope"])
    assert list(fig.data[0].x) == ["SSc"]


def test_missingness_bars_values_and_labels(small):
    cohort, _, _ = small
    miss = missingness(cohort)
    fig = missingness_bars(miss, top=5, title="Missing")
    (bar,) = fig.data
    expected = miss[miss["present"] & (miss["missing"] > 0)].sort_values(
        ["missing_pct", "field"], ascending=[False, True], kind="stable").head(5)
    assert sorted(bar.x, reverse=True) == pytest.approx(expected["missing_pct"].tolist())
    for x, text, label in zip(bar.x, bar.text, bar.y, strict=True):
        row = miss[miss["label"] == label].iloc[0]
        assert x == pytest.approx(row["missing_pct"])
        assert text == f"{row['missing_pct']:.1f}% ({row['missing']:,})"
    assert bar.marker.color == SERIES_COLORS[0]
    assert "%" in fig.layout.xaxis.title.text


def test_missingness_bars_empty():
    miss = pd.DataFrame({"field": ["a"], "label": ["A"], "present": [True], "missing": [0],
                         "missing_pct": [0.0], "criteria": [""]})
    fig = missingness_bars(miss)
    assert len(fig.data) == 1 and len(fig.data[0].x) == 0


def test_near_miss_by_cause_counts(small):
    cohort, _, ev = small
    near = near_misses(ev, cohort.frame, max_relative=0.1)
    assert set(near["patient_id"]) == {"P001", "P004", "P005"}  # P004: age 70, 7.7 % past 65
    fig = near_miss_by_cause(near, title="Near")
    (bar,) = fig.data
    got = dict(zip(bar.y, bar.x, strict=True))
    assert got == near.groupby("cause").size().to_dict()
    for text in bar.text:
        assert text.startswith("1 patient · median miss ")
    assert any("g/L" in t for t in bar.text) and any("mL/min" in t for t in bar.text)


def test_near_miss_by_cause_empty():
    fig = near_miss_by_cause(pd.DataFrame(columns=["patient_id", "cause", "distance", "unit"]))
    assert len(fig.data) == 1 and len(fig.data[0].x) == 0


def test_patient_outcomes_counts_units(small):
    _, evaluator, ev = small
    expl = explain_patient(evaluator, 1, baseline(), ev=ev)
    fig = patient_outcomes(expl)
    (bar,) = fig.data
    per_unit = expl.drop_duplicates("criterion")["outcome"].value_counts()
    got = dict(zip(bar.y, bar.x, strict=True))
    assert got == {outcome_label(o): int(n) for o, n in per_unit.items()}
    assert got[outcome_label("fail")] == 2  # INC-2.hb and EXC-2.hb
    assert list(bar.text) == [str(int(x)) for x in bar.x]
    colours = dict(zip(bar.y, bar.marker.color, strict=True))
    assert colours[outcome_label("fail")] == OUTCOME_STYLE["fail"][0] == STATUS_COLORS["ineligible"]


def test_patient_outcomes_with_switched_off_criterion(small):
    _, evaluator, _ = small
    scenario = resolve({"disabled": ["INC-7"]})
    expl = explain_patient(evaluator, 0, scenario)
    fig = patient_outcomes(expl)
    assert outcome_label("switched off") in list(fig.data[0].y)


def test_outcome_label_has_icon_and_words():
    for outcome, (_, icon, words) in OUTCOME_STYLE.items():
        assert outcome_label(outcome) == f"{icon} {words}"
    assert outcome_label("weird") == "• weird"


def test_figures_serialise(small):
    cohort, evaluator, ev = small
    figs = [
        status_by_group(status_counts(ev)),
        missingness_bars(missingness(cohort)),
        near_miss_by_cause(near_misses(ev, cohort.frame)),
        patient_outcomes(explain_patient(evaluator, 0, baseline(), ev=ev)),
    ]
    for fig in figs:
        assert isinstance(fig.to_json(), str)
        assert np.isfinite(fig.layout.height)
