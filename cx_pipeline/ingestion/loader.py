"""Load a source's landing files into ``raw.<source>``, ``raw.quarantine`` and ``raw.loaded_files``.

Per file, in relative-path order:
1. Identity: a file whose path, size and mtime match its current manifest row is skipped without reading;
   otherwise its SHA-256 is computed and a file whose hash matches is skipped too. Re-runs change nothing.
2. A file with new content at a known path replaces the earlier version: its raw and quarantine rows are
   deleted, the manifest row is marked ``superseded_at``, and keys whose first delivery disappeared get
   their next delivery (by load order, then line) promoted to non-duplicate.
3. Text files are read line by line (``lines``), parsed (``parse``) and validated against the contract
   (``rules``) in DuckDB. Valid rows go to ``raw.<source>`` flagged ``_is_duplicate`` when their record
   key was delivered before; all other records go to ``raw.quarantine`` with the reason.
4. Files that cannot be read as this source at all are ``rejected``: a CSV whose header is unusable has
   all its lines quarantined; a binary/compressed/unscannable file gets one quarantine row and a copy
   under ``<quarantine dir>/<source>/``. A rejected version is not retried until its content changes.

Steps 2-3 (or 2-4) run in one transaction per file with the manifest row, and
``rows_read == rows_loaded + rows_quarantined`` is asserted before the commit.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from cx_pipeline.contracts import CONTRACTS, SourceContract, raw_table_columns
from cx_pipeline.ingestion.csv_format import (
    FileRejectedError,
    drop_csv_tables,
    merge_multiline_records,
    parse_header,
)
from cx_pipeline.ingestion.landing import (
    LandingFile,
    UnreadFile,
    file_sha256,
    list_landing_files,
    sniff_unreadable,
)
from cx_pipeline.ingestion.lines import (
    BAD_LINES_TABLE,
    LINES_VIEW,
    UnreadableFileError,
    drop_line_tables,
    read_physical_lines,
)
from cx_pipeline.ingestion.manifest import ManifestEntry, current_entries, insert_entry, supersede
from cx_pipeline.ingestion.parse import (
    PARSED_TABLE,
    REPEATED_KEYS_TABLE,
    csv_values_sql,
    duplicate_join_sql,
    jsonl_values_sql,
    parsed_select_sql,
    repeated_keys_sql,
)
from cx_pipeline.ingestion.schema import QUARANTINE_TABLE, ensure_raw_schema
from cx_pipeline.ingestion.sql import configure_connection, qualified, raw_table, scalar
from cx_pipeline.settings import landing_settle_seconds
from cx_pipeline.sql import Sql, compose, join, plain_identifier, qualified_name, quote_identifier

FIX_HINT = (
    "Fix the file and land it again at the same path (a file whose content changed is reloaded and "
    "replaces the rejected version), or remove it from the landing folder. Until its content changes the "
    "rejected file is skipped, so the next run succeeds."
)


class FileChangedDuringLoadError(RuntimeError):
    """The file's size or mtime changed while it was read: it is still being written."""


class AccountingError(AssertionError):
    """rows_read != rows_loaded + rows_quarantined for a file: nothing of the file is committed."""


@dataclass(frozen=True)
class FileLoadResult:
    source: str
    file_path: str  # relative to the landing root
    action: str  # 'new' | 'replaced' | 'skipped' | 'deferred' (still being written: left for the next run)
    # 'loaded' | 'empty' | 'rejected' (for skipped files: the status of the loaded version) | 'unsettled'
    status: str
    content_sha256: str | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    reason: str | None = None
    quarantine_copy: str | None = None


@dataclass
class SourceLoadResult:
    source: str
    files: list[FileLoadResult] = field(default_factory=list)
    ignored_files: list[UnreadFile] = field(default_factory=list)

    def _sum(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.files if f.action not in ("skipped", "deferred"))

    @property
    def deferred(self) -> list[FileLoadResult]:
        """Files left for the next run because they were still being written."""
        return [f for f in self.files if f.action == "deferred"]

    @property
    def rows_read(self) -> int:
        return self._sum("rows_read")

    @property
    def rows_loaded(self) -> int:
        return self._sum("rows_loaded")

    @property
    def rows_quarantined(self) -> int:
        return self._sum("rows_quarantined")

    @property
    def rows_duplicate(self) -> int:
        return self._sum("rows_duplicate")

    @property
    def loaded(self) -> list[FileLoadResult]:
        return [f for f in self.files if f.action not in ("skipped", "deferred") and f.status != "rejected"]

    @property
    def skipped(self) -> list[FileLoadResult]:
        return [f for f in self.files if f.action == "skipped"]

    @property
    def replaced(self) -> list[FileLoadResult]:
        return [f for f in self.files if f.action == "replaced"]

    @property
    def rejected(self) -> list[FileLoadResult]:
        """Files rejected in this run (quarantined; a warning check names them, the run goes on)."""
        return [f for f in self.files if f.action != "skipped" and f.status == "rejected"]

    @property
    def still_rejected(self) -> list[FileLoadResult]:
        """Files rejected in an earlier run and unchanged since (skipped, reported, not failing)."""
        return [f for f in self.files if f.action == "skipped" and f.status == "rejected"]


def _exact_mtime(landing_file: LandingFile) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=landing_file.modified_ns // 1000)


class _Clock:
    """Strictly increasing load timestamps: load order must be recoverable from ``_loaded_at``."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._last: datetime | None = None

    def tick(self) -> datetime:
        value = self._now()
        if self._last is not None and value <= self._last:
            value = self._last + timedelta(microseconds=1)
        self._last = value
        return value


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _key_columns(contract: SourceContract) -> list[Sql]:
    return [plain_identifier(contract.field(name).column) for name in contract.record_key]


def _remove_previous_version(conn: duckdb.DuckDBPyConnection, contract: SourceContract, path: str) -> None:
    """Delete an earlier version's rows and re-elect first deliveries of the keys it held."""
    table = raw_table(contract.name)
    keys = _key_columns(contract)
    conn.execute("DROP TABLE IF EXISTS temp._cx_freed")
    conn.execute(
        compose(
            "CREATE TEMP TABLE _cx_freed AS SELECT DISTINCT {keys} FROM {table} "
            "WHERE _source_file = ? AND NOT _is_duplicate",
            keys=join(keys),
            table=table,
        ),
        [path],
    )
    conn.execute(compose("DELETE FROM {table} WHERE _source_file = ?", table=table), [path])
    conn.execute(
        compose(
            "DELETE FROM {quarantine} WHERE source = ? AND source_file = ?",
            quarantine=qualified(QUARANTINE_TABLE),
        ),
        [contract.name, path],
    )
    conn.execute(
        compose(
            """
            UPDATE {table} SET _is_duplicate = false WHERE rowid IN (
                SELECT rid FROM (
                    SELECT t.rowid AS rid, t._is_duplicate AS dup, row_number() OVER (
                        PARTITION BY {partition}
                        ORDER BY t._loaded_at, t._source_file, t._source_line
                    ) AS rn
                    FROM {table} AS t SEMI JOIN _cx_freed AS f ON {match}
                ) WHERE rn = 1 AND dup
            )
            """,
            table=table,
            partition=join(compose("t.{k}", k=k) for k in keys),
            match=join((compose("t.{k} = f.{k}", k=k) for k in keys), " AND "),
        )
    )
    conn.execute("DROP TABLE temp._cx_freed")


def _copy_to_quarantine(landing_file: LandingFile, sha256: str, quarantine_root: Path) -> Path:
    target_dir = quarantine_root / landing_file.source
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{sha256[:12]}-{landing_file.path.name}"
    if not target.exists():
        shutil.copy2(landing_file.path, target)
    return target


class _FileLoad:
    """One file version going into the warehouse inside one transaction."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        landing_file: LandingFile,
        sha256: str,
        previous: ManifestEntry | None,
        loaded_at: datetime,
        run_id: str | None,
    ) -> None:
        self.conn = conn
        self.file = landing_file
        self.contract = CONTRACTS[landing_file.source]
        self.sha256 = sha256
        self.previous = previous
        self.loaded_at = loaded_at
        self.run_id = run_id
        self.started = time.monotonic()
        self.in_transaction = False

    @property
    def action(self) -> str:
        return "replaced" if self.previous is not None else "new"

    def _quarantine_rows(self, select_sql: Sql, params: list) -> int:
        """Insert ``(n, raw_record, reason, error_type, error_field)`` rows; returns the count."""
        inserted = self.conn.execute(
            compose(
                """
                INSERT INTO {quarantine}
                SELECT CAST(? AS VARCHAR), CAST(? AS VARCHAR), q.n, q.raw_record, q.reason, q.error_type,
                       q.error_field, CAST(? AS VARCHAR), CAST(? AS TIMESTAMPTZ)
                FROM ({rows}) AS q ORDER BY q.n NULLS FIRST
                """,
                quarantine=qualified(QUARANTINE_TABLE),
                rows=select_sql,
            ),
            [self.contract.name, self.file.relative_path, self.sha256, self.loaded_at, *params],
        ).fetchall()
        return int(inserted[0][0])

    def commit(
        self,
        *,
        status: str,
        rows_read: int,
        rows_loaded: int,
        rows_quarantined: int,
        rows_duplicate: int,
        reason: str | None = None,
        quarantine_copy: str | None = None,
    ) -> FileLoadResult:
        if self.file.changed_on_disk():
            self.conn.rollback()
            self.in_transaction = False
            raise FileChangedDuringLoadError(self.file.relative_path)
        if rows_read != rows_loaded + rows_quarantined:
            raise AccountingError(
                f"{self.file.relative_path}: rows_read {rows_read} != rows_loaded {rows_loaded} + "
                f"rows_quarantined {rows_quarantined}"
            )
        insert_entry(
            self.conn,
            {
                "source": self.contract.name,
                "file_path": self.file.relative_path,
                "size_bytes": self.file.size_bytes,
                "modified_at": _exact_mtime(self.file),
                "content_sha256": self.sha256,
                "file_format": self.contract.format,
                "rows_read": rows_read,
                "rows_loaded": rows_loaded,
                "rows_quarantined": rows_quarantined,
                "rows_duplicate": rows_duplicate,
                "status": status,
                "status_reason": reason,
                "quarantine_copy": quarantine_copy,
                "loaded_at": self.loaded_at,
                "run_id": self.run_id,
                "duration_seconds": round(time.monotonic() - self.started, 3),
            },
        )
        self.conn.commit()
        self.in_transaction = False
        return FileLoadResult(
            source=self.contract.name,
            file_path=self.file.relative_path,
            action=self.action,
            status=status,
            content_sha256=self.sha256,
            rows_read=rows_read,
            rows_loaded=rows_loaded,
            rows_quarantined=rows_quarantined,
            rows_duplicate=rows_duplicate,
            reason=reason,
            quarantine_copy=quarantine_copy,
        )

    def begin(self) -> None:
        self.conn.begin()
        self.in_transaction = True
        if self.previous is not None:
            _remove_previous_version(self.conn, self.contract, self.file.relative_path)
            supersede(self.conn, self.contract.name, self.file.relative_path, self.loaded_at)

    # -- outcomes ---------------------------------------------------------------------------------------

    def unreadable(self, reason: str, quarantine_root: Path) -> FileLoadResult:
        copy = _copy_to_quarantine(self.file, self.sha256, quarantine_root)
        full_reason = f"{reason}; the file was copied to {copy}"
        self.begin()
        quarantined = self._quarantine_rows(
            Sql(
                "SELECT CAST(NULL AS BIGINT) AS n, CAST(NULL AS VARCHAR) AS raw_record, ? AS reason, "
                "'unreadable_file' AS error_type, CAST(NULL AS VARCHAR) AS error_field"
            ),
            [full_reason],
        )
        return self.commit(
            status="rejected",
            rows_read=1,
            rows_loaded=0,
            rows_quarantined=quarantined,
            rows_duplicate=0,
            reason=full_reason,
            quarantine_copy=str(copy),
        )

    def empty(self) -> FileLoadResult:
        self.begin()
        return self.commit(
            status="empty",
            rows_read=0,
            rows_loaded=0,
            rows_quarantined=0,
            rows_duplicate=0,
            reason="the file is empty",
        )

    def rejected_lines(self, reason: str, first_data_line: int) -> FileLoadResult:
        """The file is unusable as a whole: every data line goes to quarantine."""
        self.begin()
        quarantined = self._quarantine_rows(
            compose(
                """
                SELECT n, coalesce(line, '') AS raw_record, ? AS reason, 'file_rejected' AS error_type,
                       CAST(NULL AS VARCHAR) AS error_field
                FROM {lines} WHERE n >= ?
                UNION ALL
                SELECT n, raw_record, ? || ' (line: ' || reason || ')', 'file_rejected', NULL
                FROM {bad_lines} WHERE n >= ?
                """,
                lines=quote_identifier(LINES_VIEW),
                bad_lines=quote_identifier(BAD_LINES_TABLE),
            ),
            [reason, first_data_line, reason, first_data_line],
        )
        read = scalar(
            self.conn,
            compose(
                "SELECT (SELECT count(*) FROM {lines} WHERE n >= ?) "
                "+ (SELECT count(*) FROM {bad_lines} WHERE n >= ?)",
                lines=quote_identifier(LINES_VIEW),
                bad_lines=quote_identifier(BAD_LINES_TABLE),
            ),
            [first_data_line, first_data_line],
        )
        return self.commit(
            status="rejected",
            rows_read=int(read),
            rows_loaded=0,
            rows_quarantined=quarantined,
            rows_duplicate=0,
            reason=reason,
        )

    def records(
        self, values_sql: Sql, params: list, first_data_line: int, note: str | None
    ) -> FileLoadResult:
        """Validate, then insert valid rows into raw and the rest into quarantine."""
        contract = self.contract
        table = raw_table(contract.name)
        self.begin()
        parsed, repeated = quote_identifier(PARSED_TABLE), quote_identifier(REPEATED_KEYS_TABLE)
        temp_parsed, temp_repeated = (
            qualified_name("temp", PARSED_TABLE),
            qualified_name("temp", REPEATED_KEYS_TABLE),
        )
        bad_lines_table = quote_identifier(BAD_LINES_TABLE)
        self.conn.execute(
            compose(
                "DROP TABLE IF EXISTS {temp_parsed}; DROP TABLE IF EXISTS {temp_repeated};",
                temp_parsed=temp_parsed,
                temp_repeated=temp_repeated,
            )
        )
        self.conn.execute(
            compose(
                "CREATE TEMP TABLE {parsed} AS {select}",
                parsed=parsed,
                select=parsed_select_sql(contract, values_sql),
            ),
            params,
        )
        self.conn.execute(
            compose(
                "CREATE TEMP TABLE {repeated} AS {select}",
                repeated=repeated,
                select=repeated_keys_sql(contract, PARSED_TABLE),
            )
        )
        raw_columns = [c for c in raw_table_columns(contract.name) if not c.startswith("_")]
        select = join(compose("p.{column}", column=plain_identifier(c)) for c in raw_columns)
        joins, is_duplicate = duplicate_join_sql(contract, REPEATED_KEYS_TABLE)
        loaded = self.conn.execute(
            compose(
                """
                INSERT INTO {table} BY NAME
                SELECT {select}, p._extra, {is_duplicate} AS _is_duplicate,
                       CAST(? AS VARCHAR) AS _source_file, p._q_n AS _source_line,
                       CAST(? AS TIMESTAMPTZ) AS _loaded_at
                FROM {parsed} AS p {joins}
                WHERE p._q_reason IS NULL
                """,
                table=table,
                select=select,
                is_duplicate=is_duplicate,
                parsed=parsed,
                joins=joins,
            ),
            [self.file.relative_path, self.loaded_at],
        ).fetchall()[0][0]
        quarantined = self._quarantine_rows(
            compose(
                """
                SELECT _q_n AS n, _q_raw_record AS raw_record, _q_reason AS reason,
                       _q_error_type AS error_type, _q_error_field AS error_field
                FROM {parsed} WHERE _q_reason IS NOT NULL
                UNION ALL
                SELECT n, raw_record, reason, error_type, NULL FROM {bad_lines} WHERE n >= ?
                """,
                parsed=parsed,
                bad_lines=bad_lines_table,
            ),
            [first_data_line],
        )
        records, bad_lines, duplicates = self.conn.execute(
            compose(
                """
                SELECT (SELECT count(*) FROM {parsed}),
                       (SELECT count(*) FROM {bad_lines} WHERE n >= ?),
                       (SELECT count(*) FROM {table} WHERE _source_file = ? AND _is_duplicate)
                """,
                parsed=parsed,
                bad_lines=bad_lines_table,
                table=table,
            ),
            [first_data_line, self.file.relative_path],
        ).fetchall()[0]
        self.conn.execute(
            compose(
                "DROP TABLE {temp_parsed}; DROP TABLE {temp_repeated};",
                temp_parsed=temp_parsed,
                temp_repeated=temp_repeated,
            )
        )
        return self.commit(
            status="loaded",
            rows_read=int(records) + int(bad_lines),
            rows_loaded=int(loaded),
            rows_quarantined=quarantined,
            rows_duplicate=int(duplicates),
            reason=note,
        )


def load_file(
    conn: duckdb.DuckDBPyConnection,
    landing_file: LandingFile,
    *,
    quarantine_root: Path,
    sha256: str | None = None,
    previous: ManifestEntry | None = None,
    loaded_at: datetime | None = None,
    run_id: str | None = None,
) -> FileLoadResult:
    """Load one file version (new, or replacing ``previous``) in one transaction. See module docs."""
    try:
        return _load_file(conn, landing_file, quarantine_root, sha256, previous, loaded_at, run_id)
    except FileChangedDuringLoadError:
        return _deferred(landing_file, "the file changed while it was read: it is still being written")


def _deferred(landing_file: LandingFile, reason: str) -> FileLoadResult:
    return FileLoadResult(
        source=landing_file.source,
        file_path=landing_file.relative_path,
        action="deferred",
        status="unsettled",
        content_sha256=None,
        reason=f"{reason}; nothing of it was loaded, the next run reads it once it has settled",
    )


def _load_file(
    conn: duckdb.DuckDBPyConnection,
    landing_file: LandingFile,
    quarantine_root: Path,
    sha256: str | None,
    previous: ManifestEntry | None,
    loaded_at: datetime | None,
    run_id: str | None,
) -> FileLoadResult:
    sha256 = sha256 or file_sha256(landing_file.path)
    load = _FileLoad(conn, landing_file, sha256, previous, loaded_at or _utc_now(), run_id)
    contract = load.contract
    configure_connection(conn)
    try:
        unreadable = sniff_unreadable(landing_file.path)
        if unreadable:
            return load.unreadable(unreadable, quarantine_root)
        try:
            lines = read_physical_lines(conn, landing_file.path)
        except UnreadableFileError as error:
            return load.unreadable(str(error), quarantine_root)
        if lines.total == 0:
            return load.empty()
        if contract.format == "jsonl":
            values_sql, params = jsonl_values_sql(contract, quote_identifier(LINES_VIEW))
            return load.records(values_sql, params, first_data_line=1, note=None)
        bad_header = next((b for b in lines.bad_lines if b.line == 1), None)
        try:
            if bad_header is not None:
                raise FileRejectedError(f"the header line is unreadable: {bad_header.reason}")
            header = scalar(
                conn, compose("SELECT line FROM {lines} WHERE n = 1", lines=quote_identifier(LINES_VIEW))
            )
            layout = parse_header(header, contract)
        except FileRejectedError as rejected:
            return load.rejected_lines(rejected.reason, first_data_line=2)
        records_view, _ = merge_multiline_records(conn, layout)
        missing = [f for f in contract.field_names if f not in layout.positions]
        note = f"optional column(s) absent from the header: {', '.join(missing)}" if missing else None
        values_sql, params = csv_values_sql(contract, layout, quote_identifier(records_view))
        return load.records(values_sql, params, first_data_line=2, note=note)
    except BaseException:
        if load.in_transaction:
            conn.rollback()
        raise
    finally:
        drop_csv_tables(conn)
        drop_line_tables(conn)


def load_source(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    landing_root: Path,
    quarantine_root: Path,
    *,
    run_id: str | None = None,
    now: Callable[[], datetime] = _utc_now,
    log: Callable[[str], None] | None = None,
) -> SourceLoadResult:
    """Load every new or changed landing file of ``source``; see the module docstring.

    Never raises for bad data: rejected files are in ``result.rejected`` (the Dagster asset turns them
    into a failure after the good files are committed).
    """
    configure_connection(conn)
    ensure_raw_schema(conn, [source])
    files, ignored = list_landing_files(landing_root, source)
    result = SourceLoadResult(source=source, ignored_files=ignored)
    current = current_entries(conn, source)
    clock = _Clock(now)
    settle_ns = int(landing_settle_seconds() * 1e9)
    for landing_file in files:
        if time.time_ns() - landing_file.modified_ns < settle_ns:
            outcome = _deferred(
                landing_file, f"modified less than {settle_ns / 1e9:g} s ago: it may still be written"
            )
            if log:
                log(f"{outcome.file_path}: deferred, {outcome.reason}")
            result.files.append(outcome)
            continue
        previous = current.get(landing_file.relative_path)
        if (
            previous is not None
            and previous.size_bytes == landing_file.size_bytes
            and previous.modified_at == _exact_mtime(landing_file)
        ):
            result.files.append(_skipped(previous))
            continue
        sha256 = file_sha256(landing_file.path)
        if previous is not None and previous.content_sha256 == sha256:
            result.files.append(_skipped(previous))
            continue
        outcome = load_file(
            conn,
            landing_file,
            quarantine_root=quarantine_root,
            sha256=sha256,
            previous=previous,
            loaded_at=clock.tick(),
            run_id=run_id,
        )
        if log:
            log(
                f"{outcome.file_path}: {outcome.action}, {outcome.status}, read {outcome.rows_read}, "
                f"loaded {outcome.rows_loaded}, quarantined {outcome.rows_quarantined}, "
                f"duplicates {outcome.rows_duplicate}"
            )
        result.files.append(outcome)
    return result


def _skipped(entry: ManifestEntry) -> FileLoadResult:
    return FileLoadResult(
        source=entry.source,
        file_path=entry.file_path,
        action="skipped",
        status=entry.status,
        content_sha256=entry.content_sha256,
        rows_read=entry.rows_read,
        rows_loaded=entry.rows_loaded,
        rows_quarantined=entry.rows_quarantined,
        rows_duplicate=entry.rows_duplicate,
        reason=entry.status_reason,
    )
