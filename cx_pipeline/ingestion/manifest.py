"""raw.loaded_files: which version of which landing file was loaded, and what became of its rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from cx_pipeline.ingestion.schema import MANIFEST_COLUMNS, MANIFEST_TABLE
from cx_pipeline.ingestion.sql import RAW_SCHEMA, check_source, qualified
from cx_pipeline.sql import compose, join, placeholders, plain_identifier


@dataclass(frozen=True)
class ManifestEntry:
    source: str
    file_path: str
    size_bytes: int
    modified_at: datetime
    content_sha256: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    status: str
    status_reason: str | None
    loaded_at: datetime


def current_entries(conn: duckdb.DuckDBPyConnection, source: str) -> dict[str, ManifestEntry]:
    """The current (not superseded) manifest row of every file of ``source``, by relative path."""
    check_source(source)
    rows = conn.execute(
        compose(
            """
            SELECT source, file_path, size_bytes, modified_at, content_sha256, rows_read, rows_loaded,
                   rows_quarantined, rows_duplicate, status, status_reason, loaded_at
            FROM {manifest}
            WHERE source = ? AND superseded_at IS NULL
            """,
            manifest=qualified(MANIFEST_TABLE),
        ),
        [source],
    ).fetchall()
    return {row[1]: ManifestEntry(*row) for row in rows}


def current_file_count(conn: duckdb.DuckDBPyConnection) -> int:
    """How many landing files the warehouse holds (current manifest rows); 0 for a warehouse never loaded."""
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [RAW_SCHEMA, MANIFEST_TABLE],
    ).fetchone()[0]
    if not exists:
        return 0
    return conn.execute(
        compose(
            "SELECT count(*) FROM {manifest} WHERE superseded_at IS NULL",
            manifest=qualified(MANIFEST_TABLE),
        )
    ).fetchone()[0]


def insert_entry(conn: duckdb.DuckDBPyConnection, values: dict[str, object]) -> None:
    """Append one manifest row; ``values`` maps manifest column names to values (others NULL)."""
    unknown = set(values) - set(MANIFEST_COLUMNS)
    if unknown:
        raise KeyError(f"not manifest columns: {sorted(unknown)}")
    names = list(values)
    conn.execute(
        compose(
            "INSERT INTO {manifest} ({columns}) VALUES ({values})",
            manifest=qualified(MANIFEST_TABLE),
            columns=join(plain_identifier(n) for n in names),
            values=placeholders(len(names)),
        ),
        [values[n] for n in names],
    )


def supersede(conn: duckdb.DuckDBPyConnection, source: str, file_path: str, at: datetime) -> None:
    conn.execute(
        compose(
            "UPDATE {manifest} SET superseded_at = ? "
            "WHERE source = ? AND file_path = ? AND superseded_at IS NULL",
            manifest=qualified(MANIFEST_TABLE),
        ),
        [at, source, file_path],
    )


def quarantine_share(conn: duckdb.DuckDBPyConnection, source: str) -> tuple[int, int]:
    """(rows quarantined, rows read) over the current version of every file of ``source``."""
    check_source(source)
    rows = conn.execute(
        compose(
            """
            SELECT coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_read), 0)
            FROM {manifest} WHERE source = ? AND superseded_at IS NULL
            """,
            manifest=qualified(MANIFEST_TABLE),
        ),
        [source],
    ).fetchall()
    return int(rows[0][0]), int(rows[0][1])
