"""`python -m eligibility bench --json`: every figure of issue 13's speed table, each a ratio
of two times (or sizes) measured in the same run, so anyone can check them on any machine.

    python -m eligibility bench --json                 # JSON: figures, their parts, the machine
    python -m eligibility bench --json --markdown      # the README's speed table rows
    python -m eligibility bench --markdown --from f.json

Engine figures (each size in a fresh child process, so its peak memory is its own):
  floor = a single-thread pass over every buffer of every catalog column (numpy sum of the
  buffer viewed as 64-bit words), measured interleaved with the cold runs it divides;
  cold = Evaluator.for_cohort + evaluate + every dashboard aggregate (bench.attribute_all).
Load figures: `eligibility.bench_load.load_figures` (the loader against
`pyarrow.parquet.read_table(...).to_pandas()` / `pyarrow.csv.read_csv(...).to_pandas()`
of the same files, interleaved, each in a fresh process). What-if: benchmarks/bench_ui.py (AppTest server time).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

from .memory import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {  # figure → (target, what it divides)
    "load_parquet_vs_pyarrow": (2.0, "load 1M Parquet / pyarrow read_table + to_pandas"),
    "load_csv_vs_pyarrow": (2.5, "load 1M CSV / pyarrow.csv.read_csv + to_pandas"),
    "peak_rss_vs_arrow": (2.0, "peak RSS of load + evaluate + attribute at 1M / Arrow table size"),
    "steady_rss_vs_arrow": (1.5, "steady-state RSS after load + evaluate + attribute at 1M / Arrow table size"),
    "whatif_rerun_ms": (150.0, "What-if page rerun after a slider move at 1M, server ms (bench_ui.py)"),
    "cold_vs_floor": (6.0, "cold evaluate + attribute at 1M / single-thread memory-read floor"),
    "one_param_vs_floor": (0.5, "one-parameter re-evaluation at 1M / floor"),
    "cold_3m_vs_1m": (3.3, "cold evaluate + attribute 3M / 1M"),
}


def _catalog_fields(frame) -> list[str]:
    from .catalog import default_catalog

    cat = default_catalog()
    params = cat.defaults()
    fields: set[str] = set()
    for u in cat.units:
        fields |= cat.fields_of(u.rule, params)
    return sorted(f for f in fields if f in frame)


def column_buffers(frame, names: list[str]) -> list[np.ndarray]:
    """Every memory buffer holding the named columns, as numpy views (no copies)."""
    import pandas as pd

    out: list[np.ndarray] = []
    for name in names:
        arr = frame[name].array
        if isinstance(arr, pd.Categorical):
            out.append(arr.codes)
        elif isinstance(getattr(arr, "_data", None), np.ndarray):  # masked (boolean, Int64, Float64)
            out += [arr._data, arr._mask]
        elif hasattr(arr, "_pa_array"):  # Arrow-backed (strings, dictionaries)
            out += [np.frombuffer(b, np.uint8) for c in arr._pa_array.chunks for b in c.buffers() if b is not None]
        else:
            out.append(np.asarray(arr))
    return out


def read_floor(buffers: list[np.ndarray]) -> float:
    """Seconds to read every buffer once on one thread (a sum of 64-bit words)."""
    words: list[np.ndarray] = []
    for b in buffers:
        raw = b.view(np.uint8).reshape(-1) if b.flags.c_contiguous else np.ascontiguousarray(b).view(np.uint8)
        cut = len(raw) // 8 * 8
        words += [raw[:cut].view(np.uint64), raw[cut:]]
    t0 = time.perf_counter()
    for w in words:
        w.sum()
    return time.perf_counter() - t0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _release() -> None:
    """What a long-running server would also do: collect, and hand freed memory back."""
    from .memory import release_unused_memory

    gc.collect()
    release_unused_memory()


def engine_figures(path: Path, repeat: int) -> dict:
    """One cohort file in this (fresh) process: load, floor, cold, one-parameter, memory."""
    from .bench import attribute_all
    from .evaluate import Evaluator
    from .loader import load_cohort
    from .scenario import resolve

    out: dict = {"load_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    cohort = load_cohort(path)
    out["load_s"] = time.perf_counter() - t0
    out["rows"] = len(cohort.frame)
    names = _catalog_fields(cohort.frame)
    buffers = column_buffers(cohort.frame, names)
    out["floor_columns"], out["floor_mb"] = len(names), sum(b.nbytes for b in buffers) / 2**20

    def cold() -> float:
        t = time.perf_counter()
        attribute_all(Evaluator.for_cohort(cohort).evaluate())
        return time.perf_counter() - t

    floors, colds = [], []
    read_floor(buffers)  # first touch (page faults) is not the floor
    for _ in range(repeat):  # interleaved: machine load hits both alike
        floors.append(read_floor(buffers))
        colds.append(cold())
    evaluator = Evaluator.for_cohort(cohort)
    base = evaluator.evaluate()
    attribute_all(base)
    base.first_failed_index()
    values = iter(np.linspace(50, 70, 1001)[1:])
    ones = []
    for _ in range(repeat):
        floors.append(read_floor(buffers))
        t = time.perf_counter()
        evaluator.evaluate(resolve({"parameters": {"hb_min_g_l": float(next(values))}}))
        ones.append(time.perf_counter() - t)
    out.update(floor_s=median(floors), cold_s=median(colds), one_param_s=median(ones),
               floor_runs=floors, cold_runs=colds, one_param_runs=ones)
    out["whatif_engine_s"] = median(whatif_engine(evaluator, base, cohort, values) for _ in range(repeat))
    out["peak_rss_mb"] = peak_rss_mib()
    _release()
    out["steady_rss_mb"] = _rss_mb()  # cohort, evaluator and the protocol evaluation held, as in the app
    out["load_after"] = os.getloadavg()[0]
    del base, evaluator
    return out


def whatif_engine(evaluator, base, cohort, values) -> float:
    """The engine's share of a What-if page rerun after a slider move: the new evaluation,
    the diff against the protocol (first reasons of the changed patients), the counts and the
    k/n note (without Streamlit, widgets or figures; the readings' impact is behind a toggle
    on cohorts this large)."""
    from .assessment import eligible_on_assessed_text
    from .attribution import status_counts
    from .scenario import resolve
    from .screen import status_change

    t = time.perf_counter()
    scenario = resolve({"parameters": {"hb_min_g_l": float(next(values))}})
    ev = evaluator.evaluate(scenario)
    status_change(base, ev, cohort.frame)
    status_counts(base), status_counts(ev)
    eligible_on_assessed_text(ev)
    return time.perf_counter() - t


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "eligibility", "bench", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ui(path: Path, repeat: int) -> dict[str, dict]:
    script = ROOT / "benchmarks" / "bench_ui.py"
    if not script.exists():
        return {"error": {"message": "benchmarks/bench_ui.py not found (run from a source checkout)"}}
    proc = subprocess.run([sys.executable, str(script), "--big", str(path), "--big-only", "--json",
                           "--repeats", str(max(repeat, 5))], capture_output=True, text=True, check=False)
    try:
        runs = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": {"message": (proc.stderr.strip().splitlines() or ["no output"])[-1]}}
    return {r["sweep"]: r for r in runs}


def _loads(n: int, repeat: int, workdir: Path) -> dict:
    from .bench_load import load_figures

    figs = dict(load_figures(n, repeat, workdir))
    figs["source"] = "eligibility.bench_load.load_figures"
    figs["parquet_ratio"] = figs["parquet"]["ratio"]
    figs["csv_ratio"] = figs["csv"]["ratio"]
    return figs


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def issue_figures(sizes: tuple[int, int], repeat: int, workdir: Path | None, ui: bool = True) -> dict:
    """Every figure of the table (1M = sizes[0], 3M = sizes[1]), with its parts."""
    import pyarrow.parquet as pq

    from .bench import _machine
    from .synth import write_cohort_chunked

    small, big = sizes
    out: dict = {"machine": _machine(), "repeat": repeat, "load_before": os.getloadavg()[0], "rows": list(sizes)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        paths = {}
        for n in sizes:
            paths[n] = work / f"cohort_{n}.parquet"
            if not paths[n].exists():
                write_cohort_chunked(n, 7, paths[n])
        arrow_mb = pq.read_table(paths[small]).nbytes / 2**20
        engine = {n: _child(["--child-figures", str(paths[n]), "--repeat", str(repeat)]) for n in sizes}
        loads = _loads(small, repeat, work)
        whatif = _ui(paths[small], repeat) if ui else {"error": {"message": "skipped (--no-ui)"}}
    e1, e3 = engine[small], engine[big]
    values = {
        "load_parquet_vs_pyarrow": loads.get("parquet_ratio"),
        "load_csv_vs_pyarrow": loads.get("csv_ratio"),
        "peak_rss_vs_arrow": _ratio(e1.get("peak_rss_mb"), arrow_mb),
        "steady_rss_vs_arrow": _ratio(e1.get("steady_rss_mb"), arrow_mb),
        "whatif_rerun_ms": whatif.get("same", {}).get("server_ms_median"),
        "cold_vs_floor": _ratio(e1.get("cold_s"), e1.get("floor_s")),
        "one_param_vs_floor": _ratio(e1.get("one_param_s"), e1.get("floor_s")),
        "cold_3m_vs_1m": _ratio(e3.get("cold_s"), e1.get("cold_s")),
    }
    out["figures"] = [{"figure": k, "what": TARGETS[k][1], "value": v, "target": TARGETS[k][0],
                       "ok": None if v is None else v <= TARGETS[k][0]} for k, v in values.items()]
    out["parts"] = {"arrow_table_mb": arrow_mb, "engine": {str(n): engine[n] for n in sizes}, "load": loads,
                    "whatif": whatif, "floor_3m_vs_1m": _ratio(e3.get("floor_s"), e1.get("floor_s"))}
    out["load_after"] = os.getloadavg()[0]
    return out


def markdown(result: dict) -> str:
    """The README speed table: one row per figure, with its parts and the machine load."""
    e1 = result["parts"]["engine"][str(result["rows"][0])]
    whatif = result["parts"]["whatif"]
    loads = result["parts"]["load"]

    def part(key: str) -> str:
        if key.startswith("load_") and "error" not in loads:
            name = "parquet" if "parquet" in key else "csv"
            a, b = loads.get(f"loader_{name}"), loads.get(f"pyarrow_{name}")
            return f"{a:.2f} s / {b:.2f} s" if a and b else ""
        if key in ("peak_rss_vs_arrow", "steady_rss_vs_arrow") and key.split("_")[0] + "_rss_mb" in e1:
            return f"{e1[key.split('_')[0] + '_rss_mb']:,.0f} MB / {result['parts']['arrow_table_mb']:,.0f} MB"
        if key == "cold_vs_floor" and "cold_s" in e1:
            return f"{e1['cold_s']:.3f} s / {e1['floor_s']:.3f} s"
        if key == "one_param_vs_floor" and "one_param_s" in e1:
            return f"{e1['one_param_s'] * 1000:.1f} ms / {e1['floor_s'] * 1000:.1f} ms"
        if key == "cold_3m_vs_1m":
            e3 = result["parts"]["engine"][str(result["rows"][1])]
            if "cold_s" in e3 and "cold_s" in e1:
                return f"{e3['cold_s']:.3f} s / {e1['cold_s']:.3f} s"
        if key == "whatif_rerun_ms" and "same" in whatif:
            return f"worst case (sweep recomputed): {whatif['other']['server_ms_median']:,.0f} ms" \
                if "other" in whatif else ""
        return ""

    lines = [f"Machine: {result['machine']}; medians of {result['repeat']} runs; load average "
             f"{result['load_before']:.1f} → {result['load_after']:.1f}.", "",
             "| figure | measured | parts | target | met |", "|---|---:|---|---:|---|"]
    for f in result["figures"]:
        v = f["value"]
        shown = "not measured" if v is None else (f"{v:,.0f} ms" if f["figure"].endswith("_ms") else f"{v:.2f}")
        target = f"≤ {f['target']:,.0f} ms" if f["figure"].endswith("_ms") else f"≤ {f['target']}"
        met = "" if f["ok"] is None else ("yes" if f["ok"] else "no")
        lines.append(f"| {f['what']} | {shown} | {part(f['figure'])} | {target} | {met} |")
    return "\n".join(lines)
