"""Dose-escalation planning engine: designs (3+3, BOIN, i3+3, TITE-BOIN, BF-BOIN), seeded vectorised
simulation, exact 3+3 enumeration, planning settings, cohort assignment and timeline.

No UI code here; the dashboard page and ``python -m eligibility dose-sim`` call it.
"""

from eligibility.dose.designs import (
    DesignOptions,
    boin_boundaries,
    boin_count_table,
    boin_decision,
    i3p3_decision,
    i3p3_table,
    select_mtd,
    three_plus_three_next,
)
from eligibility.dose.exact import exact_operating_characteristics, three_plus_three_exact
from eligibility.dose.planning import (
    CohortAssignment,
    CohortPlan,
    Timeline,
    assign_cohorts,
    eligible_fractions,
    expected_plan,
    patients_needed_per_level,
    project_timeline,
    run_simulation,
    sample_size_summary,
    screening_need,
    screening_need_table,
    screening_rate_per_month,
)
from eligibility.dose.registry import (
    DESIGN_LABELS,
    DESIGN_NAMES,
    REGISTRY,
    AccrualModel,
    design_info,
)
from eligibility.dose.settings import DoseLevel, DoseSettings
from eligibility.dose.simulate import (
    SimulationRun,
    duration_distribution,
    operating_characteristics,
    simulate,
    simulate_trials,
    true_mtd,
)

DESIGNS = DESIGN_NAMES

__all__ = [
    "DESIGNS",
    "DESIGN_LABELS",
    "DESIGN_NAMES",
    "REGISTRY",
    "AccrualModel",
    "DesignOptions",
    "design_info",
    "CohortAssignment",
    "CohortPlan",
    "DoseLevel",
    "DoseSettings",
    "SimulationRun",
    "Timeline",
    "assign_cohorts",
    "boin_boundaries",
    "boin_count_table",
    "boin_decision",
    "duration_distribution",
    "eligible_fractions",
    "exact_operating_characteristics",
    "expected_plan",
    "i3p3_decision",
    "i3p3_table",
    "operating_characteristics",
    "patients_needed_per_level",
    "project_timeline",
    "run_simulation",
    "sample_size_summary",
    "screening_need",
    "screening_need_table",
    "screening_rate_per_month",
    "select_mtd",
    "simulate",
    "simulate_trials",
    "three_plus_three_exact",
    "three_plus_three_next",
    "true_mtd",
]
