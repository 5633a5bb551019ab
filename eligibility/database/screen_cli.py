"""`screen --engine duckdb|spark`: the batch contract computed where the data lives.

Same output file, same messages on standard error as `--engine memory`; the
output is streamed in batches, so its size does not bound memory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd


def _err(message: str) -> int:
    from ..cli import _err as cli_err

    return cli_err(message)


_END = object()


def prefetched(items: Iterable[Any]) -> Generator[Any, None, None]:
    """`items`, the next one produced on a worker thread while the caller works on the current
    one: the engine reads and spells batch k+1 while batch k is written (both release the GIL
    for most of their time). One item ahead, so memory stays bounded; the worker's errors
    come out of `next`, and the source is closed when the caller stops early."""
    it = iter(items)
    try:
        with ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(next, it, _END)
            while True:
                item = ahead.result()
                if item is _END:
                    return
                ahead = pool.submit(next, it, _END)
                yield item
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _write(batches, out: Path) -> dict[str, Any]:
    """Write the result batches (Arrow tables of text columns) to `out` (CSV through the
    Excel-safe writer, or Parquet); returns the status counts. Written to a side file
    first: no partial output on failure."""
    import pyarrow.parquet as pq

    from ..export import text_table_csv_rows, to_csv_bytes
    from .engine import batch_frame

    counts: dict[str, Any] = {"eligible": 0, "pending": 0, "ineligible": 0, "eligible_on_assessed": 0}
    seen: set[str] = set()
    part = out.with_name(out.name + ".part")
    writer = None
    csv = out.suffix.lower() == ".csv"
    try:
        with open(part, "wb") as fh, closing(prefetched(batches)) as tables:  # k written while k+1 is made
            try:
                first = True
                for table in tables:
                    _count(table, counts, seen)
                    if csv:
                        if first:
                            fh.write(to_csv_bytes(batch_frame(table.slice(0, 0))))  # the header
                        fh.write(text_table_csv_rows(table))
                    else:
                        if writer is None:
                            schema = _parquet_schema(table.column_names)
                            writer = pq.ParquetWriter(fh, schema)
                        writer.write_table(table.cast(schema))
                    first = False
                if first:  # no rows: still a valid file with the contract's header
                    from ..screen import RESULT_COLUMNS

                    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in RESULT_COLUMNS})
                    fh.write(to_csv_bytes(empty) if csv else _parquet_bytes(empty))
            finally:  # closed while its file is open, whether the batches ran out or failed midway
                if writer is not None:
                    writer.close()
        os.replace(part, out)
        counts["diseases"] = seen
    finally:
        if part.exists():
            part.unlink()
    return counts


def _count(table, counts: dict[str, Any], seen: set[str]) -> None:
    """Add one batch's status counts (and eligible-on-assessed-only, diseases seen)."""
    import pyarrow.compute as pc

    status = table.column("status")
    for item in pc.value_counts(status).to_pylist():
        if item["values"] in ("eligible", "pending", "ineligible"):
            counts[item["values"]] += int(item["counts"])
    assessed = pc.filter(table.column("assessed"), pc.equal(status, "eligible"))
    for item in pc.value_counts(assessed).to_pylist():
        k, n = str(item["values"]).split("/")
        counts["eligible_on_assessed"] += int(item["counts"]) if k != n else 0
    seen.update(str(d) for d in pc.unique(table.column("disease")).to_pylist() if d is not None)


def _parquet_schema(columns: list[str]):
    """The Parquet schema of results: every column text (as pandas writes the memory
    engine's frame), whatever a batch holds (a first batch with no unknown criteria at all
    would otherwise type that column as Arrow's null type and refuse the next batch)."""
    import pyarrow as pa

    sample = pd.DataFrame({c: pd.Series(["x"], dtype=object) for c in columns})
    return pa.Schema.from_pandas(sample, preserve_index=False)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    from ..export import to_parquet_bytes

    return to_parquet_bytes(df)


def screen(args, scenario) -> int:
    """Run after cli.screen_main has checked the output name and the scenario."""
    from ..cli import _report_issues
    from ..loader import Cohort, CohortError, write_report
    from .backend import BackendError, connect
    from .engine import DatabaseCohort, result_batches
    from .source import parse_input

    out = Path(args.output)
    try:
        con = connect(args.engine)
    except BackendError as e:
        return _err(str(e))
    try:
        src = parse_input(args.input)
        if args.sheet:
            from dataclasses import replace

            src = replace(src, sheet=args.sheet)
        cohort = DatabaseCohort.open(con, src, scenario)  # evaluated in the same pass
    except CohortError as e:
        return _err(str(e))
    ev = cohort.evaluate(scenario)
    _report_issues(cohort, ev)
    try:
        counts = _write(result_batches(ev), out)
        if args.report:
            write_report(Cohort(pd.DataFrame(), cohort.present, cohort.issues, cohort.source,
                                cohort.extra_columns), args.report)
    except OSError as e:
        return _err(f"cannot write {e.filename or out}: {e.strerror or e}")
    seen = counts.pop("diseases")
    partial_n = counts.pop("eligible_on_assessed")
    screened = sum(counts.values())
    applicable = [u for u in ev.not_assessed
                  if (screened and ev.catalog.unit_by_id[u].block == "common") or ev.catalog.unit_by_id[u].block in seen]
    partial = (f" ({partial_n} of them eligible on assessed criteria only, "
               f"{len(applicable)} applicable criteria not assessed)" if partial_n else "")
    print(
        f"screened {screened}: {counts['eligible']} eligible{partial}, {counts['pending']} pending, "
        f"{counts['ineligible']} ineligible -> {out}",
        file=sys.stderr,
    )
    return 0
