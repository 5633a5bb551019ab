"""Figure builders of the Screen failures and What-if pages: the numbers they draw add up
and equal the engine's (waterfall, UpSet, CONSORT data/layout/SVG/HTML, sweep, deltas)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from eligibility import attribution as A
from eligibility.evaluate import Evaluator
from eligibility.fields import DISEASES
from eligibility.figures import consort as C
from eligibility.figures import failures as F
from eligibility.figures import whatif as W
from eligibility.loader import validate_frame
from eligibility.scenario import baseline, resolve
from eligibility.screen import status_change
from eligibility.synth import generate
from eligibility.whatif import sweep

GROUPS = [None, *DISEASES]


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator.for_cohort(validate_frame(generate(2500, 11)))


@pytest.fixture(scope="module")
def ev(evaluator):
    return evaluator.evaluate(baseline())


@pytest.fixture(scope="module")
def ev_what_if(evaluator):
    return evaluator.evaluate(resolve({"parameters": {"age_max": 75, "hb_min_g_l": 80},
                                       "disabled": ["EXC-3", "INC-2.wbc"]}))


# -- attrition waterfall ----------------------------------------------------------------------


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("hide_zero", [False, True])
def test_waterfall_sums(ev, group, hide_zero):
    att = A.attrition(ev, group)
    steps = F.waterfall_data(att, hide_zero=hide_zero)
    counts = A.status_counts(ev).loc[group or "All"]
    assert steps["step"].iloc[0] == "Screened" and steps["measure"].iloc[0] == "absolute"
    assert steps["measure"].iloc[-1] == "total"
    screened = int(steps["value"].iloc[0])
    excluded = int(steps.loc[steps["measure"] == "relative", "excluded"].sum())
    remaining = int(steps["value"].iloc[-1])
    assert screened == counts["screened"]
    assert screened - excluded == remaining == counts["eligible"] + counts["pending"]
    assert excluded == counts["ineligible"]
    crit = steps[steps["measure"] == "relative"]
    assert (crit["value"] == -crit["excluded"]).all()
    if hide_zero:
        assert (crit["excluded"] > 0).all()
    else:
        assert list(crit["step"]) == list(att["criterion"])  # catalog order, every criterion
    # the remaining column runs down to the total
    if len(crit):
        assert int(crit["remaining"].iloc[-1]) == remaining


def test_waterfall_catalog_order_and_labels(ev):
    steps = F.waterfall_data(A.attrition(ev), hide_zero=False)
    order = [u.criterion for u in ev.units]
    crit = list(steps["step"].iloc[1:-1])
    assert crit == list(dict.fromkeys(order))
    fig = F.waterfall_figure(steps, title="t")
    trace = fig.data[0]
    assert len(trace.y) == len(steps) and list(trace.measure) == list(steps["measure"])
    # every bar carries its count as text
    for text, r in zip(trace.text, steps.itertuples(), strict=True):
        n = r.excluded if r.measure == "relative" else r.value
        assert f"{n:,}" in text
    assert "patients" in fig.layout.xaxis.title.text


def test_waterfall_under_a_scenario_sums(ev_what_if):
    att = A.attrition(ev_what_if)
    steps = F.waterfall_data(att)
    assert "EXC-3" not in set(steps["step"])  # switched off
    c = ev_what_if.counts()
    assert int(steps["value"].iloc[0]) - int(steps["excluded"].sum()) == c["eligible"] + c["pending"]


# -- per-criterion table ----------------------------------------------------------------------


def test_criterion_display_columns(ev):
    table = A.criterion_table(ev, "SSc")
    shown = F.criterion_display(table, "SSc")
    assert list(shown.columns[:2]) == ["label", "applicable"]
    for col in ("all_reasons", "first_reason", "sole_reason", "unknown"):
        assert col in shown and f"{col}_pct" in shown
    blocks = table.set_index("id")["block"]
    assert set(blocks[shown["id"]]) <= {"common", "SSc"}
    assert all(lab.startswith(i + " · ") for lab, i in zip(shown["label"], shown["id"], strict=True))
    assert shown.set_index("id").loc["INC-1", "label"] == "INC-1 · Age 18–65 (incl.)"
    # sorted by impact (sole reason), largest first; catalog order on request
    assert shown["sole_reason"].is_monotonic_decreasing
    assert list(F.criterion_display(table, "SSc", sort="catalog")["id"]) == \
        [i for i in table["id"] if blocks[i] in ("common", "SSc")]
    # first reasons add up to the ineligible count
    assert shown["first_reason"].sum() == A.status_counts(ev).loc["SSc", "ineligible"]


# -- UpSet ------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [None, "SSc", "AAV"])
def test_upset_bars_equal_combination_counts(ev, group):
    combos = A.combinations(ev, group, top=12)
    totals = A.criterion_totals(ev, group)
    data, sets = F.upset_data(combos, totals)
    fig = F.upset_figure(data, sets)
    bars = [t for t in fig.data if t.type == "bar" and t.orientation != "h"]
    assert len(bars) == 1
    assert list(bars[0].y) == list(combos["count"])
    assert list(bars[0].text) == [f"{c:,}" for c in combos["count"]]
    # set sizes: every criterion in a shown combination, with its total failures
    used = {c for crits in combos["criteria"] for c in crits}
    assert set(sets["criterion"]) == used
    tot = totals.set_index("criterion")["failed"]
    assert all(int(tot[c]) == n for c, n in zip(sets["criterion"], sets["failed"], strict=True))
    side = [t for t in fig.data if t.type == "bar" and t.orientation == "h"][0]
    assert list(side.x) == list(sets["failed"])
    # one filled dot per (combination, member criterion)
    dots = [t for t in fig.data if t.type == "scatter" and t.mode == "markers" and t.text is not None]
    assert len(dots) == 1 and len(dots[0].x) == int(combos["size"].sum())
    # a set size is at least every combination bar it belongs to
    for crits, n in zip(combos["criteria"], combos["count"], strict=True):
        for c in crits:
            assert int(tot[c]) >= n


def test_upset_empty_selection():
    combos = pd.DataFrame(columns=["criteria", "size", "count", "pct_of_ineligible"])
    data, sets = F.upset_data(combos, pd.DataFrame({"criterion": [], "failed": []}))
    fig = F.upset_figure(data, sets)
    assert len(data) == 0 and len(sets) == 0
    assert any("No ineligible" in a.text for a in fig.layout.annotations)


# -- CONSORT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["base", "what_if"])
def test_consort_numbers_add_up(ev, ev_what_if, which):
    e = ev if which == "base" else ev_what_if
    data = C.consort_data(e)
    counts = A.status_counts(e)
    for g, r in data.iterrows():
        groups = sum(int(r[x]) for x in C.REASON_GROUPS)
        assert r["excluded"] == groups
        assert r["assessed"] == groups + r["eligible"] + r["pending"], g
        assert (r["assessed"], r["eligible"], r["pending"], r["excluded"]) == tuple(
            int(counts.loc[g, k]) for k in ("screened", "eligible", "pending", "ineligible"))
    per = data.drop(index="All")
    numeric = ["assessed", *C.REASON_GROUPS, "excluded", "eligible", "pending"]
    assert (per[numeric].sum() == data.loc["All", numeric]).all()
    # disease-specific reasons only occur in disease groups; diagnosis only outside them
    for d in DISEASES:
        assert data.loc[d, "diagnosis"] == 0
    for g in ("other", "missing"):
        if g in data.index:
            assert data.loc[g, "disease-specific inclusion"] == data.loc[g, "disease-specific exclusion"] == 0


def test_consort_reason_groups_follow_first_reason(ev):
    data = C.consort_data(ev)
    table = A.criterion_table(ev)
    by_group: dict[str, int] = {}
    unit_by_id = ev.catalog.unit_by_id
    for uid, n in zip(table["id"], table["first_reason"], strict=True):
        g = C.reason_group(unit_by_id[uid])
        by_group[g] = by_group.get(g, 0) + int(n)
    for g in C.REASON_GROUPS:
        assert data.loc["All", g] == by_group.get(g, 0)


def _numbers(text: str) -> set[int]:
    return {int(x.replace(",", "")) for x in re.findall(r"\d[\d,]*", text)}


def test_consort_layout_svg_and_numbers(ev):
    data = C.consort_data(ev)
    lay = C.consort_layout(data)
    svg = C.consort_svg(lay, title="Screening flow & <test>")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    nums = _numbers(text)
    groups = [g for g in data.index if g != "All"]
    for g in groups:
        r = data.loc[g]
        assert f"assessed n = {int(r['assessed']):,}" in text
        assert {int(r["excluded"]), int(r["eligible"]), int(r["pending"])} <= nums
        for rg in C.REASON_GROUPS:
            assert int(r[rg]) in nums
    assert f"n = {int(data.loc['All', 'assessed']):,}" in text
    assert f"Excluded (n = {int(data.loc['All', 'excluded']):,})" in text
    assert "&lt;test&gt;" in svg  # escaped
    # a box for every disease column: head, excluded, eligible, pending
    kinds = [b.kind for b in lay.boxes]
    assert kinds.count("eligible") == kinds.count("pending") == len(groups)
    assert kinds.count("disease") == len(groups)
    # pending is marked by a dashed border, not by colour alone
    assert all(b.dashed for b in lay.boxes if b.kind == "pending")
    assert 'stroke-dasharray' in svg
    # every box lies inside the drawing
    for b in lay.boxes:
        assert 0 <= b.x and b.x + b.w <= lay.width + 1e-6 and 0 <= b.y and b.y + b.h <= lay.height + 1e-6


def test_consort_single_disease_and_dose_level_hook(ev):
    data = C.consort_data(ev)
    lay = C.consort_layout(data, groups=["SSc"])
    heads = [b for b in lay.boxes if b.kind == "disease"]
    assert len(heads) == 1 and heads[0].lines[0] == "SSc"
    top = [b for b in lay.boxes if b.kind == "assessed"][0]
    assert top.lines[1] == f"n = {int(data.loc['SSc', 'assessed']):,}"
    dose = pd.DataFrame({"level": ["DL1", "DL2", "DL3"], "n": [3, 3, 6]})
    lay2 = C.consort_layout(data, dose_levels=dose)
    boxes = [b for b in lay2.boxes if b.kind == "dose"]
    assert [b.lines[1] for b in boxes] == ["n = 3", "n = 3", "n = 6"]
    assert lay2.height > C.consort_layout(data).height
    per = pd.DataFrame({"group": ["SSc", "SSc", "IIM"], "level": [1, 2, 1], "n": [3, 4, 5],
                        "label": ["SSc DL1", "SSc DL2", "IIM DL1"]})
    lay3 = C.consort_layout(data, dose_levels=per)
    assert [b.lines[0] for b in lay3.boxes if b.kind == "dose"] == ["SSc DL1", "SSc DL2", "IIM DL1"]
    ET.fromstring(C.consort_svg(lay3))


def test_consort_figure_and_offline_html(ev):
    lay = C.consort_layout(C.consort_data(ev))
    fig = C.consort_figure(lay, title="Flow")
    assert len(fig.layout.shapes) >= len(lay.boxes)
    texts = " ".join(a.text for a in fig.layout.annotations if a.text)
    for b in lay.boxes:
        assert b.lines[-1].split("(")[0].strip().replace("&", "&amp;") in texts or b.lines[-1] in texts
    html = C.consort_html(fig)
    assert not re.search(r"<script[^>]+src=[\"']?https?://", html, flags=re.I)
    assert "https://cdn" not in html.split("<body>")[0]
    assert len(html) > 1_000_000  # plotly.js is embedded, the file opens offline
    assert "Plotly.newPlot" in html


# -- what-if figures --------------------------------------------------------------------------


def test_sweep_figure_marks_default_and_current(evaluator):
    sc = resolve({"parameters": {"age_max": 70}})
    df = sweep(evaluator, sc, "age_max", values=np.arange(50, 86, 5.0))
    fig = W.sweep_figure(df, title="Age")
    names = [t.name for t in fig.data]
    assert names == ["Eligible", "Pending (data missing or to verify)"]
    assert list(fig.data[0].y) == list(df["eligible"]) and list(fig.data[1].y) == list(df["pending"])
    xs = sorted(float(s.x0) for s in fig.layout.shapes if s.type == "line")
    assert xs == [65.0, 70.0]
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "protocol: 65 years" in notes and "scenario: 70 years" in notes
    assert "years" in fig.layout.xaxis.title.text
    row = df[np.isclose(df["value"], 70)].iloc[0]
    assert f"{int(row['eligible']):,} eligible" in notes
    same = W.sweep_figure(sweep(evaluator, baseline(), "hb_min_g_l"))
    assert "protocol = scenario" in " ".join(a.text for a in same.layout.annotations)


def test_fmt_value():
    assert W.fmt_value(65.0, "years") == "65 years"
    assert W.fmt_value(2.5, "×10⁹/L") == "2.5 ×10⁹/L"
    assert W.fmt_value(0.25) == "0.25"
    assert W.fmt_value(True) == "yes"
    assert W.fmt_value(frozenset({"high", "intermediate"})) == "{high, intermediate}"
    assert W.fmt_value(frozenset()) == "(none)"


def test_delta_table(ev, ev_what_if, evaluator):
    change, _ = status_change(ev, ev_what_if, evaluator.columns.frame)
    table = W.delta_table(change, A.status_counts(ev), A.status_counts(ev_what_if)).set_index("group")
    after = A.status_counts(ev_what_if)
    for g in table.index:
        r = table.loc[g]
        assert r["eligible_after"] == after.loc[g, "eligible"]
        assert r["net"] == r["gained"] - r["lost"] == r["eligible_after"] - r["eligible_before"]
        assert r["pending_after"] == after.loc[g, "pending"]


def test_parameter_users_matches_catalog(ev):
    cat = ev.catalog
    users = W.parameter_users(cat)
    for name in cat.parameters:
        assert list(users[name]) == cat.units_reading_param(name)
