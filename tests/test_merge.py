"""Chart review merged over an EHR cohort: fill, conflicts, overrides, provenance, CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.cli import main
from eligibility.merge import MergeError, Table, header_field, merge, read_table


def _csv(tmp_path, name, rows):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


EHR = [
    {"patient_id": "A", "disease": "SSc", "alt_u_l": 30, "consent_signed": None, "sex": "F"},
    {"patient_id": "B", "disease": "SSc", "alt_u_l": 142, "consent_signed": "yes", "sex": "M"},
]
EHR_PROV = [
    {"patient_id": "B", "field": "alt_u_l", "value": "142", "source_table": "Observation", "vocabulary_id": "LOINC",
     "concept_code": "1742-6", "date": "2020-01-02", "original_value": "142", "original_unit": "IU/L"},
]


def test_sheet_fills_empty_and_absent_fields_and_records_the_row(tmp_path):
    ehr = read_table(_csv(tmp_path, "ehr.csv", EHR))
    sheet = read_table(_csv(tmp_path, "sheet.csv", [
        {"patient_id": "A", "consent_signed": "Yes", "mrss [points]": "14"},
        {"patient_id": "B", "consent_signed": "yes", "mrss [points]": None},
    ]))
    res = merge(ehr, sheet)
    got = res.frame.set_index("patient_id")
    assert got.loc["A", "consent_signed"] == "Yes" and got.loc["A", "mrss"] == "14"
    assert got.loc["B", "consent_signed"] == "yes" and got.loc["B", "mrss"] is None
    assert res.filled == 2 and res.conflicts.empty  # 'yes' = 'yes' is no conflict
    prov = res.provenance.set_index(["patient_id", "field"])
    assert prov.loc[("A", "mrss"), "source_table"] == "chart review: sheet.csv, row 1"
    assert prov.loc[("A", "consent_signed"), "source_table"] == "chart review: sheet.csv, row 1"
    assert prov.loc[("B", "consent_signed"), "source_table"] == "EHR cohort: ehr.csv"


def test_conflicts_are_reported_and_the_ehr_value_kept_unless_overridden(tmp_path):
    ehr = read_table(_csv(tmp_path, "ehr.csv", EHR))
    sheet = read_table(_csv(tmp_path, "sheet.csv", [
        {"patient_id": "B", "alt_u_l [U/L]": "42", "sex": "m", "consent_signed": "no"},
        {"patient_id": "A", "alt_u_l [U/L]": "30.0", "sex": "M", "consent_signed": None},
    ]))
    prov = pd.DataFrame(EHR_PROV)
    res = merge(ehr, sheet, ehr_provenance=prov)
    c = res.conflicts.set_index(["patient_id", "field"])
    # 30 = 30.0 and M = m are the same values; three real conflicts
    assert sorted(c.index) == [("A", "sex"), ("B", "alt_u_l"), ("B", "consent_signed")]
    assert c.loc[("B", "alt_u_l"), "ehr_value"] == "142" and c.loc[("B", "alt_u_l"), "sheet_value"] == "42"
    assert c.loc[("B", "alt_u_l"), "ehr_source"] == "Observation LOINC 1742-6 2020-01-02"
    assert c.loc[("B", "alt_u_l"), "sheet_row"] == 1 and set(c["used"]) == {"EHR"}
    assert res.frame.set_index("patient_id").loc["B", "alt_u_l"] == "142"
    p = res.provenance.set_index(["patient_id", "field"])
    assert p.loc[("B", "alt_u_l"), "concept_code"] == "1742-6"  # EHR provenance kept

    one = merge(ehr, sheet, override=["alt_u_l"], ehr_provenance=prov)
    got = one.frame.set_index("patient_id")
    assert got.loc["B", "alt_u_l"] == "42" and got.loc["B", "consent_signed"] == "yes"
    assert one.overridden == 1 and len(one.conflicts) == 3
    assert one.provenance.set_index(["patient_id", "field"]).loc[("B", "alt_u_l"), "source_table"] == \
        "chart review: sheet.csv, row 1"
    every = merge(ehr, sheet, override="all")
    assert every.overridden == 3 and every.frame.set_index("patient_id").loc["A", "sex"] == "M"


def test_unreadable_sheet_cells_are_reported_with_row_column_value(tmp_path):
    ehr = read_table(_csv(tmp_path, "ehr.csv", EHR))
    sheet = read_table(_csv(tmp_path, "sheet.csv", [{"patient_id": "A", "consent_signed": "maybe"}]))
    res = merge(ehr, sheet)
    assert res.errors == ["sheet.csv: row 1 (patient_id A), column consent_signed, value 'maybe': "
                          "not readable as yesno; written as given"]
    assert res.frame.set_index("patient_id").loc["A", "consent_signed"] == "maybe"


def test_unknown_patients_are_added_and_said_duplicates_refused(tmp_path):
    ehr = read_table(_csv(tmp_path, "ehr.csv", EHR))
    sheet = read_table(_csv(tmp_path, "sheet.csv", [{"patient_id": "Z", "consent_signed": "yes"}]))
    res = merge(ehr, sheet)
    assert list(res.frame["patient_id"]) == ["A", "B", "Z"]
    assert any("patient_id Z is not in ehr.csv" in n for n in res.notes)
    dup = read_table(_csv(tmp_path, "dup.csv", [{"patient_id": "A"}, {"patient_id": "A"}]))
    with pytest.raises(MergeError, match="duplicate patient_id: A"):
        merge(ehr, dup)
    with pytest.raises(MergeError, match="unknown field"):
        merge(ehr, sheet, override=["alt"])


def test_header_field_reads_units_in_brackets():
    assert header_field("alt_u_l [U/L]") == "alt_u_l"
    assert header_field("Consent signed") == "consent_signed"
    assert header_field("status (now)") is None


def test_cli_writes_merged_provenance_and_conflicts(tmp_path, capsys):
    ehr = _csv(tmp_path, "ehr.csv", EHR)
    pd.DataFrame(EHR_PROV).to_csv(tmp_path / "ehr.provenance.csv", index=False)
    sheet = _csv(tmp_path, "sheet.csv", [{"patient_id": "B", "alt_u_l": "42"}, {"patient_id": "A", "consent_signed": "yes"}])
    out = tmp_path / "merged.csv"
    assert main(["merge", str(ehr), str(sheet), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "conflict: patient_id B, field alt_u_l: EHR '142' (Observation LOINC 1742-6 2020-01-02) vs sheet '42'" in err
    assert "1 value(s) filled, 1 conflict(s) (0 overridden)" in err
    merged = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert list(merged["consent_signed"]) == ["yes", "yes"]
    assert (tmp_path / "merged.provenance.csv").is_file() and (tmp_path / "merged.conflicts.csv").is_file()
    assert main(["merge", str(ehr), str(sheet), "-o", str(tmp_path / "m.txt")]) == 2
    assert main(["merge", str(ehr), str(tmp_path / "nope.csv"), "-o", str(out)]) == 2
    assert "nope.csv: cannot read file" in capsys.readouterr().err


def test_parquet_in_and_out_keep_provenance_beside(tmp_path):
    ehr = tmp_path / "ehr.parquet"
    pd.DataFrame(EHR).astype("string").to_parquet(ehr)
    pd.DataFrame(EHR_PROV).to_parquet(tmp_path / "ehr.provenance.parquet")
    sheet = _csv(tmp_path, "sheet.csv", [{"patient_id": "A", "consent_signed": "yes"}])
    out = tmp_path / "m.parquet"
    assert main(["merge", str(ehr), str(sheet), "-o", str(out)]) == 0
    prov = pd.read_parquet(tmp_path / "m.provenance.parquet").set_index(["patient_id", "field"])
    assert prov.loc[("B", "alt_u_l"), "concept_code"] == "1742-6"
    assert prov.loc[("A", "consent_signed"), "source_table"] == "chart review: sheet.csv, row 1"
    assert pd.read_parquet(out).set_index("patient_id").loc["A", "consent_signed"] == "yes"


_YN = st.sampled_from([None, "yes", "no", "Yes", "NO"])
_NUM = st.sampled_from([None, "1", "1.0", "2", "40", "142"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_YN, _NUM, _YN, _NUM), min_size=1, max_size=8), st.booleans(), st.randoms(use_true_random=False))
def test_merge_invariants(cells, override, rnd):
    """No patient lost or reordered; an empty sheet cell never changes a value; a filled EHR value is
    replaced only under override and then only with a conflict reported; every conflict is a real
    difference of typed values."""
    ehr = Table("ehr.csv", pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(len(cells))], "disease": ["SSc"] * len(cells),
        "consent_signed": [c[0] for c in cells], "alt_u_l": [c[1] for c in cells]}, dtype=object))
    order = list(range(len(cells)))
    rnd.shuffle(order)
    sheet = Table("s.csv", pd.DataFrame({
        "patient_id": [f"P{i}" for i in order], "consent_signed": [cells[i][2] for i in order],
        "alt_u_l": [cells[i][3] for i in order]}, dtype=object))
    res = merge(ehr, sheet, override="all" if override else None)
    assert list(res.frame["patient_id"]) == list(ehr.frame["patient_id"])
    conflicts = {(c["patient_id"], c["field"]) for c in res.conflicts.to_dict("records")}
    norm = {"consent_signed": lambda v: v.lower(), "alt_u_l": float}
    for i, (e_yn, e_num, s_yn, s_num) in enumerate(cells):
        for name, e, s_ in (("consent_signed", e_yn, s_yn), ("alt_u_l", e_num, s_num)):
            got = res.frame.loc[i, name]
            differ = e is not None and s_ is not None and norm[name](e) != norm[name](s_)
            assert ((f"P{i}", name) in conflicts) == differ
            if s_ is None:
                assert got == e
            elif e is None:
                assert got == s_
            else:
                assert got == (s_ if override and differ else e)
    assert res.filled == sum((e is None) and (s_ is not None) for c in cells for e, s_ in ((c[0], c[2]), (c[1], c[3])))
