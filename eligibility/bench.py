"""`python -m eligibility bench`: speed and memory of the engine on generated cohorts.

Each size runs in a fresh child process so that its peak memory is its own.
Times are medians over `--repeat` runs, in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

from .memory import peak_rss_mib


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def attribute_all(ev) -> None:
    """Everything the dashboard's overview and screen-failure pages compute."""
    from . import attribution as A

    A.status_counts(ev)
    A.criterion_table(ev)
    A.cause_impact(ev)
    A.attrition(ev)
    A.combinations(ev)


def run_size(n: int, repeat: int, seed: int = 7) -> dict:
    from .columns import implausible_cells, unreadable_cells
    from .evaluate import Evaluator
    from .loader import load_cohort
    from .reference import screen_row
    from .scenario import resolve
    from .screen import status_change
    from .synth import generate, write_cohort

    out: dict = {"rows": n}
    t0 = time.perf_counter()
    raw = generate(n, seed)
    out["generate_s"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.parquet"
        write_cohort(raw, path)
        del raw
        cohort = None

        def load():
            nonlocal cohort
            cohort = load_cohort(path)

        out["load_parquet_s"] = _median_time(load, max(1, min(repeat, 3)))
    assert cohort is not None

    def cold():
        ev = Evaluator.for_cohort(cohort).evaluate()
        attribute_all(ev)

    out["evaluate_attribute_cold_s"] = _median_time(cold, repeat)
    evaluator = Evaluator.for_cohort(cohort)
    base = evaluator.evaluate()
    out["evaluate_warm_s"] = _median_time(lambda: evaluator.evaluate(), repeat)
    out["evaluate_attribute_warm_s"] = _median_time(lambda: attribute_all(evaluator.evaluate()), repeat)

    values = iter(np.linspace(50, 70, 1000))

    def one_param():
        return evaluator.evaluate(resolve({"parameters": {"hb_min_g_l": float(next(values))}}))

    out["reevaluate_one_param_s"] = _median_time(one_param, repeat)
    out["reevaluate_one_param_counts_s"] = _median_time(lambda: one_param().counts(), repeat)
    relaxed = evaluator.evaluate(resolve({"parameters": {"age_max": 75, "hb_min_g_l": 50}}))
    out["scenario_diff_s"] = _median_time(lambda: status_change(base, relaxed, cohort.frame), repeat)

    sample = min(n, 2000)
    rows = cohort.frame.iloc[:sample].to_dict("records")
    for marker, cells in (("_unreadable", unreadable_cells(cohort)), ("_implausible", implausible_cells(cohort))):
        for column, mask in cells.items():
            for i in np.flatnonzero(mask[:sample]):
                rows[i].setdefault(marker, set()).add(column)
    params = base.scenario.params
    present = cohort.present
    t0 = time.perf_counter()
    ref = [screen_row(r, params, evaluator.catalog, present) for r in rows]
    per_row = (time.perf_counter() - t0) / sample
    out["reference_python_per_row_us"] = per_row * 1e6
    out["reference_python_extrapolated_s"] = per_row * n
    out["speedup_vs_reference"] = per_row * n / out["evaluate_attribute_warm_s"]
    # The naive evaluator must agree with the engine, or the speed-up means nothing.
    agree = np.array(ref, dtype=object) == base.status_labels()[:sample]
    out["reference_agrees"] = bool(agree.all())
    out["peak_rss_mb"] = peak_rss_mib()
    return out


def _screen_files(path: Path, engine: str, repeat: int) -> dict:
    """One engine on one Parquet cohort: screen (read, validate, per-patient results written
    to a Parquet file) + attribute (every dashboard aggregate), and a one-parameter what-if."""
    import pyarrow.parquet as pq

    from .scenario import resolve

    # The machine may be shared: its 1-minute load average is reported with each figure.
    out: dict = {"rows": pq.ParquetFile(path).metadata.num_rows, "engine": engine,
                 "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.parquet"
        if engine == "memory":
            from .evaluate import Evaluator
            from .loader import load_cohort
            from .screen import results_frame

            state: dict = {}

            def screen_attribute():
                cohort = load_cohort(path)
                evaluator = Evaluator.for_cohort(cohort)
                ev = evaluator.evaluate()
                results_frame(ev, cohort.frame).to_parquet(result, index=False)
                attribute_all(ev)
                state.update(evaluator=evaluator)

            def what_if(value):
                ev = state["evaluator"].evaluate(resolve({"parameters": {"hb_min_g_l": value}}))
                return ev.counts(), attribute_all(ev)
        else:
            from .database.backend import connect
            from .database.engine import DatabaseCohort, result_batches
            from .database.screen_cli import _write

            con = connect(engine)
            state = {}

            def screen_attribute():
                db = DatabaseCohort.open(con, str(path))
                ev = db.evaluate()
                _write(result_batches(ev), result)
                a = ev.attribution()
                a.status_counts(), a.criterion_table(), a.cause_impact(), a.attrition(), a.combinations()
                state.update(db=db)

            def what_if(value):
                a = state["db"].evaluate(resolve({"parameters": {"hb_min_g_l": value}})).attribution()
                return a.counts(), a.status_counts(), a.criterion_table()

        out["screen_attribute_s"] = _median_time(screen_attribute, repeat)
        values = iter(np.linspace(50, 70, 1000))
        out["what_if_one_param_s"] = _median_time(lambda: what_if(float(next(values))), repeat)
    out["peak_rss_mb"] = peak_rss_mib()
    if engine == "spark":  # the JVM is a live child process: its own peak, added to ours
        out["jvm_peak_rss_mb"] = _descendants_peak_rss_mb()
        out["peak_rss_mb"] += out["jvm_peak_rss_mb"]
    out["load_after"] = os.getloadavg()[0]
    return out


def _descendants_peak_rss_mb() -> float:
    """Sum of the peak RSS (VmHWM) of this process's live descendants (Linux /proc)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    mine: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - mine
        mine |= frontier
    total = 0.0
    for pid in mine:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def engines_main(args) -> int:
    """`bench --engine E[,E…]`: engines compared on Parquet cohorts written by `synth`."""
    from .synth import write_cohort_chunked

    sizes = [int(s) for s in (args.rows or "10000,100000,1000000").split(",") if s.strip()]
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            # --workdir keeps the generated cohorts for the next run (30M rows take a while)
            path = Path(args.workdir or tmp) / f"cohort_{n}.parquet"
            if not path.exists():
                write_cohort_chunked(n, 7, path)
            for engine in engines:
                proc = subprocess.run(
                    [sys.executable, "-m", "eligibility", "bench", "--child-engine", engine, "--input", str(path),
                     "--repeat", str(args.repeat)], capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    results.append({"rows": n, "engine": engine, "error": proc.stderr.strip().splitlines()[-1:]})
                else:
                    results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(f"done {n:,} rows, {engine}", file=sys.stderr)
            if not args.workdir:
                path.unlink()
    print(f"machine: {_machine()}; medians of {args.repeat} runs")
    print("| rows | engine | screen + attribute s | one-param what-if s | peak RSS MB | load avg |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['rows']:,} | {r['engine']} | failed: {r['error']} | | | |")
        else:
            print(f"| {r['rows']:,} | {r['engine']} | {r['screen_attribute_s']:.2f} | "
                  f"{r['what_if_one_param_s']:.2f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['load_before']:.1f}→{r['load_after']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def format_table(results: list[dict]) -> str:
    cols = [
        ("rows", "rows", "{:,}"),
        ("load_parquet_s", "load parquet s", "{:.2f}"),
        ("evaluate_attribute_cold_s", "eval+attr cold s", "{:.3f}"),
        ("evaluate_attribute_warm_s", "eval+attr s", "{:.3f}"),
        ("reevaluate_one_param_s", "1-param re-eval s", "{:.3f}"),
        ("scenario_diff_s", "scenario diff s", "{:.3f}"),
        ("reference_python_extrapolated_s", "naive Python s", "{:.1f}"),
        ("speedup_vs_reference", "speed-up", "{:.0f}x"),
        ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ]
    head = "| " + " | ".join(c[1] for c in cols) + " |"
    sep = "|" + "|".join("---:" for _ in cols) + "|"
    lines = [head, sep]
    for r in results:
        lines.append("| " + " | ".join(fmt.format(r[key]) for key, _, fmt in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eligibility bench")
    p.add_argument("--rows", help="comma-separated cohort sizes (default 10000,100000,1000000; "
                                  "with --json: 1000000,3000000, the issue's 1M and 3M)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="alone: every figure of the speed-target table as JSON on stdout (ratios measured "
                        "in this run); with a PATH: the per-size results of the default run written there")
    p.add_argument("--markdown", action="store_true", help="with --json: print the README speed table rows")
    p.add_argument("--from", dest="from_file", help="with --markdown: the table from a saved --json output")
    p.add_argument("--no-ui", action="store_true", help="with --json: skip the What-if page (AppTest) figure")
    p.add_argument("--engine", help="compare engines (memory,duckdb,spark) on Parquet cohorts instead")
    p.add_argument("--workdir", help="folder for the generated Parquet cohorts (default: the temp folder)")
    p.add_argument("--child-engine", help=argparse.SUPPRESS)
    p.add_argument("--child-figures", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from . import bench_targets as T

    if args.child_figures:
        print(json.dumps(T.engine_figures(Path(args.child_figures), args.repeat)))
        return 0
    if args.child_engine:
        print(json.dumps(_screen_files(Path(args.input), args.child_engine, args.repeat)))
        return 0
    if args.engine:
        return engines_main(args)
    if args.markdown and args.from_file:
        print(T.markdown(json.loads(Path(args.from_file).read_text(encoding="utf-8"))))
        return 0
    if args.json == "-":
        sizes = [int(s) for s in (args.rows or "1000000,3000000").split(",") if s.strip()]
        if len(sizes) != 2:
            p.error("--json needs two sizes in --rows (the 1M and the 3M of the table)")
        result = T.issue_figures((sizes[0], sizes[1]), args.repeat, Path(args.workdir) if args.workdir else None,
                                 ui=not args.no_ui)
        print(T.markdown(result) if args.markdown else json.dumps(result, indent=2))
        return 0
    sizes = [int(s) for s in (args.rows or "10000,100000,1000000").split(",") if s.strip()]
    if args.child:
        print(json.dumps(run_size(sizes[0], args.repeat)))
        return 0
    results = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, "-m", "eligibility", "bench", "--child", "--rows", str(n), "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"done {n:,} rows", file=sys.stderr)
    print(f"machine: {_machine()}; medians of {args.repeat} runs")
    print(format_table(results))
    for r in results:
        print(f"{r['rows']:,} rows: one-param re-eval incl. counts {r['reevaluate_one_param_counts_s']:.3f} s, "
              f"warm evaluate only {r['evaluate_warm_s']:.3f} s, generate {r['generate_s']:.1f} s, "
              f"naive per row {r['reference_python_per_row_us']:.0f} µs, agrees: {r['reference_agrees']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0
