"""Property-based tests of the screening engine on random cohorts.

Cohorts are generated around every threshold of the catalog (values at, just above and
just below each default cut-off, empty cells, NaN, unrecognised and empty diseases,
empty yes/no and category cells), starting from a patient who passes everything so
that statuses vary. Invariants:

(a) relaxing a single threshold never lowers anyone's status (so never lowers the
    eligible count, nor eligible + pending); disabling a criterion likewise;
(b) every input row comes out once, in input order, with its patient_id;
(c) first_reason / failed / unknown / status are consistent;
(d) a sole reason is one cause, and disabling that cause admits (eligible or pending);
(e) the vectorised engine equals the per-patient reference evaluation,
    eligibility/reference.py (plain Python, one row at a time, Kleene logic on scalars,
    following criteria.md; it shares only the rule dispatch with eligibility.rules), under
    random parameters, switched-off criteria, absent columns and readings.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pytest
import yaml
from factory import eligible_row, make_cohort
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eligibility import attribution as A
from eligibility import reference as R
from eligibility.catalog import default_catalog
from eligibility.evaluate import Evaluator
from eligibility.fields import FIELDS
from eligibility.scenario import resolve
from eligibility.screen import results_frame, screen_frame

CAT = default_catalog()
SPEC = yaml.safe_load(resources.files("eligibility.protocol").joinpath("criteria.yaml").read_text("utf-8"))
PARAMS = {p["name"]: p for p in yaml.safe_load(
    resources.files("eligibility.protocol").joinpath("parameters.yaml").read_text("utf-8"))}
DEFAULTS = {n: (frozenset(p["default"]) if p["type"] == "set" else p["default"]) for n, p in PARAMS.items()}

DISEASES = ("SSc", "IIM", "AAV", "SjS", "APS")
OPTIONAL_ULN = {"alt_uln_u_l", "ast_uln_u_l", "tbil_uln_umol_l", "inr_uln", "pt_uln_s"}
FIELD_KIND = {f.name: f.kind for f in FIELDS}
CATEGORIES = {f.name: f.categories for f in FIELDS}
STATUS_RANK = {"ineligible": 0, "pending": 1, "eligible": 2}

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# =======================================================================================
# Reference evaluation (the oracle): eligibility/reference.py, plain Python per patient
# =======================================================================================
def reference(rows: list[dict], params: dict, disabled: set[str], present: set[str],
              catalog=CAT) -> list[dict]:
    active, not_assessed = R.active_units(catalog, params, present, disabled)
    out = []
    for row in rows:
        # only the file's columns exist: an absent column (e.g. a per-row ULN) is no value at all
        seen = {k: v for k, v in row.items() if k in present or k in ("patient_id", "disease")}
        res = R.screen_row_detail(seen, params, catalog, active)
        out.append({"status": res.status, "first_reason": res.failed[0] if res.failed else "",
                    "failed": ";".join(res.failed), "unknown": ";".join(res.unknown),
                    "not_assessed": ";".join(not_assessed)})
    return out


def units():
    for c in SPEC["criteria"]:
        if "parts" in c:
            for part in c["parts"]:
                yield f"{c['id']}.{part['id']}", c, part["rule"]
        else:
            yield c["id"], c, c["rule"]


# =======================================================================================
# Generators: values around every threshold of the catalog
# =======================================================================================
def _walk(node):
    if node["kind"] == "ref":
        node = SPEC["definitions"][node["name"]]
    yield node
    for key in ("of", "item", "if", "then"):
        sub = node.get(key)
        for child in (sub if isinstance(sub, list) else [sub] if sub else []):
            yield from _walk(child)


@cache
def interesting_numbers() -> dict[str, list]:
    vals: dict[str, set] = {}

    def add(name, *xs):
        vals.setdefault(name, set()).update(round(x, 6) for x in xs)

    for _, _, rule in units():
        for n in _walk(rule):
            if n["kind"] == "cmp" and n["field"] != "n_prior_immunomodulators":
                t = DEFAULTS[n["param"]] if "param" in n else n["value"]
                t = -t if n.get("negate") else t
                add(n["field"], t, t - 0.01, t + 0.01, t - 1, t + 1)
            elif n["kind"] == "uln":
                lim = DEFAULTS[n["max_param"]] * DEFAULTS[n["default_param"]]
                add(n["field"], lim, lim - 0.01, lim + 0.01, lim * 2)
                add(n["uln_field"], DEFAULTS[n["default_param"]], DEFAULTS[n["default_param"]] * 1.25)
            elif n["kind"] == "within":
                w = DEFAULTS[n["param"]]
                add(n["field"], w, w - 1, w - 0.5, 0, w + 30)
    for d in DISEASES:
        for k, v in eligible_row(d).items():
            if FIELD_KIND.get(k) == "number" and v is not None:
                add(k, v)
    return {k: sorted(v) for k, v in vals.items()}


def value_strategy(name: str):
    kind = FIELD_KIND[name]
    if kind == "number":
        return st.sampled_from([*interesting_numbers().get(name, [0, 1]), None, float("nan")])
    if kind == "yesno":
        return st.sampled_from([True, False, None])
    if kind == "category":
        return st.sampled_from([*CATEGORIES[name], None])
    if kind == "druglist":
        return st.sampled_from(["mycophenolate", "none", None, "mycophenolate;azathioprine", "snake oil",
                                "rituximab;snake oil", "tacrolimus;tacrolimus", "belimumab;rituximab;methotrexate"])
    raise AssertionError(name)


MUTABLE = sorted(n for n, k in FIELD_KIND.items() if k in ("number", "yesno", "category", "druglist"))
DROPPABLE = [n for n in MUTABLE if n != "weight_kg"]


@st.composite
def patient(draw):
    disease = draw(st.sampled_from([*DISEASES, *DISEASES, "Lupus", "other", None]))
    keys = draw(st.lists(st.sampled_from(MUTABLE), max_size=6, unique=True))
    changes = {k: draw(value_strategy(k)) for k in keys}
    return eligible_row(disease, **changes)


def cohorts(max_size=25):
    return st.lists(patient(), min_size=1, max_size=max_size).map(
        lambda rows: [dict(r, patient_id=f"id{i:03d}") for i, r in enumerate(rows)])


def present_sets():
    """All columns, or all but a few (absent columns are not assessed)."""
    return st.one_of(
        st.none(),
        st.lists(st.sampled_from(DROPPABLE), min_size=1, max_size=4, unique=True).map(
            lambda drop: [n for n in MUTABLE if n not in drop]),
    )


def _param_value(name: str):
    p = PARAMS[name]
    d = p["default"]
    if p["type"] == "bool":
        return st.booleans()
    if p["type"] == "count":
        return st.integers(0, 5)
    if p["type"] == "set":
        return st.lists(st.sampled_from(CATEGORIES[p["field"]]), unique=True)
    return st.sampled_from(sorted({d, 0, d * 0.5, d + 1, d * 1.5, round(max(d - 0.01, 0), 6)}))


scenario_params = st.fixed_dictionaries({}, optional={n: _param_value(n) for n in PARAMS})
ALL_IDS = [c.id for c in CAT.criteria] + [u.id for u in CAT.units]


def _screen(rows, scenario=None, present=None):
    return screen_frame(make_cohort(rows, present), resolve(scenario or {}))


def _safe(present, params) -> bool:
    """prior_cyclophosphamide absent while require_cyclophosphamide is false crashes the engine
    (KeyError; see test_criteria.py::test_cyclophosphamide_column_needed_only_when_required[False]).
    Keep that known bug out of the random tests so they test everything else."""
    return present is None or "prior_cyclophosphamide" in present or params.get("require_cyclophosphamide", True)


# =======================================================================================
# (e) engine == reference
# =======================================================================================
readings_choices = st.fixed_dictionaries({}, optional={n: st.sampled_from(sorted(r.alternatives))
                                                      for n, r in CAT.readings.items()})


@SETTINGS
@given(cohorts(), scenario_params, st.lists(st.sampled_from(ALL_IDS), max_size=3, unique=True), present_sets(),
       readings_choices)
def test_engine_matches_reference(rows, params, disabled, present, readings):
    assume(_safe(present, params))
    sc = {"parameters": params, "disabled": disabled, "readings": readings}
    r = resolve(sc)
    out = _screen(rows, sc, present)
    cols = set(make_cohort(rows, present).present)
    expected = reference(rows, r.params, set(r.disabled), cols, CAT.variant(r.readings))
    got = out[["status", "first_reason", "failed", "unknown", "not_assessed"]].to_dict("records")
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, (i, rows[i])


@SETTINGS
@given(cohorts(max_size=15))
def test_engine_matches_reference_at_protocol_defaults(rows):
    out = _screen(rows)
    expected = reference(rows, DEFAULTS, set(), {"disease", *MUTABLE})
    got = out[["status", "first_reason", "failed", "unknown", "not_assessed"]].to_dict("records")
    assert got == expected


def test_reference_agrees_on_factory_rows():
    rows = [eligible_row(d) for d in DISEASES]
    assert [x["status"] for x in reference(rows, DEFAULTS, set(), {"disease", *MUTABLE})] == ["eligible"] * 5


# =======================================================================================
# (b), (c) shape and consistency
# =======================================================================================
@SETTINGS
@given(cohorts(), scenario_params, present_sets())
def test_rows_in_input_order_and_consistent(rows, params, present):
    assume(_safe(present, params))
    out = _screen(rows, {"parameters": params}, present)
    assert len(out) == len(rows)
    assert list(out["patient_id"]) == [r["patient_id"] for r in rows]
    assert list(out["disease"].astype(object).where(out["disease"].notna(), None)) == [r["disease"] for r in rows]
    assert out["not_assessed"].nunique() == 1
    for rec in out.to_dict("records"):
        failed = [x for x in rec["failed"].split(";") if x]
        unknown = [x for x in rec["unknown"].split(";") if x]
        na = set(x for x in rec["not_assessed"].split(";") if x)
        assert not (set(failed) & set(unknown))
        assert not ((set(failed) | set(unknown)) & na)
        assert (rec["status"] == "ineligible") == bool(failed)
        assert (rec["status"] == "pending") == (not failed and bool(unknown))
        assert (rec["status"] == "eligible") == (not failed and not unknown)
        if rec["status"] == "ineligible":
            assert rec["first_reason"] == failed[0]
        else:
            assert rec["first_reason"] == ""
        order = [u.id for u in CAT.units]
        assert failed == sorted(failed, key=order.index)
        assert unknown == sorted(unknown, key=order.index)


# =======================================================================================
# (a) monotonicity: relaxing a threshold / disabling a criterion never lowers a status
# =======================================================================================
def _polarities() -> dict[str, set[int]]:
    """Per parameter, the directions in which changing it helps a patient pass.

    Each leaf has a polarity: +1 when its being true helps the patient (inclusion, even
    number of negations; `implies` flips its condition), −1 otherwise. A threshold leaf
    becomes true more often when its parameter is lowered (`ge`/`gt` on the value, or
    the negated `le` form) or raised (`lt`/`le`, `uln` limits and their default ULNs,
    `within` windows); `at_least` k, like `ge`, is easier when lowered; `param_true`
    when raised (true). The relaxing direction = polarity × that sign. A parameter
    read in both directions is ambiguous."""
    out: dict[str, set[int]] = {}

    def visit(node, pol):
        if node["kind"] == "ref":
            node = SPEC["definitions"][node["name"]]
        kind = node["kind"]
        if kind == "cmp" and "param" in node:
            up = +1 if node["op"] in ("lt", "le") else -1
            if node.get("negate"):
                up = -up
            out.setdefault(node["param"], set()).add(pol * up)
        elif kind == "uln":
            up = +1 if node["op"] in ("lt", "le") else -1
            out.setdefault(node["max_param"], set()).add(pol * up)
            out.setdefault(node["default_param"], set()).add(pol * up)
        elif kind == "within":
            out.setdefault(node["param"], set()).add(pol * +1)
            if "unreadable" in node:  # on: an unreadable cell is unknown instead of "never" (false)
                out.setdefault(node["unreadable"], set()).add(pol * +1)
        elif kind == "at_least":
            out.setdefault(node["param"], set()).add(pol * -1)
            for ch in node["of"]:
                visit(ch, pol)
        elif kind == "param_true":
            out.setdefault(node["param"], set()).add(pol * +1)
        elif kind == "not":
            visit(node["item"], -pol)
        elif kind == "implies":
            visit(node["if"], -pol)
            visit(node["then"], pol)
        elif kind in ("all", "any"):
            for ch in node["of"]:
                visit(ch, pol)

    for _, crit, rule in units():
        visit(rule, +1 if crit["kind"] == "incl" else -1)
    return out


POLARITY = _polarities()
# Parameters whose direction is ambiguous: `mmt8_max` is read as `mmt8 < max` (with the core
# set) and as `mmt8 ≥ max` (with GGO): raising it helps one branch and hurts the other.
AMBIGUOUS = sorted(n for n, d in POLARITY.items() if len(d) > 1)
RELAX = {n: next(iter(d)) for n, d in POLARITY.items() if len(d) == 1}
NUMERIC_RELAX = sorted(n for n in RELAX if PARAMS[n]["type"] in ("number", "count"))


def test_polarity_derivation():
    assert AMBIGUOUS == ["mmt8_max"]
    # every parameter but the sets, those only a non-default reading reads (readings.yaml) and
    # implausible_values_unknown: read by every number, not by a rule, it has no direction
    # (it turns a decision on a value to verify into "unknown", for passes and fails alike).
    assert set(POLARITY) == {n for n, p in PARAMS.items()
                             if p["type"] != "set" and CAT.units_reading_param(n)} - {"implausible_values_unknown"}
    expected = {
        "age_min": -1, "age_max": +1, "hb_min_g_l": -1, "wbc_min_10e9_l": -1, "anc_min_10e9_l": -1,
        "gcsf_washout_days": -1, "alt_max_x_uln": +1, "default_alt_uln_u_l": +1, "inr_max_x_uln": +1,
        "default_inr_uln": +1, "egfr_min": -1, "fvc_min_pct": -1, "dlco_min_pct": -1,
        "iv_abx_washout_days": -1, "iga_min_mg_dl": -1, "investigational_washout_days": -1,
        "malignancy_free_years": -1, "live_vaccine_washout_days": -1, "conventional_therapy_min_months": -1,
        "gc_min_mg_kg_day": -1, "require_cyclophosphamide": -1, "min_immunomodulators": -1,
        "ssc_score_min": -1, "disease_duration_max_months": +1, "mrss_min": -1, "ild_pft_max_pct": +1,
        "mrss_progression_pct": -1, "fvc_decline_pct": -1, "fvc_decline_with_dlco_pct": -1,
        "dlco_decline_pct": -1, "iim_prob_min_pct": -1, "core_set_min_abnormal": -1, "phga_min_cm": -1,
        "haq_min": -1, "enzyme_min_x_uln": -1, "bvas_min": -1, "bvas_min_major_items": -1,
        "sjs_score_min": -1, "essdai_min": -1, "apl_min_positive_count": -1, "apl_min_interval_weeks": -1,
        "caps_min_organs": -1, "unreadable_event_unknown": -1,
    }
    for name, direction in expected.items():
        assert RELAX[name] == direction, name


def _relaxed_value(name: str, base, frac: float):
    d = RELAX[name]
    if PARAMS[name]["type"] == "count":
        return max(0, base - 1 - int(frac * 3)) if d < 0 else base + 1 + int(frac * 3)
    if d < 0:
        return round(base * frac, 6)  # lower, staying >= 0
    return round(base * (1 + frac) + frac * 10, 6)


def _ranks(out):
    return [STATUS_RANK[s] for s in out["status"]]


def _check_not_worse(before, after):
    a, b = _ranks(before), _ranks(after)
    assert all(y >= x for x, y in zip(a, b, strict=True))
    eligible = lambda r: sum(x == 2 for x in r)  # noqa: E731
    eligible_or_pending = lambda r: sum(x >= 1 for x in r)  # noqa: E731
    assert eligible(b) >= eligible(a)
    assert eligible_or_pending(b) >= eligible_or_pending(a)


@SETTINGS
@given(cohorts(), st.sampled_from(NUMERIC_RELAX), st.floats(0, 0.999), scenario_params)
def test_relaxing_a_threshold_never_lowers_status(rows, name, frac, base_params):
    base_params = {k: v for k, v in base_params.items() if k != name}
    base = resolve({"parameters": base_params}).params[name]
    new = _relaxed_value(name, base, frac)
    assume(new != base)
    cohort = make_cohort(rows)
    ev = Evaluator.for_cohort(cohort)
    before = results_frame(ev.evaluate(resolve({"parameters": base_params})), cohort.frame)
    after = results_frame(ev.evaluate(resolve({"parameters": {**base_params, name: new}})), cohort.frame)
    _check_not_worse(before, after)


# Contexts in which the second-line thresholds matter (an OR branch that is otherwise
# settled by another clause): e.g. SSC-INC-4 progression arms only count when RR-A fails.
CONTEXTS = [
    ("SSc", {}), ("SSc", {"disease_course": "responding"}), ("SSc", {"mrss": 0, "hrct_ggo": True}),
    ("SSc", {"disease_course": "responding", "fvc_change_6m_pct": -5, "dlco_change_6m_pct": -15}),
    ("IIM", {}), ("IIM", {"ptga_cm": 0}), ("AAV", {}), ("AAV", {"bvas_major_items": 0}),
    ("SjS", {}), ("SjS", {"sjs_aecg_2002_met": False}), ("APS", {}),
    ("APS", {"recurrent_thrombosis_on_anticoagulation": False, "caps_onset_within_1_week": True,
             "caps_small_vessel_occlusion": True, "caps_organ_count": 3}),
]


@cache
def _fixed_cohort():
    rows = []
    for d, ctx in CONTEXTS:
        rows.append(eligible_row(d, **ctx))
        for drugs in ("none", None, "rituximab;tacrolimus"):
            rows.append(eligible_row(d, **ctx, prior_immunomodulators=drugs))
        for fld, values in interesting_numbers().items():
            for v in values:
                rows.append(eligible_row(d, **{**ctx, fld: v}))
    cohort = make_cohort(rows)
    evaluator = Evaluator.for_cohort(cohort)
    return cohort, evaluator, results_frame(evaluator.evaluate(resolve({})), cohort.frame)


@pytest.mark.parametrize("name", NUMERIC_RELAX)
def test_relaxing_each_threshold_on_a_fixed_cohort(name):
    """Every relaxable threshold, deterministic (complements the random test); the cohort
    crosses every threshold, so each relaxation admits someone."""
    cohort, evaluator, before = _fixed_cohort()
    new = _relaxed_value(name, DEFAULTS[name], 0.5)
    assert new != DEFAULTS[name]
    after = results_frame(evaluator.evaluate(resolve({"parameters": {name: new}})), cohort.frame)
    _check_not_worse(before, after)
    assert (after["status"] != before["status"]).any()


@SETTINGS
@given(cohorts(), st.sampled_from(["require_cyclophosphamide"]), scenario_params)
def test_dropping_cyclophosphamide_requirement_never_lowers_status(rows, name, base_params):
    base_params = {**base_params, name: True}
    before = _screen(rows, {"parameters": base_params})
    after = _screen(rows, {"parameters": {**base_params, name: False}})
    _check_not_worse(before, after)


@SETTINGS
@given(cohorts(), st.sampled_from(ALL_IDS), scenario_params)
def test_disabling_a_criterion_never_lowers_status(rows, cid, params):
    before = _screen(rows, {"parameters": params})
    after = _screen(rows, {"parameters": params, "disabled": [cid]})
    _check_not_worse(before, after)
    gone = resolve({"disabled": [cid]}).disabled
    for col in ("failed", "unknown", "not_assessed"):
        for text in after[col]:
            assert not (set(text.split(";")) & gone)


@SETTINGS
@given(cohorts(), st.sampled_from(sorted(n for n, p in PARAMS.items() if p["type"] == "set")), st.data())
def test_relaxing_a_set_never_lowers_status(rows, name, data):
    """Set parameters: an exclusion set relaxes by removing values, an inclusion set by adding."""
    p = PARAMS[name]
    crit = [u for u in CAT.units if name in CAT.params_of(u.rule)]
    kinds = {u.kind for u in crit}
    assert len(kinds) == 1
    default = set(DEFAULTS[name])
    if kinds == {"excl"}:
        new = data.draw(st.lists(st.sampled_from(sorted(default)), unique=True)) if default else []
    else:
        extra = data.draw(st.lists(st.sampled_from(CATEGORIES[p["field"]]), unique=True))
        new = sorted(default | set(extra))
    before = _screen(rows)
    after = _screen(rows, {"parameters": {name: new}})
    _check_not_worse(before, after)


# =======================================================================================
# (d) sole reason
# =======================================================================================
@SETTINGS
@given(cohorts(), scenario_params)
def test_sole_reason_is_one_cause_and_relaxing_it_admits(rows, params):
    cohort = make_cohort(rows)
    evaluator = Evaluator.for_cohort(cohort)
    ev = evaluator.evaluate(resolve({"parameters": params}))
    _, names = A._cause_index(ev)
    sole = ev.to_input_order(A.sole_cause(ev))
    out = results_frame(ev, cohort.frame)
    for i, rec in enumerate(out.to_dict("records")):
        failed = [x for x in rec["failed"].split(";") if x]
        causes = {CAT.cause_of[x] for x in failed}
        if sole[i] < 0:
            assert len(causes) != 1
            continue
        assert causes == {names[sole[i]]}
        relaxed = evaluator.evaluate(resolve({"parameters": params, "disabled": names[sole[i]].split(" / ")}))
        assert relaxed.status_labels()[i] in ("eligible", "pending")
    impact = A.cause_impact(ev)
    assert impact["impact"].sum() == int((sole >= 0).sum())
