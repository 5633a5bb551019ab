"""Issue 12: demographics (against an independent pandas computation), two scenarios side by
side, the circulable HTML report (offline), the cohort store and the upload budget."""

from __future__ import annotations

import io
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility import demographics as D
from eligibility.attribution import status_counts
from eligibility.cohort_store import (
    MB,
    CohortStore,
    StoreSettings,
    expanded_size,
    over_budget,
    plain_error,
    token_for,
    valid_token,
)
from eligibility.compare import counts_side_by_side, differing_patients
from eligibility.evaluate import Evaluator
from eligibility.loader import load_cohort
from eligibility.report import ReportInput, build_report, protocol_version, scenario_changes
from eligibility.scenario import resolve
from eligibility.screen import results_frame
from eligibility.whatif import scenario_problems

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "cohort.parquet"


@pytest.fixture(scope="module")
def bundled():
    cohort = load_cohort(BUNDLED)
    return cohort, Evaluator.for_cohort(cohort).evaluate()


BANDS = [(-np.inf, 18, "under 18"), (18, 30, "18–29"), (30, 40, "30–39"), (40, 50, "40–49"), (50, 60, "50–59")]


def _band(age: float) -> str:
    if pd.isna(age):
        return "age missing"
    if age > 65:
        return "over 65"
    if age >= 60:
        return "60–65"
    return next(name for lo, hi, name in BANDS if lo <= age < hi)


# -- demographics ---------------------------------------------------------------------------------

def test_pool_demographics_equal_an_independent_pandas_computation(bundled):
    cohort, ev = bundled
    res = results_frame(ev, cohort.frame)
    frame = pd.DataFrame({"disease": cohort.frame["disease"].astype("string"),
                          "age": pd.to_numeric(cohort.frame["age_years"], errors="coerce"),
                          "sex": cohort.frame["sex"].astype("string"), "status": res["status"]})
    pool = D.pool(ev).set_index(["group", "population"])
    for disease in ["SSc", "APS", "All"]:
        sub = frame if disease == "All" else frame[frame["disease"] == disease]
        for pop in ("screened", "eligible", "pending"):
            part = sub if pop == "screened" else sub[sub["status"] == pop]
            row = pool.loc[(disease, pop)]
            assert row["n"] == len(part)
            assert row["F"] == int((part["sex"] == "F").sum()) and row["M"] == int((part["sex"] == "M").sum())
            assert row["sex missing"] == int(part["sex"].isna().sum())
            if part["age"].notna().any():
                assert row["median_age"] == pytest.approx(part["age"].median())
            bands = part["age"].map(_band).value_counts()
            for b in D.AGE_BANDS:
                assert row[b] == int(bands.get(b, 0)), (disease, pop, b)


def test_demographics_at_each_attrition_step(bundled):
    cohort, ev = bundled
    steps = D.by_step(ev, "SSc")
    assert steps.iloc[0]["step"] == "Screened" and steps.iloc[0]["n"] == status_counts(ev).loc["SSc", "screened"]
    assert (steps["n"].diff().dropna() == -steps["excluded"].iloc[1:]).all()
    last = steps.iloc[-1]
    c = status_counts(ev).loc["SSc"]
    assert last["n"] == c["eligible"] + c["pending"]
    # independently: the remaining patients after the last step are the not-ineligible ones
    res = results_frame(ev, cohort.frame)
    keep = (res["disease"] == "SSc") & (res["status"] != "ineligible")
    assert last["F"] == int((cohort.frame["sex"].astype("string")[keep] == "F").sum())


@given(st.lists(st.one_of(st.none(), st.floats(0, 120, allow_nan=False)), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_age_bands_cover_every_age_once(ages):
    arr = np.array([np.nan if a is None else a for a in ages], float)
    codes = D.age_band_codes(arr)
    assert [D.AGE_BANDS[c] for c in codes] == [_band(a) for a in arr]


def test_age_band_boundaries():
    codes = D.age_band_codes(np.array([17.99, 18, 29.99, 30, 59.99, 60, 65, 65.01, np.nan]))
    assert [D.AGE_BANDS[c] for c in codes] == ["under 18", "18–29", "18–29", "30–39", "50–59", "60–65",
                                               "60–65", "over 65", "age missing"]


# -- two scenarios ------------------------------------------------------------------------------------

def test_two_scenarios_side_by_side(bundled):
    cohort, ev = bundled
    evaluator = Evaluator.for_cohort(cohort)
    a = evaluator.evaluate(resolve({"parameters": {"age_max": 70}}))
    b = evaluator.evaluate(resolve({"parameters": {"hb_min_g_l": 80}}))
    table = counts_side_by_side(ev, a, b).set_index("group")
    for g in ("All", "SSc"):
        assert table.loc[g, "eligible_protocol"] == status_counts(ev).loc[g, "eligible"]
        assert table.loc[g, "eligible_a"] == status_counts(a).loc[g, "eligible"]
        assert table.loc[g, "eligible_b"] == status_counts(b).loc[g, "eligible"]
        r = table.loc[g]
        assert r["net_b_vs_a"] == r["gained_b_vs_a"] - r["lost_b_vs_a"]
    patients = differing_patients(ev, a, b, cohort.frame)
    ra, rb = results_frame(a, cohort.frame), results_frame(b, cohort.frame)
    differ = np.flatnonzero((ra["status"] != rb["status"]).to_numpy())
    assert patients["row"].tolist() == (differ + 1).tolist()
    assert len(patients) == table.loc["All", "differ"]
    assert (patients["status_a"] == ra["status"].iloc[differ].to_numpy()).all()


# -- report -----------------------------------------------------------------------------------------

class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.text = [], []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.srcs.append(v)

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_self_contained_and_holds_the_numbers(bundled):
    cohort, ev = bundled
    dose = pd.DataFrame({"level": ["DL1", "DL2"], "n": [3, 3]})
    info = ReportInput(cohort="my <b>cohort</b>.csv", scenario="protocol as registered", dose=dose,
                       dose_plan="3+3 design")
    html = build_report(ev, ev, info)
    p = _Collect()
    p.feed(html)
    assert p.srcs == []  # nothing fetched: no script src, no stylesheet link, no image
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # the library itself is embedded
    assert "my &lt;b&gt;cohort&lt;/b&gt;.csv" in html  # user text escaped
    text = " ".join(p.text)
    c = status_counts(ev).loc["All"]
    for k in ("screened", "eligible", "pending", "ineligible"):
        assert f"{int(c[k]):,}" in text
    assert protocol_version() in text
    assert "Demographics of the pool" in text and "Dose plan" in text and "DL2" in text
    assert "<svg" in html  # the CONSORT flow


def test_scenario_changes_in_words():
    r = resolve({"parameters": {"age_max": 70, "require_cyclophosphamide": False}, "disabled": ["INC-7"]})
    changes = scenario_changes(r)
    assert "Maximum age: 65 → 70 years" in changes
    assert any(c.startswith("Require prior cyclophosphamide: on → off") for c in changes)
    assert "switched off: INC-7 · Informed consent" in changes


# -- scenario files ---------------------------------------------------------------------------------

def test_scenario_problems_lists_every_problem():
    from eligibility.catalog import default_catalog

    problems = scenario_problems({"nme": "x", "parameters": {"age_maxx": 1, "hb_min_g_l": "lots",
                                                             "age_max": -3},
                                  "disabled": ["INC-99", "INC-7"]}, default_catalog())
    text = "\n".join(problems)
    assert len(problems) == 5
    for part in ("nme", "age_maxx", "hb_min_g_l", "age_max", "INC-99"):
        assert part in text
    assert scenario_problems({"parameters": {"age_max": 70}}, default_catalog()) == []
    assert scenario_problems([1, 2], default_catalog())


# -- cohort store and budget ------------------------------------------------------------------------

def _store(tmp_path, disk_mb=1.0, age_h=1.0):
    return CohortStore(StoreSettings(tmp_path / "store", int(disk_mb * MB), age_h * 3600, 10 * MB))


def test_store_keeps_an_upload_by_content_hash(tmp_path):
    store = _store(tmp_path)
    token = store.put("a.csv", b"patient_id,disease\nP1,SSc\n", now=1000)
    assert valid_token(token) and token == token_for(b"patient_id,disease\nP1,SSc\n")
    assert store.get(token, now=1001) == ("a.csv", b"patient_id,disease\nP1,SSc\n")
    assert store.get("0" * 32) is None
    assert store.get("../../etc/passwd") is None and not valid_token("../x")


def test_store_releases_by_age_and_by_disk_size(tmp_path):
    store = _store(tmp_path, disk_mb=1.0, age_h=1.0)
    old = store.put("old.csv", b"x" * 10, now=0)
    recent = store.put("recent.csv", b"y" * 10, now=3000)
    assert store.get(old, now=3599) is not None  # used at 3599: its age restarts
    assert store.get(recent, now=3600 + 3001) is None  # not used for over an hour
    # size: the least recently used goes first, the new one stays
    big1 = store.put("b1", b"1" * (600 * 1024), now=10_000)
    big2 = store.put("b2", b"2" * (600 * 1024), now=10_001)
    assert store.get(big1, now=10_002) is None and store.get(big2, now=10_002) is not None
    assert sum(p.stat().st_size for p in (tmp_path / "store").glob("*.bin")) <= 1 * MB


def test_expanded_size_budget_for_a_workbook(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", "<c/>" * 1_000_000)  # 4 MB, compresses to little
    data = buf.getvalue()
    assert len(data) < 100_000 and expanded_size("big.xlsx", data) == 4_000_000
    msg = over_budget("big.xlsx", data, 1 * MB)
    assert msg and "big.xlsx" in msg and "4 MB" in msg and "1 MB" in msg
    assert over_budget("big.xlsx", data, 8 * MB) is None
    assert over_budget("a.csv", b"x" * 100, 99) and over_budget("a.csv", b"x" * 100, 100) is None


def test_plain_error_drops_library_class_names():
    assert plain_error("c.parquet: not a readable Parquet file (ArrowInvalid)") == \
        "c.parquet: not a readable Parquet file"
    assert plain_error("x (BadZipFile)") == "x"
    assert plain_error("duplicate patient_id: X1 (rows 1, 2)") == "duplicate patient_id: X1 (rows 1, 2)"


def test_duplicate_ids_name_their_rows():
    from eligibility.loader import CohortError

    with pytest.raises(CohortError, match=r"X1 \(rows 1, 3\)"):
        load_cohort(b"patient_id,disease\nX1,SSc\nX2,SSc\nX1,IIM\n", filename="d.csv")
