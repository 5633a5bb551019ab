"""Screening where the data lives: the catalog compiled to ibis (DuckDB, Spark)."""
