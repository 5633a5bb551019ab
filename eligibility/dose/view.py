"""Tables the "Dose cohorts" page shows, built from dose-engine results (no Streamlit here).

Everything is a pure function of the engine's outputs (``assign_cohorts``,
``operating_characteristics``, ``sample_size_summary``, ``screening_need_table``,
``project_timeline``) and of the user's settings, so the page stays a thin view and
these functions can be tested without a browser. The CONSORT flow's per-dose step is
:func:`consort_dose_step`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import ValidationError

from eligibility.dose.planning import BEYOND_CAPACITY, POOLED, CohortAssignment, Timeline
from eligibility.dose.settings import MAX_LEVELS, DoseSettings

DOSE_UNIT = "×10⁹ cells"

#: Columns of the dose-level editor (internal names) and their shown labels.
LEVEL_COLUMNS = ("label", "dose", "true_dlt")
LEVEL_COLUMN_LABELS = {
    "label": "Label",
    "dose": f"Dose ({DOSE_UNIT})",
    "true_dlt": "True DLT rate (0–1)",
}

#: Human names of the settings, used in error messages.
SETTING_NAMES = {
    "levels": "Dose levels",
    "design": "Design",
    "cohort_size": "Cohort size",
    "dlt_window_days": "DLT window (days)",
    "true_dlt": "Assumed true DLT rate",
    "target": "Target DLT rate",
    "max_n": "Maximum sample size",
    "pooling": "Escalation",
    "screening_rate_per_month": "Screening rate (patients/month)",
    "n_trials": "Simulated trials",
    "seed": "Seed",
}

DESIGN_LABELS = {"3+3": "3+3", "boin": "BOIN", "i3+3": "i3+3"}


class SettingsError(ValueError):
    """Dose settings that cannot be used; ``str(e)`` names the setting in plain words."""


def default_levels_table() -> pd.DataFrame:
    """The spec's defaults: DL1 1, DL2 2, DL3 3 ×10⁹ cells; true DLT 0.05, 0.10, 0.20."""
    d = DoseSettings()
    return pd.DataFrame(
        {
            "label": pd.array(d.labels, dtype="string"),
            "dose": np.array([lv.dose for lv in d.levels], dtype=float),
            "true_dlt": np.array(d.true_dlt, dtype=float),
        }
    )


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def levels_from_table(table: pd.DataFrame | None) -> tuple[list[dict], list[float]]:
    """Dose levels ({label, dose}) and true DLT rates from the editor's rows.

    Fully empty rows (a row just added) are ignored. Raises :class:`SettingsError`
    naming the row and the cell for a missing or non-numeric cell, no rows, or more
    than ``MAX_LEVELS`` rows. Ranges (dose > 0, rates in [0, 1]) are checked by
    ``DoseSettings`` so its messages stay the single source.
    """
    if table is None or len(table) == 0:
        raise SettingsError("Dose levels: add at least one dose level (the table is empty).")
    levels: list[dict] = []
    rates: list[float] = []
    for pos, row in enumerate(table.reset_index(drop=True).to_dict("records"), start=1):
        cells = [row.get(c) for c in LEVEL_COLUMNS]
        if all(_missing(c) or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        label, dose, rate = cells
        label = "" if _missing(label) else str(label).strip()
        if not label:
            raise SettingsError(f"Dose levels, row {pos}: the label is empty.")
        values = []
        for name, v in (("dose", dose), ("true_dlt", rate)):
            shown = LEVEL_COLUMN_LABELS[name]
            if _missing(v):
                raise SettingsError(f"Dose levels, row {pos} ({label}): '{shown}' is empty.")
            try:
                values.append(float(v))
            except (TypeError, ValueError):
                raise SettingsError(
                    f"Dose levels, row {pos} ({label}): '{shown}' is not a number ({v!r})."
                ) from None
        levels.append({"label": label, "dose": values[0]})
        rates.append(values[1])
    if not levels:
        raise SettingsError("Dose levels: add at least one dose level (the table is empty).")
    if len(levels) > MAX_LEVELS:
        raise SettingsError(f"Dose levels: at most {MAX_LEVELS} levels, got {len(levels)}.")
    return levels, rates


def settings_error_message(exc: ValidationError) -> str:
    """One line per problem, each starting with the setting's name."""
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        name = SETTING_NAMES.get(str(loc[0]), str(loc[0])) if loc else "Dose settings"
        if len(loc) >= 2 and loc[0] == "levels" and isinstance(loc[1], int):
            name = f"Dose levels, row {loc[1] + 1}"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{name}: {msg}")
    return " · ".join(parts) or str(exc)


def build_settings(
    table: pd.DataFrame | None,
    *,
    design: str,
    cohort_size: int,
    target: float,
    max_n: int,
    dlt_window_days: int,
    pooling: str,
    screening_rate_per_month: float | None = None,
    n_trials: int = 10_000,
    seed: int = 1,
) -> DoseSettings:
    """``DoseSettings`` from the page's widgets; :class:`SettingsError` with a plain message."""
    levels, rates = levels_from_table(table)
    try:
        return DoseSettings(
            levels=levels,
            design=design,
            cohort_size=int(cohort_size),
            target=float(target),
            max_n=int(max_n),
            dlt_window_days=int(dlt_window_days),
            true_dlt=rates,
            pooling=pooling,
            screening_rate_per_month=screening_rate_per_month,
            n_trials=n_trials,
            seed=seed,
        )
    except ValidationError as e:
        raise SettingsError(settings_error_message(e)) from None


def simulation_key(settings: DoseSettings) -> str:
    """JSON of the settings the simulation depends on (a small, hashable cache key)."""
    return settings.model_dump_json(
        include={"levels", "design", "cohort_size", "true_dlt", "target", "max_n", "n_trials", "seed"}
    )


# --------------------------------------------------------------------------
# the screened cohort under a scenario
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# assignment
# --------------------------------------------------------------------------


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


ASSIGNMENT_COLUMNS = {
    "patient_id": "Patient",
    "disease": "Disease",
    "screening_date": "Screening date",
    "escalation": "Escalation",
    "order": "Order",
    "dose_level": "Dose level",
    "dose": f"Dose ({DOSE_UNIT})",
    "cohort": "Cohort in level",
    "escalation_cohort": "Cohort no.",
}


def assignment_view(
    assignment: CohortAssignment | pd.DataFrame, settings: DoseSettings, kind: str = "eligible"
) -> pd.DataFrame:
    """Rows of one kind (eligible / pending) in assignment order, with the dose in
    ×10⁹ cells; patients past capacity show "beyond capacity" as their dose level."""
    table = _table_of(assignment)
    sub = table[table["kind"] == kind]
    doses = {lv.label: lv.dose for lv in settings.levels}
    out = pd.DataFrame(
        {
            "patient_id": sub["patient_id"].astype("string"),
            "disease": sub["disease"].astype("string"),
            "screening_date": sub["screening_date"].dt.date,
            "escalation": sub["escalation"].astype("string"),
            "order": sub["order"],
            "dose_level": sub["dose_level"].astype("string").fillna(BEYOND_CAPACITY),
            "dose": sub["dose_level"].astype("object").map(doses).astype("Float64"),
            "cohort": sub["cohort"],
            "escalation_cohort": sub["escalation_cohort"],
        }
    )
    return out.reset_index(drop=True)


def assignment_export(assignment: CohortAssignment | pd.DataFrame, settings: DoseSettings) -> pd.DataFrame:
    """Eligible then pending rows with a ``kind`` column, for the CSV download."""
    parts = []
    for kind in ("eligible", "pending"):
        v = assignment_view(assignment, settings, kind)
        v.insert(0, "kind", kind)
        parts.append(v)
    out = pd.concat(parts, ignore_index=True)
    out = out.rename(columns={"dose": "dose_x1e9_cells"})
    return out


# --------------------------------------------------------------------------
# sample size, screening need, operating characteristics
# --------------------------------------------------------------------------


def sample_size_table(summary: Mapping, settings: DoseSettings) -> pd.DataFrame:
    """Patients treated in one escalation: the design's rule (minimum, all escalate,
    maximum) and, when simulated, expected and 10th / 90th percentiles."""
    k = settings.n_levels
    rule = DESIGN_LABELS[settings.design]
    if settings.design == "3+3":
        basis = {"minimum": "3 (DL1 exceeds at its first cohort)",
                 "all_escalate": f"3K = 3 × {k}",
                 "maximum": f"6K = 6 × {k}"}
    else:
        basis = {"minimum": "lowest level eliminated at the earliest look",
                 "all_escalate": f"max N = ⌊{settings.max_n} / {settings.cohort_size}⌋ cohorts",
                 "maximum": "max N"}
    rows = [
        ("Minimum", summary["minimum"], f"{rule} rule: {basis['minimum']}"),
        ("All levels escalate", summary["all_escalate"], f"{rule} rule: {basis['all_escalate']}"),
        ("Maximum", summary["maximum"], f"{rule} rule: {basis['maximum']}"),
    ]
    if "expected" in summary:
        n = f"{settings.n_trials:,} simulated trials (seed {settings.seed})"
        rows += [
            ("Expected (mean)", summary["expected"], n),
            ("10th percentile", summary["p10"], n),
            ("90th percentile", summary["p90"], n),
        ]
    return pd.DataFrame(
        {"quantity": [r[0] for r in rows], "patients": [float(r[1]) for r in rows], "source": [r[2] for r in rows]}
    )


def screening_need_view(need: pd.DataFrame) -> pd.DataFrame:
    """``screening_need_table`` output as rows = dose level (+ "all levels"), one
    "to screen" column per group; "—" is not used: unattainable cells stay <NA>."""
    order_levels = list(dict.fromkeys(need["dose_level"]))
    order_groups = list(dict.fromkeys(need["group"]))
    wide = need.pivot(index="dose_level", columns="group", values="to_screen")
    wide = wide.reindex(index=order_levels, columns=order_groups)
    needed = need.drop_duplicates("dose_level").set_index("dose_level")["needed"].reindex(order_levels)
    wide.insert(0, "needed", needed)
    wide.index.name = "dose_level"
    wide.columns.name = None
    return wide.reset_index()


def oc_table(settings: DoseSettings, oc: Mapping) -> pd.DataFrame:
    """Per level: dose, assumed true DLT rate, % selected as MTD, mean patients and DLTs
    (the % of trials without an MTD is in :func:`oc_summary`)."""
    return pd.DataFrame(
        {
            "dose_level": settings.labels,
            "dose": [lv.dose for lv in settings.levels],
            "true_dlt": list(settings.true_dlt),
            "mtd_selection_pct": list(oc["mtd_selection_pct"]),
            "mean_patients": list(oc["mean_n_per_level"]),
            "mean_dlts": list(oc["mean_dlt_per_level"]),
        }
    )


def oc_summary(oc: Mapping, duration: Mapping | None = None) -> pd.DataFrame:
    """Whole-trial operating characteristics as (measure, value, unit) rows."""
    rows = [
        ("No MTD (lowest level too toxic)", oc["no_mtd_pct"], "% of trials"),
        ("Stopped early", oc["pct_stopped_early"], "% of trials"),
        ("Mean patients treated", oc["mean_n_total"], "patients"),
        ("Patients treated, 10th percentile", oc["n_total_p10"], "patients"),
        ("Patients treated, 90th percentile", oc["n_total_p90"], "patients"),
    ]
    if duration is not None:
        rows += [
            ("Mean duration", duration["mean_day"], "days"),
            ("Duration, 10th percentile", duration["p10_day"], "days"),
            ("Duration, 90th percentile", duration["p90_day"], "days"),
        ]
    return pd.DataFrame({"measure": [r[0] for r in rows], "value": [float(r[1]) for r in rows],
                         "unit": [r[2] for r in rows]})


def oc_export(settings: DoseSettings, oc: Mapping, duration: Mapping | None = None) -> pd.DataFrame:
    """One long table for the CSV download: per-level rows, then whole-trial rows,
    each with its unit; the settings used are in the first rows."""
    rows = [
        ("setting", "", "design", DESIGN_LABELS[settings.design], ""),
        ("setting", "", "cohort size", settings.effective_cohort_size, "patients"),
        ("setting", "", "target DLT rate", settings.target if settings.design != "3+3" else "", "rate"),
        ("setting", "", "maximum sample size", settings.effective_max_n, "patients"),
        ("setting", "", "DLT window", settings.dlt_window_days, "days"),
        ("setting", "", "simulated trials", settings.n_trials, "trials"),
        ("setting", "", "seed", settings.seed, ""),
    ]
    per = oc_table(settings, oc)
    for rec in per.itertuples(index=False):
        rows += [
            ("level", rec.dose_level, "dose", rec.dose, DOSE_UNIT),
            ("level", rec.dose_level, "assumed true DLT rate", rec.true_dlt, "rate"),
            ("level", rec.dose_level, "selected as MTD", rec.mtd_selection_pct, "% of trials"),
            ("level", rec.dose_level, "mean patients treated", rec.mean_patients, "patients"),
            ("level", rec.dose_level, "mean DLTs", rec.mean_dlts, "patients with DLT"),
        ]
    for rec in oc_summary(oc, duration).itertuples(index=False):
        rows.append(("trial", "", rec.measure, rec.value, rec.unit))
    return pd.DataFrame(rows, columns=["section", "dose_level", "measure", "value", "unit"])


def timeline_view(timeline: Timeline) -> pd.DataFrame:
    """The timeline's cohorts with dates and durations in days, for the table under the chart."""
    c = timeline.cohorts
    return pd.DataFrame(
        {
            "cohort": c["cohort"],
            "dose_level": c["dose_level"],
            "opens": c["open_date"].dt.date,
            "filled": c["filled_date"].dt.date,
            "dlt_window_closes": c["window_end_date"].dt.date,
            "fill_days": c["filled_day"] - c["open_day"],
            "window_days": c["window_end_day"] - c["filled_day"],
        }
    )
