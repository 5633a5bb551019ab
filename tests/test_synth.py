"""Synthetic cohort generator: determinism, contract conformance, bundled files,
realism targets against the real engine, and injected data-entry problems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from eligibility import synth
from eligibility.fields import DISEASES, FIELD_BY_NAME, FIELD_NAMES

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------


def test_same_seed_same_frame():
    a, ia = synth.generate(800, 11, return_injections=True)
    b, ib = synth.generate(800, 11, return_injections=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ia, ib)


def test_different_seed_different_frame():
    a = synth.generate(800, 11)
    b = synth.generate(800, 12)
    assert not a.equals(b)
    assert (a["age_years"].to_numpy() != b["age_years"].to_numpy()).mean() > 0.5


def test_output_independent_of_hash_seed(tmp_path):
    """Same bytes whatever PYTHONHASHSEED is (no set/dict-order dependence)."""
    outs = []
    for hs in ("1", "987"):
        out = tmp_path / f"h{hs}.parquet"
        env = {**os.environ, "PYTHONHASHSEED": hs, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "eligibility.synth", "--n", "400", "--seed", "5", "-o", str(out)],
            check=True, env=env, capture_output=True, cwd=ROOT,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_parquet_bytes_identical_and_no_metadata(tmp_path):
    frame = synth.generate(300, 4)
    p1, p2 = tmp_path / "a.parquet", tmp_path / "b.parquet"
    synth.write_cohort(frame, p1)
    synth.write_cohort(synth.generate(300, 4), p2)
    assert p1.read_bytes() == p2.read_bytes()
    meta = pq.ParquetFile(p1).metadata
    assert meta.metadata is None  # no pandas metadata, no timestamps
    assert meta.row_group(0).column(0).compression.lower() == synth.PARQUET_COMPRESSION


# ---------------------------------------------------------------------------
# contract conformance
# ---------------------------------------------------------------------------


def test_columns_are_the_contract():
    frame = synth.generate(300, 1)
    assert list(frame.columns) == list(FIELD_NAMES)
    assert frame["patient_id"].is_unique
    assert frame["patient_id"].notna().all()


def test_clean_cohort_parses_without_cell_problems():
    from eligibility.loader import validate_frame

    frame = synth.generate(2000, 2, errors=False)
    cohort = validate_frame(frame)
    kinds = {i.kind for i in cohort.issues}
    assert not kinds & {"cell_error", "implausible", "missing_column", "extra_column"}
    assert cohort.present == frozenset(FIELD_NAMES)
    typed = cohort.frame
    for name in FIELD_NAMES:
        f = FIELD_BY_NAME[name]
        if f.kind == "number":
            assert pd.api.types.is_float_dtype(typed[name]), name
        if f.kind == "yesno":
            assert typed[name].notna().any(), name
    # every indication appears, written in several ways
    assert set(typed["disease"].dropna()) >= set(DISEASES)
    raw = frame["disease"].dropna()
    assert raw.nunique() > 15
    assert (~raw.isin(DISEASES)).mean() > 0.05


def test_drop_columns_and_profiles_keep_other_values():
    full = synth.generate(500, 3)
    branch = synth.generate(500, 3, profile="branch")
    assert set(synth.PROFILES["branch"]).isdisjoint(branch.columns)
    pd.testing.assert_frame_equal(branch, full[branch.columns])
    dropped = synth.generate(500, 3, drop_columns=["tb_latent"])
    assert "tb_latent" not in dropped.columns
    with pytest.raises(ValueError, match="not contract columns"):
        synth.generate(10, 1, drop_columns=["nonsense"])
    with pytest.raises(ValueError, match="required"):
        synth.generate(10, 1, drop_columns=["patient_id"])
    with pytest.raises(ValueError):
        synth.generate(0, 1)
    with pytest.raises(ValueError):
        synth.generate(10, -1)


def test_missing_column_is_reported_not_assessed():
    from eligibility.loader import validate_frame
    from eligibility.screen import screen_frame

    frame = synth.generate(400, 8, profile="branch")
    cohort = validate_frame(frame)
    missing = {i.column for i in cohort.issues if i.kind == "missing_column"}
    assert {"tb_latent", "dlco_change_6m_pct"} <= missing
    res = screen_frame(cohort)
    assert "EXC-4.latent" in res["not_assessed"].iloc[0].split(";")


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".xlsx"])
def test_write_and_load_round_trip(tmp_path, ext):
    from eligibility.loader import load_cohort

    frame, inj = synth.generate(400, 21, return_injections=True)
    path = synth.write_cohort(frame, tmp_path / f"c{ext}")
    cohort = load_cohort(path)
    assert len(cohort) == 400
    bad = {(i.row, i.column) for i in cohort.issues if i.kind in ("cell_error", "implausible")}
    assert bad == set(zip(inj["row"], inj["column"], strict=True))


def test_csv_is_utf8_with_bom_for_excel(tmp_path):
    frame = synth.generate(50, 1)
    path = synth.write_cohort(frame, tmp_path / "c.csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0].split(",") == list(FIELD_NAMES)
    with pytest.raises(ValueError, match="unsupported"):
        synth.write_cohort(frame, tmp_path / "c.json")


# ---------------------------------------------------------------------------
# injected data-entry problems
# ---------------------------------------------------------------------------


def test_injected_problems_all_reported():
    from eligibility.loader import validate_frame

    frame, inj = synth.generate(6000, 99, return_injections=True)
    assert 0.003 * 6000 <= len(inj) <= 0.006 * 6000
    assert set(inj["kind"]) == {"unit_slip", "impossible", "typo"}
    cohort = validate_frame(frame)
    reported = {
        (i.row, i.patient_id, i.column, i.kind)
        for i in cohort.issues if i.kind in ("cell_error", "implausible")
    }
    expected = set(zip(inj["row"], inj["patient_id"], inj["column"], inj["expect"], strict=True))
    assert expected == reported  # every injection reported, nothing else flagged
    for row in inj.itertuples():
        assert str(frame.at[row.row - 1, row.column]).removesuffix(".0") == row.value.removesuffix(".0")


# ---------------------------------------------------------------------------
# the bundled files
# ---------------------------------------------------------------------------


def test_bundle_regenerates_byte_for_byte(tmp_path):
    synth.write_bundle(tmp_path)
    for name in ("cohort.parquet", "cohort_sample.csv"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


@pytest.fixture(scope="module")
def bundled():
    from eligibility.loader import load_cohort
    from eligibility.screen import screen_frame

    cohort = load_cohort(DATA / "cohort.parquet")
    return cohort, screen_frame(cohort)


def test_bundle_shape(bundled):
    cohort, res = bundled
    assert len(cohort) == synth.BUNDLE_N
    assert cohort.present == frozenset(FIELD_NAMES)  # nothing unassessed by default
    assert (res["not_assessed"] == "").all()
    sample = pd.read_csv(DATA / "cohort_sample.csv", encoding="utf-8-sig", dtype=str)
    assert len(sample) == synth.SAMPLE_N
    assert list(sample["patient_id"]) == list(cohort.frame["patient_id"][: synth.SAMPLE_N])


def test_bundle_status_mix(bundled):
    _, res = bundled
    share = res["status"].value_counts(normalize=True)
    assert 0.15 <= share["eligible"] <= 0.35
    assert share["pending"] >= 0.03
    for d in DISEASES:
        counts = res.loc[res["disease"] == d, "status"].value_counts()
        for status in ("eligible", "ineligible", "pending"):
            assert counts.get(status, 0) >= 5, (d, status)
    per = res[res["disease"].isin(DISEASES)].groupby("disease")["status"].apply(
        lambda s: (s == "eligible").mean())
    assert per.max() - per.min() > 0.03  # different per disease


def test_every_criterion_part_fails_for_some(bundled):
    from eligibility.catalog import default_catalog

    _, res = bundled
    failed = res["failed"].str.split(";").explode()
    counts = failed[failed != ""].value_counts()
    ids = [u.id for u in default_catalog().units]
    rare = {i: int(counts.get(i, 0)) for i in ids if counts.get(i, 0) < 3}
    assert not rare, rare


def test_bundle_realism(bundled):
    cohort, _ = bundled
    f = cohort.frame
    share = f["disease"].value_counts(normalize=True)
    assert 0.2 <= share["SSc"] <= 0.3 and 0.07 <= share["APS"] <= 0.13
    assert 0.003 <= (~f["disease"].isin(DISEASES)).mean() <= 0.02
    female = f.groupby("disease")["sex"].apply(lambda s: (s == "F").mean())
    assert female["SjS"] > 0.85 and female["SSc"] > 0.7 and female["AAV"] < 0.65
    assert 0.22 <= f["hbcab_pos"].mean() <= 0.4
    assert 0.03 <= f["hbsag_pos"].mean() <= 0.08
    assert 0.12 <= f["tb_latent"].mean() <= 0.2
    assert f["days_since_iv_antibiotics"].isna().mean() > 0.85
    ssc = f[f["disease"] == "SSc"]
    by_sub = ssc.groupby("ssc_subtype", observed=True)["mrss"].median()
    assert by_sub["diffuse"] > by_sub["limited"] + 8
    ild = f["hrct_ggo"].astype("boolean")
    assert f.loc[ild.fillna(False).to_numpy(), "fvc_pct_pred"].median() < f.loc[
        (~ild).fillna(False).to_numpy(), "fvc_pct_pred"].median() - 10
    aav = f[f["disease"] == "AAV"]
    renal = aav["renal_hematuria_proteinuria"].astype("boolean").fillna(False).to_numpy()
    assert aav.loc[renal, "egfr_ml_min_1_73m2"].median() < aav.loc[~renal, "egfr_ml_min_1_73m2"].median()
    assert np.corrcoef(f["wbc_10e9_l"].fillna(0), f["anc_10e9_l"].fillna(0))[0, 1] > 0.8
    assert f["screening_date"].min() >= np.datetime64("2025-01-01")
    assert f["screening_date"].max() <= np.datetime64("2026-06-30")


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def test_cli_writes_file(tmp_path, capsys):
    out = tmp_path / "c.parquet"
    inj = tmp_path / "inj.csv"
    assert synth.main(["--n", "300", "--seed", "2", "-o", str(out), "--injections", str(inj)]) == 0
    assert pq.ParquetFile(out).metadata.num_rows == 300
    assert pd.read_csv(inj).columns.tolist() == list(synth.INJECTION_COLUMNS)


@pytest.mark.parametrize("argv", [
    ["--n", "0", "-o", "x.csv"],
    ["--n", "abc", "-o", "x.csv"],
    ["--seed", "-1", "-o", "x.csv"],
    ["--n", "10", "-o", "x.json"],
    ["--n", "10"],
    ["--n", "10", "--drop", "nonsense", "-o", "x.csv"],
    ["--profile", "nope", "-o", "x.csv"],
    ["--bogus"],
])
def test_cli_bad_arguments(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        synth.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert not list(tmp_path.iterdir())
