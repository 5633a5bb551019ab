"""An amendment is a data edit: in a copy of the protocol folder, add INC-8 "platelets ≥ 50×10⁹/L"
with its field (fields.yaml), parameter (parameters.yaml), criterion (criteria.yaml) and short
name, and nothing else; then the engine, `synth`, `screen` and the dashboard show it.

Each check runs in a fresh interpreter with ELIGIBILITY_PROTOCOL_DIR pointing at the copy, as a
planner trying an amendment would run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from eligibility.fields import ContractError, load_diseases, load_fields
from eligibility.protocol_files import ENV_VAR

ROOT = Path(__file__).resolve().parent.parent

FIELD = ("- {name: platelets_10e9_l, type: number, unit: ×10⁹/L, label: Platelets, plausible: [1, 2000], "
         "eligible: 200, synth: {normal: {mean: 190, sd: {default: 70, SjS: 90}}, clip: [8, 600], "
         "decimals: 0, missing: 0.02}}\n")
PARAMETER = ("- {name: platelets_min_10e9_l, type: number, default: 50, range: [10, 150], step: 5, "
             "unit: ×10⁹/L, group: common, label: Minimum platelets, source: \"platelets ≥ 50×10⁹/L\"}\n")
CRITERION = """  - id: INC-8
    kind: incl
    block: common
    text: "Platelets ≥ 50×10⁹/L"
    rule: {kind: cmp, field: platelets_10e9_l, op: ge, param: platelets_min_10e9_l}

"""


@pytest.fixture(scope="module")
def amended(tmp_path_factory) -> Path:
    """A copy of the protocol folder with INC-8 added by editing its YAML files only."""
    folder = tmp_path_factory.mktemp("amendment") / "protocol"
    src = resources.files("eligibility.protocol")
    shutil.copytree(str(src), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with open(folder / "fields.yaml", "a", encoding="utf-8") as f:
        f.write(FIELD)
    with open(folder / "parameters.yaml", "a", encoding="utf-8") as f:
        f.write(PARAMETER)
    criteria = (folder / "criteria.yaml").read_text("utf-8")
    assert criteria.count("  - id: EXC-1\n") == 1
    (folder / "criteria.yaml").write_text(criteria.replace("  - id: EXC-1\n", CRITERION + "  - id: EXC-1\n"),
                                          "utf-8")
    with open(folder / "short_names.yaml", "a", encoding="utf-8") as f:
        f.write("INC-8: Platelets\n")
    return folder


def _run(folder: Path, *args: str, code: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, ENV_VAR: str(folder), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    cmd = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "eligibility", *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


ENGINE = """
import json
from factory import eligible_row, make_cohort
from eligibility.catalog import default_catalog
from eligibility.fields import FIELD_BY_NAME
from eligibility.screen import screen_frame
cat = default_catalog()
values = [None, 49.9, 50, 200]
rows = [eligible_row("SSc", platelets_10e9_l=v, patient_id=f"P{i}") for i, v in enumerate(values)]
out = screen_frame(make_cohort(rows))
print(json.dumps({"units": [u.id for u in cat.units], "field": FIELD_BY_NAME["platelets_10e9_l"].criteria,
                  "status": out["status"].tolist(), "first": out["first_reason"].tolist(),
                  "unknown": out["unknown"].tolist()}))
"""


def test_engine_evaluates_the_new_criterion(amended):
    out = json.loads(_run(amended, code=ENGINE).stdout)
    assert "INC-8" in out["units"] and out["field"] == ["INC-8"]
    # empty: pending on INC-8; 49.9 fails; 50 (the boundary, ≥) and 200 pass
    assert out["status"] == ["pending", "ineligible", "eligible", "eligible"], out
    assert out["unknown"][0] == "INC-8" and out["first"][1] == "INC-8"


def test_synth_and_screen_show_the_new_criterion(amended, tmp_path):
    cohort, results = tmp_path / "cohort.csv", tmp_path / "results.csv"
    _run(amended, "synth", "--n", "600", "--seed", "5", "-o", str(cohort))
    frame = pd.read_csv(cohort, encoding="utf-8-sig")
    plt = frame["platelets_10e9_l"]
    assert 0 < plt.isna().sum() < 60 and plt.min() >= 8 and plt.max() <= 600
    assert (plt < 50).sum() > 0  # some fail the new criterion
    _run(amended, "screen", str(cohort), "-o", str(results))
    screened = pd.read_csv(results, encoding="utf-8-sig", keep_default_na=False)
    low = frame["platelets_10e9_l"] < 50
    assert screened.loc[low.to_numpy(), "failed"].str.contains("INC-8").all()
    assert not screened.loc[(frame["platelets_10e9_l"] >= 50).to_numpy(), "failed"].str.contains("INC-8").any()
    # the untouched protocol neither generates nor screens the column
    plain = subprocess.run([sys.executable, "-m", "eligibility", "synth", "--n", "50", "-o", str(tmp_path / "p.csv")],
                           cwd=ROOT, env={k: v for k, v in os.environ.items() if k != ENV_VAR},
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert "platelets_10e9_l" not in pd.read_csv(tmp_path / "p.csv", encoding="utf-8-sig").columns


DASHBOARD = """
import sys
from apptest_support import open_page, unescape
at = open_page("app_pages/protocol.py")
texts = [unescape(str(getattr(e, "value", ""))) for e in at.main]
frames = [df.value.to_csv() for df in at.dataframe]
found = any("INC-8" in t for t in texts + frames) and any("Platelets" in t for t in texts + frames)
print("FOUND" if found else "MISSING")
"""


def test_dashboard_protocol_page_lists_it(amended):
    out = _run(amended, code=DASHBOARD, timeout=600).stdout
    assert "FOUND" in out, out


def test_contract_errors_name_file_and_entry():
    base = [{"name": "patient_id", "type": "id", "synth": {"model": "identity"}},
            {"name": "disease", "type": "disease", "synth": {"model": "identity"}}]
    with pytest.raises(ContractError, match="fields.yaml: x: synth"):
        load_fields([*base, {"name": "x", "type": "number", "synth": {"yes_share": 0.1}}])
    with pytest.raises(ContractError, match="block 'XYZ'"):
        load_fields([*base, {"name": "x", "type": "yesno", "block": "XYZ", "synth": {"yes_share": 0.1}}])
    with pytest.raises(ContractError, match="per-disease table"):
        load_fields([*base, {"name": "x", "type": "yesno", "synth": {"yes_share": {"SSc": 0.1}}}])
    with pytest.raises(ContractError, match="duplicate"):
        load_fields([*base, base[0]])
    with pytest.raises(ContractError, match="needs a disease field"):
        load_fields(base[:1])
    assert [f.name for f in load_fields(base)] == ["patient_id", "disease"]
    with pytest.raises(ContractError, match="names both"):
        load_diseases([{"code": "A", "name": "a", "synonyms": ["x"], "synth": {"share": 1}},
                       {"code": "B", "name": "b", "synonyms": ["X"], "synth": {"share": 1}}])


def _copy_protocol(folder: Path) -> Path:
    shutil.copytree(str(resources.files("eligibility.protocol")), folder,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def test_sixth_disease_is_a_data_edit(tmp_path):
    """A sixth indication (registry entry, block field with a recipe, DX-1 value, block criterion
    and its parameter): the generator writes it, the loader recognises its synonyms, screening
    applies its block criterion to its patients only."""
    folder = _copy_protocol(tmp_path / "protocol")
    with open(folder / "diseases.yaml", "a", encoding="utf-8") as f:
        f.write("- {code: SLE, name: Systemic lupus erythematosus, title: Lupus, synonyms: [lupus, 系统性红斑狼疮], "
                "synth: {share: 0.08, spellings: [lupus]}}\n")
    with open(folder / "fields.yaml", "a", encoding="utf-8") as f:
        f.write("- {name: sledai_2k, type: number, unit: points, label: SLEDAI-2K, block: SLE, plausible: [0, 105], "
                "eligible: 10, synth: {normal: {mean: 9, sd: 4}, clip: [0, 40], decimals: 0, missing: 0.02}}\n")
    with open(folder / "parameters.yaml", "a", encoding="utf-8") as f:
        f.write("- {name: sledai_min, type: number, default: 6, range: [0, 20], step: 1, unit: points, group: SLE, "
                "label: Minimum SLEDAI-2K, source: \"SLEDAI-2K ≥ 6\"}\n")
    criteria = (folder / "criteria.yaml").read_text("utf-8")
    old_dx = "values: [SSc, IIM, AAV, SjS, APS]}"
    assert criteria.count(old_dx) == 1 and criteria.count("\n# Parts that test") == 1
    criteria = criteria.replace(old_dx, "values: [SSc, IIM, AAV, SjS, APS, SLE]}").replace(
        "\n# Parts that test", "  - {id: SLE-INC-1, kind: incl, block: SLE, text: \"SLEDAI-2K ≥ 6\", "
        "rule: {kind: cmp, field: sledai_2k, op: ge, param: sledai_min}}\n\n# Parts that test")
    (folder / "criteria.yaml").write_text(criteria, "utf-8")
    cohort, results = tmp_path / "c.csv", tmp_path / "r.csv"
    _run(folder, "synth", "--n", "1500", "--seed", "2", "-o", str(cohort))
    _run(folder, "screen", str(cohort), "-o", str(results))
    raw = pd.read_csv(cohort, encoding="utf-8-sig")
    out = pd.read_csv(results, encoding="utf-8-sig", keep_default_na=False)
    sle = (out["disease"] == "SLE").to_numpy()
    assert 60 < sle.sum() < 200 and set(raw.loc[sle, "disease"]) == {"SLE", "lupus"}
    assert raw.loc[~sle, "sledai_2k"].isna().all() and raw.loc[sle, "sledai_2k"].notna().mean() > 0.9
    low = sle & (raw["sledai_2k"] < 6).to_numpy()
    assert low.any() and out.loc[low, "failed"].str.contains("SLE-INC-1").all()
    assert not out.loc[~sle, "failed"].str.contains("SLE-INC-1").any()
    assert (out.loc[sle, "status"] == "eligible").any()
