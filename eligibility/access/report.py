"""The circulable screening report with small-cell suppression on: one offline HTML file made
only of the released tables (every count already text: "<5", "*", "n/s"), so nothing in it
can differ from what the pages show. Every cell and heading is escaped."""

from __future__ import annotations

from html import escape

import pandas as pd

from .suppression import HIDDEN_TEXT, WITHHELD_TEXT

STYLE = """body{font-family:Arial,Helvetica,sans-serif;font-size:13px;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:24px}table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.note{color:#555;max-width:60em}"""


def legend(k: int) -> str:
    return (f"Small-cell suppression is on: counts from 1 to {k - 1} are shown as “<{k}”; “{HIDDEN_TEXT}” is a "
            f"count of {k} or more hidden so that a small one cannot be worked out from a total; “{WITHHELD_TEXT}” "
            "is not shown (any value). Percentages and differences are shown only when every count they come "
            "from is shown. Patient-level tables are left out.")


def suppressed_report(title: str, meta: str, k: int, sections: list[tuple[str, pd.DataFrame]]) -> str:
    """An HTML document: title, meta line (cohort, scenario, date, protocol), the legend and
    one table per section (all cells as text)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>",
             f"<p class='note'>{escape(meta)}</p>", f"<p class='note'>{escape(legend(k))}</p>"]
    for heading, table in sections:
        parts.append(f"<h2>{escape(heading)}</h2>")
        parts.append(table.astype(str).to_html(index=False, escape=True, border=0))
    parts.append("</body></html>")
    return "\n".join(parts)
