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
from eligibility.fields import DISEASES as _DISEASE_ORDER  # the disease registry's order

PLAN_BASIS = (
    "expected path: the simulated mean number of patients per dose level, "
    "rounded to whole cohorts (largest remainder), in level order"
)

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


@dataclass(frozen=True)
class CohortPlan:
    """The one plan every view shows: cohorts per dose level along the expected path.

    ``cohorts_per_level``: whole cohorts per level (0-based order of ``labels``);
    ``order``: level index of each cohort in path order (the start level upwards, then
    any level below the start reached by de-escalation); ``expected_per_level``: the
    simulated mean patients per level it was rounded from; ``basis``: what it shows.
    """

    labels: tuple[str, ...]
    cohort_size: int
    cohorts_per_level: tuple[int, ...]
    order: tuple[int, ...]
    expected_per_level: tuple[float, ...]
    basis: str = PLAN_BASIS

    @property
    def patients_per_level(self) -> tuple[int, ...]:
        return tuple(c * self.cohort_size for c in self.cohorts_per_level)

    @property
    def n_cohorts(self) -> int:
        return len(self.order)


def largest_remainder(values: Sequence[float], total: int) -> list[int]:
    """Whole numbers summing to ``total`` that round ``values`` (Hamilton's method):
    floors first, then one more to the largest remainders (ties: lower index)."""
    vals = np.asarray(values, dtype=float)
    if total < 0 or np.any(vals < 0):
        raise ValueError("values and total must be ≥ 0")
    if vals.sum() <= 0:
        return [0] * len(vals)
    scaled = vals * total / vals.sum()
    base = np.floor(scaled + 1e-9).astype(int)
    short = total - int(base.sum())
    rem = scaled - base
    for i in sorted(range(len(vals)), key=lambda j: (-rem[j], j))[: max(short, 0)]:
        base[i] += 1
    return [int(v) for v in base]


def expected_plan(settings: DoseSettings, run: SimulationRun) -> CohortPlan:
    """The expected path of ``run``: total cohorts = round(mean patients / cohort size),
    spread over the levels in proportion to the mean patients per level."""
    cs = settings.effective_cohort_size
    mean = run.n_per_level.mean(axis=0)
    total = int(round(float(mean.sum()) / cs))
    return make_plan(settings, largest_remainder(mean, total), mean)


def make_plan(
    settings: DoseSettings, cohorts_per_level: Sequence[int], expected_per_level: Sequence[float] | None = None,
    basis: str = PLAN_BASIS,
) -> CohortPlan:
    """A plan with these cohorts per level, in path order (start level upwards, then below)."""
    per = [int(c) for c in cohorts_per_level]
    if len(per) != settings.n_levels or any(c < 0 for c in per):
        raise ValueError(f"need one cohort count ≥ 0 per dose level ({settings.n_levels})")
    cs = settings.effective_cohort_size
    start = settings.start_level - 1
    levels = list(range(start, settings.n_levels)) + list(range(start - 1, -1, -1))
    order = tuple(li for li in levels for _ in range(per[li]))
    expected = tuple(float(v) for v in (expected_per_level if expected_per_level is not None
                                        else [c * cs for c in per]))
    return CohortPlan(tuple(settings.labels), cs, tuple(per), order, expected, basis)


def default_plan(settings: DoseSettings, frame: pd.DataFrame | None = None) -> CohortPlan:
    """The expected path of the settings' own simulation. TITE-BOIN / BF-BOIN need an
    eligible-patient rate: the settings' screening rate (or the one derived from the
    cohort's screening dates) × the cohort's eligible fraction; without one their plan
    is BOIN's cohort-by-cohort path with the same options."""
    rate = None
    if settings.is_calendar and frame is not None and len(frame):
        data = _check_frame(frame)
        screened = settings.screening_rate_per_month or screening_rate_per_month(data["screening_date"])
        frac = float((data["status"] == "eligible").mean())
        rate = None if screened is None or frac == 0 else screened * frac
    if settings.is_calendar and rate is None:
        settings = settings.model_copy(update={"design": "boin"})
    return expected_plan(settings, run_simulation(settings, rate))


def _slots(plan: CohortPlan) -> list[tuple[int, int, int]]:
    """(level index, cohort within level, escalation cohort number), one per patient slot."""
    out = []
    seen = [0] * len(plan.labels)
    for number, li in enumerate(plan.order, start=1):
        seen[li] += 1
        out.extend([(li, seen[li], number)] * plan.cohort_size)
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


def assign_cohorts(
    frame: pd.DataFrame, settings: DoseSettings, plan: CohortPlan | None = None
) -> CohortAssignment:
    """Fill the plan's cohorts with eligible patients in screening order.

    Eligible patients (``status == "eligible"``) in :func:`order_patients` order fill
    the cohorts of ``plan`` (:func:`expected_plan`; None: :func:`default_plan` of the
    settings and this cohort) in path order: DL1 cohort 1, DL1 cohort 2, …, DL2 cohort 1, … With
    ``pooling == "per-disease"`` each disease fills its own escalation.
    Pending patients never displace eligible ones: they are ordered among themselves
    and take the slots left after all eligible patients (``kind == "pending"``), so
    the table shows where they would go if they turned eligible. Patients past the
    capacity are kept with ``beyond_capacity = True`` and no dose level.
    Ineligible patients are left out.
    """
    data = _check_frame(frame)
    if plan is None:
        plan = default_plan(settings, data)
    if tuple(plan.labels) != tuple(settings.labels):
        raise ValueError("the cohort plan was made for other dose levels")
    slots = _slots(plan)
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


def run_simulation(settings: DoseSettings, eligible_per_month: float | None = None) -> SimulationRun:
    """Simulate the settings' design under its assumed true DLT rates (seeded).

    TITE-BOIN and BF-BOIN run in calendar time and need ``eligible_per_month`` (screening
    rate × eligible fraction); the other designs ignore it."""
    accrual = None
    if settings.is_calendar:
        if eligible_per_month is None or not eligible_per_month > 0:
            raise ValueError(f"{settings.design_label} needs a screening rate and a non-zero eligible fraction")
        accrual = settings.accrual_model(eligible_per_month)
    return simulate_trials(
        settings.design,
        settings.true_dlt,
        cohort_size=settings.cohort_size,
        max_n=settings.max_n,
        n_trials=settings.n_trials,
        seed=settings.seed,
        options=settings.design_options(),
        accrual=accrual,
    )


def _earliest_safety_stop(settings: DoseSettings) -> int | None:
    """Fewest patients at DL1 that can stop an interval design for safety (elimination or,
    with extrasafe, the stricter rule), in whole cohorts; None if none within max N."""
    opt = settings.design_options()
    cs = settings.cohort_size
    for m in range(cs, settings.max_n + 1, cs):
        thr = elimination_threshold(m, opt.target, opt.cutoff_eli)
        if thr is not None:
            return m
    return None


def sample_size_summary(settings: DoseSettings, run: SimulationRun | None = None) -> dict:
    """Patients treated: ``minimum``, ``all_escalate`` and ``maximum`` by the design's rule,
    and, with a simulation run, ``expected`` (mean), ``p10`` / ``p90`` (numpy linear
    percentiles) and ``expected_per_level``.

    3+3 with K levels starting at level s: minimum 3 (s = 1; 6 above, one cohort
    there and one below), all-escalate 3(K − s + 1) (+3 with six-at-MTD), maximum 6K.
    Interval designs: the maximum and the "no stopping rule fires" size are max N; the
    minimum is the earliest stop: (s − 1) de-escalating cohorts then the earliest safety
    stop at DL1, or n-earlystop patients at the start level, whichever is smaller.
    """
    k = settings.n_levels
    cs = settings.effective_cohort_size
    s = settings.start_level
    if settings.design == "3+3":
        out: dict = {"minimum": 3 if s == 1 else 6,
                     "all_escalate": 3 * (k - s + 1) + (3 if settings.six_at_mtd else 0), "maximum": 6 * k}
    else:
        full = settings.max_n
        candidates = [full]
        stop = _earliest_safety_stop(settings)
        if stop is not None:
            candidates.append(min(full, (s - 1) * cs + stop))
        candidates.append(min(full, math.ceil(settings.n_earlystop / cs) * cs))
        out = {"minimum": min(candidates), "all_escalate": full, "maximum": full}
    if run is not None:
        oc = operating_characteristics(run)
        out["expected"] = oc["mean_n_total"]
        out["p10"] = oc["n_total_p10"]
        out["p90"] = oc["n_total_p90"]
        out["expected_per_level"] = oc["mean_n_per_level"]
    return out


NEED_SCENARIOS = ("plan", "expected", "maximum")


def patients_needed_per_level(
    settings: DoseSettings, scenario: str = "plan", run: SimulationRun | None = None,
    plan: CohortPlan | None = None,
) -> dict[str, float]:
    """Patients each dose level needs, by label.

    ``"plan"``: the expected path in whole cohorts (what the assignment and the timeline
    show; needs ``plan``); ``"expected"``: the simulated mean per level (needs ``run``);
    ``"maximum"``: 3+3 only, 6 per level (interval designs have no per-level maximum:
    any level may take all max N patients).
    """
    labels = settings.labels
    if scenario == "plan":
        if plan is None:
            raise ValueError("the 'plan' scenario needs the cohort plan")
        values = [float(v) for v in plan.patients_per_level]
    elif scenario == "expected":
        if run is None:
            raise ValueError("the 'expected' scenario needs a simulation run")
        values = [float(v) for v in run.n_per_level.mean(axis=0)]
    elif scenario == "maximum":
        if settings.design != "3+3":
            raise ValueError("a per-level maximum exists for 3+3 only (6 per level)")
        values = [6.0] * settings.n_levels
    else:
        raise ValueError(f"scenario must be one of {', '.join(NEED_SCENARIOS)}; got {scenario!r}")
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

    ``cohorts``: the plan's cohorts in path order, one row each — ``cohort``,
    ``dose_level``, ``cohort_in_level``, ``open_day``, ``filled_day`` (treatment),
    ``window_end_day`` (days from the start, fractional) and the matching ``*_date``
    columns (the start date plus the day count rounded up). ``end_plan_*``: when the last
    window of the plan closes. ``interval``: mean / p10 / p50 / p90 end (days and dates)
    of the simulated trials, or None. ``attainable`` is False when rate × eligible
    fraction is 0. ``overlapping``: cohorts open while earlier windows run (TITE-BOIN).
    """

    fill_days: float
    dlt_window_days: int
    cohorts: pd.DataFrame
    end_plan_day: float
    end_plan_date: pd.Timestamp | None
    interval: dict | None
    attainable: bool
    overlapping: bool = False


def _to_date(start: pd.Timestamp, day: float) -> pd.Timestamp | None:
    if not math.isfinite(day):
        return None
    return start + pd.Timedelta(days=math.ceil(day - 1e-9))


def simulated_durations(
    run: SimulationRun | Sequence[int] | np.ndarray, fill: float, window: float,
    screening_during_window: bool = False,
) -> np.ndarray:
    """Days from the start to the end of each simulated trial: the calendar simulation's own
    durations (TITE-BOIN, BF-BOIN) or cohorts × (fill + window) (cohort-by-cohort designs;
    ``run`` may also be the per-trial cohort counts)."""
    if not isinstance(run, SimulationRun):
        return trial_duration_days(np.asarray(run), fill, window, screening_during_window)
    if run.duration_days is not None:
        return np.asarray(run.duration_days, dtype=float)
    return trial_duration_days(run.n_cohorts, fill, window, screening_during_window)


def duration_summary(days: np.ndarray) -> dict:
    """Mean and 10/50/90th percentiles (days) of per-trial durations (inf when unattainable)."""
    if days.size == 0:
        raise ValueError("no trials given")
    if not np.all(np.isfinite(days)):
        return {"mean": math.inf, "p10": math.inf, "p50": math.inf, "p90": math.inf}
    return {"mean": float(days.mean()), "p10": float(np.percentile(days, 10)),
            "p50": float(np.percentile(days, 50)), "p90": float(np.percentile(days, 90))}


def project_timeline(
    settings: DoseSettings,
    eligible_fraction: float,
    rate_per_month: float | None,
    start_date: _dt.date | str | pd.Timestamp,
    plan: CohortPlan,
    sim_result: SimulationRun | Sequence[int] | np.ndarray | None = None,
    screening_during_window: bool = False,
) -> Timeline:
    """Project the escalation calendar of ``plan`` (the expected path).

    Each cohort fills in cohort_size / (rate × eligible fraction) months and is treated;
    the next cohort opens only when its DLT window closes (the spec); with
    ``screening_during_window=True`` patients found during a window wait for the next
    cohort instead. TITE-BOIN and BF-BOIN with their calendar run: each cohort of the plan
    opens and fills on the simulated mean entry days of its first and last patient (patients
    in entry order, so the suspension of accrual and the backfilled patients are in it);
    TITE-BOIN windows overlap (``overlapping``). ``rate_per_month`` None falls back to
    ``settings.screening_rate_per_month``. ``sim_result`` gives the interval of the end
    of escalation (:func:`simulated_durations`).
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
    overlapping = settings.design == "tite-boin"
    ent = sim_result.entry_days if isinstance(sim_result, SimulationRun) else None
    calendar = ent is not None and math.isfinite(f)
    if ent is not None and calendar:  # the simulation's mean entry days of each cohort's first and last patient
        with np.errstate(invalid="ignore"):
            mean_entry = np.array([float(np.mean(col[np.isfinite(col)])) if np.isfinite(col).any() else math.nan
                                   for col in ent.T])
    rows = []
    prev_end = 0.0
    prev_filled = 0.0
    seen = [0] * settings.n_levels
    for c, li in enumerate(plan.order, start=1):
        seen[li] += 1
        i0, i1 = (c - 1) * cs, c * cs - 1
        if calendar and i1 < len(mean_entry) and math.isfinite(mean_entry[i1]):
            open_day, filled = mean_entry[i0], mean_entry[i1]
        elif overlapping:
            open_day = prev_filled
            filled = open_day + f
        elif screening_during_window:
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
                "cohort_in_level": seen[li],
                "open_day": open_day,
                "filled_day": filled,
                "window_end_day": end,
                "open_date": _to_date(start, open_day),
                "filled_date": _to_date(start, filled),
                "window_end_date": _to_date(start, end),
            }
        )
        prev_end, prev_filled = end, filled
    cohorts = pd.DataFrame(rows, columns=["cohort", "dose_level", "cohort_in_level", "open_day", "filled_day",
                                          "window_end_day", "open_date", "filled_date", "window_end_date"])
    end_day = float(cohorts["window_end_day"].max()) if len(cohorts) else 0.0
    if not math.isfinite(f):
        end_day = math.inf if len(cohorts) else 0.0
    interval = None
    if sim_result is not None:
        stats = duration_summary(simulated_durations(sim_result, f, window, screening_during_window))
        interval = {f"{key}_day": v for key, v in stats.items()}
        interval.update({f"{key}_date": _to_date(start, v) for key, v in stats.items()})
    return Timeline(
        fill_days=f,
        dlt_window_days=settings.dlt_window_days,
        cohorts=cohorts,
        end_plan_day=end_day,
        end_plan_date=_to_date(start, end_day),
        interval=interval,
        attainable=math.isfinite(f),
        overlapping=overlapping,
    )
