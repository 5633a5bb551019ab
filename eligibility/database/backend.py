"""Connections: DuckDB embedded (the default) and PySpark (local mode or a cluster).

Every connection is checked with the Kleene conformance suite before use
(`conformance.check`), so an engine that would turn *unknown* into *fail* is refused.

Spark: `SPARK_REMOTE=sc://host:15002` (Spark Connect, e.g. Databricks) or
`SPARK_MASTER=spark://host:7077` select a cluster; otherwise `local[2]`.
"""

from __future__ import annotations

import os
import sys
from functools import cache

ENGINES = ("memory", "duckdb", "spark")


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
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    con.raw_sql("SET preserve_insertion_order = true")
    return con


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
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.session.timeZone", "UTC")
        )
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
