"""What each alternative reading of the protocol does to a cohort: patients gained and lost.

Every alternative of every reading is compared with the scenario as it stands (its other
readings, parameters and switched-off criteria held). Gained = eligible under the
alternative and not now; lost = eligible now and not under the alternative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .evaluate import ELIGIBLE, Evaluator
from .scenario import Resolved, resolve, to_scenario


def with_reading(scenario: Resolved, name: str, alternative: str, evaluator: Evaluator) -> Resolved:
    """The scenario with one reading switched; explicit parameter changes are kept, the
    parameters the old reading bound are released."""
    data = to_scenario(scenario, evaluator.catalog)
    readings = {**data.readings, name: alternative}
    return resolve(data.model_copy(update={"readings": readings}), evaluator.catalog)


def _ids(evaluator: Evaluator, frame: pd.DataFrame, mask: np.ndarray) -> list[str]:
    rows = np.sort(evaluator.columns.order[np.flatnonzero(mask)])
    return [str(x) for x in frame["patient_id"].iloc[rows].astype("string").to_numpy()]


def reading_impact(evaluator: Evaluator, scenario: Resolved, frame: pd.DataFrame,
                   group: str | None = None) -> pd.DataFrame:
    """One row per (reading, alternative): eligible count and patients gained/lost against
    the scenario (the current alternative has zero of both). `group`: one disease only."""
    catalog = evaluator.catalog
    now = evaluator.status(scenario)
    sl = slice(0, len(evaluator)) if group in (None, "All") else evaluator.columns.bounds[group]
    current = dict(scenario.readings)
    rows = []
    for r in catalog.readings.values():
        chosen = current.get(r.name, r.default)
        for alt, spec in r.alternatives.items():
            status = now if alt == chosen else evaluator.status(with_reading(scenario, r.name, alt, evaluator))
            in_group = np.zeros(len(now), bool)
            in_group[sl] = True
            gained = in_group & (status == ELIGIBLE) & (now != ELIGIBLE)
            lost = in_group & (now == ELIGIBLE) & (status != ELIGIBLE)
            rows.append({
                "reading": r.name, "alternative": alt, "wording": spec.wording,
                "default": alt == r.default, "current": alt == chosen,
                "eligible": int((status[sl] == ELIGIBLE).sum()),
                "gained": int(gained.sum()), "lost": int(lost.sum()),
                "gained_ids": _ids(evaluator, frame, gained), "lost_ids": _ids(evaluator, frame, lost),
            })
    return pd.DataFrame(rows, columns=["reading", "alternative", "wording", "default", "current", "eligible",
                                       "gained", "lost", "gained_ids", "lost_ids"])
