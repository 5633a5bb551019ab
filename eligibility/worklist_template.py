"""The worklist as a chart-review template (xlsx), and `python -m eligibility worklist`.

Sheet "chart review": one row per target patient; ``patient_id`` and ``disease``
pre-filled, two read-only context columns (status now, fields that decide it), then
one column per field to collect, ranked. Headers are ``field [unit]`` (read back by
``eligibility.merge``), each with a comment naming the field, its allowed values and
the criteria it serves. Cells a patient does not need are shaded grey. Yes/no and
category columns carry drop-down data validation, numbers a decimal validation.
Sheet "fields": the ranked field table. Sheet "about": what the template is.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd

from .cli_support import OneLineParser, fail, parse
from .export import neutralise
from .fields import FIELD_BY_NAME
from .worklist import Worklist, allowed_values, build_worklist

SHEET = "chart review"
CONTEXT_COLUMNS = ("status (now)", "fields deciding it (collect)")
_GREY = "DDDDDD"
_FILL = "FFF2CC"


def header(name: str) -> str:
    unit = FIELD_BY_NAME[name].unit
    return f"{name} [{unit}]" if unit else name


def template_bytes(wl: Worklist, *, title: str = "") -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    to_fill = [n for n in wl.field_order() if n != "disease"]
    heads = ["patient_id", "disease", *CONTEXT_COLUMNS, *(header(n) for n in to_fill)]
    ws.append(heads)
    bold = Font(bold=True)
    for c in ws[1]:
        c.font = bold
    criteria = dict(zip(wl.fields["field"], wl.fields["criteria"], strict=True))
    need = [set(x.split(";")) - {""} for x in wl.patients["collect"]]
    for rec in wl.patients.itertuples(index=False):
        disease = None if pd.isna(rec.disease) else str(rec.disease)
        ws.append([neutralise(str(rec.patient_id)), neutralise(disease) if disease else None,
                   rec.status, rec.collect.replace(";", ", ")] + [None] * len(to_fill))
    n = len(wl.patients)
    grey = PatternFill("solid", fgColor=_GREY)
    fill = PatternFill("solid", fgColor=_FILL)
    first = 1 + 2 + len(CONTEXT_COLUMNS)  # 1-based column of the first field to fill
    for j, name in enumerate(["disease", *to_fill]):
        col = 2 if name == "disease" else first + j - 1
        letter = get_column_letter(col)
        f = FIELD_BY_NAME[name]
        values = allowed_values(f)
        text = f"{f.label or name}" + (f" ({f.unit})" if f.unit else "")
        if values:
            text += f"\nvalues: {', '.join(values)}"
        if criteria.get(name):
            text += f"\nserves: {criteria[name].replace(';', ', ')}"
        ws.cell(row=1, column=col).comment = Comment(text, "eligibility worklist")
        if n == 0:
            continue
        rng = f"{letter}2:{letter}{n + 1}"
        if f.kind in ("yesno", "category", "disease"):
            dv = DataValidation(type="list", formula1='"' + ",".join(values) + '"', allow_blank=True,
                                showErrorMessage=True, errorTitle=name, error=f"use one of: {', '.join(values)}")
        elif f.kind == "number":
            dv = DataValidation(type="whole" if f.whole else "decimal", operator="between",
                                formula1="-1000000", formula2="1000000", allow_blank=True,
                                showErrorMessage=True, errorTitle=name, error=f"a number in {f.unit or 'the field unit'}")
        else:  # drug list: free text, the recognised names as a prompt
            dv = DataValidation(allow_blank=True, showInputMessage=True, promptTitle=name,
                                prompt="';'-separated: " + ", ".join(values)[:250])
        ws.add_data_validation(dv)
        dv.add(rng)
        for i in range(n):
            needed = name in need[i]
            if name == "disease" and not needed:
                continue
            ws.cell(row=i + 2, column=col).fill = fill if needed else grey
    ws.freeze_panes = ws.cell(row=2, column=3)
    for col in range(1, len(heads) + 1):
        ws.column_dimensions[get_column_letter(col)].width = max(12, min(40, len(str(heads[col - 1])) + 2))

    fs = wb.create_sheet("fields")
    fs.append(["rank", *wl.fields.columns])
    for c in fs[1]:
        c.font = bold
    for rank, rec in enumerate(wl.fields.itertuples(index=False), start=1):
        fs.append([rank, *(neutralise(v) if isinstance(v, str) else v for v in rec)])

    about = wb.create_sheet("about")
    lines = [
        "Chart-review template: fill the yellow cells (grey ones do not change this patient's status).",
        "Headers are field [unit]; enter values in that unit. Keep patient_id as is.",
        "Merge back: python -m eligibility merge EHR.csv THIS.xlsx -o merged.csv, then screen merged.csv.",
        "Sheet 'fields': fields ranked by how many listed patients need them (settles_alone: patients "
        "for whom this one field decides the status; could_exclude: a value of it alone excludes them).",
        "Fields needed by no patient (patients = 0) are columns a criterion needs in the file to count as "
        "assessed; leave them empty unless the value is known.",
    ]
    if title:
        lines.insert(0, title)
    lines += [f"note: {x}" for x in wl.notes]
    for line in lines:
        about.append([line])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:

    p = OneLineParser(prog="python -m eligibility worklist",
                description="List what to collect by chart review and write an xlsx template.")
    p.add_argument("cohort", help="cohort file (.csv, .parquet or .xlsx)")
    p.add_argument("-o", "--output", required=True, help="template to write: .xlsx (or .csv: the per-patient list)")
    p.add_argument("--scenario", help="scenario file (JSON or YAML)")
    p.add_argument("--fields", help="also write the ranked field table here (.csv)")
    args = parse(p, argv)
    if isinstance(args, int):
        return args

    from .export import to_csv_bytes
    from .loader import CohortError, load_cohort
    from .scenario import ScenarioError, baseline, load_scenario

    out = Path(args.output)
    if out.suffix.lower() not in (".xlsx", ".csv"):
        return fail(f"output {out.name} must end in .xlsx or .csv")
    if args.fields and Path(args.fields).suffix.lower() != ".csv":
        return fail(f"--fields {Path(args.fields).name} must end in .csv")
    try:
        scenario = load_scenario(args.scenario) if args.scenario else baseline()
    except ScenarioError as e:
        return fail(f"invalid scenario {Path(args.scenario).name}: {e}")
    try:
        cohort = load_cohort(args.cohort)
    except CohortError as e:
        return fail(str(e))
    wl = build_worklist(cohort, scenario)
    for note in wl.notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        if out.suffix.lower() == ".xlsx":
            out.write_bytes(template_bytes(wl, title=f"Cohort {Path(args.cohort).name}, scenario {scenario.name}"))
        else:
            out.write_bytes(to_csv_bytes(wl.patients.reset_index()))
        if args.fields:
            Path(args.fields).write_bytes(to_csv_bytes(wl.fields))
    except OSError as e:
        return fail(f"cannot write {e.filename or out}: {e.strerror or e}")
    top = ", ".join(f"{r.field} ({r.patients})" for r in wl.fields.head(5).itertuples())
    print(f"worklist: {len(wl.patients)} patient(s) to review, {len(wl.fields)} field(s) to collect"
          + (f"; most needed: {top}" if top else "") + f" -> {out}", file=sys.stderr)
    return 0
