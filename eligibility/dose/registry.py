"""The one list of dose-escalation designs: names, labels, sources and which options apply.

Everything that offers a design (the simulator, ``dose-sim``, the dashboard page, the
decision-table download) reads this registry, so a design is added in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DesignInfo:
    """One design: ``name`` (as typed on the command line), ``label`` (as shown),
    ``source`` (the published rule), ``uses_target`` (BOIN family and i3+3),
    ``calendar`` (simulated in calendar time with staggered accrual), ``options``
    (the DesignOptions fields that apply)."""

    name: str
    label: str
    source: str
    uses_target: bool
    calendar: bool
    options: tuple[str, ...]


_BOIN_OPTIONS = ("target", "start_level", "n_earlystop", "cutoff_eli", "extrasafe", "offset", "p1", "p2", "stay_1_of_3")

REGISTRY: tuple[DesignInfo, ...] = (
    DesignInfo("3+3", "3+3", "Storer 1989 (Biometrics 45:925); de-escalation as Korn et al. 1994",
               False, False, ("start_level", "deescalation", "six_at_mtd")),
    DesignInfo("boin", "BOIN", "Liu & Yuan 2015 (J R Stat Soc C 64:507); R BOIN 2.7.2 get.oc",
               True, False, _BOIN_OPTIONS),
    DesignInfo("i3+3", "i3+3", "Liu, Wang & Ji 2020 (J Biopharm Stat 30:294)",
               True, False, ("target", "start_level", "n_earlystop", "cutoff_eli", "extrasafe", "offset",
                             "eps1", "eps2")),
    DesignInfo("tite-boin", "TITE-BOIN", "Yuan, Lin, Li, Nie & Warren 2018 (Clin Cancer Res 24:4921); "
               "as R TITEgBOIN 0.4.0 get_oc_TITE_QuasiBOIN", True, True, _BOIN_OPTIONS),
    DesignInfo("bf-boin", "BF-BOIN", "Zhao, Yuan, Korn & Freidlin 2024 (Clin Cancer Res 30:673); "
               "as R bfboin 0.1.1 get.oc.bf", True, True, _BOIN_OPTIONS),
)

DESIGN_NAMES: tuple[str, ...] = tuple(d.name for d in REGISTRY)
DESIGN_LABELS: dict[str, str] = {d.name: d.label for d in REGISTRY}
CALENDAR_DESIGNS: tuple[str, ...] = tuple(d.name for d in REGISTRY if d.calendar)


def design_info(name: str) -> DesignInfo:
    for d in REGISTRY:
        if d.name == name:
            return d
    raise ValueError(f"design must be one of {', '.join(DESIGN_NAMES)}; got {name!r}")


@dataclass(frozen=True)
class AccrualModel:
    """Calendar assumptions of TITE-BOIN / BF-BOIN simulation.

    * ``per_month``: eligible patients arriving per month (screening rate × eligible
      fraction); ``arrivals``: "poisson" (exponential gaps, default) or "uniform" (gaps
      uniform on [0, 2 / rate], as bfboin's ``accrual = "uniform"``);
    * ``dlt_window_days``: the DLT assessment window (28 days for this trial);
    * ``max_pending``: TITE-BOIN suspends accrual when more than this share of the
      current level's patients are pending (0.5, Yuan et al. 2018);
    * ``late_onset``: share of DLTs that occur in the second half of the window
      (Weibull time to DLT; 0.5 as in the TITE-BOIN and BF-BOIN simulations; R
      TITEgBOIN's ``alpha1`` with its ``alpha2`` = 0.5);
    * ``n_cap``: BF-BOIN: most patients per backfilled level (12, Zhao et al. 2024);
    * ``response``: BF-BOIN: true response rate per level; a cleared level opens to
      backfill once a response is seen there. None: cleared levels open without one.
    """

    per_month: float
    dlt_window_days: float = 28.0
    max_pending: float = 0.5
    late_onset: float = 0.5
    n_cap: int = 12
    response: tuple[float, ...] | None = None
    arrivals: Literal["poisson", "uniform"] = "poisson"

    def validate(self, n_levels: int) -> AccrualModel:
        if not (math.isfinite(self.per_month) and self.per_month > 0):
            raise ValueError(f"accrual must be more than 0 eligible patients per month, got {self.per_month:g}")
        if not (math.isfinite(self.dlt_window_days) and self.dlt_window_days > 0):
            raise ValueError(f"DLT window must be more than 0 days, got {self.dlt_window_days:g}")
        if self.arrivals not in ("poisson", "uniform"):
            raise ValueError(f"arrivals must be 'poisson' or 'uniform', got {self.arrivals!r}")
        if not 0.0 <= self.max_pending <= 1.0:
            raise ValueError(f"maximum pending share must be within [0, 1], got {self.max_pending:g}")
        if not 0.0 < self.late_onset < 1.0:
            raise ValueError(f"late-onset share must be strictly between 0 and 1, got {self.late_onset:g}")
        if int(self.n_cap) != self.n_cap or self.n_cap < 1:
            raise ValueError(f"backfill cap must be a whole number ≥ 1, got {self.n_cap}")
        if self.response is not None:
            if len(self.response) != n_levels:
                raise ValueError(f"need one response rate per level: {n_levels} levels, "
                                 f"{len(self.response)} rates")
            for i, r in enumerate(self.response, start=1):
                if not (math.isfinite(r) and 0.0 <= r <= 1.0):
                    raise ValueError(f"response rate of level {i} must be within [0, 1], got {r:g}")
        return self
