"""`python -m eligibility relax COHORT --target N [--disease X] [--lock ID ...] [--json]`."""

from __future__ import annotations

import json

from .cli_support import OneLineParser, fail
from .fields import DISEASES


def main(argv: list[str]) -> int:
    p = OneLineParser(prog="python -m eligibility relax",
                description="Find the smallest sets of parameter changes and switched-off criteria that reach a "
                            "target number of eligible patients (fewest changes, then nearest the protocol). "
                            "Safety criteria are locked (criteria.yaml); each option is a scenario file.")
    p.add_argument("cohort", help="cohort file: .csv, .parquet or .xlsx")
    p.add_argument("--target", required=True, type=int, help="eligible patients wanted")
    p.add_argument("--disease", choices=DISEASES, help="count eligible patients of this disease only")
    p.add_argument("--lock", nargs="+", default=[], metavar="ID",
                   help="more criteria (or parameters) the search may not touch")
    p.add_argument("--max-options", type=int, default=10, help="options listed (default 10)")
    p.add_argument("--json", action="store_true", help="print the options as a JSON list")
    args = p.parse_args(argv)
    if args.target < 0:
        return fail("--target must be ≥ 0")

    from .evaluate import Evaluator
    from .loader import CohortError, load_cohort
    from .relax import RelaxError, relax

    try:
        cohort = load_cohort(args.cohort)
    except CohortError as e:
        return fail(str(e))
    evaluator = Evaluator.for_cohort(cohort)
    try:
        options = relax(evaluator, args.target, args.disease, args.lock, max_options=args.max_options)
    except RelaxError as e:
        return fail(str(e))
    if args.json:
        print(json.dumps([o.as_scenario() for o in options], indent=2, ensure_ascii=False))
        return 0
    scope = args.disease or "all diseases"
    if not options:
        print(f"no relaxation within the what-if ranges reaches {args.target} eligible ({scope}) "
              f"with the locked criteria kept")
        return 0
    how = "" if options[0].exact else " (greedy search: each option reaches the target, not proven fewest)"
    print(f"target {args.target} eligible ({scope}); options, best first{how}:")
    for i, o in enumerate(options, 1):
        changes = [f"{k} = {v}" for k, v in o.parameters.items()] + [f"{c} off" for c in o.disabled]
        print(f"{i:2}. {'; '.join(changes) or 'no change needed'} -> {o.eligible} eligible "
              f"(+{o.gained}), distance {o.distance:.3f}")
    return 0
