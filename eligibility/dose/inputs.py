"""Dose settings from the page's widgets, with messages that name the setting (no Streamlit here).

The dose-level editor gives rows of label / dose / true DLT rate; the other widgets give
the design and its options. :func:`build_settings` turns them into ``DoseSettings`` or
raises :class:`SettingsError` whose text names the setting (and the editor row) in plain
words, so the page shows one line instead of a traceback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import ValidationError

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
    "start_level": "Start level",
    "n_earlystop": "Stop at n patients on a level (n-earlystop)",
    "cutoff_eli": "Elimination cut-off",
    "extrasafe": "Extra-safe stopping",
    "offset": "Extra-safe offset",
    "p1": "p1 (sets λe)",
    "p2": "p2 (sets λd)",
    "eps1": "i3+3 ε1",
    "eps2": "i3+3 ε2",
    "max_pending": "Maximum pending share",
    "late_onset": "Late-onset DLT share",
    "n_cap": "Backfill cap per level",
}

#: The design options a page passes through unchanged (DoseSettings fields).
OPTION_FIELDS = ("start_level", "n_earlystop", "cutoff_eli", "extrasafe", "offset", "p1", "p2", "eps1", "eps2",
                 "deescalation", "six_at_mtd", "stay_1_of_3", "max_pending", "late_onset", "n_cap")


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
    **options,
) -> DoseSettings:
    """``DoseSettings`` from the page's widgets; :class:`SettingsError` with a plain message.
    ``options``: any of ``OPTION_FIELDS`` (design options; None values are left at defaults)."""
    unknown = sorted(set(options) - set(OPTION_FIELDS))
    if unknown:
        raise TypeError(f"unknown dose options: {', '.join(unknown)}")
    levels, rates = levels_from_table(table)
    given = {k: v for k, v in options.items() if v is not None or k in ("p1", "p2")}
    for name in ("start_level", "n_earlystop", "n_cap"):
        if name in given and given[name] is not None:
            given[name] = int(given[name])
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
            **given,
        )
    except ValidationError as e:
        raise SettingsError(settings_error_message(e)) from None
    except ValueError as e:  # DesignOptions' own one-line message
        raise SettingsError(str(e)) from None


def simulation_key(settings: DoseSettings) -> str:
    """JSON of the settings the simulation depends on (a small, hashable cache key that
    validates back into ``DoseSettings``); calendar designs also depend on the DLT window
    (and on the eligible-patient rate, which the caller keys on separately)."""
    include = {"levels", "design", "cohort_size", "true_dlt", "target", "max_n", "n_trials", "seed",
               *OPTION_FIELDS}
    if settings.is_calendar:
        include |= {"dlt_window_days"}
    return settings.model_dump_json(include=include)
