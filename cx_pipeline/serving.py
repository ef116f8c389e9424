"""The published serving copy for BI: a read-only DuckDB file, replaced atomically after each run.

DuckDB lets one process open a file for writing and then nobody else may open it, not even read-only, so BI
tools cannot read the warehouse while the pipeline runs (and a BI tool holding it open would block the
pipeline). Instead every run publishes ``<serving dir>/cx360_bi.duckdb``:

1. copy the allowlisted relations (``SERVED_RELATIONS``: the pseudonymised ``bi`` schema and aggregate
   marts, never direct identifiers) in one transaction, so the copy is one consistent snapshot, into a new
   file next to the published one, written in a storage version DuckDB 1.4 and 1.5 clients can read;
2. checkpoint and close it, fsync it, then ``os.replace`` it onto the published name.

The rename is atomic: a new connection opens either the old complete file or the new complete one, never a
half-written file, and never finds the name missing. Readers already connected keep reading the old file
(on Linux its inode lives on until they close). Opening the copy, BI's side, is
:mod:`cx_pipeline.serving_client`. See docs/serving.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import tomllib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import duckdb

from cx_pipeline.operations import DiskFullError, is_disk_full
from cx_pipeline.publish import publish_file
from cx_pipeline.serving_client import SERVING_FILE_NAME, serving_file
from cx_pipeline.serving_client import SERVING_READONLY_CONFIG as SERVING_READONLY_CONFIG  # re-exported
from cx_pipeline.serving_client import ServingCopyMissingError as ServingCopyMissingError  # re-exported
from cx_pipeline.serving_client import open_serving_readonly as open_serving_readonly  # re-exported
from cx_pipeline.settings import PROJECT_ROOT
from cx_pipeline.sql import compose, join, qualified_name, quote_identifier, quote_literal
from cx_pipeline.warehouse import connect as connect_warehouse

# DuckDB 2.0's default format is unreadable for DuckDB <= 1.5, which many BI tools and drivers bundle.
SERVING_STORAGE_VERSION = "v1.4.0"
# Lineage of the copy, one row per served relation; kept in the serving file's `main` schema.
PUBLISHED_TABLE = "_published"

# Temp files live in the serving folder itself: os.replace is only atomic within one file system.
_TEMP_PREFIX = f".{SERVING_FILE_NAME}.publishing-"
_PUBLISH_LOCK_NAME = f".{SERVING_FILE_NAME}.publish-lock"

_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, order=True)
class ServedRelation:
    """One table or view copied into the serving file under the same schema and name."""

    schema: str
    name: str

    def __post_init__(self) -> None:
        # Identifiers cannot be bound as SQL parameters, so only plain lower-case names are allowed.
        for part in (self.schema, self.name):
            if not _PLAIN_IDENTIFIER.match(part):
                raise ValueError(f"Served relation names must be plain identifiers, got {part!r}")

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


# The allowlist: only these reach BI, under these names. `bi` holds pseudonymised per-customer data (keyed
# hashes instead of emails, phones, names and source-system ids); the marts listed are aggregates (no row
# per customer). A relation not built yet is skipped and reported, so publishing works while the models
# land; bi relations missing from this list are reported too. Add new bi models here.
SERVED_RELATIONS: tuple[ServedRelation, ...] = (
    ServedRelation("bi", "dim_customers"),
    ServedRelation("bi", "fct_touchpoints"),
    ServedRelation("bi", "fct_journey_stage_history"),
    ServedRelation("bi", "fct_consent_history"),
    ServedRelation("bi", "fct_orders"),
    ServedRelation("marts", "fct_cx_metrics_monthly"),
    ServedRelation("marts", "fct_retention_cohorts"),
    ServedRelation("marts", "fct_churn_monthly"),
    ServedRelation("marts", "fct_touchpoint_cx"),
)

# Column-name tokens that mark a direct identifier, matched on whole snake_case tokens.
_DIRECT_IDENTIFIER_TOKENS = re.compile(
    r"(^|_)("
    r"first_?name|last_?name|full_?name|given_?name|family_?name|middle_?name|surname|"
    r"street|address|post_?code|postal_?code|zip_?code|birth_?date|date_of_birth|ip_address|"
    r"contact_id|user_id|anonymous_id|device_id|external_id|source_id|source_record_id|requester"
    r")(_|$)"
)
# Email and phone identify only as the column's last word (`requester_email`, `email_normalized`); before
# another word they name a channel or a purpose (`consent_email_marketing`, `phone_tickets`).
_CONTACT_POINT_AT_END = re.compile(
    r"(^|_)(e_?mail|phone|mobile_number)(_(address|number|normali[sz]ed|typed|raw|clean|e164))?$"
)
_BARE_IDENTIFIER_NAMES = frozenset({"name", "email", "phone"})
# Names derived from an identifier without identifying anybody: keyed hashes, flags, domains, counts
# (`email_hash`, `has_phone`, `crm_contact_id_count`).
_NON_IDENTIFYING_SUFFIXES = ("_hash", "_hmac", "_domain", "_count", "_share", "_rate")
_NON_IDENTIFYING_PREFIXES = ("has_", "is_", "n_", "num_")
# An email address inside any served text value (a free-text comment counts too).
_EMAIL_VALUE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"


class DirectIdentifierError(ValueError):
    """A relation about to be served carries a direct identifier; BI must only see pseudonymised data."""


class PublishBusyError(RuntimeError):
    """Another process has been publishing into the same serving folder for too long."""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    size_bytes: int
    # Served relations (`schema.name`) and their row counts, in SERVED_RELATIONS order.
    row_counts: dict[str, int]
    # Allowlisted relations the warehouse does not have (yet).
    skipped: tuple[str, ...]
    # bi relations in the warehouse that the allowlist does not name, hence not served.
    unlisted_bi_relations: tuple[str, ...]
    removed_temp_files: tuple[Path, ...]
    published_at: datetime
    duration_seconds: float


def find_identifier_columns(columns: Iterable[str]) -> list[str]:
    """The column names among ``columns`` that look like direct identifiers (email, phone, names, ids)."""
    flagged = []
    for column in columns:
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column).lower()
        if snake.endswith(_NON_IDENTIFYING_SUFFIXES) or snake.startswith(_NON_IDENTIFYING_PREFIXES):
            continue
        if (
            snake in _BARE_IDENTIFIER_NAMES
            or _DIRECT_IDENTIFIER_TOKENS.search(snake)
            or _CONTACT_POINT_AT_END.search(snake)
        ):
            flagged.append(column)
    return flagged


def refuse_direct_identifiers(columns_by_relation: dict[str, list[str]]) -> None:
    """Raise DirectIdentifierError naming every served column that looks like a direct identifier."""
    offending = [
        f"{relation}.{column}"
        for relation, columns in columns_by_relation.items()
        for column in find_identifier_columns(columns)
    ]
    if offending:
        raise DirectIdentifierError(
            "Refusing to publish the BI serving copy: these columns look like direct identifiers: "
            f"{', '.join(offending)}. BI must only see pseudonymised data (keyed hashes instead of emails, "
            "phones, names and source-system ids). Drop or hash them in the model; a column that is "
            f"already a keyed hash or not identifying can say so with a suffix {_NON_IDENTIFYING_SUFFIXES} "
            f"or a prefix {_NON_IDENTIFYING_PREFIXES}."
        )


def remove_stale_temp_files(serving_dir: Path) -> list[Path]:
    """Delete temp files (and their WALs) left by publishes that were killed; call under the publish lock."""
    removed = []
    for leftover in sorted(serving_dir.glob(f"{_TEMP_PREFIX}*")):
        leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def publish_from_warehouse(
    warehouse: Path | str,
    serving_dir: Path | str,
    *,
    relations: Sequence[ServedRelation] = SERVED_RELATIONS,
) -> PublishResult:
    """Publish from the warehouse file (opened read-only: WarehouseLockedError if a writer holds it)."""
    warehouse = Path(warehouse)
    with connect_warehouse(warehouse, read_only=True) as source:
        return publish_serving_copy(
            # The file's name, not its path: BI readers of `_published` learn nothing about this machine.
            source,
            serving_dir,
            source_label=warehouse.name,
            relations=relations,
        )


def publish_serving_copy(
    source: duckdb.DuckDBPyConnection,
    serving_dir: Path | str,
    *,
    source_label: str,
    relations: Sequence[ServedRelation] = SERVED_RELATIONS,
    lock_timeout_seconds: float = 300.0,
) -> PublishResult:
    """Copy ``relations`` from the database ``source`` is connected to and swap the copy in atomically.

    ``source`` may be read-only or read-write; the snapshot is read in one transaction of it.
    """
    started = time.monotonic()
    serving_dir = Path(serving_dir).absolute()
    serving_dir.mkdir(parents=True, exist_ok=True)
    published = serving_file(serving_dir)
    with _publish_lock(serving_dir, lock_timeout_seconds):
        removed = remove_stale_temp_files(serving_dir)
        catalog = _current_catalog(source)
        present = _existing_relations(source, catalog)
        served = [relation for relation in relations if relation in present]
        refuse_direct_identifiers(
            {relation.qualified_name: _columns(source, catalog, relation) for relation in served}
        )
        published_at = datetime.now(UTC)
        temp = serving_dir / f"{_TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            row_counts = _write_snapshot(source, catalog, temp, served, source_label, published_at)
            publish_file(temp, published)
        except BaseException as error:
            _remove_file_and_wal(temp)
            if isinstance(error, Exception) and is_disk_full(error):
                raise DiskFullError(
                    f"Disk full while publishing the BI serving copy: writing {temp} in {serving_dir} "
                    f"failed ({error}). The previously published {published} is unchanged. Free space "
                    f"on the file system holding {serving_dir} (or point CX360_SERVING_DIR elsewhere) "
                    "and re-run the serving asset.",
                    serving_dir,
                ) from error
            raise
        size_bytes = published.stat().st_size
    return PublishResult(
        path=published,
        size_bytes=size_bytes,
        row_counts=row_counts,
        skipped=tuple(r.qualified_name for r in relations if r not in present),
        unlisted_bi_relations=tuple(
            r.qualified_name for r in sorted(present) if r.schema == "bi" and r not in relations
        ),
        removed_temp_files=tuple(removed),
        published_at=published_at,
        duration_seconds=time.monotonic() - started,
    )


def cx360_version() -> str:
    try:
        return metadata.version("cx360")
    except metadata.PackageNotFoundError:
        # Running from a checkout that was not pip-installed: the version is in pyproject.toml.
        try:
            with open(PROJECT_ROOT / "pyproject.toml", "rb") as handle:
                return str(tomllib.load(handle)["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def _write_snapshot(
    source: duckdb.DuckDBPyConnection,
    catalog: str,
    temp: Path,
    served: Sequence[ServedRelation],
    source_label: str,
    published_at: datetime,
) -> dict[str, int]:
    """Write the served relations and the `_published` table into a new file at ``temp``, closed on return."""
    alias = f"cx360_publish_{uuid.uuid4().hex[:12]}"
    quoted_alias = quote_identifier(alias)
    # ATTACH cannot bind its path or options: they are quoted as literals.
    source.execute(
        compose(
            "ATTACH {path} AS {alias} (READ_WRITE, STORAGE_VERSION {storage_version})",
            path=quote_literal(str(temp)),
            alias=quoted_alias,
            storage_version=quote_literal(SERVING_STORAGE_VERSION),
        )
    )
    try:
        row_counts = _copy_relations(source, catalog, alias, served, source_label, published_at)
        _refuse_email_values(source, alias, served)
        source.execute(compose("CHECKPOINT {alias}", alias=quoted_alias))
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            source.execute(compose("DETACH {alias}", alias=quoted_alias))
        raise
    source.execute(compose("DETACH {alias}", alias=quoted_alias))
    if Path(f"{temp}.wal").exists():
        # Data left in a WAL would not travel with the rename; never publish a file that needs one.
        raise RuntimeError(f"{temp}.wal is still there after CHECKPOINT and DETACH; not publishing {temp}")
    return row_counts


def _copy_relations(
    source: duckdb.DuckDBPyConnection,
    catalog: str,
    alias: str,
    served: Sequence[ServedRelation],
    source_label: str,
    published_at: datetime,
) -> dict[str, int]:
    """Copy in one transaction: every served relation comes from the same snapshot of the warehouse."""
    row_counts: dict[str, int] = {}
    source.execute("BEGIN TRANSACTION")
    try:
        for relation in served:
            target = qualified_name(alias, relation.schema, relation.name)
            source.execute(
                compose("CREATE SCHEMA IF NOT EXISTS {schema}", schema=qualified_name(alias, relation.schema))
            )
            # Views are materialized: the serving file has no warehouse for them to point into.
            source.execute(
                compose(
                    "CREATE TABLE {target} AS SELECT * FROM {source}",
                    target=target,
                    source=qualified_name(catalog, relation.schema, relation.name),
                )
            )
            _copy_comments(source, catalog, relation, target)
            (row_counts[relation.qualified_name],) = source.execute(
                compose("SELECT count(*) FROM {target}", target=target)
            ).fetchone()
        published = qualified_name(alias, "main", PUBLISHED_TABLE)
        source.execute(
            compose(
                "CREATE TABLE {published} (published_at TIMESTAMPTZ, "
                "source_warehouse VARCHAR, relation VARCHAR, row_count BIGINT, cx360_version VARCHAR, "
                "duckdb_version VARCHAR, storage_version VARCHAR)",
                published=published,
            )
        )
        for relation, row_count in row_counts.items():
            source.execute(
                compose(
                    "INSERT INTO {published} VALUES (?::TIMESTAMPTZ, ?, ?, ?, ?, ?, ?)", published=published
                ),
                [
                    published_at.isoformat(),
                    source_label,
                    relation,
                    row_count,
                    cx360_version(),
                    duckdb.__version__,
                    SERVING_STORAGE_VERSION,
                ],
            )
        source.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            source.execute("ROLLBACK")
        raise
    return row_counts


def _refuse_email_values(
    source: duckdb.DuckDBPyConnection, alias: str, served: Sequence[ServedRelation]
) -> None:
    """Check the copy's text values too: an email under an innocent column name must not reach BI."""
    offending = []
    for relation in served:
        text_columns = [
            column
            for (column,) in source.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
                "AND table_schema = ? AND table_name = ? AND data_type = 'VARCHAR' ORDER BY ordinal_position",
                [alias, relation.schema, relation.name],
            ).fetchall()
        ]
        if not text_columns:
            continue
        counts = join(
            compose(
                "count(*) FILTER (WHERE contains({column}, '@') AND regexp_matches({column}, $pattern))",
                column=quote_identifier(c),
            )
            for c in text_columns
        )
        table = qualified_name(alias, relation.schema, relation.name)
        found = source.execute(
            compose("SELECT {counts} FROM {table}", counts=counts, table=table), {"pattern": _EMAIL_VALUE}
        ).fetchone()
        offending += [
            f"{relation.qualified_name}.{column} ({count} values)"
            for column, count in zip(text_columns, found, strict=True)
            if count
        ]
    if offending:
        raise DirectIdentifierError(
            "Refusing to publish the BI serving copy: email addresses found in "
            f"{', '.join(offending)}. BI must only see pseudonymised data; mask or drop these values "
            "in the bi model."
        )


def _copy_comments(
    source: duckdb.DuckDBPyConnection, catalog: str, relation: ServedRelation, target: str
) -> None:
    """The relation's and its columns' comments (dbt's descriptions: persist_docs), for BI tools to show."""
    described = source.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? AND table_name = ? "
        "UNION ALL "
        "SELECT comment FROM duckdb_views() WHERE database_name = ? AND schema_name = ? AND view_name = ?",
        [catalog, relation.schema, relation.name] * 2,
    ).fetchall()
    for (comment,) in described:
        if comment:
            source.execute(
                compose(
                    "COMMENT ON TABLE {target} IS {comment}", target=target, comment=quote_literal(comment)
                )
            )
    columns = source.execute(
        "SELECT column_name, comment FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
        [catalog, relation.schema, relation.name],
    ).fetchall()
    for column, comment in columns:
        source.execute(
            compose(
                "COMMENT ON COLUMN {target}.{column} IS {comment}",
                target=target,
                column=quote_identifier(column),
                comment=quote_literal(comment),
            )
        )


def _current_catalog(connection: duckdb.DuckDBPyConnection) -> str:
    (catalog,) = connection.execute("SELECT current_database()").fetchone()
    return catalog


def _existing_relations(connection: duckdb.DuckDBPyConnection, catalog: str) -> set[ServedRelation]:
    rows = connection.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = ?", [catalog]
    ).fetchall()
    return {ServedRelation(schema, name) for schema, name in rows if _is_plain(schema, name)}


def _is_plain(*identifiers: str) -> bool:
    return all(_PLAIN_IDENTIFIER.match(identifier) for identifier in identifiers)


def _columns(connection: duckdb.DuckDBPyConnection, catalog: str, relation: ServedRelation) -> list[str]:
    rows = connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_schema = ? "
        "AND table_name = ? ORDER BY ordinal_position",
        [catalog, relation.schema, relation.name],
    ).fetchall()
    return [column for (column,) in rows]


def _remove_file_and_wal(path: Path) -> None:
    for leftover in (path, Path(f"{path}.wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


@contextlib.contextmanager
def _publish_lock(serving_dir: Path, timeout_seconds: float) -> Iterator[None]:
    """One publisher per serving folder; the OS drops the lock when its holder dies, even by SIGKILL."""
    with open(serving_dir / _PUBLISH_LOCK_NAME, "a+") as handle:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise PublishBusyError(
                        f"Another process (PID {holder}) has been publishing into {serving_dir} for over "
                        f"{timeout_seconds:.0f} s; wait for it or stop it, then re-run."
                    ) from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
