"""A what-if change recomputes only the units that read the changed parameter."""

from factory import eligible_row, make_cohort

from eligibility import evaluate as E
from eligibility.evaluate import Evaluator
from eligibility.scenario import resolve


def _recomputed(ev: Evaluator, scenario, monkeypatch) -> set[str]:
    """Units whose rule was evaluated (a cache miss) while evaluating `scenario`."""
    unit_of_rule = {id(u.rule): u.id for u in ev.catalog.units}
    evaluated: list[str] = []

    class Recording(E.RuleEvaluator):
        def __call__(self, node):
            if id(node) in unit_of_rule and not getattr(self, "_root_seen", False):
                self._root_seen = True
                evaluated.append(unit_of_rule[id(node)])
            return super().__call__(node)

    with monkeypatch.context() as m:
        m.setattr(E, "RuleEvaluator", Recording)
        ev.evaluate(scenario)
    return set(evaluated)


def test_one_parameter_change_recomputes_only_its_units(monkeypatch):
    cohort = make_cohort([eligible_row(d) for d in ("SSc", "IIM", "AAV", "SjS", "APS")])
    ev = Evaluator.for_cohort(cohort)

    def run(params):
        return _recomputed(ev, resolve({"parameters": params}), monkeypatch)

    assert len(run({})) == len(ev.catalog.units)  # cold: everything
    assert run({}) == set()  # same scenario: nothing
    assert run({"hb_min_g_l": 70}) == {"INC-2.hb", "EXC-2.hb"}
    assert run({"hb_min_g_l": 70, "gc_min_mg_kg_day": 0.5}) == {"IIM-INC-4", "AAV-INC-5", "SJS-INC-4"}
    assert run({}) == set()  # back to the protocol: still cached


def test_cached_results_equal_fresh_ones():
    rows = [eligible_row("SSc", hemoglobin_g_l=h) for h in (50, 60, 70, None)]
    cohort = make_cohort(rows)
    warm = Evaluator.for_cohort(cohort)
    for hb in (55, 65, 60, 55):
        scen = resolve({"parameters": {"hb_min_g_l": hb}})
        a = warm.evaluate(scen)
        b = Evaluator.for_cohort(cohort).evaluate(scen)
        assert (a.status == b.status).all() and (a.outcomes == b.outcomes).all()


def test_parallel_first_evaluation_equals_serial(monkeypatch):
    rows = [eligible_row(d, hemoglobin_g_l=h) for d in ("SSc", "IIM", "AAV", "SjS", "APS") for h in (50, 70, None)]
    cohort = make_cohort(rows)
    serial = Evaluator.for_cohort(cohort).evaluate()
    monkeypatch.setattr(E, "PARALLEL_MIN_ROWS", 0)
    parallel = Evaluator.for_cohort(cohort).evaluate()
    assert (serial.outcomes == parallel.outcomes).all() and (serial.status == parallel.status).all()
