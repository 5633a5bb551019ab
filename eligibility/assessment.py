"""What a cohort lets the engine assess: criteria not assessed (columns absent), blank rows
kept but not counted as patients, and the hook for the per-patient `assessed k/n`.

Built once per evaluation and shown wherever statuses are (every page, the report).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import EMPTY_ROW
from .evaluate import Evaluation
from .labels import label, short_name


def not_assessed_table(ev: Evaluation) -> pd.DataFrame:
    """One row per criterion part not assessed for this cohort: ID, short name, protocol
    text and the absent columns it needs."""
    present = ev.columns.present
    rows = []
    for uid in ev.not_assessed:
        u = ev.catalog.unit_by_id[uid]
        absent = sorted(ev.catalog.fields_of(u.rule, ev.scenario.params) - set(present))
        rows.append({"criterion": uid, "name": short_name(uid), "text": u.text,
                     "absent_columns": ", ".join(absent)})
    return pd.DataFrame(rows, columns=["criterion", "name", "text", "absent_columns"])


def not_assessed_summary(ev: Evaluation, limit: int = 6) -> str:
    """'3 criteria not assessed: EXC-5 · HIV, …' ('' when every criterion is assessed)."""
    ids = list(ev.not_assessed)
    if not ids:
        return ""
    shown = ", ".join(label(u) for u in ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
    return f"{len(ids)} criteria not assessed (columns absent from the file): {shown}"


def blank_rows_input_order(ev: Evaluation) -> np.ndarray:
    """Bool mask (input row order) of blank file rows: kept and reported, not patients."""
    return ev.to_input_order(ev.group == EMPTY_ROW)


def blank_row_numbers(ev: Evaluation) -> list[int]:
    """1-based data-row numbers of the blank rows."""
    return (np.flatnonzero(blank_rows_input_order(ev)) + 1).tolist()


def blank_rows_text(ev: Evaluation) -> str:
    """'1 empty row, not a patient (row 7)' ('' when there is none)."""
    rows = blank_row_numbers(ev)
    if not rows:
        return ""
    where = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
    one = len(rows) == 1
    return (f"{len(rows):,} empty row{'' if one else 's'}, not {'a patient' if one else 'patients'} "
            f"(row{'' if one else 's'} {where}): kept in the file report, not counted as screened")


def assessed_k_of_n(results: pd.DataFrame) -> str:
    """HOOK for the sibling EHR issue's per-patient `assessed` column ('k/n'): a summary of the
    patients who are eligible on assessed criteria only (k < n). '' until that column exists."""
    if "assessed" not in results.columns or results.empty:
        return ""
    parts = results["assessed"].astype("string").str.split("/", n=1, expand=True)
    if parts.shape[1] != 2:
        return ""
    k = pd.to_numeric(parts[0], errors="coerce")
    n = pd.to_numeric(parts[1], errors="coerce")
    partial = (k < n).fillna(False) & (results["status"] == "eligible")
    return _partial_text(int(partial.sum()))


def eligible_on_assessed_text(ev: Evaluation) -> str:
    """`assessed_k_of_n(results_frame(ev, …))`, from the evaluation's own counts: a page
    rerun need not build the per-patient results table for one sentence."""
    return _partial_text(ev.eligible_on_assessed())


def _partial_text(partial: int) -> str:
    return (f"{partial:,} eligible patient(s) are eligible on assessed criteria only "
            "(assessed k/n with k < n)") if partial else ""
