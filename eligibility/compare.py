"""Two scenarios side by side (and against the protocol): counts per disease, patients
gained and lost between them, and the patients whose status differs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .attribution import group_slices
from .evaluate import ELIGIBLE, PENDING, STATUS_NAMES, Evaluation


def counts_side_by_side(protocol: Evaluation, a: Evaluation, b: Evaluation) -> pd.DataFrame:
    """Per disease group (and All): eligible and pending under the protocol, A and B;
    B − A net change, patients eligible in B but not A (gained) and the reverse (lost)."""
    rows = []
    for g, sl in group_slices(a).items():
        sp, sa, sb = protocol.status[sl], a.status[sl], b.status[sl]
        rows.append({
            "group": g, "screened": int(sl.stop - sl.start),
            "eligible_protocol": int((sp == ELIGIBLE).sum()),
            "eligible_a": int((sa == ELIGIBLE).sum()), "eligible_b": int((sb == ELIGIBLE).sum()),
            "pending_protocol": int((sp == PENDING).sum()),
            "pending_a": int((sa == PENDING).sum()), "pending_b": int((sb == PENDING).sum()),
            "gained_b_vs_a": int(((sb == ELIGIBLE) & (sa != ELIGIBLE)).sum()),
            "lost_b_vs_a": int(((sa == ELIGIBLE) & (sb != ELIGIBLE)).sum()),
            "differ": int((sa != sb).sum()),
        })
    df = pd.DataFrame(rows)
    df["net_b_vs_a"] = df["eligible_b"] - df["eligible_a"]
    return df


def differing_patients(protocol: Evaluation, a: Evaluation, b: Evaluation,
                       frame: pd.DataFrame) -> pd.DataFrame:
    """Patients whose status differs between A and B, in input order, with the protocol's
    status and each scenario's first failing criterion."""
    n = a.n_patients
    pos = np.flatnonzero(a.status[:n] != b.status[:n])
    rows_in = a.columns.order[pos]
    sort = np.argsort(rows_in, kind="stable")
    pos, rows_in = pos[sort], rows_in[sort]

    def first(ev: Evaluation) -> np.ndarray:
        ids = ev.unit_ids
        f = ev.first_failed_at(pos)
        return np.array([*ids, ""], dtype=object)[np.where(f >= 0, f, len(ids))]

    picked = frame[["patient_id", "disease"]].iloc[rows_in]  # two columns, not the whole row
    return pd.DataFrame({
        "row": rows_in + 1,
        "patient_id": picked["patient_id"].astype("string").to_numpy(),
        "disease": picked["disease"].astype("string").to_numpy(),
        "status_protocol": STATUS_NAMES[protocol.status[pos]],
        "status_a": STATUS_NAMES[a.status[pos]],
        "status_b": STATUS_NAMES[b.status[pos]],
        "first_reason_a": first(a),
        "first_reason_b": first(b),
    })
