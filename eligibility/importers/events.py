"""Coded EHR events -> contract fields, through the mapping catalog (eligibility.mapping).

The FHIR reader and the Synthea CSV reader both reduce their input to two frames:

``patients``  patient_id, birth, death (dates or None), dead_undated (bool), gender (text)
``events``    one row per coded record:
              patient_id, table (measurement / condition / procedure / observation / drug),
              vocabulary (OMOP vocabulary_id), code, start, end (UTC timestamps; end NaT =
              ongoing), resolved (bool: the source says it ended, date or not),
              value (float), unit, original (value as found, text), why (why the value
              is unusable, "" if usable), route (oral / iv / None), source_table

and :func:`apply_mapping` turns them into a contract frame, a provenance table and a
list of left-out patients, applying the matching rules documented in
``eligibility/mapping/__init__.py`` (the same catalog the OMOP reader uses).

Decisions where the catalog is silent (all in ``notes`` when they apply):
- *patients with data*: every imported patient has at least one record (patients with
  none are left out, reason "no data"), so catalog ``absent: no`` gives ``no``;
- a condition with no end that is resolved/inactive ends on its start date;
- malignancy: years (days / 365.25, 2 decimals) since the latest end of a matching
  record, 0 while one is ongoing;
- drug exposures: only those starting on or before the as-of date; ``days_since`` 0
  when the exposure runs through the as-of date; an exposure without a recorded route
  follows the catalog's ``defaults.route_unknown`` (``any``: counts for every ``route``
  rule, an antibiotic could have been either) and is reported;
- ``drug_span``: months = days covered by the union of exposures (clipped to the
  as-of date) / 30.4375, 1 decimal; an exposure without an end that is not ongoing
  covers its start day only.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..fields import FIELDS, IMMUNOMODULATORS
from ..mapping import PROVENANCE_COLUMNS, REPORT_COLUMNS, convert, field_for_code, load_mapping
from ..mapping.models import (
    AgeRule,
    CategoryRule,
    ConditionRule,
    DrugListRule,
    DrugRule,
    DrugSpanRule,
    LabRule,
    MalignancyRule,
    SexRule,
)

EVENT_COLUMNS = ("patient_id", "table", "vocabulary", "code", "start", "end", "resolved", "value", "unit",
                 "original", "why", "route", "source_table")
LEFT_OUT_COLUMNS = ("patient_id", "reason")
AS_OF_WARN_DAYS = 365  # data's last date this far from the as-of date: warn
_SEX = {"f": "F", "female": "F", "m": "M", "male": "M"}


@dataclass
class ImportResult:
    frame: pd.DataFrame  # contract columns
    provenance: pd.DataFrame  # PROVENANCE_COLUMNS
    left_out: pd.DataFrame  # LEFT_OUT_COLUMNS
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REPORT_COLUMNS)))
    as_of: _dt.date | None = None
    last_date: _dt.date | None = None


def empty_events() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})


def completed_years(birth: _dt.date, on: _dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _d(ts) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).date().isoformat()


def _num_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(round(float(v), 6))


class _Prov:
    """Provenance rows, and the report of values that could not be used (REPORT_COLUMNS)."""

    def __init__(self):
        self.rows: list[dict] = []
        self.report: list[tuple] = []

    def problem(self, pid, fld, kind, detail) -> None:
        self.report.append((pid, fld, kind, detail))

    def add(self, pid, fld, value, table, vocab=None, code=None, date=None, original=None, unit=None):
        self.rows.append({
            "patient_id": pid, "field": fld, "value": value, "source_table": table, "vocabulary_id": vocab,
            "concept_code": code, "date": date, "original_value": original, "original_unit": unit,
        })

    def frame(self) -> pd.DataFrame:
        cols = list(PROVENANCE_COLUMNS)
        return pd.DataFrame(self.rows, columns=cols).astype(dict(PROVENANCE_COLUMNS))


def _match(events: pd.DataFrame) -> pd.DataFrame:
    """Events x catalog uses: one row per (event, field it can fill)."""
    cache: dict[tuple[str, str], tuple] = {}
    idx, fields, cats, roles = [], [], [], []
    for i, (vocab, code) in enumerate(zip(events["vocabulary"], events["code"], strict=True)):
        key = (str(vocab), str(code))
        if key not in cache:
            cache[key] = field_for_code(*key)
        for use in cache[key]:
            idx.append(i)
            fields.append(use.field)
            cats.append(use.category)
            roles.append(use.role)
    out = events.iloc[idx].reset_index(drop=True)
    out["field"], out["category"], out["role"] = fields, cats, roles
    return out


def apply_mapping(
    patients: pd.DataFrame,
    events: pd.DataFrame,
    *,
    as_of: _dt.date | None = None,
    disease: str | None = None,
    source: str = "",
    left_out: list[tuple[str, str]] | None = None,
) -> ImportResult:
    """Contract frame, provenance and left-out list (see the module docstring)."""
    notes: list[str] = []
    warnings: list[str] = []
    catalog = load_mapping()
    left: list[tuple[str, str]] = list(left_out or [])
    events = events.reset_index(drop=True)
    for col in ("start", "end"):
        events[col] = pd.to_datetime(events[col], utc=True)

    # --- as-of date -------------------------------------------------------------------
    stamps = pd.concat([events["start"], events["end"]]).dropna()
    last = stamps.max().date() if len(stamps) else None
    today = _dt.date.today()
    if as_of is None:
        as_of = today
        notes.append(f"as-of date {as_of.isoformat()} (today; give --as-of to screen at another date)")
    else:
        notes.append(f"as-of date {as_of.isoformat()} (given)")
    if last is not None:
        notes.append(f"the data's last record date is {last.isoformat()}")
        gap = abs((as_of - last).days)
        if gap > AS_OF_WARN_DAYS:
            warnings.append(
                f"the as-of date {as_of.isoformat()} is {gap} days from the data's last record "
                f"({last.isoformat()}): lab look-back windows and washouts may find nothing; "
                "give --as-of to screen at the data's date"
            )

    # --- who is imported ---------------------------------------------------------------
    patients = patients.reset_index(drop=True)
    keep = []
    seen: set[str] = set()
    with_data = set(events["patient_id"])
    for rec in patients.itertuples(index=False):
        pid = rec.patient_id
        if not pid:
            left.append(("", "Patient without an id"))
            continue
        if pid in seen:
            left.append((pid, "repeated Patient id (the first record is used)"))
            continue
        seen.add(pid)
        if rec.dead_undated or (rec.death is not None and rec.death <= as_of):
            when = "" if rec.death is None else f" ({rec.death.isoformat()})"
            left.append((pid, f"deceased on or before the as-of date{when}"))
        elif rec.birth is not None and rec.birth > as_of:
            left.append((pid, "born after the as-of date"))
        elif pid not in with_data:
            left.append((pid, "no data (no coded record)"))
        else:
            keep.append(rec)
    orphans = sorted(with_data - seen)
    if orphans:
        n = int(events["patient_id"].isin(orphans).sum())
        notes.append(f"{n} record(s) refer to {len(orphans)} patient id(s) with no Patient record; ignored: "
                     + ", ".join(orphans[:10]) + (" …" if len(orphans) > 10 else ""))
    ids = [r.patient_id for r in keep]
    pos = {pid: i for i, pid in enumerate(ids)}
    n = len(ids)
    notes.append(f"{n} of {len(patients)} patient(s) imported; {len(left)} left out (listed by ID)")

    prov = _Prov()
    cols: dict[str, list] = {"patient_id": ids}
    cutoff = pd.Timestamp(as_of + _dt.timedelta(days=1), tz="UTC")
    ev = events[events["patient_id"].isin(pos)]
    later = ev["start"].notna() & (ev["start"] >= cutoff)
    if later.any():
        notes.append(f"{int(later.sum())} record(s) dated after the as-of date ignored")
    undated = ev["start"].isna()
    if undated.any():
        notes.append(f"{int(undated.sum())} record(s) without a readable date ignored")
    ev = ev[~later & ~undated].reset_index(drop=True)
    ev["end"] = ev["end"].where(ev["end"].isna() | (ev["end"] < cutoff), pd.NaT)  # runs past as_of: ongoing
    m = _match(ev)
    as_of_ts = pd.Timestamp(as_of, tz="UTC")

    def absent_value(rule) -> str | None:
        absent = getattr(rule, "absent", None) or catalog.defaults.absent
        return "no" if absent == "no" else None

    for rule in catalog.fields:
        f = rule.field
        rows = m[m["field"] == f]
        vals: list  # one value per patient (None = empty)
        if isinstance(rule, AgeRule):
            vals = []
            for r in keep:
                if r.birth is None:
                    vals.append(None)
                    continue
                vals.append(completed_years(r.birth, as_of))
                prov.add(r.patient_id, f, str(vals[-1]), "Patient", None, None, r.birth.isoformat(), r.birth.isoformat())
            cols[f] = vals
            nob = sum(v is None for v in vals)
            if nob:
                notes.append(f"age_years: {nob} patient(s) without a readable birth date; left empty")
        elif isinstance(rule, SexRule):
            vals = []
            for r in keep:
                s = _SEX.get(str(r.gender or "").strip().lower())
                vals.append(s if s in rule.categories else None)
                if vals[-1]:
                    prov.add(r.patient_id, f, vals[-1], "Patient", "Gender", vals[-1], None, str(r.gender))
            cols[f] = vals
        elif isinstance(rule, LabRule):
            cols[f] = _lab(rule, rows, pos, n, as_of_ts, prov, notes)
        elif isinstance(rule, CategoryRule):
            cols[f] = _category(rule, rows, pos, n, prov, notes)
        elif isinstance(rule, ConditionRule):
            cols[f] = _condition(rule, rows, ids, as_of_ts, prov, absent_value(rule))
        elif isinstance(rule, MalignancyRule):
            years, excepted = _malignancy(rule, rows, pos, n, as_of_ts, prov)
            cols[f], cols[rule.also_fills] = years, excepted
        elif isinstance(rule, DrugRule):
            cols[f] = _drug(rule, rows, ids, as_of_ts, prov, notes)
        elif isinstance(rule, DrugListRule):
            cols[f] = _drug_list(rule, rows, pos, ids, prov)
        elif isinstance(rule, DrugSpanRule):
            span_rows = m[m["field"].isin(rule.from_fields) & (m["table"] == "drug")]
            cols[f] = _drug_span(f, span_rows, ids, as_of_ts, prov)

    # --- disease: coded indication, else the one given ----------------------------------
    coded = cols.get("disease", [None] * n)
    if disease:
        differ = [ids[i] for i in range(n) if coded[i] and coded[i] != disease]
        for pid in differ:
            prov.problem(pid, "disease", "disease_differs", f"coded {coded[pos[pid]]} kept; --disease {disease}")
        filled = 0
        for i in range(n):
            if not coded[i]:
                coded[i] = disease
                filled += 1
                prov.add(ids[i], "disease", disease, "given (--disease)")
        notes.append(f"disease {disease} given for {filled} patient(s) without a coded indication")
        if differ:
            warnings.append(f"{len(differ)} patient(s) have a coded indication other than {disease}; "
                            "the coded one is kept: " + ", ".join(differ[:20]))
    cols["disease"] = coded
    if not any(coded):
        notes.append("no trial indication coded for anyone: disease empty, DX-1 unknown (give --disease, "
                     "or collect it by chart review)")
    cols["screening_date"] = [as_of.isoformat()] * n
    not_mapped = sorted(catalog.not_mapped)
    if not_mapped:
        notes.append("not filled from EHR codes (criteria not assessed unless collected): "
                     + ", ".join(not_mapped))
    order = [fl.name for fl in FIELDS if fl.name in cols]
    frame = pd.DataFrame({c: pd.Series(cols[c], dtype=object) for c in order})
    frame.attrs["source"] = source
    return ImportResult(frame=frame, provenance=prov.frame(),
                        left_out=pd.DataFrame(left, columns=list(LEFT_OUT_COLUMNS)),
                        notes=notes, warnings=warnings,
                        report=pd.DataFrame(prov.report, columns=list(REPORT_COLUMNS)),
                        as_of=as_of, last_date=last)


# ---------------------------------------------------------------------------------------
# One function per rule kind
# ---------------------------------------------------------------------------------------


def _lab(rule: LabRule, rows, pos, n, as_of_ts, prov, notes) -> list:
    out: list = [None] * n
    rows = rows[rows["table"] == "measurement"]
    lo = as_of_ts - pd.Timedelta(days=rule.lookback_days)
    old = rows["start"] < lo
    rows = rows[~old].copy()
    if not len(rows):
        if old.any():
            notes.append(f"{rule.field}: no value within {rule.lookback_days} days before the as-of date")
        return out
    rows["conv"] = [convert(v, u, rule.field) if w == "" else None
                    for v, u, w in zip(rows["value"], rows["unit"], rows["why"], strict=True)]
    rows["bad"] = rows["conv"].isna()
    rows["seq"] = np.arange(len(rows))
    rows = rows.sort_values(["patient_id", "start", "bad", "seq"], ascending=[True, False, True, True], kind="stable")
    latest = rows.groupby("patient_id")["start"].transform("max") == rows["start"]
    ties = rows[latest].groupby("patient_id").size()
    chosen = rows.drop_duplicates("patient_id", keep="first")
    n_tie = int((ties > 1).sum())
    if n_tie:
        notes.append(f"{rule.field}: {n_tie} patient(s) with several values at the latest time; a usable value "
                     "(known unit) was preferred, then record order")
    units: dict[str, int] = {}
    bad_units: dict[str, int] = {}
    for r in chosen.itertuples(index=False):
        if r.bad:
            why = r.why or f"unit {r.unit!r} not listed for {rule.field}"
            bad_units[why] = bad_units.get(why, 0) + 1
            prov.problem(r.patient_id, rule.field, "unknown_unit" if not r.why else r.why.replace(" ", "_"),
                         f"{why}; {r.source_table} {r.vocabulary} {r.code} on {_d(r.start)}")
            continue
        out[pos[r.patient_id]] = r.conv
        units[r.unit] = units.get(r.unit, 0) + 1
        prov.add(r.patient_id, rule.field, _num_text(r.conv), r.source_table, r.vocabulary, r.code, _d(r.start),
                 r.original, r.unit)
    for unit, k in sorted(units.items()):
        notes.append(f"{rule.field}: {k} value(s) from {unit or '(no unit)'} (to {rule.unit})")
    for why, k in sorted(bad_units.items()):
        notes.append(f"{rule.field}: latest value unusable for {k} patient(s) ({why}); left empty, "
                     "no older value substituted")
    return out


def _category(rule: CategoryRule, rows, pos, n, prov, notes) -> list:
    out: list = [None] * n
    rows = rows[rows["table"].isin(["condition", "observation"])]
    several = []
    for pid, g in rows.groupby("patient_id", sort=False):
        g = g.sort_values("start", kind="stable")
        r = g.iloc[-1]
        out[pos[pid]] = r["category"]
        cats = sorted(set(g["category"]))
        if len(cats) > 1:
            several.append(f"{pid} ({', '.join(cats)}; {r['category']} most recent)")
            prov.problem(pid, rule.field, "several_indications" if rule.kind == "disease" else "several_categories",
                         f"{', '.join(cats)}; {r['category']} (most recent) used")
        prov.add(pid, rule.field, r["category"], r["source_table"], r["vocabulary"], r["code"], _d(r["start"]),
                 r["code"])
    if several:
        what = "candidate indications" if rule.kind == "disease" else f"{rule.field} categories"
        notes.append(f"{rule.field}: {len(several)} patient(s) with several {what} coded; the most recent "
                     "is used: " + "; ".join(several))
    return out


def _condition(rule: ConditionRule, rows, ids, as_of_ts, prov, absent) -> list:
    rows = rows[rows["table"].isin(rule.tables)]
    if rule.lookback_years is not None:
        lo = as_of_ts - pd.Timedelta(days=365.25 * rule.lookback_years)
        end = rows["end"].where(rows["end"].notna() | ~rows["resolved"], rows["start"])
        rows = rows[end.isna() | (end >= lo)]
    latest = rows.sort_values("start", kind="stable").drop_duplicates("patient_id", keep="last").set_index("patient_id")
    out = []
    for pid in ids:
        if pid in latest.index:
            r = latest.loc[pid]
            out.append("yes")
            prov.add(pid, rule.field, "yes", r["source_table"], r["vocabulary"], r["code"], _d(r["start"]), r["code"])
        else:
            out.append(absent)
            if absent:
                prov.add(pid, rule.field, absent, f"no matching {'/'.join(rule.tables)} record")
    return out


def _malignancy(rule: MalignancyRule, rows, pos, n, as_of_ts, prov) -> tuple[list, list]:
    years: list = [None] * n
    excepted: list = [None] * n
    rows = rows[rows["table"].isin(rule.tables)]
    for pid, g in rows.groupby("patient_id", sort=False):
        main = g[g["role"] == "code"]
        use, flag = (main, "no") if len(main) else (g, "yes")
        ongoing = use["end"].isna() & ~use["resolved"].astype(bool)
        last = use["end"].fillna(use["start"]).dt.normalize()
        if ongoing.any():
            y, r = 0.0, use[ongoing].iloc[-1]
        else:
            i = int(np.argmax(last.to_numpy()))
            r = use.iloc[i]
            y = round((as_of_ts - last.iloc[i]).days / 365.25, 2)
        years[pos[pid]], excepted[pos[pid]] = y, flag
        prov.add(pid, rule.field, _num_text(y), r["source_table"], r["vocabulary"], r["code"], _d(r["start"]), r["code"])
        prov.add(pid, rule.also_fills, flag, r["source_table"], r["vocabulary"], r["code"], _d(r["start"]), r["code"])
    return years, excepted


def _route_ok(rule: DrugRule, rows) -> tuple[pd.DataFrame, int]:
    """Exposures on the rule's route; one with no recorded route counts for every route rule
    when the catalog's ``defaults.route_unknown`` is ``any``, for none when ``none``."""
    if rule.route is None:
        return rows, 0
    unknown = rows["route"].isna()
    if load_mapping().defaults.route_unknown != "any":
        return rows[~unknown & (rows["route"] == rule.route)], 0
    return rows[unknown | (rows["route"] == rule.route)], int(unknown.sum())


def _drug(rule: DrugRule, rows, ids, as_of_ts, prov, notes) -> list:
    rows = rows[rows["table"].isin(rule.tables)]
    rows, n_unknown_route = _route_ok(rule, rows)
    if n_unknown_route:
        notes.append(f"{rule.field}: {n_unknown_route} exposure(s) without a recorded route counted "
                     f"(could have been {rule.route})")
    out: list[str] = []
    if rule.value == "ever":
        latest = rows.sort_values("start", kind="stable").drop_duplicates("patient_id", keep="last").set_index("patient_id")
        for pid in ids:
            if pid in latest.index:
                r = latest.loc[pid]
                out.append("yes")
                prov.add(pid, rule.field, "yes", r["source_table"], r["vocabulary"], r["code"], _d(r["start"]), r["code"])
            else:
                out.append("no")
                prov.add(pid, rule.field, "no", "no matching drug record")
        return out
    days_out: list[int | None] = []  # days since the last exposure (None = never)
    rows = rows.copy()
    ongoing = rows["end"].isna() & ~rows["resolved"].astype(bool)
    last = rows["end"].fillna(rows["start"]).dt.normalize()  # whole calendar days
    rows["days"] = np.where(ongoing, 0, (as_of_ts - last).dt.days.clip(lower=0))
    best = rows.sort_values("days", kind="stable").drop_duplicates("patient_id", keep="first").set_index("patient_id")
    for pid in ids:
        if pid in best.index:
            r = best.loc[pid]
            days_out.append(int(r["days"]))
            prov.add(pid, rule.field, str(int(r["days"])), r["source_table"], r["vocabulary"], r["code"],
                     _d(r["end"] if pd.notna(r["end"]) else r["start"]), r["code"])
        else:
            days_out.append(None)  # empty = no such event
    return days_out


def _drug_list(rule: DrugListRule, rows, pos, ids, prov) -> list:
    rows = rows[rows["table"].isin(("drug",))]
    found: dict[str, set[str]] = {}
    for r in rows.itertuples(index=False):
        if r.category not in found.setdefault(r.patient_id, set()):
            found[r.patient_id].add(r.category)
            prov.add(r.patient_id, rule.field, r.category, r.source_table, r.vocabulary, r.code, _d(r.start), r.code)
    out = []
    for pid in ids:
        names = [c for c in IMMUNOMODULATORS if c in found.get(pid, ())]
        out.append(";".join(names) if names else "none")
        if not names:
            prov.add(pid, rule.field, "none", "no matching drug record")
    return out


def _drug_span(f: str, rows, ids, as_of_ts, prov) -> list:
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for r in rows.itertuples(index=False):
        end = r.end if pd.notna(r.end) else (r.start if r.resolved else as_of_ts)
        spans.setdefault(r.patient_id, []).append((r.start.normalize(), min(end, as_of_ts).normalize()))
    out = []
    for pid in ids:
        days = 0
        cur_s = cur_e = None
        for s, e in sorted(spans.get(pid, [])):
            if cur_e is None or s > cur_e:
                if cur_e is not None:
                    days += (cur_e - cur_s).days + 1
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None:
            days += (cur_e - cur_s).days + 1
        months = round(days / 30.4375, 1)
        out.append(months)
        prov.add(pid, f, _num_text(months), "drug exposures (union of periods)" if days else "no matching drug record")
    return out

