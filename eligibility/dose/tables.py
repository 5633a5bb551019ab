"""Dose-planning tables computed from the screened cohort and the design (no Streamlit here).

* the planning engine's input frame under a scenario (:func:`screening_frame`), the
  eligible pool and each disease's share and screening rate;
* the CONSORT flow's per-dose step (:func:`consort_dose_step`);
* the decision table for the protocol appendix (:func:`decision_table_export`), as R
  BOIN's get.boundary prints it for the interval designs and the rule for 3+3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from eligibility.dose.designs import (
    DEESCALATE,
    ESCALATE,
    DesignOptions,
    _eliminates,
    _extrasafe_stops,
    boin_boundaries,
    rule_for,
)
from eligibility.dose.planning import BEYOND_CAPACITY, POOLED, CohortAssignment
from eligibility.dose.registry import design_info


def screening_frame(frame: pd.DataFrame, statuses: Sequence[str] | np.ndarray) -> pd.DataFrame:
    """The planning engine's input: ``patient_id``, ``disease``, ``screening_date`` and
    ``status`` (one per input row, e.g. ``Evaluation.status_labels()``).

    A cohort without ``screening_date`` gets an all-missing date column (patients then
    keep their input order and the screening rate must be entered)."""
    statuses = np.asarray(statuses)
    if len(statuses) != len(frame):
        raise ValueError(f"{len(statuses)} statuses for {len(frame)} patients")
    dates = (
        pd.to_datetime(frame["screening_date"], errors="coerce")
        if "screening_date" in frame
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    )
    return pd.DataFrame(
        {
            "patient_id": frame["patient_id"].astype("string").to_numpy(),
            "disease": frame["disease"].astype("string").to_numpy(),
            "screening_date": dates.to_numpy(),
            "status": statuses,
        }
    )


def eligible_pool(screened: pd.DataFrame, fractions: Mapping[str, float | None]) -> pd.DataFrame:
    """Per disease and pooled: screened, eligible, pending and the eligible fraction used."""
    rows = []
    disease = screened["disease"].astype("object").where(screened["disease"].notna(), "(missing)")
    for group, frac in fractions.items():
        sub = screened if group == POOLED else screened[disease == group]
        rows.append(
            {
                "group": group,
                "screened": int(len(sub)),
                "eligible": int((sub["status"] == "eligible").sum()),
                "pending": int((sub["status"] == "pending").sum()),
                "eligible_fraction": frac,
            }
        )
    out = pd.DataFrame(rows, columns=["group", "screened", "eligible", "pending", "eligible_fraction"])
    out["eligible_fraction"] = out["eligible_fraction"].astype("Float64")
    return out


def disease_shares(screened: pd.DataFrame) -> dict[str, float]:
    """Each disease's share of the screened patients (missing disease as "(missing)")."""
    n = len(screened)
    if n == 0:
        return {}
    counts = screened["disease"].astype("object").where(screened["disease"].notna(), "(missing)").value_counts()
    return {str(d): float(c) / n for d, c in counts.items()}


def group_rates(shares: Mapping[str, float], total_rate: float | None) -> dict[str, float | None]:
    """Screening rate per escalation group: the total rate for "pooled", and the total
    rate × the disease's share of screened patients (:func:`disease_shares`) for each disease."""
    out: dict[str, float | None] = {POOLED: total_rate}
    for d, share in shares.items():
        out[d] = None if total_rate is None else total_rate * share
    return out


def _table_of(assignment: CohortAssignment | pd.DataFrame) -> pd.DataFrame:
    return assignment.table if isinstance(assignment, CohortAssignment) else assignment


def consort_dose_step(
    assignment: CohortAssignment | pd.DataFrame, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per-dose-level counts for the CONSORT flow's last step.

    ``assignment``: the result of ``assign_cohorts`` (or its ``.table``); ``labels``:
    dose-level labels in order (default: those in the table, in level order).
    Returns ``dose_level``, ``eligible`` (patients placed at that level), ``pending``
    (patients who would take the slots left if they became eligible), one row per level
    and a final "beyond capacity" row when someone does not fit.
    """
    table = _table_of(assignment)
    if labels is None:
        placed = table.dropna(subset=["level"]).sort_values("level")
        labels = list(dict.fromkeys(placed["dose_level"].astype(str)))
    labels = list(labels)
    level = table["dose_level"].astype("object").where(~table["beyond_capacity"], BEYOND_CAPACITY)
    rows = labels + ([BEYOND_CAPACITY] if table["beyond_capacity"].any() else [])
    out = pd.DataFrame({"dose_level": rows})
    for kind in ("eligible", "pending"):
        counts = level[table["kind"] == kind].value_counts()
        out[kind] = [int(counts.get(r, 0)) for r in rows]
    return out.astype({"eligible": "int64", "pending": "int64"})


# --------------------------------------------------------------------------
# decision table (protocol appendix)
# --------------------------------------------------------------------------

DECISION_COLUMNS = {
    "n": "Patients treated at the current level",
    "escalate_if_dlt_le": "Escalate if DLTs ≤",
    "deescalate_if_dlt_ge": "De-escalate if DLTs ≥",
    "eliminate_if_dlt_ge": "Eliminate this level and above if DLTs ≥",
    "stop_trial_if_dlt_ge": "Lowest level: stop the trial if DLTs ≥",
}


def _interval_counts(design: str, opt: DesignOptions, max_n: int) -> pd.DataFrame:
    rule = rule_for(design)
    rows = []
    for n in range(1, max_n + 1):
        ys = range(n + 1)
        esc = [y for y in ys if not _eliminates(y, n, opt) and rule(y, n, opt) == ESCALATE]
        de = [y for y in ys if _eliminates(y, n, opt) or rule(y, n, opt) == DEESCALATE]
        el = [y for y in ys if _eliminates(y, n, opt)]
        stop = [y for y in ys if _eliminates(y, n, opt) or _extrasafe_stops(y, n, opt)]
        rows.append({"n": n, "escalate_if_dlt_le": max(esc) if esc else None,
                     "deescalate_if_dlt_ge": min(de) if de else None,
                     "eliminate_if_dlt_ge": min(el) if el else None,
                     "stop_trial_if_dlt_ge": min(stop) if stop else None})
    frame = pd.DataFrame(rows)
    for col in frame.columns[1:]:
        frame[col] = frame[col].astype("Int64")
    return frame


def decision_table(design: str, options: DesignOptions, max_n: int) -> pd.DataFrame:
    """The design's decisions by patients treated and DLTs at the current level.

    Interval designs (BOIN family, i3+3): one row per n = 1..max_n with the DLT counts
    (R get.boundary's layout; <NA> = no count does it): escalate if ≤, de-escalate if ≥,
    eliminate this level and all above if ≥, and at the lowest level stop the trial if ≥
    (elimination there, or the extra-safe rule). 3+3: the rule's rows (3 or 6 treated).
    """
    info = design_info(design)
    if info.name == "3+3":
        six = "stay (3 more patients)" if options.six_at_mtd else "MTD"
        lower3 = ("treat 3 more at the next-lower level" if options.deescalation or options.six_at_mtd
                  else "the next-lower level is the MTD")
        rows = [
            (3, "0", f"escalate (top level or level above tried: {six})"),
            (3, "1", "stay: treat 3 more at this level"),
            (3, "≥ 2", f"MTD exceeded: next-lower level with 6 is the MTD; with 3: {lower3}; lowest level: no MTD"),
            (6, "≤ 1", "escalate (top level or level above tried: MTD)"),
            (6, "≥ 2", f"MTD exceeded: next-lower level with 6 is the MTD; with 3: {lower3}; lowest level: no MTD"),
        ]
        return pd.DataFrame(rows, columns=["n", "dlts", "decision"])
    if design in ("boin", "tite-boin", "bf-boin"):
        counts = _interval_counts("boin", options, max_n)
    else:
        counts = _interval_counts("i3+3", options, max_n)
    return counts


def decision_table_export(design: str, options: DesignOptions, max_n: int) -> pd.DataFrame:
    """:func:`decision_table` with its settings written above it, for the CSV download
    (one self-describing table: section, item, value)."""
    info = design_info(design)
    rows: list[tuple[str, str, object]] = [("setting", "design", info.label), ("setting", "source", info.source)]
    if info.uses_target:
        lam_e, lam_d = boin_boundaries(options.target, options.p_saf, options.p_tox)
        rows += [("setting", "target DLT rate", options.target), ("setting", "cut-off for elimination", options.cutoff_eli)]
        if design == "i3+3":
            rows += [("setting", "equivalence interval", f"[{options.target - options.eps1:g}, {options.target + options.eps2:g}]")]
        else:
            rows += [("setting", "lambda_e (escalation boundary)", round(lam_e, 4)),
                     ("setting", "lambda_d (de-escalation boundary)", round(lam_d, 4))]
        if options.extrasafe:
            rows += [("setting", "extra-safe cut-off (cutoff - offset)", options.cutoff_eli - options.offset)]
    table = decision_table(design, options, max_n)
    head = pd.DataFrame(rows, columns=["section", "item", "value"]).astype({"value": "object"})
    body = table.copy()
    body.insert(0, "section", "decision")
    out = pd.concat([head, body], ignore_index=True)
    out["n"] = out["n"].astype("Int64")  # whole patients, not 3.0 after the concat
    return out
