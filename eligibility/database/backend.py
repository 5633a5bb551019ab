"""Connections: DuckDB embedded (the default) and PySpark (local mode or a cluster).

Every connection is checked with the Kleene conformance suite before use
(`conformance.check`), so an engine that would turn *unknown* into *fail* is refused.

Spark: `SPARK_REMOTE=sc://host:15002` (Spark Connect, e.g. Databricks) or
`SPARK_MASTER=spark://host:7077` select a cluster; otherwise `local[2]`, bound to
127.0.0.1 with the web UI off.
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import cache
from pathlib import Path

ENGINES = ("memory", "duckdb", "spark")
DUCKDB_MEMORY_LIMIT = "2GB"  # per connection; ELIGIBILITY_DUCKDB_MEMORY overrides


class BackendError(Exception):
    """An engine that cannot be used; str(e) is a one-line message."""


def duckdb(path: str | None = None, *, threads: int | None = None, memory_limit: str | None = None):
    """A DuckDB connection (in memory, or on a .duckdb file opened read-only)."""
    import ibis

    kw = {}
    if path:
        kw["read_only"] = True
    con = ibis.duckdb.connect(path or ":memory:", **kw)
    if threads:
        con.raw_sql(f"SET threads = {int(threads)}")
    # Bounded memory: past the limit DuckDB spills temp tables and large joins/sorts to disk.
    memory_limit = memory_limit or os.environ.get("ELIGIBILITY_DUCKDB_MEMORY", DUCKDB_MEMORY_LIMIT)
    con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    spill = Path(tempfile.gettempdir()) / f"eligibility_duckdb_{os.getpid()}"
    con.raw_sql(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
    con.raw_sql("SET preserve_insertion_order = true")
    # No progress bar: standard error carries exactly the memory engine's messages.
    con.raw_sql("SET enable_progress_bar = false")
    return con


# Small local runs (the tests, a CLI run on a small file): the JVM's quick compiler and
# interpreted expressions. Planning, not data, dominates there, and whole-stage code
# generation of the wide rule projections costs more than it saves.
SMALL_DATA_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.shuffle.partitions": "2",
}
_EXTRA_CONF: dict[str, str] = {}


def configure_spark(small_data: bool = False, **conf: str) -> None:
    """Options for the process's Spark session; call before the first `connect('spark')`."""
    _EXTRA_CONF.clear()
    if small_data:
        _EXTRA_CONF.update(SMALL_DATA_CONF)
    _EXTRA_CONF.update(conf)


@cache
def spark_session(master: str | None = None, remote: str | None = None):
    """One Spark session per process. Local mode unless a master/remote URL is given."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - pyspark is pinned
        raise BackendError("the spark engine needs pyspark") from None
    # Local workers must run this interpreter (its pandas/pyarrow), not the system python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    remote = remote or os.environ.get("SPARK_REMOTE")
    master = master or os.environ.get("SPARK_MASTER") or "local[2]"
    builder = SparkSession.builder.appName("eligibility")
    if remote:
        builder = builder.remote(remote)
    else:
        builder = (
            builder.master(master)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
        )
        if master.startswith("local"):  # a cluster's executors must reach the driver
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            os.environ.setdefault("SPARK_LOCAL_HOSTNAME", "localhost")
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        for k, v in _EXTRA_CONF.items():
            builder = builder.config(k, v)
    try:
        session = builder.getOrCreate()
    except Exception as e:  # noqa: BLE001 - Java missing, cluster unreachable, …
        raise BackendError(f"cannot start Spark ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    session.sparkContext.setLogLevel("ERROR") if not remote else None
    return session


def spark(master: str | None = None, remote: str | None = None):
    import ibis

    return ibis.pyspark.connect(spark_session(master, remote))


_SPARK_CHECKED: dict = {}


def connect(engine: str, **kw):
    """A checked connection for `engine` ('duckdb' or 'spark'). Spark's session is one per
    process, so its connection is checked once and reused."""
    from .conformance import check

    if engine == "duckdb":
        con = duckdb(**kw)
    elif engine == "spark":
        key = tuple(sorted(kw.items()))
        if key in _SPARK_CHECKED:
            return _SPARK_CHECKED[key]
        con = spark(**kw)
        check(con)
        _SPARK_CHECKED[key] = con
        return con
    else:
        raise BackendError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    check(con)
    return con
