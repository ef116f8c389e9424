"""Small SQL helpers: identifiers come from the contracts allowlist, constants are quoted, data is bound.

Nothing read from a landing file is ever pasted into SQL text: file paths, header names and values are
bound with ``?``. Identifiers (schema, table and column names) cannot be bound, so they are checked against
the contracts (``raw_table``) or a strict name pattern (``ident``) before being quoted.
"""

from __future__ import annotations

import re

import duckdb

from cx_pipeline.contracts import CONTRACTS

RAW_SCHEMA = "raw"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ident(name: str) -> str:
    """Quote an identifier that comes from code or the contracts (never from a landing file)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"refusing to use {name!r} as a SQL identifier")
    return f'"{name}"'


def literal(text: str) -> str:
    """Quote a constant defined in code (a regex, a JSON path) as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def check_source(source: str) -> str:
    if source not in CONTRACTS:
        raise KeyError(f"unknown source {source!r}; known sources: {', '.join(CONTRACTS)}")
    return source


def raw_table(source: str) -> str:
    """``raw."<source>"`` for a source named in the contracts."""
    return f"{ident(RAW_SCHEMA)}.{ident(check_source(source))}"


def qualified(table: str) -> str:
    """``raw."<table>"`` for one of the ingestion's own tables (manifest, quarantine)."""
    return f"{ident(RAW_SCHEMA)}.{ident(table)}"


def configure_connection(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Session settings the ingestion relies on; safe to call on any connection, any number of times.

    ``TimeZone`` is set with ``SET`` because DuckDB 2.0 refuses it in ``duckdb.connect(config=...)``
    when ICU is not loaded yet. Insertion order must be preserved: line numbers are derived from it.
    """
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET preserve_insertion_order = true")
    conn.execute("SET enable_progress_bar = false")
    return conn


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """First column of the first row (DuckDB 2.0 results stream: always fetch them completely)."""
    rows = conn.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None
