"""Planning settings for the dose-escalation view (spec: dose-escalation.md, defaults table).

Everything here is a planning assumption the user edits. Invalid settings raise
pydantic's ``ValidationError`` (a ``ValueError``) whose message names the setting.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eligibility.dose.designs import N_EARLYSTOP_OFF, DesignOptions
from eligibility.dose.registry import CALENDAR_DESIGNS, DESIGN_NAMES, AccrualModel, design_info

MAX_LEVELS = 8
THREE_PLUS_THREE_COHORT = 3
THREE_PLUS_THREE_COHORTS_PER_LEVEL = 2


class DoseLevel(BaseModel):
    """One dose level: a label (e.g. "DL1") and a dose in ``DoseSettings.dose_unit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    dose: float

    @field_validator("label")
    @classmethod
    def _label_nonempty(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("dose level label must not be empty")
        return v

    @field_validator("dose")
    @classmethod
    def _dose_positive(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"dose must be a positive number, got {v}")
        return v


def _default_levels() -> list[DoseLevel]:
    return [
        DoseLevel(label="DL1", dose=1.0),
        DoseLevel(label="DL2", dose=2.0),
        DoseLevel(label="DL3", dose=3.0),
    ]


class DoseSettings(BaseModel):
    """Dose-escalation planning settings with the spec's defaults.

    * ``levels``: 1–8 dose levels (default DL1 1, DL2 2, DL3 3 ×10⁹ CAR-NK cells);
    * ``design``: "3+3" (default), "boin", "i3+3", "tite-boin" or "bf-boin" (the registry);
    * ``cohort_size``: ≥ 1 (used by BOIN / i3+3; 3+3 always uses 3 — see
      :attr:`effective_cohort_size`);
    * ``dlt_window_days``: ≥ 0 (default 28);
    * ``true_dlt``: one assumed DLT rate per level, each in [0, 1] (default 0.05, 0.10, 0.20);
    * ``target``: target DLT rate in (0, 1) (default 0.30; BOIN, i3+3);
    * ``max_n``: maximum patients for BOIN / i3+3, ≥ cohort size (default 30; 3+3 uses 6K);
    * ``pooling``: "pooled" (one escalation across the five diseases, default) or
      "per-disease" (a separate escalation per disease);
    * ``screening_rate_per_month``: > 0, or None to derive from ``screening_date``;
    * ``n_trials`` / ``seed``: simulation size (≥ 10,000 recommended) and seed;
    * design options (see ``DesignOptions``): ``start_level`` (1-based), ``n_earlystop``,
      ``cutoff_eli``, ``extrasafe`` / ``offset``, ``p1`` / ``p2``, ``eps1`` / ``eps2``,
      ``deescalation`` / ``six_at_mtd`` (3+3), ``stay_1_of_3``;
    * calendar designs (TITE-BOIN, BF-BOIN): ``max_pending`` (accrual suspension),
      ``late_onset`` (share of DLTs in the window's second half), ``n_cap`` (backfill).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    levels: list[DoseLevel] = Field(default_factory=_default_levels)
    dose_unit: str = "×10⁹ CAR-NK cells"
    design: Literal["3+3", "boin", "i3+3", "tite-boin", "bf-boin"] = "3+3"
    cohort_size: int = 3
    dlt_window_days: int = 28
    true_dlt: list[float] = Field(default_factory=lambda: [0.05, 0.10, 0.20])
    target: float = 0.30
    max_n: int = 30
    pooling: Literal["pooled", "per-disease"] = "pooled"
    screening_rate_per_month: float | None = None
    n_trials: int = 10_000
    seed: int = 1
    start_level: int = 1
    n_earlystop: int = N_EARLYSTOP_OFF
    cutoff_eli: float = 0.95
    extrasafe: bool = False
    offset: float = 0.05
    p1: float | None = None
    p2: float | None = None
    eps1: float = 0.05
    eps2: float = 0.05
    deescalation: bool = True
    six_at_mtd: bool = False
    stay_1_of_3: bool = False
    max_pending: float = 0.5
    late_onset: float = 0.5
    n_cap: int = 12

    @field_validator("design", mode="before")
    @classmethod
    def _design_norm(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip().lower()
            if v not in DESIGN_NAMES:
                raise ValueError(f"design must be one of {', '.join(DESIGN_NAMES)}; got {v!r}")
        return v

    @field_validator("levels")
    @classmethod
    def _levels_count(cls, v: list[DoseLevel]) -> list[DoseLevel]:
        if not 1 <= len(v) <= MAX_LEVELS:
            raise ValueError(f"need between 1 and {MAX_LEVELS} dose levels, got {len(v)}")
        labels = [lv.label for lv in v]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"dose level labels must be unique; repeated: {', '.join(dupes)}")
        return v

    @field_validator("cohort_size")
    @classmethod
    def _cohort(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"cohort size must be at least 1, got {v}")
        return v

    @field_validator("dlt_window_days")
    @classmethod
    def _window(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"DLT window must be 0 days or more, got {v}")
        return v

    @field_validator("true_dlt")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        for i, r in enumerate(v, start=1):
            if not math.isfinite(r) or not 0.0 <= r <= 1.0:
                raise ValueError(f"true DLT rate of level {i} must be within [0, 1], got {r}")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: float) -> float:
        if not math.isfinite(v) or not 0.0 < v < 1.0:
            raise ValueError(f"target DLT rate must be strictly between 0 and 1, got {v}")
        return v

    @field_validator("screening_rate_per_month")
    @classmethod
    def _rate(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError(
                f"screening rate must be more than 0 patients per month (or empty to derive it), got {v}"
            )
        return v

    @field_validator("n_trials")
    @classmethod
    def _trials(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"number of simulated trials must be at least 1, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DoseSettings:
        if len(self.true_dlt) != len(self.levels):
            raise ValueError(
                f"need one true DLT rate per dose level: {len(self.levels)} levels but "
                f"{len(self.true_dlt)} rates"
            )
        if self.design != "3+3" and self.max_n < self.cohort_size:
            raise ValueError(
                f"maximum sample size ({self.max_n}) must be at least the cohort size ({self.cohort_size})"
            )
        if self.design != "3+3" and self.max_n % self.cohort_size:
            lo = self.max_n - self.max_n % self.cohort_size
            raise ValueError(
                f"maximum sample size ({self.max_n}) is not a multiple of the cohort size "
                f"({self.cohort_size}); use {lo} or {lo + self.cohort_size}"
            )
        if not 1 <= self.start_level <= len(self.levels):
            raise ValueError(f"start level must be between 1 and {len(self.levels)}, got {self.start_level}")
        self.design_options()  # raises a one-line ValueError naming the option
        if self.is_calendar:
            if self.dlt_window_days <= 0:
                raise ValueError(f"{self.design_label} needs a DLT window of more than 0 days")
            self.accrual_model(1.0)
        return self

    # ---- engine inputs ----------------------------------------------------

    def design_options(self) -> DesignOptions:
        """The design's options for the simulator (start level 0-based there)."""
        return DesignOptions(
            target=self.target, start_level=self.start_level - 1, n_earlystop=self.n_earlystop,
            cutoff_eli=self.cutoff_eli, extrasafe=self.extrasafe, offset=self.offset, p1=self.p1, p2=self.p2,
            eps1=self.eps1, eps2=self.eps2, deescalation=self.deescalation, six_at_mtd=self.six_at_mtd,
            stay_1_of_3=self.stay_1_of_3,
        ).validate(len(self.levels))

    @property
    def is_calendar(self) -> bool:
        """TITE-BOIN / BF-BOIN: simulated in calendar time from the accrual rate."""
        return self.design in CALENDAR_DESIGNS

    @property
    def design_label(self) -> str:
        return design_info(self.design).label

    def accrual_model(self, eligible_per_month: float) -> AccrualModel:
        """Calendar assumptions for TITE-BOIN / BF-BOIN at this eligible-patient rate."""
        return AccrualModel(
            per_month=eligible_per_month, dlt_window_days=float(self.dlt_window_days),
            max_pending=self.max_pending, late_onset=self.late_onset, n_cap=self.n_cap,
        ).validate(len(self.levels))

    # ---- derived values -------------------------------------------------

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def labels(self) -> list[str]:
        return [lv.label for lv in self.levels]

    @property
    def effective_cohort_size(self) -> int:
        """Cohort size actually used: 3 for 3+3, ``cohort_size`` otherwise."""
        return THREE_PLUS_THREE_COHORT if self.design == "3+3" else self.cohort_size

    @property
    def effective_max_n(self) -> int:
        """Maximum patients: 6K for 3+3, ``max_n`` otherwise."""
        if self.design == "3+3":
            return THREE_PLUS_THREE_COHORT * THREE_PLUS_THREE_COHORTS_PER_LEVEL * self.n_levels
        return self.max_n

    @property
    def max_cohorts(self) -> int:
        """Most cohorts a trial can treat: 2K for 3+3, ⌊max_n / cohort size⌋ otherwise."""
        return self.effective_max_n // self.effective_cohort_size
