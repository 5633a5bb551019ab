"""`python -m eligibility diff-protocol OLD NEW COHORT [--json]`: compare two protocol versions.

OLD and NEW are folders with criteria.yaml, parameters.yaml (and readings.yaml); the
word `current` stands for the protocol bundled with this package.
"""

from __future__ import annotations

import json
import sys

from .cli_support import OneLineParser, fail
from .versions import VersionError, current_version, diff_protocols, load_version


def _load(arg: str):
    return current_version() if arg == "current" else load_version(arg)


def main(argv: list[str]) -> int:
    p = OneLineParser(prog="python -m eligibility diff-protocol",
                description="Compare two protocol versions (folders with criteria.yaml, parameters.yaml, "
                            "readings.yaml; 'current' = the bundled protocol) on a cohort.")
    p.add_argument("old", help="folder of the old version, or 'current'")
    p.add_argument("new", help="folder of the new version, or 'current'")
    p.add_argument("cohort", help="cohort file: .csv, .parquet or .xlsx")
    p.add_argument("--json", action="store_true", help="print the differences as JSON")
    args = p.parse_args(argv)

    from .loader import CohortError, load_cohort

    try:
        old, new = _load(args.old), _load(args.new)
    except VersionError as e:
        return fail(str(e))
    try:
        cohort = load_cohort(args.cohort)
    except CohortError as e:
        return fail(str(e))
    d = diff_protocols(old, new, cohort)
    patients = d.patients.to_dict("records") if d.patients is not None else []
    if args.json:
        print(json.dumps({"criteria_added": d.added, "criteria_removed": d.removed, "criteria_changed": d.changed,
                          "definitions_changed": d.definitions,
                          "parameters_changed": d.parameters, "readings_changed": d.readings,
                          "patients": patients}, indent=2, ensure_ascii=False))
        return 0
    w = sys.stdout.write
    w(f"criteria added: {len(d.added)}\n")
    for c in d.added:
        w(f"  + {c['id']} ({c['kind']}, {c['block']}): {c['text']}\n      rule: {c['rule']}\n")
    w(f"criteria removed: {len(d.removed)}\n")
    for c in d.removed:
        w(f"  - {c['id']} ({c['kind']}, {c['block']}): {c['text']}\n      rule: {c['rule']}\n")
    w(f"criteria changed: {len({c['id'] for c in d.changed})}\n")
    for c in d.changed:
        w(f"  ~ {c['id']} {c['what']}:\n      was: {c['old']}\n      now: {c['new']}\n")
    if d.definitions:
        w(f"shared definitions changed: {len(d.definitions)}\n")
        for c in d.definitions:
            w(f"  ~ {c['name']} {c['change']}:\n      was: {c['old'] or '(none)'}\n      now: {c['new'] or '(none)'}\n")
    w(f"parameters changed: {len(d.parameters)}\n")
    for c in d.parameters:
        w(f"  ~ {c['name']} {c['change']}: {c['old'] or '(none)'} -> {c['new'] or '(none)'}\n")
    if d.readings:
        w(f"readings changed: {len(d.readings)}\n")
        for c in d.readings:
            w(f"  ~ {c['name']} {c['change']}: {c['old'] or '(none)'} -> {c['new'] or '(none)'}\n")
    w("patients (eligible old -> new; gained, lost):\n")
    for r in patients:
        w(f"  {r['group']:8} {r['eligible_old']} -> {r['eligible_new']}; gained {r['gained']}, lost {r['lost']}\n")
        if r["group"] != "All":
            if r["gained_ids"]:
                w(f"           gained: {', '.join(r['gained_ids'])}\n")
            if r["lost_ids"]:
                w(f"           lost: {', '.join(r['lost_ids'])}\n")
    return 0
