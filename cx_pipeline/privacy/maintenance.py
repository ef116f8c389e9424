"""After an erasure: rewrite the database file so deleted bytes leave it, and verify nothing is left.

DuckDB keeps deleted rows in the file until their blocks are reused, and a dropped or rebuilt table (every
dbt run) leaves its old blocks as free space with the old bytes inside; VACUUM does not reclaim them
(docs/privacy.md, FIELD_NOTES). ``COPY FROM DATABASE`` into a new file writes only live data, so
:func:`compact_database` copies the warehouse into a fresh file next to it and swaps it in with
``os.replace``. Nothing may hold the file open meanwhile (in Dagster every warehouse step shares one pool).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.privacy.erasure import ensure_privacy_tables, scrubbable_tables
from cx_pipeline.privacy.scan import (
    end_scan,
    file_byte_hits,
    load_suppression_needles,
    register_scan_functions,
    scan_tables,
    sql_string,
)

COMPACTION_ENV = "CX360_DUCKDB_FORCE_COMPRESSION"
_ATTACH_ALIAS = "cx360_compacted"
_MARKER_TABLE = "privacy.compactions"


class StaleDatabaseInstanceError(RuntimeError):
    """After the swap this process still sees the old file: a connection to it was left open."""


@dataclass(frozen=True)
class CompactionResult:
    path: Path
    bytes_before: int
    bytes_after: int
    seconds: float
    compaction_id: str


def connection_config(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The warehouse connection settings plus ``force_compression`` from CX360_DUCKDB_FORCE_COMPRESSION."""
    from cx_pipeline.warehouse import WAREHOUSE_CONNECTION_CONFIG

    config = dict(WAREHOUSE_CONNECTION_CONFIG if base is None else base)
    forced = os.environ.get(COMPACTION_ENV)
    if forced:
        config["force_compression"] = forced
    return config


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def compact_database(path: Path | str, config: dict[str, Any] | None = None) -> CompactionResult:
    """Rewrite the DuckDB file at ``path`` with live data only and swap it in atomically.

    Every connection to ``path`` in this process must be closed first (DuckDB shares one instance per path
    in a process); a stale instance is detected afterwards and raised as :class:`StaleDatabaseInstanceError`.
    """
    started = time.monotonic()
    path = Path(path)
    compaction_id = uuid.uuid4().hex
    temporary = path.with_name(f".{path.name}.compact-{compaction_id[:8]}")
    wal = Path(str(path) + ".wal")
    bytes_before = _file_size(path) + _file_size(wal)
    settings = connection_config(config)
    connection = duckdb.connect(str(path), config=settings)
    try:
        connection.execute("checkpoint")
        catalog = connection.execute("select current_database()").fetchall()[0][0]
        connection.execute(f"attach {sql_string(str(temporary))} as {_ATTACH_ALIAS}")
        connection.execute(f'copy from database "{catalog}" to {_ATTACH_ALIAS}')
        connection.execute(f"create schema if not exists {_ATTACH_ALIAS}.privacy")
        connection.execute(
            f"create table if not exists {_ATTACH_ALIAS}.{_MARKER_TABLE} "
            "(compaction_id varchar, compacted_at timestamptz)"
        )
        connection.execute(
            f"insert into {_ATTACH_ALIAS}.{_MARKER_TABLE} values (?, current_timestamp)",  # noqa: S608
            [compaction_id],
        )
        connection.execute(f"detach {_ATTACH_ALIAS}")
    except BaseException:
        connection.close()
        temporary.unlink(missing_ok=True)
        Path(str(temporary) + ".wal").unlink(missing_ok=True)
        raise
    connection.close()
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    # The old file's log was checkpointed on close; a leftover belongs to the old file and must not be
    # replayed into the new one.
    wal.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    check = duckdb.connect(str(path), config=settings)
    try:
        seen = check.execute(
            f"select count(*) from {_MARKER_TABLE} where compaction_id = ?",  # noqa: S608 - constant
            [compaction_id],
        ).fetchall()[0][0]
    except duckdb.CatalogException:
        seen = 0
    finally:
        check.close()
    if not seen:
        raise StaleDatabaseInstanceError(
            f"{path} was compacted but this process still sees the old file: a DuckDB connection to it was "
            "left open. Close every connection before compact_database()."
        )
    return CompactionResult(
        path=path,
        bytes_before=bytes_before,
        bytes_after=_file_size(path),
        seconds=time.monotonic() - started,
        compaction_id=compaction_id,
    )


def verify_erased(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows that still hold a suppressed identifier, per ``schema.table`` (empty = nothing left).

    Every personal column of every table (:func:`cx_pipeline.privacy.scan.scan_columns`) is tokenised like
    the erasure does, all tables at once: each distinct value of the warehouse is tokenised once, each
    distinct token keyed-hashed once and compared with the suppression list. Linear in the rows; rows are
    looked up only where a token matched.
    """
    ensure_privacy_tables(connection)
    try:
        if load_suppression_needles(connection) == 0:
            return {}
        register_scan_functions(connection)
        matches = scan_tables(connection, scrubbable_tables(connection))
    finally:
        end_scan(connection)
    return {str(table): len(rows) for table, rows in sorted(matches.items(), key=lambda m: str(m[0]))}


def suppression_needles(connection: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    ensure_privacy_tables(connection)
    rows = connection.execute(
        "select identifier_hash, min(request_id) from privacy.suppressed_identifiers group by 1"
    ).fetchall()
    return dict(rows)


def verify_file_bytes(path: Path | str, needles: dict[str, str | None]) -> set[str]:
    """Suppressed identifiers readable in the raw bytes of a file (database, WAL, export); see scan docs."""
    path = Path(path)
    found: set[str] = set()
    for candidate in (path, Path(str(path) + ".wal")):
        if candidate.exists():
            found |= file_byte_hits(candidate, needles)
    return found
