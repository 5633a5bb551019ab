"""Protocol versions: a folder per version; differences in words; patients gained and lost with IDs."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import yaml
from factory import eligible_row, make_cohort

from eligibility.cli import main
from eligibility.evaluate import Evaluator
from eligibility.scenario import baseline, resolve
from eligibility.versions import VersionError, current_version, diff_protocols, load_version

PROTOCOL = Path(str(resources.files("eligibility.protocol")))


def copy_version(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for f in ("criteria.yaml", "parameters.yaml", "readings.yaml"):
        shutil.copy(PROTOCOL / f, folder / f)
    return folder


def edit(folder: Path, name: str, change) -> None:
    data = yaml.safe_load((folder / name).read_text("utf-8"))
    data = change(data) or data
    (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def amend(criteria):
    criteria["criteria"] = [c for c in criteria["criteria"] if c["id"] != "EXC-15"]
    criteria["criteria"].insert(7, {"id": "INC-8", "kind": "incl", "block": "common", "text": "Age at least 21",
                                    "rule": {"kind": "cmp", "field": "age_years", "op": "ge", "value": 21}})
    criteria["definitions"]["gc_dose"]["op"] = "gt"


def raise_age(params):
    for p in params:
        if p["name"] == "age_max":
            p["default"] = 70


ROWS = [
    dict(eligible_row("SSc", age_years=68), patient_id="old68"),  # gained: age_max 65 → 70
    dict(eligible_row("SSc", age_years=19), patient_id="young19"),  # lost: new INC-8
    dict(eligible_row("IIM", gc_max_mg_kg_day=1.0), patient_id="gc1"),  # lost: gc > 1
    dict(eligible_row("AAV", investigator_unsuitable=True, gc_max_mg_kg_day=1.5), patient_id="unsuit"),  # gained: EXC-15 removed
    dict(eligible_row("AAV", gc_max_mg_kg_day=1.5), patient_id="same"),
]


@pytest.fixture
def versions(tmp_path):
    old = copy_version(tmp_path, "v1")
    new = copy_version(tmp_path, "v2")
    edit(new, "criteria.yaml", amend)
    edit(new, "parameters.yaml", raise_age)
    return old, new


def test_a_folder_is_a_version_equal_to_the_bundled_protocol(tmp_path):
    v = load_version(copy_version(tmp_path, "v1"))
    assert [u.id for u in v.units] == [u.id for u in current_version().units]
    assert diff_protocols(current_version(), v).empty


def test_diff_lists_criteria_parameters_and_patients(versions):
    old, new = (load_version(f) for f in versions)
    cohort = make_cohort(ROWS)
    d = diff_protocols(old, new, cohort)
    assert [(c["id"], c["rule"]) for c in d.added] == [("INC-8", "Age ≥ 21 years")]
    assert [c["id"] for c in d.removed] == ["EXC-15"]
    changed = {c["id"]: c for c in d.changed}
    assert set(changed) == {"IIM-INC-4", "AAV-INC-5", "SJS-INC-4"}
    assert "Highest GC dose ≥ 1" in changed["IIM-INC-4"]["old"] and "Highest GC dose > 1" in changed["IIM-INC-4"]["new"]
    assert d.parameters == [{"name": "age_max", "change": "default", "old": "65", "new": "70"}]
    assert d.definitions == [{"name": "gc_dose", "change": "rule", "old": "Highest GC dose ≥ 1 mg/kg/day",
                              "new": "Highest GC dose > 1 mg/kg/day"}]  # rr_gc reads it but is unchanged
    p = d.patients.set_index("group")
    assert p.loc["SSc", "gained_ids"] == ["old68"] and p.loc["SSc", "lost_ids"] == ["young19"]
    assert p.loc["IIM", "lost_ids"] == ["gc1"] and p.loc["AAV", "gained_ids"] == ["unsuit"]
    assert (p.loc["All", "gained"], p.loc["All", "lost"]) == (2, 2)
    # the per-version counts are each version's own screening of the cohort
    for cat, col in ((old, "eligible_old"), (new, "eligible_new")):
        ev = Evaluator.for_cohort(cohort, cat).evaluate(baseline(cat))
        assert p.loc["All", col] == int((ev.status_labels() == "eligible").sum())


def test_a_changed_reading_and_parameter_range_are_listed(versions, tmp_path):
    old, new = versions

    def flip(readings):
        for r in readings:
            if r["name"] == "gc_dose":
                r["default"], r["alternatives"]["more_than"] = "more_than", {"wording": "literal"}
                r["alternatives"]["at_least"]["definitions"] = {
                    "gc_dose": {"kind": "cmp", "field": "gc_max_mg_kg_day", "op": "ge", "param": "gc_min_mg_kg_day"}}
    edit(new, "readings.yaml", flip)
    d = diff_protocols(load_version(old), load_version(new))
    assert {"name": "gc_dose", "change": "default", "old": "at_least", "new": "more_than"} in d.readings
    # a reading switched in a scenario of the new version works like any other
    r = resolve({"readings": {"gc_dose": "at_least"}}, load_version(new))
    assert r.readings == (("gc_dose", "at_least"),)


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "criteria.yaml").unlink(), "criteria.yaml is missing"),
    (lambda f: (f / "parameters.yaml").write_text("- {name: [", "utf-8"), "parameters.yaml: not valid YAML"),
    (lambda f: edit(f, "criteria.yaml", lambda c: c["criteria"][1].update(rule={"kind": "flag", "field": "nope"})),
     "nope"),
])
def test_broken_versions_are_refused_with_a_message(tmp_path, breakage, message):
    folder = copy_version(tmp_path, "bad")
    breakage(folder)
    with pytest.raises(VersionError, match=message):
        load_version(folder)


def test_diff_protocol_cli(versions, tmp_path, capsys):
    old, new = versions
    src = tmp_path / "cohort.csv"
    pd.DataFrame(ROWS).to_csv(src, index=False)
    assert main(["diff-protocol", str(old), str(new), str(src)]) == 0
    out = capsys.readouterr().out
    assert "+ INC-8 (incl, common): Age at least 21" in out and "- EXC-15" in out
    assert "~ age_max default: 65 -> 70" in out
    assert "~ gc_dose rule:" in out
    assert "gained: old68" in out and "lost: young19" in out
    assert main(["diff-protocol", "current", str(new), str(src), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in data["criteria_added"]] == ["INC-8"]
    assert next(p for p in data["patients"] if p["group"] == "IIM")["lost_ids"] == ["gc1"]
    assert main(["diff-protocol", str(tmp_path / "nowhere"), str(new), str(src)]) == 2
    assert "nowhere" in capsys.readouterr().err
