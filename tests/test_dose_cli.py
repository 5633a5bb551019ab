"""`python -m eligibility dose-sim` batch contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eligibility.dose.cli import main
from eligibility.dose.designs import DesignOptions
from eligibility.dose.simulate import OC_KEYS, simulate

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--design", "3+3", "--true-dlt", "0.05,0.10,0.20", "--trials", "2000", "--seed", "1", "--json"]


def test_main_prints_one_json_object(capsys):
    assert main(ARGS) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    data = json.loads(out)
    assert list(data) == list(OC_KEYS)
    assert len(data["mtd_selection_pct"]) == 3
    expected = simulate("3+3", [0.05, 0.10, 0.20], n_trials=2000, seed=1)
    assert data == {k: expected[k] for k in OC_KEYS}
    assert data["pct_correct"] is None  # 3+3 without --target defines no true MTD


@pytest.mark.parametrize("design", ["boin", "i3+3", "BOIN"])
def test_main_interval_designs(capsys, design):
    argv = ["--design", design, "--true-dlt", "0.05,0.1,0.2,0.4", "--target", "0.25",
            "--cohort-size", "2", "--max-n", "12", "--trials", "500", "--seed", "3", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["mean_n_per_level"]) == 4
    assert data["n_total_p90"] <= 12
    assert data["pct_correct"] == data["mtd_selection_pct"][2]  # 0.20 is closest to 0.25


def test_new_keys_and_options_reach_the_simulator(capsys):
    argv = ["--design", "boin", "--true-dlt", "0.10,0.25,0.45", "--target", "0.25", "--start-level", "2",
            "--n-earlystop", "9", "--cutoff-eli", "0.9", "--extrasafe", "--offset", "0.1", "--p1", "0.15",
            "--p2", "0.35", "--trials", "800", "--seed", "5", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    opt = DesignOptions(target=0.25, start_level=1, n_earlystop=9, cutoff_eli=0.9, extrasafe=True, offset=0.1,
                        p1=0.15, p2=0.35)
    expected = simulate("boin", [0.10, 0.25, 0.45], n_trials=800, seed=5, options=opt)
    assert data == {k: expected[k] for k in OC_KEYS}
    for key in ("pct_correct", "pct_patients_at_mtd", "pct_patients_above_mtd", "early_stop_pct"):
        assert isinstance(data[key], float)


def test_i3p3_and_33_options(capsys):
    assert main(["--design", "i3+3", "--true-dlt", "0.1,0.3", "--eps1", "0.1", "--eps2", "0.02",
                 "--trials", "300", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    exp = simulate("i3+3", [0.1, 0.3], n_trials=300, seed=1, options=DesignOptions(eps1=0.1, eps2=0.02))
    assert got["mtd_selection_pct"] == exp["mtd_selection_pct"]
    assert main(["--design", "3+3", "--true-dlt", "0.1,0.3,0.5", "--no-deescalation", "--six-at-mtd",
                 "--target", "0.3", "--trials", "300", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    exp = simulate("3+3", [0.1, 0.3, 0.5], n_trials=300, seed=1, target=0.3,
                   options=DesignOptions(deescalation=False, six_at_mtd=True))
    assert got == {k: exp[k] for k in OC_KEYS}
    assert got["pct_correct"] == got["mtd_selection_pct"][1]


def test_calendar_designs_print_duration(capsys):
    argv = ["--design", "tite-boin", "--true-dlt", "0.05,0.1,0.2", "--accrual-per-month", "4",
            "--trials", "300", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == list(OC_KEYS) + ["duration_mean_days", "duration_p10_days", "duration_p90_days"]
    assert data["duration_p10_days"] <= data["duration_mean_days"] <= data["duration_p90_days"]


def test_decision_table_csv(capsys):
    assert main(["--design", "boin", "--true-dlt", "0.1,0.2", "--max-n", "12", "--decision-table"]) == 0
    out = capsys.readouterr().out
    assert not out.startswith("\ufeff")
    lines = out.splitlines()
    assert lines[0].startswith("section,item,value")
    body = [ln for ln in lines if ln.startswith("decision,")]
    assert len(body) == 12
    # n = 3: escalate ≤ 0, de-escalate ≥ 2, eliminate ≥ 3 (the spec's counts for φ = 0.30)
    assert body[2].split(",")[3:8] == ["3", "0", "2", "3", "3"]


def test_main_text_output(capsys):
    assert main(ARGS[:-1]) == 0
    assert "DL3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--design", "crm", "--true-dlt", "0.1"], "--design"),
        (["--design", "boin", "--true-dlt", "0.1,abc"], "not a number"),
        (["--design", "boin", "--true-dlt", "0.1,1.5"], "within [0, 1]"),
        (["--design", "3+3", "--true-dlt", "0.1", "--trials", "0"], "--trials"),
        (["--design", "3+3", "--true-dlt", "0.1", "--trials", "ten"], "--trials"),
        (["--design", "boin", "--true-dlt", "0.1", "--target", "1.5"], "--target"),
        (["--design", "boin", "--true-dlt", "0.1", "--max-n", "2"], "--max-n"),
        (["--design", "boin", "--true-dlt", "0.1", "--max-n", "32"], "--max-n (32) is not a multiple of --cohort-size (3)"),
        (["--design", "boin", "--true-dlt", "0.1,0.2", "--start-level", "3"], "--start-level"),
        (["--design", "boin", "--true-dlt", "0.1", "--eps1", "0.1"], "--eps1 does not apply to BOIN"),
        (["--design", "3+3", "--true-dlt", "0.1", "--n-earlystop", "9"], "--n-earlystop does not apply to 3+3"),
        (["--design", "i3+3", "--true-dlt", "0.1", "--no-deescalation"], "--no-deescalation does not apply"),
        (["--design", "boin", "--true-dlt", "0.1", "--offset", "0.1"], "--offset needs --extrasafe"),
        (["--design", "boin", "--true-dlt", "0.1", "--p1", "0.4"], "p1 and p2"),
        (["--design", "boin", "--true-dlt", "0.1", "--n-earlystop", "0"], "--n-earlystop"),
        (["--design", "boin", "--true-dlt", "0.1", "--cutoff-eli", "1.2"], "--cutoff-eli"),
        (["--design", "tite-boin", "--true-dlt", "0.1"], "--accrual-per-month is required"),
        (["--design", "boin", "--true-dlt", "0.1", "--accrual-per-month", "3"], "applies to tite-boin and bf-boin"),
        (["--design", "bf-boin", "--true-dlt", "0.1,0.2", "--accrual-per-month", "3", "--response", "0.1"],
         "one response rate per level"),
        (["--design", "boin"], "--true-dlt"),
        (["--design", "boin", "--true-dlt", "0.1", "--bogus"], "--bogus"),
    ],
)
def test_main_bad_arguments_exit_2_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.strip()
    assert fragment in err


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_subprocess_module_cli():
    proc = _run("eligibility.dose.cli", *ARGS)
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)) == list(OC_KEYS)


def test_subprocess_python_m_eligibility_dose_sim():
    main_py = ROOT / "eligibility" / "__main__.py"
    cli_py = ROOT / "eligibility" / "cli.py"
    if not main_py.exists() or "dose-sim" not in (cli_py.read_text() if cli_py.exists() else ""):
        pytest.skip("dose-sim not wired into python -m eligibility yet")
    proc = _run("eligibility", "dose-sim", "--design", "boin", "--true-dlt", "0.05,0.10,0.20",
                "--trials", "10000", "--seed", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == list(OC_KEYS)
    assert sum(data["mtd_selection_pct"]) + data["no_mtd_pct"] == pytest.approx(100)
    bad = _run("eligibility", "dose-sim", "--design", "boin", "--true-dlt", "0.1,abc", "--json")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stdout == ""
