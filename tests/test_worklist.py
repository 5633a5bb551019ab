"""The chart-review worklist: deciding fields per patient (computed with the engine),
ranked fields, the xlsx template, and the CLI."""

from __future__ import annotations

import io
import itertools

import pandas as pd
from factory import eligible_row, make_cohort
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.evaluate import PENDING, Evaluator
from eligibility.fields import DISEASES, FIELDS
from eligibility.worklist import build_worklist
from eligibility.worklist_template import template_bytes


def _collect(wl, pid):
    row = wl.patients.set_index("patient_id").loc[pid]
    return [x for x in row["collect"].split(";") if x]


def test_only_fields_that_can_change_the_outcome_are_listed():
    rows = [
        eligible_row("SSc", patient_id="hb", hemoglobin_g_l=None),
        # SSC-INC-3: mrss ≥ 10 OR (GGO AND (FVC < 70 OR DLCO < 70)); FVC 85, DLCO 80: GGO cannot matter
        eligible_row("SSc", patient_id="mrss", mrss=None, hrct_ggo=None),
        # FVC 60 < 70: GGO can now decide SSC-INC-3 too
        eligible_row("SSc", patient_id="both", mrss=None, hrct_ggo=None, fvc_pct_pred=60),
        eligible_row("SSc", patient_id="ok"),
        eligible_row("SSc", patient_id="out", age_years=90, hemoglobin_g_l=None),
    ]
    wl = build_worklist(make_cohort(rows))
    assert list(wl.patients["patient_id"]) == ["hb", "mrss", "both"]  # not eligible / ineligible ones
    assert _collect(wl, "hb") == ["hemoglobin_g_l"]
    assert _collect(wl, "mrss") == ["mrss"]
    assert sorted(_collect(wl, "both")) == ["hrct_ggo", "mrss"]
    assert wl.patients.set_index("patient_id").loc["hb", "could_exclude"] == "hemoglobin_g_l"
    # mrss alone cannot fail SSC-INC-3 while GGO is open for 'both'
    assert wl.patients.set_index("patient_id").loc["both", "could_exclude"] == ""
    f = wl.fields.set_index("field")
    assert f.loc["mrss", "patients"] == 2 and f.loc["mrss", "settles_alone"] == 1
    assert f.loc["mrss", "criteria"] == "SSC-INC-3"
    assert set(f.loc["hemoglobin_g_l", "criteria"].split(";")) == {"INC-2.hb", "EXC-2.hb"}
    assert wl.fields["field"].iloc[0] == "mrss"  # most patients first


def test_unassessed_criteria_put_eligible_patients_on_the_list():
    present = [f.name for f in FIELDS if f.name not in ("patient_id", "disease", "consent_signed")]
    wl = build_worklist(make_cohort([eligible_row("AAV", patient_id="A")], present=present))
    row = wl.patients.iloc[0]
    assert row["status"].startswith("eligible on assessed criteria")
    assert row["collect"] == "consent_signed" and row["open_criteria"] == "INC-7"


def test_missing_disease_is_collected_first():
    rows = [{**eligible_row("SSc", patient_id="d"), "disease": None, "consent_signed": None}]
    wl = build_worklist(make_cohort(rows))
    assert _collect(wl, "d") == ["disease", "consent_signed"]


_FIELDS = ["hemoglobin_g_l", "alt_u_l", "mrss", "hrct_ggo", "fvc_pct_pred", "disease_course",
           "prior_cyclophosphamide", "prior_immunomodulators", "consent_signed", "ssc_subtype", "tb_latent",
           "mrss_change_6m_pct", "conventional_therapy_months"]
_VALUES = {
    "hemoglobin_g_l": [50, 60, 130], "alt_u_l": [10, 120, 121, 400], "mrss": [5, 10, 30],
    "hrct_ggo": [True, False], "fvc_pct_pred": [45, 65, 90], "disease_course": ["refractory", "untreated"],
    "prior_cyclophosphamide": [True, False], "prior_immunomodulators": ["none", "rituximab"],
    "consent_signed": [True, False], "ssc_subtype": ["diffuse", "limited"], "tb_latent": [True, False],
    "mrss_change_6m_pct": [0, 40], "conventional_therapy_months": [3, 6, 12],
}


@settings(max_examples=12, deadline=None)
@given(st.sets(st.sampled_from(_FIELDS), min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_filling_the_listed_fields_always_settles_the_status(emptied, rnd):
    row = eligible_row("SSc", patient_id="P", **{f: None for f in emptied})
    wl = build_worklist(make_cohort([row]))
    if wl.patients.empty:  # not pending (e.g. an OR already settled by the known values)
        return
    listed = _collect(wl, "P")
    assert set(listed) <= set(emptied)
    filled = [{**row, **{f: rnd.choice(_VALUES[f]) for f in listed}, "patient_id": f"F{i}"} for i in range(8)]
    status = Evaluator.for_cohort(make_cohort(filled)).evaluate().status
    assert (status != PENDING).all(), listed  # any values of the listed fields decide the status
    # and no listed field can be left out: some values of the others keep the patient pending
    for f in listed:
        others = [g for g in listed if g != f]
        combos = [{**row, **dict(zip(others, c, strict=True)), "patient_id": f"C{i}"}
                  for i, c in enumerate(itertools.product(*(_VALUES[g] for g in others)))]
        assert (Evaluator.for_cohort(make_cohort(combos)).evaluate().status == PENDING).any(), f


def test_template_has_one_row_per_patient_units_dropdowns_and_criteria():
    from openpyxl import load_workbook

    rows = [eligible_row("SSc", patient_id="=cmd", hemoglobin_g_l=None, ssc_subtype=None),
            {**eligible_row("IIM", patient_id="p2", consent_signed=None), "disease": None}]
    wl = build_worklist(make_cohort(rows))
    wb = load_workbook(io.BytesIO(template_bytes(wl)))
    ws = wb["chart review"]
    heads = [c.value for c in ws[1]]
    assert heads[:4] == ["patient_id", "disease", "status (now)", "fields deciding it (collect)"]
    assert "hemoglobin_g_l [g/L]" in heads and "ssc_subtype" in heads and "consent_signed" in heads
    assert ws.max_row == 3
    assert ws.cell(2, 1).value == "'=cmd"  # formula-like IDs neutralised
    col = heads.index("hemoglobin_g_l [g/L]") + 1
    assert "INC-2.hb" in ws.cell(1, col).comment.text
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation if dv.type == "list"}
    letter = lambda name: ws.cell(1, heads.index(name) + 1).column_letter  # noqa: E731
    assert lists[f"{letter('consent_signed')}2:{letter('consent_signed')}3"] == '"yes,no"'
    assert lists[f"{letter('ssc_subtype')}2:{letter('ssc_subtype')}3"] == '"diffuse,limited,sine"'
    assert lists["B2:B3"] == '"' + ",".join(DISEASES) + '"'
    needed = ws.cell(3, heads.index("consent_signed") + 1).fill.fgColor.rgb
    not_needed = ws.cell(2, heads.index("consent_signed") + 1).fill.fgColor.rgb
    assert needed.endswith("FFF2CC") and not_needed.endswith("DDDDDD")
    fields = pd.read_excel(io.BytesIO(template_bytes(wl)), sheet_name="fields")
    assert list(fields["field"])[0] == "disease" and set(fields["field"]) == {
        "disease", "hemoglobin_g_l", "ssc_subtype", "consent_signed"}


def test_cli_writes_template_and_field_table(tmp_path, capsys):
    from eligibility.cli import main

    rows = [eligible_row("SSc", patient_id=f"P{i}", mrss=None) for i in range(3)]
    src = tmp_path / "c.csv"
    pd.DataFrame(rows, columns=[f.name for f in FIELDS]).to_csv(src, index=False)
    out = tmp_path / "t.xlsx"
    assert main(["worklist", str(src), "-o", str(out), "--fields", str(tmp_path / "f.csv")]) == 0
    assert "3 patient(s) to review, 1 field(s) to collect; most needed: mrss (3)" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "f.csv", encoding="utf-8-sig")["field"].tolist() == ["mrss"]
    scen = tmp_path / "s.json"
    scen.write_text('{"disabled": ["SSC-INC-3"]}')
    assert main(["worklist", str(src), "-o", str(tmp_path / "t.csv"), "--scenario", str(scen)]) == 0
    assert "0 patient(s) to review" in capsys.readouterr().err
    assert main(["worklist", str(src), "-o", str(tmp_path / "t.pdf")]) == 2
