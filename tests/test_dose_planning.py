"""Planning: settings validation, cohort assignment, screening need, rate and timeline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from eligibility.dose.planning import (
    assign_cohorts,
    eligible_fractions,
    expected_plan,
    fill_days,
    largest_remainder,
    make_plan,
    order_patients,
    patients_needed_per_level,
    project_timeline,
    run_simulation,
    sample_size_summary,
    screening_need,
    screening_need_table,
    screening_rate_per_month,
)
from eligibility.dose.settings import DoseLevel, DoseSettings
from eligibility.dose.simulate import DAYS_PER_MONTH, operating_characteristics

# ---------------------------------------------------------------- settings


def test_settings_defaults_follow_spec():
    s = DoseSettings()
    assert s.labels == ["DL1", "DL2", "DL3"]
    assert [lv.dose for lv in s.levels] == [1.0, 2.0, 3.0]
    assert s.design == "3+3"
    assert s.pooling == "pooled"
    assert s.cohort_size == 3
    assert s.dlt_window_days == 28
    assert s.true_dlt == [0.05, 0.10, 0.20]
    assert s.target == 0.30
    assert s.screening_rate_per_month is None
    assert s.effective_max_n == 18
    assert s.start_level == 1 and s.n_earlystop == 100 and s.cutoff_eli == 0.95 and not s.extrasafe


def test_three_plus_three_fixes_cohort_size():
    s = DoseSettings(cohort_size=5, max_n=40)
    assert s.effective_cohort_size == 3
    assert s.effective_max_n == 18
    b = DoseSettings(design="BOIN", cohort_size=5, max_n=40)
    assert b.design == "boin" and b.effective_cohort_size == 5 and b.max_cohorts == 8


def test_settings_refuse_max_n_not_a_multiple_and_carry_the_options():
    with pytest.raises(ValidationError, match=r"maximum sample size \(32\) is not a multiple of the cohort size \(3\)"):
        DoseSettings(design="boin", max_n=32)
    s = DoseSettings(design="i3+3", start_level=2, eps1=0.1, n_earlystop=12, extrasafe=True, offset=0.1)
    opt = s.design_options()
    assert (opt.start_level, opt.eps1, opt.n_earlystop, opt.extrasafe, opt.offset) == (1, 0.1, 12, True, 0.1)
    with pytest.raises(ValidationError, match="start level"):
        DoseSettings(start_level=4)
    with pytest.raises(ValidationError, match="p1 and p2"):
        DoseSettings(design="boin", p1=0.5)
    t = DoseSettings(design="tite-boin")
    assert t.is_calendar and t.accrual_model(2.0).dlt_window_days == 28


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(levels=[], true_dlt=[]), "between 1 and 8 dose levels"),
        (dict(levels=[DoseLevel(label=f"DL{i}", dose=i) for i in range(1, 10)], true_dlt=[0.1] * 9),
         "between 1 and 8 dose levels"),
        (dict(true_dlt=[0.05, 1.2, 0.2]), r"level 2 must be within \[0, 1\]"),
        (dict(true_dlt=[-0.1, 0.1, 0.2]), r"level 1 must be within \[0, 1\]"),
        (dict(true_dlt=[0.1, 0.2]), "one true DLT rate per dose level"),
        (dict(cohort_size=0), "cohort size must be at least 1"),
        (dict(dlt_window_days=-1), "DLT window"),
        (dict(target=0.0), "strictly between 0 and 1"),
        (dict(target=1.0), "strictly between 0 and 1"),
        (dict(design="crm"), "design must be one of"),
        (dict(design="boin", cohort_size=4, max_n=3), "at least the cohort size"),
        (dict(screening_rate_per_month=0.0), "more than 0 patients per month"),
        (dict(levels=[DoseLevel(label="A", dose=1), DoseLevel(label="A", dose=2), DoseLevel(label="B", dose=3)]),
         "unique"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        DoseSettings(**kwargs)


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError):
        DoseSettings(cohort_size=0)
    with pytest.raises(ValueError, match="dose must be a positive"):
        DoseLevel(label="DL1", dose=0)


# ---------------------------------------------------------------- ordering & assignment


def frame(rows):
    return pd.DataFrame(rows, columns=["patient_id", "disease", "screening_date", "status"])


def test_order_dates_then_id_then_input_order_missing_last():
    f = frame(
        [
            ("B", "SSc", "2024-03-01", "eligible"),
            ("A", "SSc", "2024-03-01", "eligible"),
            ("Z", "SSc", None, "eligible"),
            ("C", "SSc", "2024-01-15", "eligible"),
            ("A", "IIM", "2024-03-01", "eligible"),  # same id & date: input order
            ("Y", "SSc", "not a date", "eligible"),
        ]
    )
    out = order_patients(f)
    assert list(zip(out.patient_id, out.disease, strict=True)) == [
        ("C", "SSc"), ("A", "SSc"), ("A", "IIM"), ("B", "SSc"), ("Y", "SSc"), ("Z", "SSc"),
    ]


def test_assign_pooled_fills_levels_in_order_and_overflows():
    rows = [(f"P{i:02d}", "SSc" if i % 2 else "IIM", f"2024-01-{i:02d}", "eligible") for i in range(1, 21)]
    s = DoseSettings()
    res = assign_cohorts(frame(rows), s, make_plan(s, [2, 2, 2]))
    t = res.table.set_index("patient_id")
    assert t.loc["P01", "dose_level"] == "DL1" and t.loc["P01", "cohort"] == 1
    assert t.loc["P03", "cohort"] == 1 and t.loc["P04", "cohort"] == 2
    assert t.loc["P06", "dose_level"] == "DL1" and t.loc["P07", "dose_level"] == "DL2"
    assert t.loc["P13", "dose_level"] == "DL3" and t.loc["P18", "escalation_cohort"] == 6
    assert t.loc["P19", "beyond_capacity"] and pd.isna(t.loc["P19", "dose_level"])
    assert res.counts.loc["DL1"].to_dict() == {"SSc": 3, "IIM": 3, "total": 6}
    assert res.counts.loc["beyond capacity", "total"] == 2
    assert list(res.counts.columns) == ["SSc", "IIM", "total"]


def test_assign_pending_shown_apart_and_never_displaces_eligible():
    f = frame(
        [
            ("E1", "SSc", "2024-02-01", "eligible"),
            ("PEND", "SSc", "2024-01-01", "pending"),  # screened first, still pending
            ("E2", "AAV", "2024-02-02", "eligible"),
            ("E3", "SjS", "2024-02-03", "eligible"),
            ("E4", "APS", "2024-02-04", "eligible"),
            ("X", "APS", "2023-12-01", "ineligible"),
        ]
    )
    res = assign_cohorts(f, DoseSettings(), make_plan(DoseSettings(), [2, 2, 2]))
    t = res.table.set_index("patient_id")
    assert "X" not in t.index
    assert t.loc["E1", "order"] == 1 and t.loc["E1", "cohort"] == 1
    assert t.loc["E4", "cohort"] == 2
    assert t.loc["PEND", "kind"] == "pending"
    assert t.loc["PEND", "order"] == 1
    assert t.loc["PEND", "dose_level"] == "DL1" and t.loc["PEND", "cohort"] == 2  # slot after E4
    assert res.counts.loc["DL1", "total"] == 4
    assert res.counts.loc["DL1", "SSc"] == 1  # E1 only; PEND is counted apart
    assert res.pending_counts.loc["DL1", "total"] == 1
    assert list(res.table.kind) == ["eligible"] * 4 + ["pending"]


def test_assign_per_disease_runs_separate_escalations():
    rows = [(f"S{i}", "SSc", f"2024-01-{i:02d}", "eligible") for i in range(1, 5)]
    rows += [(f"M{i}", "IIM", f"2024-01-{i:02d}", "eligible") for i in range(1, 3)]
    s = DoseSettings(pooling="per-disease")
    res = assign_cohorts(frame(rows), s, make_plan(s, [2, 2, 2]))
    t = res.table.set_index("patient_id")
    assert t.loc["M1", "escalation"] == "IIM" and t.loc["M1", "cohort"] == 1
    assert t.loc["S4", "escalation"] == "SSc" and t.loc["S4", "cohort"] == 2
    assert res.counts.loc["DL1"].to_dict() == {"SSc": 4, "IIM": 2, "total": 6}


def test_assign_follows_the_plan_and_its_path_order():
    rows = [(f"P{i:02d}", "SSc", f"2024-01-{i:02d}", "eligible") for i in range(1, 12)]
    s = DoseSettings(design="boin", cohort_size=2, max_n=10)
    res = assign_cohorts(frame(rows), s, make_plan(s, [1, 1, 2]))
    assert res.counts["total"].to_dict() == {"DL1": 2, "DL2": 2, "DL3": 4, "beyond capacity": 3}
    # a start at DL2: DL2, DL3 first, then DL1 (reached by de-escalation)
    s2 = s.model_copy(update={"start_level": 2})
    t = assign_cohorts(frame(rows), s2, make_plan(s2, [1, 1, 2])).table.set_index("patient_id")
    assert t.loc["P01", "dose_level"] == "DL2" and t.loc["P03", "dose_level"] == "DL3"
    assert t.loc["P07", "dose_level"] == "DL1" and t.loc["P07", "escalation_cohort"] == 4


def test_largest_remainder_rounding():
    assert largest_remainder([3.4, 3.8, 4.4], 4) == [1, 1, 2]
    assert largest_remainder([0.0, 0.0], 0) == [0, 0]
    assert sum(largest_remainder([1.1, 2.2, 6.7], 3)) == 3
    with pytest.raises(ValueError):
        largest_remainder([-1.0], 1)


@pytest.mark.parametrize("design,kw", [("3+3", {}), ("boin", {}), ("boin", {"max_n": 30, "n_earlystop": 9}),
                                       ("i3+3", {"cohort_size": 2, "max_n": 20, "start_level": 2})])
def test_one_story_assignment_timeline_and_operating_characteristics_agree(design, kw):
    """The issue's contradiction (assignment 9 at DL3, timeline 24, OC 20.5) cannot recur:
    the assignment's slots, the timeline's cohorts and the OC means per level are one plan."""
    s = DoseSettings(design=design, n_trials=4000, **kw)
    run = run_simulation(s)
    oc = operating_characteristics(run)
    plan = expected_plan(s, run)
    cs = s.effective_cohort_size
    rows = [(f"P{i:03d}", "SSc", "2024-01-01", "eligible") for i in range(200)]
    res = assign_cohorts(frame(rows), s, plan)
    tl = project_timeline(s, 0.5, 10.0, "2024-01-01", plan, sim_result=run)
    for i, label in enumerate(s.labels):
        slots = int(res.counts.loc[label, "total"])
        cohorts = int((tl.cohorts["dose_level"] == label).sum())
        assert slots == cohorts * cs == plan.patients_per_level[i]
        # within one cohort of the simulated mean at every level
        assert abs(slots - oc["mean_n_per_level"][i]) <= cs
    assert abs(len(plan.order) * cs - oc["mean_n_total"]) <= cs / 2 + 1e-9
    assert tl.cohorts["dose_level"].iloc[0] == s.labels[s.start_level - 1]


def test_assign_rejects_bad_input():
    plan = make_plan(DoseSettings(), [1, 1, 1])
    with pytest.raises(ValueError, match="lacks column"):
        assign_cohorts(pd.DataFrame({"patient_id": ["a"]}), DoseSettings(), plan)
    with pytest.raises(ValueError, match="status must be one of"):
        assign_cohorts(frame([("a", "SSc", "2024-01-01", "maybe")]), DoseSettings(), plan)
    with pytest.raises(ValueError, match="other dose levels"):
        assign_cohorts(frame([]), DoseSettings(levels=[DoseLevel(label="A", dose=1)], true_dlt=[0.1]), plan)


def test_assign_without_a_plan_uses_the_settings_own_expected_path():
    rows = [(f"P{i:02d}", "SSc", "2024-01-01", "eligible") for i in range(1, 41)]
    s = DoseSettings(design="boin", n_trials=2000)
    res = assign_cohorts(frame(rows), s)
    plan = expected_plan(s, run_simulation(s))
    assert [int(res.counts.loc[lb, "total"]) for lb in s.labels] == list(plan.patients_per_level)


def test_assign_empty_frame():
    res = assign_cohorts(frame([]), DoseSettings(), make_plan(DoseSettings(), [2, 2, 2]))
    assert res.table.empty
    assert res.counts["total"].tolist() == [0, 0, 0]


# ---------------------------------------------------------------- sample size & screening need


def test_sample_size_33():
    s = DoseSettings(levels=[DoseLevel(label=f"DL{i}", dose=i) for i in range(1, 5)], true_dlt=[0.1] * 4)
    assert sample_size_summary(s) == {"minimum": 3, "all_escalate": 12, "maximum": 24}
    run = run_simulation(s.model_copy(update={"n_trials": 500}))
    out = sample_size_summary(s, run)
    assert 3 <= out["p10"] <= out["expected"] <= out["p90"] <= 24


def test_patients_needed():
    s = DoseSettings()
    assert patients_needed_per_level(s, "maximum") == {"DL1": 6.0, "DL2": 6.0, "DL3": 6.0}
    assert patients_needed_per_level(s, "plan", plan=make_plan(s, [1, 2, 1])) == {"DL1": 3.0, "DL2": 6.0, "DL3": 3.0}
    b = DoseSettings(design="boin", max_n=12)
    with pytest.raises(ValueError, match="3\\+3 only"):
        patients_needed_per_level(b, "maximum")
    with pytest.raises(ValueError, match="needs a simulation run"):
        patients_needed_per_level(s, "expected")
    with pytest.raises(ValueError, match="needs the cohort plan"):
        patients_needed_per_level(s, "plan")


def test_sample_size_interval_minimum_and_options():
    b = DoseSettings(design="boin")  # DL1 eliminated at 3/3 → 3 patients
    assert sample_size_summary(b)["minimum"] == 3
    assert sample_size_summary(b.model_copy(update={"start_level": 3}))["minimum"] == 9  # two cohorts down first
    assert sample_size_summary(DoseSettings(design="boin", n_earlystop=2, cohort_size=1, max_n=20))["minimum"] <= 2
    s3 = DoseSettings(six_at_mtd=True, start_level=2)
    assert sample_size_summary(s3) == {"minimum": 6, "all_escalate": 9, "maximum": 18}


@pytest.mark.parametrize(
    "needed,fraction,expected",
    [(3, 0.3, 10), (6, 0.25, 24), (6, 0.4, 15), (7, 0.4, 18), (1, 1.0, 1), (0, 0.0, 0),
     (18, 0.3, 60), (3, 0.0, None), (4.2, 0.5, 9)],
)
def test_screening_need(needed, fraction, expected):
    assert screening_need(needed, fraction) == expected


def test_screening_need_rejects_bad_fraction():
    with pytest.raises(ValueError, match="eligible fraction"):
        screening_need(3, 1.5)


def test_screening_need_table_and_fractions():
    f = frame(
        [("a", "SSc", None, "eligible"), ("b", "SSc", None, "pending"), ("c", "IIM", None, "ineligible"),
         ("d", "SSc", None, "ineligible")]
    )
    fr = eligible_fractions(f)
    assert fr == {"SSc": pytest.approx(1 / 3), "IIM": 0.0, "pooled": 0.25}
    tab = screening_need_table({"DL1": 6, "DL2": 3}, fr)
    idx = tab.set_index(["group", "dose_level"])
    assert idx.loc[("SSc", "DL1"), "to_screen"] == 18
    assert idx.loc[("pooled", "DL2"), "to_screen"] == 12
    assert idx.loc[("pooled", "all levels"), "to_screen"] == 36
    assert pd.isna(idx.loc[("IIM", "DL1"), "to_screen"]) and not idx.loc[("IIM", "DL1"), "attainable"]


# ---------------------------------------------------------------- rate & timeline


def test_screening_rate_per_month():
    dates = ["2024-01-01", "2024-01-16", None, "2024-03-01", "garbage"]
    span = 60  # days, Jan 1 → Mar 1 (leap year)
    assert screening_rate_per_month(dates) == pytest.approx(2 / (span / DAYS_PER_MONTH))
    assert screening_rate_per_month(["2024-01-01"]) is None
    assert screening_rate_per_month(["2024-01-01", "2024-01-01"]) is None


def test_fill_days():
    assert fill_days(3, 10, 0.3) == pytest.approx(DAYS_PER_MONTH)  # 3 eligible / month
    assert fill_days(3, 10, 0.0) == math.inf


def test_timeline_hand_computed():
    s = DoseSettings()  # 3+3, 3 levels, 28-day window
    tl = project_timeline(s, 0.3, 10.0, "2024-01-01", make_plan(s, [1, 1, 1]))
    f = DAYS_PER_MONTH  # 30.4375 days per cohort of 3
    assert tl.fill_days == pytest.approx(f)
    c = tl.cohorts
    assert c["dose_level"].tolist() == ["DL1", "DL2", "DL3"]
    assert c["open_day"].tolist() == pytest.approx([0, f + 28, 2 * (f + 28)])
    assert c["filled_day"].tolist() == pytest.approx([f, 2 * f + 28, 3 * f + 56])
    assert c["window_end_day"].tolist() == pytest.approx([f + 28, 2 * (f + 28), 3 * (f + 28)])
    assert tl.end_plan_day == pytest.approx(175.3125)
    assert tl.end_plan_date == pd.Timestamp("2024-06-25")  # day 176
    assert c.loc[0, "filled_date"] == pd.Timestamp("2024-02-01")  # day 30.44 → 31
    assert tl.interval is None and tl.attainable


def test_timeline_interval_from_simulated_cohorts():
    s = DoseSettings(dlt_window_days=20)
    tl = project_timeline(s, 0.5, 6.0, "2024-01-01", make_plan(s, [1, 1, 1]), np.array([3, 3, 4, 5, 6]))
    per = 3 / 3 * DAYS_PER_MONTH + 20  # 3 eligible per month → fill 1 month
    assert tl.interval["p10_day"] == pytest.approx(np.percentile(np.array([3, 3, 4, 5, 6]) * per, 10))
    assert tl.interval["p90_day"] == pytest.approx(np.percentile(np.array([3, 3, 4, 5, 6]) * per, 90))
    assert tl.interval["mean_date"] >= tl.end_plan_date


def test_timeline_overlapping_screening():
    s = DoseSettings()
    tl = project_timeline(s, 1.0, 30.4375, "2024-01-01", make_plan(s, [1, 1, 1]),
                          screening_during_window=True)  # fill 3 days
    assert tl.end_plan_day == pytest.approx(3 + 28 * 3)
    assert tl.cohorts["filled_day"].tolist() == pytest.approx([3, 31, 59])


def test_timeline_rate_fallback_and_unattainable():
    s = DoseSettings(screening_rate_per_month=5.0)
    plan = make_plan(s, [1, 1, 1])
    assert project_timeline(s, 0.6, None, "2024-01-01", plan).fill_days == pytest.approx(DAYS_PER_MONTH)
    tl = project_timeline(s, 0.0, None, "2024-01-01", plan)
    assert not tl.attainable and tl.end_plan_date is None
    with pytest.raises(ValueError, match="screening rate is unknown"):
        project_timeline(DoseSettings(), 0.5, None, "2024-01-01", plan)


def test_timeline_draws_the_plan():
    s = DoseSettings(design="boin", max_n=15)
    tl = project_timeline(s, 1.0, 30.4375, "2024-01-01", make_plan(s, [1, 1, 3]))
    assert tl.cohorts["dose_level"].tolist() == ["DL1", "DL2", "DL3", "DL3", "DL3"]
    assert tl.cohorts["cohort_in_level"].tolist() == [1, 1, 1, 2, 3]


def test_tite_timeline_overlaps_and_uses_the_calendar_durations():
    s = DoseSettings(design="tite-boin", n_trials=500)
    run = run_simulation(s, eligible_per_month=3.0)
    tl = project_timeline(s, 0.5, 6.0, "2024-01-01", expected_plan(s, run), sim_result=run)
    c = tl.cohorts
    assert tl.overlapping
    # each cohort opens / fills on the simulated mean entry day of its first / last patient
    ent = run.entry_days
    for i, row in c.iterrows():
        first, last = ent[:, 3 * i], ent[:, 3 * i + 2]
        assert row["open_day"] == pytest.approx(first[np.isfinite(first)].mean())
        assert row["filled_day"] == pytest.approx(last[np.isfinite(last)].mean())
    # so the expected path ends about when the simulated trials do (suspensions included)
    assert abs(tl.end_plan_day - tl.interval["mean_day"]) < 0.25 * tl.interval["mean_day"]
    assert tl.interval["mean_day"] == pytest.approx(run.duration_days.mean())
    assert tl.interval["p10_day"] == pytest.approx(np.percentile(run.duration_days, 10))
    with pytest.raises(ValueError, match="needs a screening rate"):
        run_simulation(s)
