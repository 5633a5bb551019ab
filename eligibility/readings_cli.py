"""`python -m eligibility readings [--json]`: the contested readings, their default and alternatives."""

from __future__ import annotations

import json
import sys

from .catalog import default_catalog
from .cli_support import OneLineParser
from .readings import alternatives_table


def main(argv: list[str]) -> int:
    p = OneLineParser(prog="python -m eligibility readings",
                description="List the readings of unclear protocol text, each with its default and alternatives. "
                            'Select one in a scenario file as "readings": {"name": "alternative"}.')
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    args = p.parse_args(argv)
    table = alternatives_table(default_catalog())
    if args.json:
        print(json.dumps(table, indent=2, ensure_ascii=False))
        return 0
    out = sys.stdout
    for r in table:
        out.write(f"{r['name']}  (default: {r['default']})  — {r['title']}; {', '.join(r['criteria'])}\n")
        out.write(f"  protocol: \"{r['quote']}\"\n")
        for alt, wording in r["alternatives"].items():
            mark = "*" if alt == r["default"] else " "
            out.write(f"  {mark} {alt}: {wording}\n")
    return 0
