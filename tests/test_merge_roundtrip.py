"""The whole workflow on the shared Synthea bundles: import (FHIR) -> worklist template ->
chart review fills the template -> merge -> screen. Pending patients (and those eligible
on assessed criteria only) become eligible or ineligible as the filled values imply."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from factory import eligible_row

from eligibility.cli import main
from eligibility.fields import FIELD_BY_NAME
from eligibility.importers.fhir import from_fhir, write_result
from eligibility.loader import load_cohort
from eligibility.merge import header_field
from eligibility.worklist import build_worklist
from eligibility.worklist_template import template_bytes

EXTERNAL = next((p / "shared" / "external" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "external").is_dir()), Path("../shared/external"))
FHIR_DIR = EXTERNAL / "synthea-fhir-r4"
pytestmark = pytest.mark.skipif(not FHIR_DIR.is_dir(), reason="shared Synthea bundles not present")

# chart-review answers that pass every SSc criterion (SSC-INC-4 through progression, since the
# EHR says no immunomodulator was given)
PASSING = {**eligible_row("SSc"), "mrss_change_6m_pct": 40}


def _text(name, value):
    if value is None:
        return None
    if FIELD_BY_NAME[name].kind == "yesno":
        return "yes" if value else "no"
    return value


def test_import_worklist_fill_merge_screen(tmp_path, capsys):
    from openpyxl import load_workbook

    res = from_fhir(FHIR_DIR, as_of=dt.date(2021, 3, 19), disease="SSc")
    ehr = tmp_path / "ehr.csv"
    write_result(res, ehr)
    assert main(["screen", str(ehr), "-o", str(tmp_path / "before.csv")]) == 0
    before = pd.read_csv(tmp_path / "before.csv", dtype=str, encoding="utf-8-sig").set_index("patient_id")
    wl = build_worklist(load_cohort(ehr))
    targets = list(wl.patients["patient_id"])
    assert targets and set(targets) == set(before.index[before["status"] != "ineligible"])
    assert (before.loc[targets, "status"] == "pending").any()

    # chart review: fill every yellow cell; two patients get a value that excludes them
    wb = load_workbook(io.BytesIO(template_bytes(wl)))
    ws = wb["chart review"]
    heads = [header_field(c.value) for c in ws[1]]
    no_consent, low_hb = targets[0], targets[1]
    for r in range(2, ws.max_row + 1):
        pid = ws.cell(r, 1).value
        need = set(wl.patients.set_index("patient_id").loc[pid, "collect"].split(";")) - {""}
        for c, name in enumerate(heads, start=1):
            if name in need:
                value = _text(name, PASSING.get(name))
                if pid == no_consent and name == "consent_signed":
                    value = "no"
                if pid == low_hb and name == "hemoglobin_g_l":
                    value = 50
                ws.cell(r, c).value = value
    assert "consent_signed" in set(wl.patients.set_index("patient_id").loc[no_consent, "collect"].split(";"))
    sheet = tmp_path / "filled.xlsx"
    wb.save(sheet)

    merged = tmp_path / "merged.csv"
    assert main(["merge", str(ehr), str(sheet), "-o", str(merged)]) == 0
    err = capsys.readouterr().err
    assert "0 conflict(s)" in err and "conflict:" not in err
    prov = pd.read_csv(tmp_path / "merged.provenance.csv", dtype=str, encoding="utf-8-sig")
    chart = prov[prov["source_table"].str.startswith("chart review: filled.xlsx, row ")]
    assert set(chart["patient_id"]) == set(targets)
    assert (prov["source_table"] == "Condition").any()  # EHR provenance kept beside

    assert main(["screen", str(merged), "-o", str(tmp_path / "after.csv")]) == 0
    after = pd.read_csv(tmp_path / "after.csv", dtype=str, encoding="utf-8-sig").set_index("patient_id")
    assert "pending" not in set(after["status"])
    assert after.loc[no_consent, "status"] == "ineligible" and after.loc[no_consent, "first_reason"] == "INC-7"
    hb_needed = "hemoglobin_g_l" in wl.patients.set_index("patient_id").loc[low_hb, "collect"]
    if hb_needed:
        assert "INC-2.hb" in after.loc[low_hb, "failed"].split(";")
    others = [p for p in targets if p not in (no_consent, low_hb)]
    for pid in others:
        assert after.loc[pid, "status"] == "eligible", pid
        k, n = after.loc[pid, "assessed"].split("/")
        assert k == n  # every applicable criterion now assessed: plain "eligible"
    untouched = [p for p in before.index if p not in targets]
    assert (after.loc[untouched, "status"] == before.loc[untouched, "status"]).all()
