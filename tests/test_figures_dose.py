"""Dose-cohort figure builders and view tables: values drawn equal the engine's numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eligibility.dose import (
    DoseSettings,
    assign_cohorts,
    eligible_fractions,
    expected_plan,
    operating_characteristics,
    patients_needed_per_level,
    project_timeline,
    run_simulation,
    sample_size_summary,
    screening_need_table,
)
from eligibility.dose import inputs as I
from eligibility.dose import tables as T
from eligibility.dose.designs import DesignOptions
from eligibility.dose.planning import make_plan
from eligibility.export import to_csv_bytes
from eligibility.figures import SERIES_COLORS
from eligibility.figures import dose_tables as V
from eligibility.figures.dose import (
    END_PLAN_NAME,
    END_SIM_NAME,
    FILL_NAME,
    MS_PER_DAY,
    WINDOW_NAME,
    assignment_bars,
    timeline_figure,
)

DISEASES = ["SSc", "IIM", "AAV", "SjS", "APS"]


def screened(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(n)],
        "disease": rng.choice(DISEASES, n),
        "screening_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 300, n)), "D"),
        "status": rng.choice(["eligible", "pending", "ineligible"], n, p=[0.4, 0.2, 0.4]),
    })


# -- assignment bars -----------------------------------------------------------------------


@pytest.mark.parametrize("design,pooling", [("3+3", "pooled"), ("boin", "pooled"), ("3+3", "per-disease")])
def test_assignment_bar_values_equal_counts(design, pooling):
    s = DoseSettings(design=design, pooling=pooling)
    a = assign_cohorts(screened(), s)
    fig = assignment_bars(a.counts, {lv.label: lv.dose for lv in s.levels})
    bars = [t for t in fig.data if t.type == "bar"]
    diseases = [c for c in a.counts.columns if c != "total"]
    assert [b.name for b in bars] == diseases
    for b in bars:
        assert list(b.y) == a.counts[b.name].tolist()
        # every non-empty segment is labelled with its value
        assert list(b.text) == [str(v) if v else "" for v in a.counts[b.name]]
    total = next(t for t in fig.data if t.type == "scatter")
    assert list(total.y) == a.counts["total"].tolist()
    assert list(total.text) == [f"{v} total" for v in a.counts["total"]]
    # dose units on the axis labels, beyond-capacity kept as its own category
    assert all("×10⁹ cells" in x for x in bars[0].x[: s.n_levels])
    if "beyond capacity" in a.counts.index:
        assert bars[0].x[-1] == "beyond capacity"
    assert fig.layout.barmode == "stack"
    assert fig.layout.yaxis.title.text == "Eligible patients (n)"


def test_assignment_bars_not_by_colour_alone():
    a = assign_cohorts(screened(), DoseSettings())
    fig = assignment_bars(a.counts)
    bars = [t for t in fig.data if t.type == "bar"]
    colours = [b.marker.color for b in bars]
    patterns = [b.marker.pattern.shape for b in bars]
    assert set(colours) <= set(SERIES_COLORS)
    assert len(set(patterns)) == len(bars)  # each disease also has its own fill pattern
    assert all(b.showlegend is not False for b in bars)


def test_assignment_bars_without_beyond_capacity():
    s = DoseSettings()
    a = assign_cohorts(screened(), s)
    assert "beyond capacity" in a.counts.index
    fig = assignment_bars(a.counts, include_beyond=False)
    bars = [t for t in fig.data if t.type == "bar"]
    assert list(bars[0].x) == s.labels
    assert list(fig.data[-1].y) == a.counts.loc[s.labels, "total"].tolist()


def test_assignment_bars_pending_and_empty():
    s = DoseSettings()
    frame = screened().assign(status="pending")
    a = assign_cohorts(frame, s)
    fig = assignment_bars(a.pending_counts, kind="pending")
    assert sum(sum(t.y) for t in fig.data if t.type == "bar") == len(frame)
    assert fig.layout.yaxis.title.text == "Pending patients (n)"
    empty = assign_cohorts(frame.assign(status="ineligible"), s)
    fig = assignment_bars(empty.counts)
    assert [t for t in fig.data if t.type == "bar"] == []
    assert list(fig.data[-1].y) == [0, 0, 0]


# -- timeline ------------------------------------------------------------------------------


@pytest.mark.parametrize("design", ["3+3", "boin", "i3+3"])
def test_timeline_one_bar_pair_per_cohort_and_end_marker(design):
    s = DoseSettings(design=design, max_n=12)
    run = run_simulation(s)
    tl = project_timeline(s, 0.2, 30.0, "2026-03-01", expected_plan(s, run), sim_result=run)
    fig = timeline_figure(tl, start_date="2026-03-01")
    fill = [t for t in fig.data if t.type == "bar" and t.name == FILL_NAME]
    window = [t for t in fig.data if t.type == "bar" and t.name.startswith(WINDOW_NAME)]
    assert len(fill) == 1 and len(window) == 1
    n = len(tl.cohorts)
    assert len(fill[0].y) == n and len(window[0].y) == n
    assert list(fill[0].y) == [f"Cohort {c} · {lv}" for c, lv in zip(tl.cohorts["cohort"], tl.cohorts["dose_level"], strict=True)]
    assert fill[0].y == window[0].y
    # durations (ms on a date axis) equal the engine's days; labels carry days
    np.testing.assert_allclose(np.asarray(fill[0].x) / MS_PER_DAY, tl.cohorts["filled_day"] - tl.cohorts["open_day"])
    np.testing.assert_allclose(np.asarray(window[0].x) / MS_PER_DAY, s.dlt_window_days)
    assert all(t.startswith("fill ") and t.endswith(" days") for t in fill[0].text)
    assert all(t == f"DLT {s.dlt_window_days} days" for t in window[0].text)
    assert f"({s.dlt_window_days} days)" in window[0].name
    assert pd.Timestamp(fill[0].base[0]) == pd.Timestamp("2026-03-01")
    assert window[0].marker.pattern.shape == "/"  # phases differ by pattern too
    end = next(t for t in fig.data if t.name.startswith(END_PLAN_NAME))
    assert end.name.endswith(f"({tl.end_plan_date:%Y-%m-%d})")
    assert pd.Timestamp(end.x[0]).round("s") == (pd.Timestamp("2026-03-01") + pd.Timedelta(days=tl.end_plan_day)).round("s")
    sim = next(t for t in fig.data if t.name == END_SIM_NAME)
    iv = tl.interval
    assert [pd.Timestamp(x).round("s") for x in sim.x] == [
        (pd.Timestamp("2026-03-01") + pd.Timedelta(days=iv[k])).round("s") for k in ("p10_day", "p50_day", "p90_day")]
    if iv["p10_day"] == iv["p90_day"]:  # one date: labelled once, in the middle
        assert list(sim.text) == ["", f"p10 = median = p90 {iv['p50_date']:%Y-%m-%d}", ""]
    else:
        assert sim.text[0].startswith("p10 ") and sim.text[2].startswith("p90 ")
    assert fig.layout.xaxis.type == "date" and fig.layout.xaxis.title.text == "Date"


def test_timeline_without_interval_has_no_sim_marker():
    s = DoseSettings()
    tl = project_timeline(s, 0.5, 10.0, "2026-01-01", make_plan(s, [1, 1, 1]))
    fig = timeline_figure(tl)
    assert not any(t.name == END_SIM_NAME for t in fig.data)
    assert any(t.name.startswith(END_PLAN_NAME) for t in fig.data)


# -- view tables ---------------------------------------------------------------------------


def test_consort_dose_step_matches_counts():
    s = DoseSettings(design="boin", cohort_size=2, max_n=10)
    a = assign_cohorts(screened(120), s)
    step = T.consort_dose_step(a, s.labels)
    assert list(step.columns) == ["dose_level", "eligible", "pending"]
    assert step["eligible"].tolist() == a.counts["total"].tolist()
    pend = a.pending_counts["total"].reindex(step["dose_level"], fill_value=0)
    assert step["pending"].tolist() == pend.tolist()
    assert step["eligible"].sum() == (a.table["kind"] == "eligible").sum()
    # also from the table alone, labels inferred
    assert T.consort_dose_step(a.table).equals(step)


def test_consort_dose_step_no_beyond_row_when_all_fit():
    s = DoseSettings()
    frame = screened(10).assign(status=["eligible"] * 4 + ["ineligible"] * 6)
    step = T.consort_dose_step(assign_cohorts(frame, s, make_plan(s, [2, 2, 2])), s.labels)
    assert step["dose_level"].tolist() == ["DL1", "DL2", "DL3"]
    assert step["eligible"].tolist() == [4, 0, 0]


def test_settings_errors_name_the_setting():
    table = I.default_levels_table()
    kw = dict(design="3+3", cohort_size=3, target=0.3, max_n=30, dlt_window_days=28, pooling="pooled")
    s = I.build_settings(table, **kw)
    assert s.labels == ["DL1", "DL2", "DL3"] and s.true_dlt == [0.05, 0.10, 0.20]
    bad = table.copy()
    bad.loc[1, "true_dlt"] = 1.5
    with pytest.raises(I.SettingsError, match=r"Assumed true DLT rate: .*level 2.*1\.5"):
        I.build_settings(bad, **kw)
    with pytest.raises(I.SettingsError, match="Dose levels: add at least one"):
        I.build_settings(table.iloc[0:0], **kw)
    with pytest.raises(I.SettingsError, match="Cohort size: cohort size must be at least 1"):
        I.build_settings(table, **{**kw, "design": "boin", "cohort_size": 0})
    with pytest.raises(I.SettingsError, match="Target DLT rate"):
        I.build_settings(table, **{**kw, "design": "boin", "target": 1.0})
    gap = table.copy()
    gap.loc[2, "dose"] = np.nan
    with pytest.raises(I.SettingsError, match=r"row 3 \(DL3\): 'Dose \(×10⁹ cells\)' is empty"):
        I.build_settings(gap, **kw)
    # a just-added, fully empty row is ignored
    added = pd.concat([table, pd.DataFrame({"label": [None], "dose": [np.nan], "true_dlt": [np.nan]})])
    assert I.build_settings(added, **kw).n_levels == 3


def test_sample_size_and_oc_tables_equal_engine():
    s = DoseSettings()
    run = run_simulation(s)
    summary = sample_size_summary(s, run)
    t = V.sample_size_table(summary, s)
    assert t["patients"].tolist()[:3] == [3, 9, 18]
    assert t["patients"].tolist()[3:] == pytest.approx([summary["expected"], summary["p10"], summary["p90"]])
    oc = operating_characteristics(run)
    table = V.oc_table(s, oc)
    assert table["mtd_selection_pct"].tolist() == pytest.approx(oc["mtd_selection_pct"])
    summ = V.oc_summary(oc).set_index("measure")["value"]
    assert summ["No MTD (lowest level too toxic)"] == pytest.approx(oc["no_mtd_pct"])
    assert summ["Stopped early for safety"] == pytest.approx(oc["early_stop_pct"])
    assert summ["Correct selection (true MTD selected)"] == pytest.approx(oc["pct_correct"])
    assert summ["Patients treated at the true MTD"] == pytest.approx(oc["pct_patients_at_mtd"])
    assert table["true_mtd"].tolist() == [False, False, True]
    assert table["mean_patients"].tolist()[:3] == pytest.approx(oc["mean_n_per_level"])
    assert table["mean_dlts"].tolist()[:3] == pytest.approx(oc["mean_dlt_per_level"])
    exp = V.oc_export(s, oc, {"mean_day": 100.0, "p10_day": 80.0, "p90_day": 120.0})
    assert {"section", "dose_level", "measure", "value", "unit"} == set(exp.columns)
    measured = exp[exp["section"].isin(["level", "trial"]) & (exp["measure"] != "true MTD")]
    assert measured["unit"].str.len().gt(0).all()  # every number has its unit
    assert "Mean duration" in exp["measure"].tolist()


def test_screening_need_view_pivots_engine_table():
    frame = screened(200)
    s = DoseSettings()
    fr = eligible_fractions(frame)
    need = screening_need_table(patients_needed_per_level(s, "maximum"), fr)
    wide = V.screening_need_view(need)
    assert wide["dose_level"].tolist() == ["DL1", "DL2", "DL3", "all levels"]
    for g, f in fr.items():
        assert wide.loc[0, g] == math.ceil(6 / f - 1e-9)
    pool = T.eligible_pool(frame, fr)
    assert pool.set_index("group").loc["pooled", "eligible"] == (frame["status"] == "eligible").sum()


def test_screening_frame_and_group_rates():
    frame = screened(20).drop(columns="status")
    out = T.screening_frame(frame, ["eligible"] * 20)
    assert list(out.columns) == ["patient_id", "disease", "screening_date", "status"]
    nodates = T.screening_frame(frame.drop(columns="screening_date"), ["pending"] * 20)
    assert nodates["screening_date"].isna().all()
    shares = T.disease_shares(out)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares == pytest.approx((out["disease"].value_counts() / 20).to_dict())
    rates = T.group_rates(shares, 40.0)
    assert rates["pooled"] == 40.0
    assert sum(v for k, v in rates.items() if k != "pooled") == pytest.approx(40.0)
    assert T.group_rates(shares, None)["SSc" if "SSc" in shares else next(iter(shares))] is None
    assert T.disease_shares(out.iloc[0:0]) == {}
    with pytest.raises(ValueError):
        T.screening_frame(frame, ["eligible"])


def test_max_n_not_a_multiple_names_the_fix():
    kw = dict(design="boin", cohort_size=3, target=0.3, max_n=32, dlt_window_days=28, pooling="pooled")
    with pytest.raises(I.SettingsError, match=r"not a multiple of the cohort size \(3\); use 30 or 33"):
        I.build_settings(I.default_levels_table(), **kw)
    with pytest.raises(I.SettingsError, match="start level"):
        I.build_settings(I.default_levels_table(), **{**kw, "max_n": 30, "start_level": 5})
    s = I.build_settings(I.default_levels_table(), **{**kw, "max_n": 30, "n_earlystop": 9, "p1": None})
    assert s.n_earlystop == 9 and s.p1 is None


def test_plan_table_tells_one_story():
    s = DoseSettings(design="boin", n_trials=2000)
    run = run_simulation(s)
    oc = operating_characteristics(run)
    plan = expected_plan(s, run)
    t = V.plan_table(plan, oc)
    assert t["mean_patients"].tolist() == pytest.approx(oc["mean_n_per_level"])
    assert t["plan_patients"].tolist() == [c * 3 for c in t["plan_cohorts"]]
    assert (abs(t["plan_patients"] - t["mean_patients"]) <= 3).all()


@pytest.mark.parametrize("design", ["boin", "i3+3", "tite-boin", "bf-boin"])
def test_decision_table_csv_is_excel_safe_and_matches_the_rule(design):
    opt = DesignOptions(target=0.30)
    table = T.decision_table(design, opt, 12).set_index("n")
    if design != "i3+3":  # the spec's BOIN counts for φ = 0.30
        assert table.loc[[3, 6, 9, 12], "escalate_if_dlt_le"].tolist() == [0, 1, 2, 2]
        assert table.loc[[3, 6, 9, 12], "deescalate_if_dlt_ge"].tolist() == [2, 3, 4, 5]
    assert table.loc[[3, 6, 9, 12], "eliminate_if_dlt_ge"].tolist() == [3, 4, 5, 7]
    raw = to_csv_bytes(T.decision_table_export(design, opt, 12))
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    text = raw.decode("utf-8-sig")
    assert not any(line.split(",")[2:3] and line.split(",")[2].startswith(("=", "+", "-", "@"))
                   for line in text.splitlines())


def test_decision_table_33_and_extrasafe():
    t = T.decision_table("3+3", DesignOptions(deescalation=False), 18)
    assert t["decision"].str.contains("the next-lower level is the MTD").any()
    safe = T.decision_table("boin", DesignOptions(extrasafe=True, offset=0.05), 6).set_index("n")
    assert safe.loc[3, "stop_trial_if_dlt_ge"] == 2  # Pr(p > 0.3 | 2/3) = 0.916 > 0.90
    assert safe.loc[3, "eliminate_if_dlt_ge"] == 3
