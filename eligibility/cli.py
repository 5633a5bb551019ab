"""`python -m eligibility`: screen a cohort, generate synthetic data, simulate dose escalation, benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

from .cli_support import OneLineParser, fail
from .textsafe import shorten

USAGE = """python -m eligibility COMMAND ...

commands:
  screen     screen a cohort file against the protocol (or a scenario)
  synth      generate a synthetic candidate cohort
  dose-sim   simulate a dose-escalation design (3+3, BOIN, i3+3)
  bench      run the speed benchmarks
  readings   list the contested readings of the protocol text (default and alternatives)
  relax      find the smallest relaxations that reach a target number of eligible patients
  diff-protocol  compare two protocol versions (folders) on a cohort
  import-synthea  turn a Synthea export (CSV folder or FHIR R4 bundles) into a cohort file
  import-omop     read candidates from an OMOP CDM v5.4 (DuckDB file or connection URL)
  import-fhir     turn FHIR R4 Bundles or Bulk Data NDJSON into a cohort file (+ provenance)
  merge      merge a chart-review sheet over an EHR-derived cohort
  worklist   list the fields to collect by chart review; write an xlsx template
"""


_err = fail  # still imported by eligibility/database/screen_cli.py


def _report_issues(cohort, ev) -> None:
    """Cell errors and warnings on standard error (row, patient_id, column, value). A column
    absent from the file is described by what it leaves unassessed under this scenario."""
    not_assessed = set(ev.not_assessed)
    for issue in cohort.issues:
        if issue.severity not in ("error", "warning"):
            continue
        problem = issue.problem
        if issue.kind == "missing_column":
            units = [u for u in ev.catalog.units_reading_field(issue.column) if u in not_assessed]
            if not units and ev.catalog.units_reading_field(issue.column):
                continue  # the scenario no longer needs this column
            if units:
                problem = f"column absent from the file: {', '.join(units)} not assessed for everyone"
        # Values come from the file: each is shortened to one short line (a 1 MB cell is not echoed).
        if issue.row:
            who = f"patient_id {shorten(issue.patient_id)}" if issue.patient_id else "no patient_id"
            where = f"row {issue.row} ({who})"
        else:
            where = "file"
        col = f", column {shorten(issue.column)}" if issue.column else ""
        val = f", value {shorten(issue.value)!r}" if issue.value is not None else ""
        print(f"{issue.severity}: {where}{col}{val}: {shorten(problem, 300)}", file=sys.stderr)


def screen_main(argv: list[str]) -> int:
    p = OneLineParser(prog="python -m eligibility screen", description="Screen a cohort file for NCT06614270.")
    p.add_argument("input", help="cohort file: .csv, .parquet or .xlsx")
    p.add_argument("-o", "--output", required=True, help="results file: .csv or .parquet")
    p.add_argument("--scenario", help="scenario file (JSON or YAML): parameters and disabled criteria")
    p.add_argument("--sheet", help="xlsx sheet name (default: the first sheet)")
    p.add_argument("--report", help="write the validation report here (.csv or .json)")
    p.add_argument("--engine", choices=("memory", "duckdb", "spark"), default="memory",
                   help="where to evaluate: in this process (memory), DuckDB or Spark (default memory)")
    args = p.parse_args(argv)

    from .evaluate import Evaluator
    from .loader import CohortError, load_cohort, write_report
    from .scenario import ScenarioError, baseline, load_scenario
    from .screen import results_frame

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        return _err(f"output {out.name} must end in .csv or .parquet")
    if args.report and Path(args.report).suffix.lower() not in (".csv", ".json"):
        return _err(f"report {Path(args.report).name} must end in .csv or .json")
    try:
        scenario = load_scenario(args.scenario) if args.scenario else baseline()
    except ScenarioError as e:
        return _err(f"invalid scenario {Path(args.scenario).name}: {e}")
    if args.engine != "memory":
        from .database.screen_cli import screen

        return screen(args, scenario)
    try:
        cohort = load_cohort(args.input, sheet=args.sheet)
    except CohortError as e:
        return _err(str(e))
    except Exception as e:  # noqa: BLE001 - a file no rule foresaw still gets one line, never a traceback
        return _err(f"{Path(args.input).name}: cannot be read ({type(e).__name__}); "
                    "please report this file's shape to the maintainers")
    ev = Evaluator.for_cohort(cohort).evaluate(scenario)
    _report_issues(cohort, ev)
    results = results_frame(ev, cohort.frame)
    try:
        if out.suffix.lower() == ".csv":
            from .export import to_csv_bytes

            data = to_csv_bytes(results)  # UTF-8 with BOM, formula-like cells neutralised
        else:
            from .export import to_parquet_bytes

            data = to_parquet_bytes(results)
        out.write_bytes(data)
        if args.report:
            write_report(cohort, args.report)
    except OSError as e:
        return _err(f"cannot write {e.filename or out}: {e.strerror or e}")
    c = ev.counts()
    partial = (f" ({c['eligible_on_assessed']} of them eligible on assessed criteria only, "
               f"{len(ev.not_assessed_applicable())} applicable criteria not assessed)" if c["eligible_on_assessed"] else "")
    print(
        f"screened {c['screened']}: {c['eligible']} eligible{partial}, {c['pending']} pending, "
        f"{c['ineligible']} ineligible"
        + (f" ({c['empty_rows']} empty row(s), not patients, kept as pending rows)" if c["empty_rows"] else "")
        + f" -> {out}",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "screen":
        return screen_main(rest)
    if cmd == "synth":
        from .synth import main as synth_main

        return synth_main(rest)
    if cmd == "dose-sim":
        from .dose.cli import main as dose_main

        return dose_main(rest)
    if cmd == "import-synthea":
        from .importers.synthea import main as import_synthea_main

        return import_synthea_main(rest)
    if cmd in ("readings", "relax", "diff-protocol"):  # protocol amendments (issue 14)
        from .amend_cli import main as amend_main

        return amend_main(cmd, rest)
    if cmd == "merge":
        from .merge import main as merge_main

        return merge_main(rest)
    if cmd == "worklist":
        from .worklist_template import main as worklist_main

        return worklist_main(rest)
    if cmd == "import-fhir":
        from .importers.fhir import main as import_fhir_main

        return import_fhir_main(rest)
    if cmd == "import-omop":
        from .importers.omop import main as import_omop_main

        return import_omop_main(rest)
    if cmd == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    return _err(f"unknown command {cmd!r}; use screen, synth, dose-sim, import-synthea, import-fhir, merge, worklist or bench")
