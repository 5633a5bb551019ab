from factory import eligible_row, make_cohort

from eligibility.quality import missingness


def test_block_fields_count_only_their_disease():
    rows = [eligible_row("SSc", mrss=None), eligible_row("SSc"), eligible_row("IIM", hemoglobin_g_l=None)]
    m = missingness(make_cohort(rows)).set_index("field")
    assert m.loc["mrss", "applicable"] == 2 and m.loc["mrss", "missing"] == 1
    assert m.loc["mrss", "missing_pct"] == 50.0
    assert m.loc["hemoglobin_g_l", "applicable"] == 3 and m.loc["hemoglobin_g_l", "missing"] == 1
    assert m.loc["hemoglobin_g_l", "criteria"] == "INC-2.hb, EXC-2.hb"


def test_disease_filter_and_absent_columns():
    rows = [eligible_row("SSc"), eligible_row("IIM")]
    cohort = make_cohort(rows, present=["hemoglobin_g_l", "mrss", "mmt8"])
    m = missingness(cohort, "IIM").set_index("field")
    assert "mrss" not in m.index and "mmt8" in m.index
    assert m.loc["mmt8", "applicable"] == 1 and m.loc["mmt8", "missing"] == 0
    assert not m.loc["tb_latent", "present"] and m.loc["tb_latent", "missing"] == 1
