"""The smallest relaxation that reaches a target: minimality checked by brute force on small cohorts."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
from factory import eligible_row, make_cohort

from eligibility.catalog import default_catalog
from eligibility.cli import main
from eligibility.evaluate import ELIGIBLE, Evaluator
from eligibility.relax import RelaxError, candidate_moves, relax
from eligibility.scenario import baseline, load_scenario, resolve

CAT = default_catalog()
ONLY = ["age_max", "bvas_min", "essdai_min", "SJS-INC-2", "AAV-INC-2"]


def rows():
    return [
        eligible_row("SSc"), eligible_row("AAV"), eligible_row("SjS"),
        eligible_row("SSc", age_years=70),  # needs age_max ≥ 70
        eligible_row("AAV", bvas=12),  # needs bvas_min ≤ 12
        eligible_row("SjS", essdai=3),  # needs essdai_min ≤ 3
        eligible_row("AAV", bvas=12, age_years=68),  # needs both
        eligible_row("SjS", anti_ssa_ro60_pos=False),  # needs SJS-INC-2 off
        eligible_row("AAV", anca_pr3_pos=False, anca_mpo_pos=False),  # needs AAV-INC-2 off
        eligible_row("AAV", bvas=12, anca_pr3_pos=False, anca_mpo_pos=False),  # both of those
        eligible_row("SSc", hiv_pos=True),  # locked: never admitted
    ]


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator.for_cohort(make_cohort(rows()))


def public_count(evaluator, parameters, disabled, disease=None) -> int:
    """Eligible count through the public scenario path (independent of the search's counter)."""
    status = evaluator.status(resolve({"parameters": parameters, "disabled": disabled}))
    sl = slice(0, len(evaluator)) if disease is None else evaluator.columns.bounds[disease]
    return int((status[sl] == ELIGIBLE).sum())


def brute_force(evaluator, target, disease=None, max_changes=3):
    """(fewest changes, smallest distance) over every combination of the candidate moves."""
    dims = candidate_moves(CAT, baseline().params, only=ONLY)
    if disease is not None:
        dims = {d: m for d, m in dims.items() if d in ONLY}
    if public_count(evaluator, {}, [], disease) >= target:
        return 0, 0.0
    for k in range(1, max_changes + 1):
        best = None
        for names in itertools.combinations(sorted(dims), k):
            for moves in itertools.product(*(dims[n] for n in names)):
                params = {m.dim: (sorted(m.value) if isinstance(m.value, frozenset) else m.value)
                          for m in moves if not m.is_criterion}
                disabled = [m.dim for m in moves if m.is_criterion]
                if public_count(evaluator, params, disabled, disease) >= target:
                    d = round(sum(m.distance for m in moves), 9)
                    best = d if best is None else min(best, d)
        if best is not None:
            return k, best
    return None


@pytest.mark.parametrize("target, disease", [(4, None), (5, None), (6, None), (7, None), (8, None),
                                             (2, "AAV"), (3, "AAV"), (4, "AAV"), (3, "SjS")])
def test_relax_is_minimal_by_brute_force(evaluator, target, disease):
    options = relax(evaluator, target, disease, only=ONLY)
    expected = brute_force(evaluator, target, disease)
    assert options, (target, disease)
    best = options[0]
    assert (best.changes, best.distance) == expected
    for o in options:
        assert o.changes == best.changes  # only the fewest-changes options are listed
        assert public_count(evaluator, o.parameters, o.disabled, disease) == o.eligible >= target
        for k in range(o.changes):  # no smaller part of an option reaches the target
            for keep in itertools.combinations([*o.parameters, *o.disabled], k):
                p = {n: v for n, v in o.parameters.items() if n in keep}
                d = [c for c in o.disabled if c in keep]
                assert public_count(evaluator, p, d, disease) < target
    assert [(o.changes, o.distance) for o in options] == sorted((o.changes, o.distance) for o in options)


def test_gained_counts_and_rows(evaluator):
    base = public_count(evaluator, {}, [])
    for o in relax(evaluator, 5, only=ONLY):
        assert o.gained == o.eligible - base == len(o.gained_rows)
        status = evaluator.evaluate(resolve({"parameters": o.parameters, "disabled": o.disabled})).status_labels()
        before = evaluator.evaluate(baseline()).status_labels()
        assert o.gained_rows == [i for i in range(len(status)) if status[i] == "eligible" != before[i]]


def test_target_already_met_and_unreachable(evaluator):
    met = relax(evaluator, 2)
    assert len(met) == 1 and met[0].changes == 0 and met[0].gained == 0
    assert relax(evaluator, len(rows())) == []  # the HIV-positive patient is locked out


def test_safety_criteria_are_locked_by_default_and_the_planner_can_lock_more(evaluator):
    locked = {c.id for c in CAT.criteria if c.locked}
    assert {"EXC-5", "EXC-6", "EXC-4", "EXC-11", "EXC-2"} <= locked
    dims = candidate_moves(CAT, baseline().params)
    assert not locked & set(dims)
    assert "hb_min_g_l" not in dims and "egfr_min" not in dims  # read by locked organ-function criteria
    assert "unreadable_event_unknown" not in dims  # a data-handling setting, not a limit
    assert "mmt8_max" not in dims  # read in both directions: no relaxing direction
    options = relax(evaluator, 4, lock=["age_max"])  # a locked parameter stays; its criterion may go
    assert options and all("age_max" not in o.parameters for o in options)
    options = relax(evaluator, 4, lock=["INC-1"])  # a locked criterion: neither off nor its limits moved
    assert options and all("age_max" not in o.parameters and "INC-1" not in o.disabled for o in options)
    with pytest.raises(RelaxError, match="NOPE"):
        relax(evaluator, 4, lock=["NOPE"])


@pytest.mark.parametrize("exact_budget", [6_000, 1])
@pytest.mark.parametrize("target", [9, 10])
def test_many_changes_reach_and_are_irreducible(evaluator, target, exact_budget):
    """Targets 9 and 10 need four and five changes: exact search on these five dimensions,
    the greedy search when the budget allows no exact search at all."""
    options = relax(evaluator, target, only=ONLY, exact_budget=exact_budget)
    assert options
    o = options[0]
    assert o.changes == target - 5
    assert o.exact == (exact_budget > 1)
    assert public_count(evaluator, o.parameters, o.disabled) >= target
    for drop in [*o.parameters, *o.disabled]:
        p = {n: v for n, v in o.parameters.items() if n != drop}
        assert public_count(evaluator, p, [c for c in o.disabled if c != drop]) < target


def test_relax_cli_json_options_are_scenario_files(tmp_path, capsys):
    src = tmp_path / "cohort.csv"
    pd.DataFrame([dict(r, patient_id=f"P{i}") for i, r in enumerate(rows())]).to_csv(src, index=False)
    assert main(["relax", str(src), "--target", "5", "--json"]) == 0
    options = json.loads(capsys.readouterr().out)
    assert options
    for i, o in enumerate(options):
        assert list(o) == ["parameters", "disabled", "eligible", "gained"]
        path = tmp_path / f"opt{i}.json"
        path.write_text(json.dumps(o))
        load_scenario(path)  # a valid scenario file as it stands
        assert main(["screen", str(src), "--scenario", str(path), "-o", str(tmp_path / f"out{i}.csv")]) == 0
        out = pd.read_csv(tmp_path / f"out{i}.csv")
        assert (out["status"] == "eligible").sum() == o["eligible"] >= 5
        assert o["gained"] == o["eligible"] - 3
    assert main(["relax", str(src), "--target", "4", "--disease", "AAV", "--lock", "INC-1", "--json"]) == 0
    options = json.loads(capsys.readouterr().out)
    assert options and all("INC-1" not in o["disabled"] and "age_max" not in o["parameters"] for o in options)
    assert main(["relax", str(src), "--target", "5"]) == 0
    assert "options, best first" in capsys.readouterr().out
    assert main(["relax", str(src), "--target", "5", "--lock", "XYZ"]) == 2
    assert "XYZ" in capsys.readouterr().err
    assert main(["relax", str(tmp_path / "missing.csv"), "--target", "5"]) == 2


def test_relax_directions_agree_with_the_property_tests_derivation():
    from test_properties import POLARITY

    from eligibility.relax import relax_directions

    assert {k: v for k, v in relax_directions(CAT).items()} == POLARITY
