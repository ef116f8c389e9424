"""The tables the ingestion owns in schema ``raw``: one table per source, the manifest and the quarantine."""

from __future__ import annotations

import duckdb

from cx_pipeline.contracts import CONTRACTS, SOURCE_NAMES, raw_table_columns
from cx_pipeline.ingestion.sql import RAW_SCHEMA, qualified, raw_table
from cx_pipeline.sql import Sql, compose, data_type, join, plain_identifier

MANIFEST_TABLE = "loaded_files"
QUARANTINE_TABLE = "quarantine"

# raw.loaded_files: one row per version of a landing file the ingestion has seen.
MANIFEST_COLUMNS: dict[str, str] = {
    "source": "VARCHAR",  # contract name, e.g. 'cart_events'
    "file_path": "VARCHAR",  # relative to the landing root, '/'-separated, e.g. 'cart_events/2025-01.csv'
    "size_bytes": "BIGINT",
    "modified_at": "TIMESTAMPTZ",  # file mtime when it was read
    "content_sha256": "VARCHAR",
    "file_format": "VARCHAR",  # 'csv' | 'jsonl'
    "rows_read": "BIGINT",  # records in the file (CSV: excluding the header) = loaded + quarantined
    "rows_loaded": "BIGINT",  # rows inserted into raw.<source> (duplicates included)
    "rows_quarantined": "BIGINT",  # rows written to raw.quarantine
    "rows_duplicate": "BIGINT",  # loaded rows flagged _is_duplicate
    "status": "VARCHAR",  # 'loaded' | 'empty' | 'rejected'
    "status_reason": "VARCHAR",  # why a file was rejected (or a note for 'empty')
    "quarantine_copy": "VARCHAR",  # copy of an unreadable file under the quarantine folder
    "loaded_at": "TIMESTAMPTZ",  # also the _loaded_at of the file's raw rows
    "superseded_at": "TIMESTAMPTZ",  # set when a changed version of the same path replaced this one
    "run_id": "VARCHAR",  # Dagster run id (or NULL outside Dagster)
    "duration_seconds": "DOUBLE",
}

# raw.quarantine: every record that could not be loaded, with its text and why.
QUARANTINE_COLUMNS: dict[str, str] = {
    "source": "VARCHAR",
    "source_file": "VARCHAR",  # same form as raw.<source>._source_file and loaded_files.file_path
    "source_line": "BIGINT",  # 1-based physical line (CSV header = 1); NULL for a whole unreadable file
    "raw_record": "VARCHAR",  # the line as delivered (invalid UTF-8 bytes shown as \\xNN)
    "reason": "VARCHAR",  # readable, names the field and value, e.g. 'quantity is negative (-2)'
    "error_type": "VARCHAR",  # machine-readable class of the first problem, see docs/ingestion.md
    "error_field": "VARCHAR",  # contract field of the first problem (NULL for line/file problems)
    "content_sha256": "VARCHAR",  # version of the file the row came from (joins to loaded_files)
    "quarantined_at": "TIMESTAMPTZ",
}

FILE_STATUSES = ("loaded", "empty", "rejected")


class SchemaMismatchError(RuntimeError):
    """An existing raw table does not have the columns the contracts define."""


def _create_table_sql(table_sql: Sql, columns: dict[str, str]) -> Sql:
    body = join(
        (
            compose("{name} {type}", name=plain_identifier(name), type=data_type(type_))
            for name, type_ in columns.items()
        ),
        ",\n  ",
    )
    return compose("CREATE TABLE IF NOT EXISTS {table} (\n  {body}\n)", table=table_sql, body=body)


def _existing_columns(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [RAW_SCHEMA, table],
    ).fetchall()
    return {name: type_ for name, type_ in rows}


def _normalise_type(type_: str) -> str:
    upper = type_.upper()
    return {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(upper, upper)


def _verify(conn: duckdb.DuckDBPyConnection, table: str, expected: dict[str, str]) -> None:
    found = _existing_columns(conn, table)
    found_norm = {name: _normalise_type(t) for name, t in found.items()}
    expected_norm = {name: _normalise_type(t) for name, t in expected.items()}
    if found_norm != expected_norm:
        raise SchemaMismatchError(
            f"{RAW_SCHEMA}.{table} has columns {found} but the contracts define {expected}. "
            "Migrate the table (or drop it and its rows in raw.loaded_files so the files reload)."
        )


def ensure_raw_schema(
    conn: duckdb.DuckDBPyConnection, sources: tuple[str, ...] | list[str] = SOURCE_NAMES
) -> None:
    """Create schema ``raw``, the given source tables, the manifest and the quarantine if missing.

    Existing tables are checked against the contracts and a mismatch raises ``SchemaMismatchError``.
    """
    conn.execute(compose("CREATE SCHEMA IF NOT EXISTS {schema}", schema=plain_identifier(RAW_SCHEMA)))
    for source in sources:
        columns = raw_table_columns(source)
        conn.execute(_create_table_sql(raw_table(source), columns))
        _verify(conn, source, columns)
    conn.execute(_create_table_sql(qualified(MANIFEST_TABLE), MANIFEST_COLUMNS))
    _verify(conn, MANIFEST_TABLE, MANIFEST_COLUMNS)
    conn.execute(_create_table_sql(qualified(QUARANTINE_TABLE), QUARANTINE_COLUMNS))
    _verify(conn, QUARANTINE_TABLE, QUARANTINE_COLUMNS)


def _check_record_keys() -> None:
    for contract in CONTRACTS.values():
        for name in contract.record_key:
            if not contract.field(name).required:
                raise AssertionError(
                    f"{contract.name}.{name} is part of the record key but not required; "
                    "duplicate flagging relies on record keys never being NULL"
                )


_check_record_keys()
