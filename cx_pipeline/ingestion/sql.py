"""The ingestion's tables and connection settings; quoting itself lives in ``cx_pipeline.sql``.

Nothing read from a landing file is ever pasted into SQL text: file paths, header names and values are
bound with ``?``. Identifiers (schema, table and column names) cannot be bound, so they are checked against
the contracts (``raw_table``) or a strict name pattern (``plain_identifier``) before being quoted.
"""

from __future__ import annotations

import duckdb

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.sql import Sql, plain_identifier, qualified_name

RAW_SCHEMA = "raw"


def check_source(source: str) -> str:
    if source not in CONTRACTS:
        raise KeyError(f"unknown source {source!r}; known sources: {', '.join(CONTRACTS)}")
    return source


def raw_table(source: str) -> Sql:
    """``"raw"."<source>"`` for a source named in the contracts."""
    return qualified(check_source(source))


def qualified(table: str) -> Sql:
    """``"raw"."<table>"`` for one of the ingestion's own tables (manifest, quarantine) or a source."""
    plain_identifier(table)
    return qualified_name(RAW_SCHEMA, table)


def configure_connection(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Session settings the ingestion relies on; safe to call on any connection, any number of times.

    ``TimeZone`` is set with ``SET`` because DuckDB 2.0 refuses it in ``duckdb.connect(config=...)``
    when ICU is not loaded yet. Insertion order must be preserved: line numbers are derived from it.
    """
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET preserve_insertion_order = true")
    conn.execute("SET enable_progress_bar = false")
    return conn


def scalar(conn: duckdb.DuckDBPyConnection, sql: Sql, params: list | None = None):
    """First column of the first row (DuckDB 2.0 results stream: always fetch them completely)."""
    rows = conn.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None
