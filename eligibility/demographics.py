"""Demographics of the pool: age and sex of the screened, eligible and pending patients per
disease, and of the patients remaining at each attrition step.

Pure functions of an Evaluation (evaluation order, blank rows left out); the pages and the
circulable report show these tables as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .attribution import ALL, attrition, group_slice, group_slices
from .evaluate import ELIGIBLE, PENDING, Evaluation

# Age bands (years). The protocol's range is 18–65 inclusive, so 65 closes a band.
AGE_BANDS = ("under 18", "18–29", "30–39", "40–49", "50–59", "60–65", "over 65", "age missing")
_EDGES = np.array([18, 30, 40, 50, 60])
SEXES = ("F", "M", "sex missing")
POPULATIONS = ("screened", "eligible", "pending")


def age_band_codes(age: np.ndarray) -> np.ndarray:
    """Index into AGE_BANDS per age (NaN → 'age missing')."""
    codes = np.searchsorted(_EDGES, age, side="right").astype(np.int8)  # <18 → 0 … ≥60 → 5
    with np.errstate(invalid="ignore"):
        codes[age > 65] = 6
    codes[np.isnan(age)] = 7
    return codes


def _age(ev: Evaluation) -> np.ndarray:
    cols = ev.columns
    return cols.number("age_years") if cols.has("age_years") else np.full(ev.n, np.nan)


def _sex(ev: Evaluation) -> np.ndarray:
    """0 = F, 1 = M, 2 = missing (evaluation order)."""
    cols = ev.columns
    if not cols.has("sex"):
        return np.full(ev.n, 2, np.int8)
    codes, cats = cols.codes("sex")
    out = np.full(ev.n, 2, np.int8)
    for i, c in enumerate(cats):
        if c in ("F", "M"):
            out[codes == i] = SEXES.index(c)
    return out


def _summary(age: np.ndarray, sex: np.ndarray) -> dict:
    n = len(age)
    known = age[~np.isnan(age)]
    row = {"n": n,
           "median_age": float(np.median(known)) if len(known) else np.nan,
           "age_q1": float(np.percentile(known, 25)) if len(known) else np.nan,
           "age_q3": float(np.percentile(known, 75)) if len(known) else np.nan}
    sc = np.bincount(sex, minlength=3)
    for i, s in enumerate(SEXES):
        row[s] = int(sc[i])
    row["female_pct"] = 100.0 * sc[0] / (sc[0] + sc[1]) if sc[0] + sc[1] else np.nan
    bc = np.bincount(age_band_codes(age), minlength=len(AGE_BANDS))
    for i, b in enumerate(AGE_BANDS):
        row[b] = int(bc[i])
    return row


def pool(ev: Evaluation, groups: list[str] | None = None) -> pd.DataFrame:
    """Per disease group (and All) and population (screened, eligible, pending): patients,
    median age and quartiles, sex counts, % female (of known sex) and age-band counts."""
    age, sex = _age(ev), _sex(ev)
    rows = []
    slices = group_slices(ev)
    for g in groups or list(slices):
        sl = slices[g]
        status = ev.status[sl]
        for pop in POPULATIONS:
            keep = slice(None) if pop == "screened" else status == (ELIGIBLE if pop == "eligible" else PENDING)
            rows.append({"group": g, "population": pop, **_summary(age[sl][keep], sex[sl][keep])})
    return pd.DataFrame(rows)


def by_step(ev: Evaluation, group: str | None = None) -> pd.DataFrame:
    """Patients remaining after each attrition step (criteria that exclude someone, in
    catalog order): n, median age, % female and age-band counts. First row: screened."""
    sl = group_slice(ev, group)
    age, sex = _age(ev)[sl], _sex(ev)[sl]
    first = ev.first_failed_index()[sl]
    crits = [u.criterion for u in ev.units]
    order = list(dict.fromkeys(crits))
    # Step at which each patient leaves (its first failing criterion), len(order) = stays.
    step_of_unit = np.array([order.index(c) for c in crits] + [len(order)], np.int32)
    leaves = step_of_unit[np.where(first >= 0, first, len(crits))]
    att = attrition(ev, group)
    rows = [{"step": "Screened", "excluded": 0, **_summary(age, sex)}]
    for r in att.itertuples(index=False):
        if r.excluded == 0:
            continue
        stay = leaves > order.index(r.criterion)
        rows.append({"step": r.criterion, "excluded": int(r.excluded), **_summary(age[stay], sex[stay])})
    return pd.DataFrame(rows)


def scope_groups(ev: Evaluation, disease: str | None) -> list[str]:
    """The groups a page shows for its disease filter: that disease, or every group and All."""
    return [disease] if disease else [g for g in group_slices(ev) if g != ALL] + [ALL]


def _age_text(r) -> str:
    if np.isnan(r["median_age"]):
        return "–"
    return f"{r['median_age']:.0f} ({r['age_q1']:.0f}–{r['age_q3']:.0f})"


def display_pool(pool_df: pd.DataFrame, part: str = "all") -> pd.DataFrame:
    """`pool` with readable column names (median age with its quartiles in one cell).
    part: "summary" (age and sex summary), "bands" (age-band counts) or "all"."""
    out = pd.DataFrame({"Group": pool_df["group"], "Population": pool_df["population"],
                        "Patients": pool_df["n"]})
    if part in ("summary", "all"):
        out["Median age (IQR)"] = [_age_text(r) for _, r in pool_df.iterrows()]
        out["Female %"] = pool_df["female_pct"].round(1)
        out["F"], out["M"], out["Sex missing"] = pool_df["F"], pool_df["M"], pool_df["sex missing"]
    if part in ("bands", "all"):
        for b in AGE_BANDS:
            out[b] = pool_df[b]
    return out


def display_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """`by_step` with readable column names and criterion labels."""
    from .labels import label

    out = pd.DataFrame({
        "After step": [s if s == "Screened" else label(s) for s in steps["step"]],
        "Excluded": steps["excluded"], "Remaining": steps["n"],
        "Median age (IQR)": [_age_text(r) for _, r in steps.iterrows()],
        "Female %": steps["female_pct"].round(1),
    })
    for b in AGE_BANDS:
        out[b] = steps[b]
    return out
