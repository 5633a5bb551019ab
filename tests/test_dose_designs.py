"""Decision rules of 3+3, BOIN and i3+3, case by case (spec: dose-escalation.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.dose.designs import (
    DEESCALATE,
    ESCALATE,
    STAY,
    DesignOptions,
    boin_boundaries,
    boin_count_table,
    boin_counts,
    boin_decision,
    elimination_threshold,
    i3p3_decision,
    i3p3_table,
    interval_next,
    is_eliminated,
    pava,
    prob_rate_exceeds,
    select_mtd,
    select_mtd_batch,
    three_plus_three_next,
    three_plus_three_sample_size,
)

# ---------------------------------------------------------------- Beta tail


def test_beta_tail_closed_forms():
    # Beta(4, 1): Pr(p > 0.3) = 1 - 0.3^4
    assert prob_rate_exceeds(3, 3, 0.3) == pytest.approx(1 - 0.3**4, abs=1e-15)
    # Beta(1, 4): Pr(p > 0.3) = 0.7^4
    assert prob_rate_exceeds(0, 3, 0.3) == pytest.approx(0.7**4, abs=1e-15)


@pytest.mark.parametrize("y,n", [(2, 3), (3, 6), (5, 12), (7, 12)])
def test_beta_tail_matches_numeric_integration(y, n):
    a, b = y + 1, n - y + 1
    x = np.linspace(0.3, 1.0, 200_001)
    dens = x ** (a - 1) * (1 - x) ** (b - 1) / (math.gamma(a) * math.gamma(b) / math.gamma(a + b))
    numeric = float(np.sum((dens[1:] + dens[:-1]) / 2 * np.diff(x)))
    assert prob_rate_exceeds(y, n, 0.3) == pytest.approx(numeric, abs=1e-8)


def test_elimination_needs_three_patients():
    assert not is_eliminated(2, 2, 0.3)
    assert elimination_threshold(2, 0.3) is None
    assert is_eliminated(3, 3, 0.3)
    assert not is_eliminated(2, 3, 0.3)  # Pr = 0.9163


# ---------------------------------------------------------------- BOIN


def test_boin_boundaries_for_030():
    lam_e, lam_d = boin_boundaries(0.30)
    # Liu & Yuan (2015, Table 1) and the spec quote 3 decimals truncated:
    # λe = 0.23649…, λd = 0.35851… (rounding would give 0.359)
    assert math.floor(lam_e * 1000) / 1000 == 0.236
    assert math.floor(lam_d * 1000) / 1000 == 0.358
    assert lam_e == pytest.approx(0.236, abs=1e-3)
    assert lam_d == pytest.approx(0.358, abs=1e-3)


def test_boin_count_table_matches_spec():
    table = boin_count_table(0.30, 12).set_index("n")
    assert table.loc[[3, 6, 9, 12], "escalate_if_le"].tolist() == [0, 1, 2, 2]
    assert table.loc[[3, 6, 9, 12], "deescalate_if_ge"].tolist() == [2, 3, 4, 5]
    assert table.loc[[3, 6, 9, 12], "eliminate_if_ge"].tolist() == [3, 4, 5, 7]
    assert table.loc[[1, 2], "eliminate_if_ge"].isna().all()


def test_boin_count_table_agrees_with_decision():
    table = boin_count_table(0.25, 20).set_index("n")
    for n in range(1, 21):
        for y in range(n + 1):
            dec = boin_decision(y, n, 0.25)
            assert (dec == ESCALATE) == (y <= table.loc[n, "escalate_if_le"])
            assert (dec == DEESCALATE) == (y >= table.loc[n, "deescalate_if_ge"])


@pytest.mark.parametrize(
    "y,n,expected",
    [(0, 3, ESCALATE), (1, 3, STAY), (2, 3, DEESCALATE), (1, 6, ESCALATE), (2, 6, STAY),
     (3, 6, DEESCALATE), (2, 12, ESCALATE), (4, 12, STAY), (5, 12, DEESCALATE)],
)
def test_boin_decision_cases(y, n, expected):
    assert boin_decision(y, n, 0.30) == expected


def test_boin_rejects_bad_target():
    with pytest.raises(ValueError, match="target"):
        boin_boundaries(1.2)


# ---------------------------------------------------------------- i3+3


@pytest.mark.parametrize(
    "y,n,expected,why",
    [
        (0, 3, ESCALATE, "0/3 below EI"),
        (1, 3, STAY, "1/3 = 0.333 inside [0.25, 0.35]"),
        (2, 3, DEESCALATE, "2/3 above; 1/3 not below EI"),
        (3, 3, DEESCALATE, "3/3 above; 2/3 not below EI"),
        (1, 4, STAY, "1/4 = 0.25 on the lower end (inclusive)"),
        (1, 5, ESCALATE, "1/5 = 0.2 below"),
        (2, 5, STAY, "2/5 above, but 1/5 = 0.2 below EI"),
        (2, 6, STAY, "2/6 inside"),
        (3, 6, DEESCALATE, "3/6 above; 2/6 inside EI"),
        (2, 9, ESCALATE, "2/9 = 0.222 below"),
        (4, 9, DEESCALATE, "4/9 above; 3/9 inside"),
        (7, 20, STAY, "7/20 = 0.35 on the upper end (inclusive)"),
    ],
)
def test_i3p3_decision_cases(y, n, expected, why):
    assert i3p3_decision(y, n, 0.30) == expected, why


def test_i3p3_table_marks_elimination_and_blanks_default():
    table = i3p3_table(0.30, 6)
    assert table.loc[0, 3] == "E"
    assert table.loc[1, 3] == "S"
    assert table.loc[2, 3] == "D"
    assert table.loc[3, 3] == "DU"
    assert table.loc[2, 5] == "S"
    assert table.loc[4, 6] == "DU"  # eliminated at 4/6 (same rule as BOIN)
    assert table.loc[4, 3] == ""
    assert list(table.columns) == [1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------- interval step


def nxt(n, y, cur, ef, design, options=0.30):
    r = interval_next(n, y, cur, ef, design, options)
    return r.next_level, r.eliminated_from, r.stop


def test_interval_next_lowest_eliminated_stops():
    assert nxt([3, 0, 0], [3, 0, 0], 0, 3, "boin") == (None, 0, "safety")


def test_interval_next_eliminates_level_and_above_and_deescalates():
    assert nxt([3, 3, 0], [0, 3, 0], 1, 3, "i3+3") == (0, 1, None)
    # escalation into an eliminated level is blocked: stay
    assert nxt([6, 3, 0], [0, 3, 0], 0, 1, "boin") == (0, 1, None)


def test_interval_next_top_and_bottom_clamps():
    assert nxt([0, 3], [0, 0], 1, 2, "boin") == (1, 2, None)  # escalate at top: stay
    assert nxt([3, 0], [2, 0], 0, 2, "boin") == (0, 2, None)  # de-escalate at bottom: stay


def test_interval_next_n_earlystop_only_when_staying():
    opt = DesignOptions(n_earlystop=9)
    # 9 at the top with no DLT: escalation impossible → stay → stop (R get.oc's third case)
    assert nxt([0, 9], [0, 0], 1, 2, "boin", opt) == (None, 2, "n_earlystop")
    # 9 at DL1 with 1 DLT (1/9 ≤ λe·9 = 2.1): escalate, no stop
    assert nxt([9, 0], [1, 0], 0, 2, "boin", opt) == (1, 2, None)
    # 9 at DL1 with 3 DLTs: stay (2 < 3 < 4) → stop; 6 patients with 2 DLTs: stay but n < 9
    assert nxt([9, 0], [3, 0], 0, 2, "boin", opt) == (None, 2, "n_earlystop")
    assert nxt([6, 0], [2, 0], 0, 2, "boin", opt) == (0, 2, None)
    # 9 at DL1 with 4 DLTs: de-escalate impossible at DL1 → stay → stop (R's second case)
    assert nxt([9, 0], [4, 0], 0, 2, "boin", opt) == (None, 2, "n_earlystop")
    # 9 at DL2 with 4 DLTs: de-escalate → no stop
    assert nxt([3, 9], [0, 4], 1, 2, "boin", opt) == (0, 2, None)


def test_extrasafe_stops_at_the_lowest_level_only():
    opt = DesignOptions(extrasafe=True, offset=0.05)
    # 2/3: Pr(p > 0.3 | 2/3) = 0.9163 > 0.95 − 0.05 = 0.90 → stop; without extrasafe: de-escalate (stay at DL1)
    assert prob_rate_exceeds(2, 3, 0.30) == pytest.approx(0.9163, abs=1e-4)
    assert nxt([3, 0], [2, 0], 0, 2, "boin", opt) == (None, 2, "safety")
    assert nxt([3, 0], [2, 0], 0, 2, "boin", 0.30) == (0, 2, None)
    # the same data at DL2 are not a trial stop
    assert nxt([3, 3], [0, 2], 1, 2, "boin", opt) == (0, 2, None)
    # offset 0.02: 0.9163 < 0.93 → no stop
    assert nxt([3, 0], [2, 0], 0, 2, "boin", opt.with_(offset=0.02)) == (0, 2, None)


def test_cutoff_eli_changes_the_elimination_counts():
    assert elimination_threshold(6, 0.30, 0.95) == 4
    assert elimination_threshold(6, 0.30, 0.80) == 3  # Pr(p > 0.3 | 3/6) = 0.874
    assert elimination_threshold(6, 0.30, 0.99) == 5  # Pr(p > 0.3 | 4/6) = 0.971, 5/6 = 0.996
    assert elimination_threshold(3, 0.30, 0.999) is None  # Pr(3/3) = 0.9919


def test_boin_counts_as_r_get_boundary_including_whole_lambda_d_n():
    # p1, p2 move λe / λd; b_e = ⌊λe·n⌋, b_d = ⌈λd·n⌉
    opt = DesignOptions(target=0.30, p1=0.10, p2=0.50)
    lam_e, lam_d = boin_boundaries(0.30, 0.10, 0.50)
    for n in range(1, 20):
        b_e, b_d = boin_counts(n, opt)
        assert b_e == math.floor(lam_e * n)
        elim = elimination_threshold(n, 0.30)
        expect_d = math.ceil(lam_d * n)
        assert b_d == (min(expect_d, elim) if elim is not None else expect_d)
    # where λd·n is a whole number R de-escalates only above it (y ≥ λd·n + 1)
    target, p2 = 0.25, 0.35
    lam_d = boin_boundaries(target, None, p2)[1]
    n = 10
    fake = DesignOptions(target=target)
    x = lam_d * n
    b_d = boin_counts(n, fake)[1]
    assert b_d == (round(x) + 1 if abs(round(x) - x) < 1e-12 else math.ceil(x))


def test_options_validate_with_one_line_messages():
    with pytest.raises(ValueError, match="p1 and p2"):
        DesignOptions(target=0.3, p1=0.35).validate()
    with pytest.raises(ValueError, match="n-earlystop"):
        DesignOptions(n_earlystop=0).validate()
    with pytest.raises(ValueError, match="offset"):
        DesignOptions(offset=0.5).validate()
    with pytest.raises(ValueError, match="cutoff-eli"):
        DesignOptions(cutoff_eli=1.0).validate()
    with pytest.raises(ValueError, match="start level 4"):
        DesignOptions(start_level=3).validate(3)
    with pytest.raises(ValueError, match="i3\\+3 interval"):
        DesignOptions(target=0.3, eps1=0.31).validate()


def test_i3p3_half_widths_move_the_interval():
    # EI [0.2, 0.4]: 1/3 inside → stay; 2/5 = 0.4 inside (upper end) → stay
    assert i3p3_decision(2, 5, 0.30, eps1=0.10, eps2=0.10) == STAY
    assert i3p3_decision(1, 5, 0.30, eps1=0.10, eps2=0.10) == STAY  # 0.2 on the lower end
    assert i3p3_decision(1, 5, 0.30, eps1=0.05, eps2=0.05) == ESCALATE


def test_stay_one_of_three():
    assert boin_decision(1, 3, 0.25) == DEESCALATE  # λd·3 = 0.895 → 1/3 de-escalates
    assert boin_decision(1, 3, DesignOptions(target=0.25, stay_1_of_3=True)) == STAY
    assert boin_decision(1, 6, DesignOptions(target=0.25, stay_1_of_3=True)) == ESCALATE


# ---------------------------------------------------------------- MTD selection


def test_pava_pools_violators():
    assert pava([0.5, 0.2], [1, 1]).tolist() == pytest.approx([0.35, 0.35])
    assert pava([0.1, 0.4, 0.2, 0.5], [1, 1, 3, 1]).tolist() == pytest.approx([0.1, 0.25, 0.25, 0.5])


def test_select_mtd_published_example():
    # Yan et al. (2020, J Stat Softw) example: n = 3,3,15,9,0; y = 0,0,4,4,0 → dose 3
    assert select_mtd([3, 3, 15, 9, 0], [0, 0, 4, 4, 0], 0.30) == 2


def test_select_mtd_ties_lower_when_above_higher_when_below():
    assert select_mtd([3, 3], [1, 1], 0.20) == 0  # tied estimate above target → lower
    assert select_mtd([3, 3], [0, 0], 0.30) == 1  # tied estimate below target → higher


def test_select_mtd_elimination_and_untried():
    assert select_mtd([3, 0, 0], [3, 0, 0], 0.30) is None
    assert select_mtd([6, 3, 0], [1, 3, 0], 0.30) == 0  # level 2 eliminated
    assert select_mtd([6, 6, 0], [0, 1, 0], 0.30) == 1  # untried level ignored


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 12)).map(lambda t: (max(t), min(t))),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0.2, 0.25, 0.3, 0.33]),
)
def test_select_mtd_batch_matches_scalar(levels, target):
    n = [a for a, _ in levels]
    y = [b for _, b in levels]
    scalar = select_mtd(n, y, target)
    batch = select_mtd_batch(np.array([n]), np.array([y]), target)[0]
    assert batch == (-1 if scalar is None else scalar)


# ---------------------------------------------------------------- 3+3


def step(n, y, cur):
    r = three_plus_three_next(n, y, cur)
    return r.action, r.next_level, r.mtd


def test_33_zero_of_three_escalates():
    assert step([3, 0, 0], [0, 0, 0], 0) == ("escalate", 1, None)


def test_33_one_of_three_adds_three():
    assert step([3, 0, 0], [1, 0, 0], 0) == ("stay", 0, None)


def test_33_one_of_six_escalates():
    assert step([6, 0, 0], [1, 0, 0], 0) == ("escalate", 1, None)


def test_33_two_of_six_exceeds_lowest_no_mtd():
    assert step([6, 0, 0], [2, 0, 0], 0) == ("stop", None, None)


def test_33_two_of_three_exceeds_lowest_no_mtd():
    assert step([3, 0, 0], [2, 0, 0], 0) == ("stop", None, None)
    assert step([3, 0, 0], [3, 0, 0], 0) == ("stop", None, None)


def test_33_exceeded_lower_has_six_is_mtd():
    assert step([6, 3, 0], [1, 2, 0], 1) == ("stop", None, 0)
    assert step([6, 6, 0], [1, 2, 0], 1) == ("stop", None, 0)


def test_33_exceeded_lower_has_three_adds_three_there():
    assert step([3, 3, 0], [0, 2, 0], 1) == ("de-escalate", 0, None)
    assert step([3, 6, 0], [0, 3, 0], 1) == ("de-escalate", 0, None)


def test_33_after_deescalation_one_of_six_is_mtd():
    assert step([6, 3, 0], [1, 2, 0], 0) == ("stop", None, 0)
    assert step([6, 3, 0], [0, 2, 0], 0) == ("stop", None, 0)


def test_33_after_deescalation_two_of_six_goes_further_down():
    assert step([3, 6, 3], [0, 2, 2], 1) == ("de-escalate", 0, None)
    assert step([6, 6, 3], [1, 2, 2], 1) == ("stop", None, 0)
    assert step([6, 3, 0], [2, 2, 0], 0) == ("stop", None, None)


def test_33_top_level_zero_of_three_is_mtd():
    assert step([3, 3, 3], [0, 0, 0], 2) == ("stop", None, 2)


def test_33_top_level_one_of_six_is_mtd():
    assert step([3, 3, 6], [0, 0, 1], 2) == ("stop", None, 2)


def test_33_single_level():
    assert step([3], [0], 0) == ("stop", None, 0)
    assert step([3], [1], 0) == ("stay", 0, None)
    assert step([6], [2], 0) == ("stop", None, None)


def test_33_rejects_impossible_state():
    with pytest.raises(ValueError):
        three_plus_three_next([4, 0], [0, 0], 0)


def test_33_without_deescalation_lower_level_is_the_mtd():
    r = three_plus_three_next([3, 3, 0], [0, 2, 0], 1, deescalation=False)
    assert (r.action, r.mtd) == ("stop", 0)
    # with 6 at the lower level both variants agree
    r = three_plus_three_next([6, 3, 0], [1, 2, 0], 1, deescalation=False)
    assert (r.action, r.mtd) == ("stop", 0)


def test_33_six_at_mtd():
    # top level 0/3: 3 more first
    r = three_plus_three_next([3, 3, 3], [0, 0, 0], 2, six_at_mtd=True)
    assert (r.action, r.next_level) == ("stay", 2)
    r = three_plus_three_next([3, 3, 6], [0, 0, 1], 2, six_at_mtd=True)
    assert (r.action, r.mtd) == ("stop", 2)
    # without de-escalation, six-at-MTD still treats 3 more at a lower level with 3
    r = three_plus_three_next([3, 3, 0], [0, 2, 0], 1, deescalation=False, six_at_mtd=True)
    assert (r.action, r.next_level) == ("de-escalate", 0)


def test_33_start_above_dl1_deescalates_into_untried_level():
    r = three_plus_three_next([0, 3, 0], [0, 2, 0], 1, deescalation=False)
    assert (r.action, r.next_level) == ("de-escalate", 0)
    r = three_plus_three_next([3, 3, 0], [0, 2, 0], 0)  # reached from above with 0/3: MTD
    assert (r.action, r.mtd) == ("stop", 0)


def test_33_sample_size_bounds():
    assert three_plus_three_sample_size(3) == {"minimum": 3, "all_escalate": 9, "maximum": 18}
