"""`python -m eligibility dose-sim` batch contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eligibility.dose.cli import main
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


@pytest.mark.parametrize("design", ["boin", "i3+3", "BOIN"])
def test_main_interval_designs(capsys, design):
    argv = ["--design", design, "--true-dlt", "0.05,0.1,0.2,0.4", "--target", "0.25",
            "--cohort-size", "2", "--max-n", "13", "--trials", "500", "--seed", "3", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["mean_n_per_level"]) == 4
    assert data["n_total_p90"] <= 12


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
