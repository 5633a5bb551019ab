"""Dose-cohort planning: assignment, sample size, screening need and timeline.

Pure functions on a pandas DataFrame with columns ``patient_id``, ``disease``,
``screening_date`` and ``status`` (``eligible`` / ``pending`` / ``ineligible``),
plus a :class:`~eligibility.dose.settings.DoseSettings`. Nothing here draws or
reads anything else; the dashboard recomputes all of it when the what-if scenario
changes the eligible fraction.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eligibility.dose.designs import elimination_threshold
from eligibility.dose.settings import DoseSettings
from eligibility.dose.simulate import (
    DAYS_PER_MONTH,
    SimulationRun,
    operating_characteristics,
    simulate_trials,
    trial_duration_days,
)

try:  # canonical disease order for tables; optional
    from eligibility.fields import DISEASES as _DISEASE_ORDER
except Exception:  # pragma: no cover - fields module is someone else's
    _DISEASE_ORDER = ("SSc", "IIM", "AAV", "SjS", "APS")

REQUIRED_COLUMNS = ("patient_id", "disease", "screening_date", "status")
STATUSES = ("eligible", "pending", "ineligible")
POOLED = "pooled"
MISSING_DISEASE = "(missing)"
BEYOND_CAPACITY = "beyond capacity"


# --------------------------------------------------------------------------
# ordering and assignment
# --------------------------------------------------------------------------


def _check_frame(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"cohort frame lacks column(s): {', '.join(missing)}")
    out = frame.loc[:, list(REQUIRED_COLUMNS)].copy()
    out = out.reset_index(drop=True)
    out["status"] = out["status"].astype("string").str.strip().str.lower()
    bad = sorted(set(out["status"].dropna().unique()) - set(STATUSES))
    if bad or out["status"].isna().any():
        shown = ", ".join(repr(b) for b in bad) or "<missing>"
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; found {shown}")
    out["screening_date"] = pd.to_datetime(out["screening_date"], errors="coerce")
    out["disease"] = out["disease"].astype("object").where(out["disease"].notna(), MISSING_DISEASE)
    return out


def order_patients(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in assignment order: ``screening_date`` ascending (missing or unreadable
    dates last), ties by ``patient_id`` (as text), then by input order."""
    out = frame.copy()
    out["_pos"] = np.arange(len(out))
    out["_date"] = pd.to_datetime(out["screening_date"], errors="coerce")
    out["_pid"] = out["patient_id"].astype("string")
    out = out.sort_values(["_date", "_pid", "_pos"], na_position="last", kind="mergesort")
    return out.drop(columns=["_pos", "_date", "_pid"])


def _slots(settings: DoseSettings) -> list[tuple[int, int, int]]:
    """(level index, cohort within level, escalation cohort number), one per patient slot."""
    cs = settings.effective_cohort_size
    out = []
    number = 0
    for li, n_coh in enumerate(settings.cohorts_per_level()):
        for c in range(n_coh):
            number += 1
            out.extend([(li, c + 1, number)] * cs)
    return out


@dataclass(frozen=True)
class CohortAssignment:
    """Result of :func:`assign_cohorts`.

    ``table``: one row per eligible or pending patient — ``patient_id``, ``disease``,
    ``screening_date``, ``kind`` (eligible / pending), ``escalation`` ("pooled" or the
    disease), ``order`` (1-based rank within escalation and kind), ``dose_level``
    (label, <NA> beyond capacity), ``level`` (1-based), ``cohort`` (within the level),
    ``escalation_cohort`` (1-based cohort number in the escalation), ``beyond_capacity``.
    ``counts`` / ``pending_counts``: patients per dose level (rows, plus a
    "beyond capacity" row) × disease (columns, plus "total").
    """

    table: pd.DataFrame
    counts: pd.DataFrame
    pending_counts: pd.DataFrame


def assign_cohorts(frame: pd.DataFrame, settings: DoseSettings) -> CohortAssignment:
    """Fill dose-level cohorts with eligible patients in screening order.

    Eligible patients (``status == "eligible"``) in :func:`order_patients` order fill
    DL1 cohort 1, DL1 cohort 2, …, DL2 cohort 1, … up to the planned capacity
    (3+3: 2 cohorts of 3 per level; BOIN / i3+3: ⌊max_n / cohort size⌋ cohorts spread
    over the levels, see ``DoseSettings.cohorts_per_level``). With
    ``pooling == "per-disease"`` each disease fills its own escalation.
    Pending patients never displace eligible ones: they are ordered among themselves
    and take the slots left after all eligible patients (``kind == "pending"``), so
    the table shows where they would go if they turned eligible. Patients past the
    capacity are kept with ``beyond_capacity = True`` and no dose level.
    Ineligible patients are left out.
    """
    data = _check_frame(frame)
    slots = _slots(settings)
    labels = settings.labels
    kept = data[data["status"].isin(["eligible", "pending"])]
    if settings.pooling == POOLED:
        groups: list[tuple[str, pd.DataFrame]] = [(POOLED, kept)]
    else:
        groups = [(str(g), sub) for g, sub in kept.groupby("disease", sort=False)]
        groups.sort(key=lambda item: _disease_rank(item[0]))
    slot_arr = np.array(slots, dtype=np.int64).reshape(-1, 3)
    parts = []
    for group, sub in groups:
        ordered = order_patients(sub)
        offset = 0
        for kind in ("eligible", "pending"):
            part = ordered[ordered["status"] == kind]
            rank = np.arange(1, len(part) + 1)
            pos = offset + rank - 1
            inside = pos < len(slot_arr)
            slot = slot_arr[np.minimum(pos, max(len(slot_arr) - 1, 0))] if len(slot_arr) else np.zeros((len(part), 3), np.int64)
            level = pd.array(np.where(inside, slot[:, 0] + 1, 0), dtype="Int64")
            level[~inside] = pd.NA
            parts.append(pd.DataFrame({
                "patient_id": part["patient_id"].to_numpy(),
                "disease": part["disease"].to_numpy(),
                "screening_date": part["screening_date"].to_numpy(),
                "kind": kind,
                "escalation": group,
                "order": rank,
                "dose_level": pd.array(np.array(labels, dtype=object)[slot[:, 0]] if len(part) else [], dtype="string"),
                "level": level,
                "cohort": pd.array(slot[:, 1], dtype="Int64"),
                "escalation_cohort": pd.array(slot[:, 2], dtype="Int64"),
                "beyond_capacity": ~inside,
            }))
            for col in ("dose_level", "cohort", "escalation_cohort"):
                parts[-1].loc[~inside, col] = pd.NA
            offset += len(part)
    columns = ["patient_id", "disease", "screening_date", "kind", "escalation", "order", "dose_level",
               "level", "cohort", "escalation_cohort", "beyond_capacity"]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    table = table.reindex(columns=columns)
    table["screening_date"] = pd.to_datetime(table["screening_date"])
    table["dose_level"] = table["dose_level"].astype("string")
    for col in ("order", "level", "cohort", "escalation_cohort"):
        table[col] = table[col].astype("Int64")
    table["beyond_capacity"] = table["beyond_capacity"].astype(bool)
    return CohortAssignment(
        table=table,
        counts=level_disease_counts(table, settings, "eligible"),
        pending_counts=level_disease_counts(table, settings, "pending"),
    )


def _disease_rank(d: str) -> tuple[int, str]:
    return (_DISEASE_ORDER.index(d), d) if d in _DISEASE_ORDER else (len(_DISEASE_ORDER), d)


def level_disease_counts(
    table: pd.DataFrame, settings: DoseSettings, kind: str = "eligible"
) -> pd.DataFrame:
    """Patients of ``kind`` per dose level (rows, in level order; a "beyond capacity"
    row only when someone is past capacity) × disease (columns, canonical order) + "total"."""
    sub = table[table["kind"] == kind]
    diseases = sorted(set(sub["disease"].astype(str).unique()), key=_disease_rank)
    rows = list(settings.labels)
    if sub["beyond_capacity"].any():
        rows.append(BEYOND_CAPACITY)
    level_col = sub["dose_level"].astype("object").where(~sub["beyond_capacity"], BEYOND_CAPACITY)
    counts = (
        pd.DataFrame({"level": level_col, "disease": sub["disease"].astype(str)})
        .groupby(["level", "disease"], observed=True).size().unstack(fill_value=0)
        if len(sub) else pd.DataFrame()
    )
    counts = counts.reindex(index=rows, columns=diseases, fill_value=0).astype("int64")
    counts["total"] = counts.sum(axis=1).astype("int64")
    counts.index.name = "dose_level"
    counts.columns.name = "disease"
    return counts


# --------------------------------------------------------------------------
# sample size and screening need
# --------------------------------------------------------------------------


def run_simulation(settings: DoseSettings) -> SimulationRun:
    """Simulate the settings' design under its assumed true DLT rates (seeded)."""
    return simulate_trials(
        settings.design,
        settings.true_dlt,
        target=settings.target,
        cohort_size=settings.cohort_size,
        max_n=settings.max_n,
        n_trials=settings.n_trials,
        seed=settings.seed,
    )


def sample_size_summary(settings: DoseSettings, run: SimulationRun | None = None) -> dict:
    """Patients treated: ``minimum``, ``all_escalate`` and ``maximum`` by the design's
    rule (3+3 with K levels: 3, 3K, 6K); with a simulation run also ``expected``
    (mean), ``p10`` and ``p90`` (numpy linear percentiles) and ``expected_per_level``."""
    k = settings.n_levels
    cs = settings.effective_cohort_size
    if settings.design == "3+3":
        out: dict = {"minimum": 3, "all_escalate": 3 * k, "maximum": 6 * k}
    else:
        full = settings.max_cohorts * cs
        earliest = full
        m = cs
        while m <= full:  # the first cohort count at which DL1 can be eliminated
            thr = elimination_threshold(m, settings.target)
            if thr is not None and thr <= m:
                earliest = m
                break
            m += cs
        out = {"minimum": earliest, "all_escalate": full, "maximum": full}
    if run is not None:
        oc = operating_characteristics(run)
        out["expected"] = oc["mean_n_total"]
        out["p10"] = oc["n_total_p10"]
        out["p90"] = oc["n_total_p90"]
        out["expected_per_level"] = oc["mean_n_per_level"]
    return out


def patients_needed_per_level(
    settings: DoseSettings, scenario: str = "maximum", run: SimulationRun | None = None
) -> dict[str, float]:
    """Patients each dose level needs, by label.

    ``"maximum"``: the planned capacity (3+3: 6 per level); ``"all_escalate"``: the
    path where every level passes at first sight (3+3: 3 per level; BOIN / i3+3:
    one cohort per level, the rest at the top level); ``"expected"``: the simulated
    mean per level (needs ``run``).
    """
    labels = settings.labels
    cs = settings.effective_cohort_size
    if scenario == "maximum":
        values = [float(c * cs) for c in settings.cohorts_per_level()]
    elif scenario == "all_escalate":
        total = settings.max_cohorts
        per = [0.0] * settings.n_levels
        for c in range(total if settings.design != "3+3" else settings.n_levels):
            per[min(c, settings.n_levels - 1)] += cs
        values = per
    elif scenario == "expected":
        if run is None:
            raise ValueError("the 'expected' scenario needs a simulation run")
        values = [float(v) for v in run.n_per_level.mean(axis=0)]
    else:
        raise ValueError(f"scenario must be maximum, all_escalate or expected; got {scenario!r}")
    return dict(zip(labels, values, strict=True))


def screening_need(needed: float, eligible_fraction: float) -> int | None:
    """Patients to screen to find ``needed`` eligible ones: ⌈needed / eligible fraction⌉.

    Returns None when the fraction is 0 (no number of screened patients is enough);
    0 when nothing is needed. A quotient within 1e-9 of a whole number counts as that
    number (3 / 0.3 is 10, not 11).
    """
    if not math.isfinite(needed) or needed < 0:
        raise ValueError(f"patients needed must be ≥ 0, got {needed}")
    if not math.isfinite(eligible_fraction) or not 0.0 <= eligible_fraction <= 1.0:
        raise ValueError(f"eligible fraction must be within [0, 1], got {eligible_fraction}")
    if needed == 0:
        return 0
    if eligible_fraction == 0.0:
        return None
    q = needed / eligible_fraction
    r = round(q)
    if abs(q - r) <= 1e-9 * max(1.0, q):
        return int(r)
    return int(math.ceil(q))


def eligible_fractions(frame: pd.DataFrame) -> dict[str, float | None]:
    """Share of screened patients who are eligible, per disease and ``"pooled"``
    (pending and ineligible count in the denominator; None for an empty group)."""
    data = _check_frame(frame)
    out: dict[str, float | None] = {}
    for d, sub in sorted(data.groupby("disease", sort=False), key=lambda it: _disease_rank(str(it[0]))):
        out[str(d)] = float((sub["status"] == "eligible").mean()) if len(sub) else None
    out[POOLED] = float((data["status"] == "eligible").mean()) if len(data) else None
    return out


def screening_need_table(
    needed_per_level: Mapping[str, float],
    fractions: Mapping[str, float | None],
) -> pd.DataFrame:
    """Patients to screen to fill each level, per group (disease or "pooled").

    ``needed_per_level``: {level label: patients needed} (see
    :func:`patients_needed_per_level`); ``fractions``: {group: eligible fraction}.
    Long table with columns ``dose_level``, ``group``, ``needed``, ``eligible_fraction``,
    ``to_screen`` (Int64, <NA> when unattainable) and ``attainable`` (False when the
    fraction is 0 or unknown); a final ``"all levels"`` row per group sums the needs.
    """
    rows = []
    total = float(sum(needed_per_level.values()))
    items = list(needed_per_level.items()) + [("all levels", total)]
    for group, frac in fractions.items():
        for label, need in items:
            n_screen = None if frac is None else screening_need(float(need), float(frac))
            rows.append(
                {
                    "dose_level": label,
                    "group": group,
                    "needed": float(need),
                    "eligible_fraction": frac,
                    "to_screen": n_screen,
                    "attainable": n_screen is not None,
                }
            )
    out = pd.DataFrame(
        rows,
        columns=["dose_level", "group", "needed", "eligible_fraction", "to_screen", "attainable"],
    )
    out["to_screen"] = out["to_screen"].astype("Int64")
    out["eligible_fraction"] = out["eligible_fraction"].astype("Float64")
    return out


# --------------------------------------------------------------------------
# screening rate and timeline
# --------------------------------------------------------------------------


def screening_rate_per_month(dates: Iterable) -> float | None:
    """Patients screened per month from their screening dates.

    Rate = (number of dated patients − 1) / span in months, the span running from the
    first to the last date (mean inter-arrival time, 1 month = 365.25/12 days).
    None when fewer than two readable dates or they all fall on one day.
    """
    series = dates if isinstance(dates, pd.Series) else pd.Series(list(dates), dtype="object")
    parsed = pd.to_datetime(series, errors="coerce").dropna()
    if len(parsed) < 2:
        return None
    span_days = (parsed.max() - parsed.min()) / pd.Timedelta(days=1)
    if span_days <= 0:
        return None
    return (len(parsed) - 1) / (span_days / DAYS_PER_MONTH)


def fill_days(cohort_size: int, rate_per_month: float, eligible_fraction: float) -> float:
    """Days to accrue ``cohort_size`` eligible patients:
    cohort_size / (rate × fraction) months (infinite when rate × fraction is 0)."""
    if rate_per_month < 0 or not 0.0 <= eligible_fraction <= 1.0:
        raise ValueError("screening rate must be ≥ 0 and eligible fraction within [0, 1]")
    per_month = rate_per_month * eligible_fraction
    if per_month == 0:
        return math.inf
    return cohort_size / per_month * DAYS_PER_MONTH


@dataclass(frozen=True)
class Timeline:
    """Result of :func:`project_timeline`.

    ``cohorts``: the all-escalate path, one row per cohort — ``cohort``, ``dose_level``,
    ``cohort_in_level``, ``open_day``, ``filled_day`` (treatment), ``window_end_day`` (days
    from the start, fractional) and the matching ``*_date`` columns (the start date plus
    the day count rounded up). ``end_all_escalate_*``: when the last window closes on that
    path. ``interval``: mean / p10 / p50 / p90 end (days and dates) from the simulated
    cohort counts, or None. ``attainable`` is False when rate × eligible fraction is 0.
    """

    fill_days: float
    dlt_window_days: int
    cohorts: pd.DataFrame
    end_all_escalate_day: float
    end_all_escalate_date: pd.Timestamp | None
    interval: dict | None
    attainable: bool


def _to_date(start: pd.Timestamp, day: float) -> pd.Timestamp | None:
    if not math.isfinite(day):
        return None
    return start + pd.Timedelta(days=math.ceil(day - 1e-9))


def project_timeline(
    settings: DoseSettings,
    eligible_fraction: float,
    rate_per_month: float | None,
    start_date: _dt.date | str | pd.Timestamp,
    sim_result: SimulationRun | Sequence[int] | np.ndarray | None = None,
    screening_during_window: bool = False,
) -> Timeline:
    """Project the escalation calendar.

    Each cohort opens, fills in cohort_size / (rate × eligible fraction) months, is
    treated, and the next cohort opens only when its DLT window closes (the spec);
    with ``screening_during_window=True`` patients found during a window wait for the
    next cohort instead. ``rate_per_month`` None falls back to
    ``settings.screening_rate_per_month``. The all-escalate path has one cohort per
    level for 3+3 and ⌊max_n / cohort size⌋ cohorts for BOIN / i3+3 (escalating once per
    cohort, then staying at the top). ``sim_result`` (a run or per-trial cohort counts)
    gives the interval of the end of escalation.
    """
    rate = settings.screening_rate_per_month if rate_per_month is None else rate_per_month
    if rate is None:
        raise ValueError("screening rate is unknown: give one or derive it from screening dates")
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"screening rate must be ≥ 0 patients per month, got {rate}")
    if not math.isfinite(eligible_fraction) or not 0.0 <= eligible_fraction <= 1.0:
        raise ValueError(f"eligible fraction must be within [0, 1], got {eligible_fraction}")
    start = pd.Timestamp(start_date).normalize()
    cs = settings.effective_cohort_size
    window = float(settings.dlt_window_days)
    f = fill_days(cs, rate, eligible_fraction)
    k = settings.n_levels
    n_path = k if settings.design == "3+3" else settings.max_cohorts
    rows = []
    prev_end = 0.0
    per_level_seen = [0] * k
    for c in range(1, n_path + 1):
        li = min(c - 1, k - 1)
        per_level_seen[li] += 1
        if screening_during_window:
            open_day = 0.0 if c == 1 else prev_end
            filled = max(prev_end, c * f) if c > 1 else f
        else:
            open_day = prev_end
            filled = open_day + f
        end = filled + window
        rows.append(
            {
                "cohort": c,
                "dose_level": settings.labels[li],
                "cohort_in_level": per_level_seen[li],
                "open_day": open_day,
                "filled_day": filled,
                "window_end_day": end,
                "open_date": _to_date(start, open_day),
                "filled_date": _to_date(start, filled),
                "window_end_date": _to_date(start, end),
            }
        )
        prev_end = end
    cohorts = pd.DataFrame(rows)
    end_day = float(trial_duration_days(n_path, f, window, screening_during_window))
    interval = None
    if sim_result is not None:
        counts = sim_result.n_cohorts if isinstance(sim_result, SimulationRun) else np.asarray(sim_result)
        days = trial_duration_days(counts, f, window, screening_during_window)
        if np.all(np.isfinite(days)):
            stats = {
                "mean": float(days.mean()),
                "p10": float(np.percentile(days, 10)),
                "p50": float(np.percentile(days, 50)),
                "p90": float(np.percentile(days, 90)),
            }
        else:
            stats = {"mean": math.inf, "p10": math.inf, "p50": math.inf, "p90": math.inf}
        interval = {f"{key}_day": v for key, v in stats.items()}
        interval.update({f"{key}_date": _to_date(start, v) for key, v in stats.items()})
    return Timeline(
        fill_days=f,
        dlt_window_days=settings.dlt_window_days,
        cohorts=cohorts,
        end_all_escalate_day=end_day,
        end_all_escalate_date=_to_date(start, end_day),
        interval=interval,
        attainable=math.isfinite(f),
    )
