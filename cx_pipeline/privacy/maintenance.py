"""After an erasure: rewrite the database file so deleted bytes leave it, and verify nothing is left.

DuckDB keeps deleted rows in the file until their blocks are reused, and a dropped or rebuilt table (every
dbt run) leaves its old blocks as free space with the old bytes inside; VACUUM does not reclaim them
(docs/privacy.md, Erasure, step 7). ``COPY FROM DATABASE`` into a new file writes only live data, so
:func:`compact_database` copies the warehouse into a fresh file next to it and swaps it in with
``os.replace``. Nothing may hold the file open meanwhile (in Dagster every warehouse step shares one pool).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.privacy.deferral import clear_deferrals, deferred_needles, has_deferrals
from cx_pipeline.privacy.erasure import ensure_privacy_tables, scrubbable_tables
from cx_pipeline.privacy.file_scan import file_byte_hits
from cx_pipeline.privacy.scan import (
    end_scan,
    load_needles,
    register_scan_functions,
    scan_tables,
)
from cx_pipeline.publish import fsync_path, publish_file
from cx_pipeline.settings import DUCKDB_FORCE_COMPRESSION, PRIVACY_BYTE_SCAN, byte_scan_on
from cx_pipeline.sql import compose, qualified_name, quote_identifier, quote_literal

_ATTACH_ALIAS = "cx360_compacted"
_MARKER_SCHEMA, _MARKER_NAME = "privacy", "compactions"
_MARKER_TABLE = qualified_name(_MARKER_SCHEMA, _MARKER_NAME)


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
    """The warehouse connection settings (or ``base``) with the configured ``force_compression``."""
    from cx_pipeline.warehouse import warehouse_connection_config

    forced = warehouse_connection_config()
    if base is None:
        return forced
    config = dict(base)
    if "force_compression" in forced:
        config["force_compression"] = forced["force_compression"]
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
        alias = quote_identifier(_ATTACH_ALIAS)
        marker = qualified_name(_ATTACH_ALIAS, _MARKER_SCHEMA, _MARKER_NAME)
        # A path cannot be bound in ATTACH: it is quoted as a literal.
        connection.execute(
            compose("attach {path} as {alias}", path=quote_literal(str(temporary)), alias=alias)
        )
        connection.execute(
            compose("copy from database {catalog} to {alias}", catalog=quote_identifier(catalog), alias=alias)
        )
        connection.execute(
            compose(
                "create schema if not exists {schema}", schema=qualified_name(_ATTACH_ALIAS, _MARKER_SCHEMA)
            )
        )
        connection.execute(
            compose(
                "create table if not exists {marker} (compaction_id varchar, compacted_at timestamptz)",
                marker=marker,
            )
        )
        connection.execute(
            compose("insert into {marker} values (?, current_timestamp)", marker=marker), [compaction_id]
        )
        connection.execute(compose("detach {alias}", alias=alias))
    except BaseException:
        connection.close()
        temporary.unlink(missing_ok=True)
        Path(str(temporary) + ".wal").unlink(missing_ok=True)
        raise
    connection.close()
    publish_file(temporary, path)
    # The old file's log was checkpointed on close; a leftover belongs to the old file and must not be
    # replayed into the new one (the folder is flushed again so the removal is durable too).
    if wal.exists():
        wal.unlink(missing_ok=True)
        fsync_path(path.parent)
    check = duckdb.connect(str(path), config=settings)
    try:
        seen = check.execute(
            compose("select count(*) from {marker} where compaction_id = ?", marker=_MARKER_TABLE),
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


def verification_needles(connection: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """The suppression list plus the keyed hashes recorded with erasures left to a build (customer ids and
    bi pseudonyms too): ``{hash: request_id}``."""
    needles = deferred_needles(connection)
    needles.update(suppression_needles(connection))
    return needles


def verify_erased(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows that still hold a suppressed identifier, per ``schema.table`` (empty = nothing left).

    Every personal column of every table (:func:`cx_pipeline.privacy.scan.scan_columns`) is tokenised like
    the erasure does, in the passes of :func:`cx_pipeline.privacy.scan.scan_passes` (columns of one name
    together): each distinct value of a pass is tokenised once, each distinct token keyed-hashed once and
    compared with the suppression list and the hashes of erasures left to a build
    (:func:`verification_needles`). Linear in the rows; rows are looked up only where a token matched.
    """
    ensure_privacy_tables(connection)
    try:
        needles = verification_needles(connection)
        if not needles:
            return {}
        load_needles(connection, needles)
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


def byte_scan_enabled() -> bool:
    """Whether the verification scans the file's bytes (``CX360_PRIVACY_BYTE_SCAN``, cx_pipeline.settings).

    By default only in forensic mode (``CX360_DUCKDB_FORCE_COMPRESSION=uncompressed``): with DuckDB's
    compression (dictionary, FSST) strings are not stored as plain bytes, so a clean byte scan proves nothing
    there; the compaction is what removes deleted and freed data from the file.
    """
    return byte_scan_on(PRIVACY_BYTE_SCAN.read(), DUCKDB_FORCE_COMPRESSION.read())


@dataclass
class VerificationResult:
    verified: bool
    reason: str = ""
    leftovers: dict[str, int] = field(default_factory=dict)
    byte_hits: set[str] = field(default_factory=set)
    needles: int = 0
    verify_seconds: float = 0.0
    byte_scan_seconds: float | None = None
    compaction: CompactionResult | None = None

    @property
    def clean(self) -> bool:
        return not self.leftovers and not self.byte_hits


def verify_after_build(
    open_connection: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    path: Path | str,
    *,
    run_id: str | None = None,
    byte_scan: bool | None = None,
    now: Callable[[], datetime] | None = None,
) -> VerificationResult:
    """The post-build step: when anything was erased, scrubbed or left to the build since the last passing
    verification, prove that no erased value is left in any table, then compact the file once.

    1. Table scan (:func:`verify_erased`) with the suppression list and the deferred hashes. A leftover
       stops here: nothing is recorded, so the next run verifies again.
    2. Compaction (:func:`compact_database`): the deletes of the erasure step and the tables dbt rebuilt
       (their freed blocks still hold the old bytes, compressed or not) leave the file. Skipped when nothing
       was left to the build and nothing deleted since the last compaction (the erasure step compacted
       before the build: a run with nothing to leave to it compacts there, while the file is smallest).
    3. Byte scan of the compacted file (:func:`byte_scan_enabled`; forensic mode only by default).
    4. Recorded in ``privacy.erasure_verifications``; the deferrals it covered are cleared.

    ``open_connection`` opens a warehouse connection (a context manager); every one is closed before the
    compaction.
    """
    clock = now or (lambda: datetime.now(UTC))
    path = Path(path)
    started_at = clock()
    with open_connection() as connection:
        ensure_privacy_tables(connection)
        connection.execute(
            "create table if not exists privacy.erasure_verifications "
            "(verified_at timestamptz, run_id varchar)"
        )
        last = connection.execute("select max(verified_at) from privacy.erasure_verifications").fetchall()[0][
            0
        ]
        changed = connection.execute(
            "select count(*) from privacy.erasure_audit where ? is null or executed_at > ?", [last, last]
        ).fetchall()[0][0]
        deferred_up_to = connection.execute(
            "select max(deferred_at) from (select deferred_at from privacy.deferred_erasures "
            "union all select deferred_at from privacy.deferred_tables)"
        ).fetchall()[0][0]
        deferred = has_deferrals(connection)
        if not changed and not deferred:
            return VerificationResult(verified=False, reason="nothing erased since last check")
        # Deleted rows since the last compaction, or tables rebuilt over a deferral: old bytes in the file.
        needs_compaction = deferred or _deleted_since_last_compaction(connection)
        started = time.monotonic()
        leftovers = verify_erased(connection)
        verify_seconds = time.monotonic() - started
        needles = verification_needles(connection)
    result = VerificationResult(
        verified=False, leftovers=leftovers, needles=len(needles), verify_seconds=verify_seconds
    )
    if leftovers:
        return result
    if needs_compaction:
        result.compaction = compact_database(path)
    if byte_scan if byte_scan is not None else byte_scan_enabled():
        started = time.monotonic()
        result.byte_hits = verify_file_bytes(path, needles)
        result.byte_scan_seconds = time.monotonic() - started
        if result.byte_hits:
            return result
    with open_connection() as connection:
        connection.execute("begin transaction")
        connection.execute("insert into privacy.erasure_verifications values (?, ?)", [started_at, run_id])
        clear_deferrals(connection, deferred_up_to)
        connection.execute("commit")
    result.verified = True
    return result


def _deleted_since_last_compaction(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``privacy.erasure_audit`` records deletes after the last compaction (or there was none)."""
    exists = connection.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? and table_name = ?",
        [_MARKER_SCHEMA, _MARKER_NAME],
    ).fetchall()[0][0]
    last = None
    if exists:
        last = connection.execute(
            compose("select max(compacted_at) from {marker}", marker=_MARKER_TABLE)
        ).fetchall()[0][0]
    return bool(
        connection.execute(
            """
            select count(*) from privacy.erasure_audit
            where rows_removed > 0 and (? is null or executed_at > ?)
                and not starts_with(table_name, 'exports/')
                and not starts_with(table_name, 'quarantine_files/')
            """,
            [last, last],
        ).fetchall()[0][0]
    )


def compaction_copy_pattern(path: Path) -> str:
    """The glob of the temporary copies :func:`compact_database` writes beside ``path`` (and their WALs)."""
    return f".{path.name}.compact-*"


def remove_stale_compaction_copies(path: Path | str) -> list[Path]:
    """Delete the copies of the warehouse a killed compaction left beside it; the files removed.

    A compaction writes the whole warehouse (names, emails, phones) to ``.<name>.compact-<id>`` and renames it
    over the warehouse; killed in between, the copy stays, and nothing else would ever read, scan or erase it.
    Call it while no compaction can run (the erasure step holds the warehouse's pool slot).
    """
    path = Path(path)
    removed = []
    for copy in sorted(path.parent.glob(compaction_copy_pattern(path))):
        if copy.is_file():
            copy.unlink()
            removed.append(copy)
    return removed
