"""Erasure (GDPR Art. 17): resolve each request to the whole person, delete them everywhere, remember them.

Flow (docs/privacy.md), run by the ``privacy/erasure`` asset right after ingestion, before dbt:

1. **Pending requests**: rows of ``raw.erasure_requests`` whose request id is not in ``privacy.erasure_log``.
2. **Resolve**: the request's own identifiers (normalised like staging does) plus, through the identity map of
   the previous run (``marts.customer_identity_map``, else ``intermediate.int_identifiers_resolved``), every
   identifier of every customer they belong to. Identifiers not in the map yet still match directly.
3. **Suppress**: the keyed hashes of those identifiers go to ``privacy.suppressed_identifiers`` (never the
   plaintext). Staging filters on it (``exclude_suppressed`` macro), so re-delivered files stay out.
4. **Delete** every row of every base table in every schema (raw, quarantine, intermediate, marts, marketing,
   bi, seeds...) that holds any of the person's identifiers, customer ids or bi pseudonyms, in any personal
   column (:func:`cx_pipeline.privacy.scan.scan_columns`: JSON and free text included, record keys and enums
   not), in one transaction; then export files and quarantined file copies. The plaintext needles are
   hash-joined with each column's distinct tokens (linear in the rows, no keyed hash per token). Tables the
   same run's dbt build replaces (``rebuilt``) are left to it and recorded (:mod:`deferral`).
5. **Log** ``privacy.erasure_log`` (one row per request) and ``privacy.erasure_audit`` (rows removed per
   request and table). The caller compacts the database file so deleted bytes leave it too (after the build,
   in the verification, when there is one) and republishes the serving copy (after the build, by the serving
   asset, when there is one).

Every run first scrubs raw rows loaded since the previous scan against the whole suppression list
(:func:`scrub_new_raw_rows`), so a re-delivered file is removed from ``raw`` itself, not only from staging.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from cx_pipeline.privacy.deferral import (
    deferred_needles,
    ensure_deferral_tables,
    outstanding_tables,
    record_deferral,
)
from cx_pipeline.privacy.exports import scrub_export_dir
from cx_pipeline.privacy.file_scan import file_text, text_hits
from cx_pipeline.privacy.identifiers import normalize_email, normalize_phone, nullif_blank
from cx_pipeline.privacy.keys import keyed_hashes
from cx_pipeline.privacy.resolution_graph import RESOLUTION_MAP, build_resolution_graph, drop_resolution_graph
from cx_pipeline.privacy.resolution_graph import SCHEMA_SUFFIX as RESOLUTION_SCHEMA_SUFFIX
from cx_pipeline.privacy.scan import (
    Since,
    TableRef,
    base_tables,
    delete_rows,
    end_scan,
    has_column,
    load_needles,
    load_plain_needles,
    load_suppression_needles,
    register_scan_functions,
    scan_tables,
)
from cx_pipeline.sql import compose, quote_identifier

PRIVACY_SCHEMA = "privacy"
# Tables never scrubbed: the privacy bookkeeping itself (hashes and counts only) and the ingestion manifest
# (file paths and checksums; deleting its rows would make the loader re-read the files).
SKIPPED_TABLES = {("raw", "loaded_files")}
IDENTITY_MAP_CANDIDATES = (
    ("marts", "customer_identity_map"),
    ("intermediate", "int_identifiers_resolved"),
)
# Identifier types of the identity map; request columns map onto them.
REQUEST_IDENTIFIER_TYPES = {"email": "email", "phone": "phone", "user_id": "user_id"}
# The bi schema's customer pseudonym: macros/privacy.sql `pseudonymise(customer_id, 'customer')`.
BI_CUSTOMER_DOMAIN = "customer"

PRIVACY_DDL = (
    compose("create schema if not exists {schema}", schema=quote_identifier(PRIVACY_SCHEMA)),
    """create table if not exists privacy.suppressed_identifiers (
        identifier_hash varchar not null,
        identifier_type varchar not null,
        request_id varchar,
        suppressed_at timestamptz not null
    )""",
    """create table if not exists privacy.erasure_log (
        request_id varchar not null,
        requested_at timestamptz,
        executed_at timestamptz not null,
        run_id varchar,
        customers_resolved bigint not null,
        identifiers_suppressed bigint not null,
        rows_removed bigint not null
    )""",
    """create table if not exists privacy.erasure_audit (
        request_id varchar not null,
        executed_at timestamptz not null,
        run_id varchar,
        table_name varchar not null,
        rows_removed bigint not null
    )""",
    """create table if not exists privacy.suppression_scans (
        scanned_at timestamptz not null,
        run_id varchar,
        rows_removed bigint not null
    )""",
)


def ensure_privacy_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """The privacy schema and its tables, created when absent; the only definition of their DDL.

    dbt gets them through its connection plugin (:mod:`cx_pipeline.privacy.dbt_plugin`) and declares them as
    the source ``cx360_privacy`` (models/marts/privacy/_privacy__sources.yml, columns tested against this).
    """
    for statement in PRIVACY_DDL:
        connection.execute(statement)
    ensure_deferral_tables(connection)


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    requested_at: datetime | None
    email: str | None
    phone: str | None
    user_id: str | None

    def identifiers(self) -> set[tuple[str, str]]:
        pairs = {("email", self.email), ("phone", self.phone), ("user_id", self.user_id)}
        return {(kind, value) for kind, value in pairs if value}


@dataclass
class Resolution:
    request: ErasureRequest
    customer_ids: set[str] = field(default_factory=set)
    identifiers: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class ErasureReport:
    executed_at: datetime
    requests: list[Resolution] = field(default_factory=list)
    # (request_id, place) -> rows removed; place is `schema.table`, `exports/<dir>/<file>` or a file path.
    removed: Counter = field(default_factory=Counter)
    redelivered_rows_removed: int = 0
    suppression_list_size: int = 0
    # Requests loaded within the execution window: not executed yet, only held out of the export files.
    waiting: list[ErasureRequest] = field(default_factory=list)
    export_rows_held_back: int = 0
    # Tables holding the people that this run's dbt build replaces, left to it (deferral.py).
    deferred_tables: list[TableRef] = field(default_factory=list)
    # Rows removed from tables an earlier run had left to a build that never completed.
    outstanding_rows_removed: int = 0
    # People erased earlier whose new identifiers this run's graph tied to them: erased again, under their
    # request (audit rows; no second log row).
    late: list[Resolution] = field(default_factory=list)

    @property
    def rows_removed(self) -> int:
        return sum(self.removed.values())

    def removed_by_place(self) -> dict[str, int]:
        totals: Counter = Counter()
        for (_, place), rows in self.removed.items():
            totals[place] += rows
        return dict(sorted(totals.items()))


def _table_exists(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def pending_requests(
    connection: duckdb.DuckDBPyConnection,
    country_code: str = "1",
    *,
    loaded_before: datetime | None = None,
    loaded_since: datetime | None = None,
) -> list[ErasureRequest]:
    """Requests in raw.erasure_requests not executed yet (first delivery of each request id).

    ``loaded_before`` / ``loaded_since``: only the requests whose first delivery was loaded at or before /
    after that moment (the execution window).
    """
    if not _table_exists(connection, "raw", "erasure_requests"):
        return []
    rows = connection.execute(
        """
        select request_id, requested_at, email, phone, user_id
        from raw.erasure_requests
        where nullif(trim(request_id), '') is not null
            and trim(request_id) not in (select request_id from privacy.erasure_log)
        qualify row_number() over (
            partition by trim(request_id) order by _loaded_at, _source_file, _source_line
        ) = 1
            and ($before is null or _loaded_at <= $before)
            and ($since is null or _loaded_at > $since)
        order by requested_at, request_id
        """,
        {"before": loaded_before, "since": loaded_since},
    ).fetchall()
    return [
        ErasureRequest(
            request_id=nullif_blank(request_id) or "",
            requested_at=requested_at,
            email=normalize_email(email),
            phone=normalize_phone(phone, country_code),
            user_id=nullif_blank(user_id),
        )
        for request_id, requested_at, email, phone, user_id in rows
    ]


def identity_map(connection: duckdb.DuckDBPyConnection) -> TableRef | None:
    """The previous run's identity map (the marts' one, else the intermediate one), if any."""
    for schema, name in IDENTITY_MAP_CANDIDATES:
        if _table_exists(connection, schema, name):
            return TableRef(schema, name)
    return None


def identity_maps(connection: duckdb.DuckDBPyConnection, current: TableRef | None = None) -> list[TableRef]:
    """The maps a request is resolved through: ``current`` (this run's graph, resolution_graph.py) and the
    previous run's map, which names the customer ids the marts still hold."""
    maps = (
        [current] if current is not None and _table_exists(connection, current.schema, current.name) else []
    )
    previous = identity_map(connection)
    return [*maps, previous] if previous is not None else maps


def _expand(
    connection: duckdb.DuckDBPyConnection, resolutions: list[Resolution], maps: list[TableRef]
) -> None:
    """Add to each resolution the customers its identifiers belong to in each map, and all their
    identifiers (one step per map: the customers of the request's identifiers, not of theirs in turn)."""
    if not maps or not resolutions:
        return
    connection.execute(
        "create or replace temp table _cx360_request_ids "
        "(request_id varchar, identifier_type varchar, identifier_value varchar)"
    )
    rows = [[r.request.request_id, kind, value] for r in resolutions for kind, value in sorted(r.identifiers)]
    if rows:
        connection.executemany("insert into _cx360_request_ids values (?, ?, ?)", rows)
    by_request = {r.request.request_id: r for r in resolutions}
    for mapping in maps:
        linked = connection.execute(
            compose(
                """
            with customers as (
                select distinct request_ids.request_id, identity_map.customer_id
                from _cx360_request_ids as request_ids
                inner join {identity_map} as identity_map
                    on request_ids.identifier_type = identity_map.identifier_type
                    and request_ids.identifier_value = identity_map.identifier_value
                where identity_map.customer_id is not null
            )
            select customers.request_id, customers.customer_id, identity_map.identifier_type,
                identity_map.identifier_value
            from customers
            inner join {identity_map} as identity_map on customers.customer_id = identity_map.customer_id
            where identity_map.identifier_value is not null
            """,
                identity_map=mapping.qualified,
            )
        ).fetchall()
        for request_id, customer_id, kind, value in linked:
            resolution = by_request[request_id]
            resolution.customer_ids.add(customer_id)
            resolution.identifiers.add((kind, value))
    connection.execute("drop table _cx360_request_ids")


def resolve(
    connection: duckdb.DuckDBPyConnection, requests: list[ErasureRequest], current: TableRef | None = None
) -> list[Resolution]:
    """Each request's customers and all their identifiers, through this run's identity graph (``current``,
    when the step built one) and the previous run's map."""
    resolutions = [Resolution(request, identifiers=set(request.identifiers())) for request in requests]
    _expand(connection, resolutions, identity_maps(connection, current))
    return resolutions


def resolve_suppressed_people(connection: duckdb.DuckDBPyConnection, current: TableRef) -> list[Resolution]:
    """People erased earlier who have identifiers that are not suppressed yet, found in this run's graph.

    A customer of ``current`` (built without the suppression filter) holding any suppressed identifier is an
    erased person: a late identify call or order tied a new device, account or phone to them. Each such
    customer's identifiers not yet suppressed (and the previous map's customers of those identifiers) become
    a resolution under the request that erased the person; every identifier is hashed once.
    """
    if not _table_exists(connection, current.schema, current.name):
        return []
    found = connection.execute(
        compose(
            """
        with identifiers as (
            select identifier_type, identifier_value, customer_id,
                cx360_keyed_hash(identifier_value) as identifier_hash
            from {graph}
            where customer_id is not null and identifier_value is not null
        ),

        erased_customers as (
            select identifiers.customer_id, min(suppressed.request_id) as request_id
            from identifiers
            inner join privacy.suppressed_identifiers as suppressed
                on identifiers.identifier_hash = suppressed.identifier_hash
            group by identifiers.customer_id
        )

        select erased_customers.request_id, identifiers.identifier_type, identifiers.identifier_value
        from erased_customers
        inner join identifiers on erased_customers.customer_id = identifiers.customer_id
        where identifiers.identifier_hash not in (select identifier_hash from privacy.suppressed_identifiers)
        order by 1, 2, 3
        """,
            graph=current.qualified,
        )
    ).fetchall()
    by_request: dict[str, Resolution] = {}
    for request_id, kind, value in found:
        request = ErasureRequest(request_id or "", None, None, None, None)
        by_request.setdefault(request.request_id, Resolution(request)).identifiers.add((kind, value))
    resolutions = list(by_request.values())
    _expand(connection, resolutions, identity_maps(connection, current))
    return resolutions


def plaintext_needles(resolutions: Iterable[Resolution]) -> dict[str, str]:
    """plaintext -> request id for every value that identifies the people being erased.

    The resolved identifiers (and their lower-cased forms), the customer ids and the bi customer pseudonyms.
    Held only in memory and in temp tables while the requests are executed; never stored.
    """
    plaintexts: dict[str, str] = {}
    for resolution in resolutions:
        request_id = resolution.request.request_id
        values = {value for _, value in resolution.identifiers}
        values |= resolution.customer_ids
        customer_keys = keyed_hashes(sorted(f"{BI_CUSTOMER_DOMAIN}:{c}" for c in resolution.customer_ids))
        values |= {key for key in customer_keys if key}
        for value in sorted(values):
            plaintexts.setdefault(value, request_id)
            plaintexts.setdefault(value.lower(), request_id)
    return plaintexts


def _needles_of(resolutions: Iterable[Resolution]) -> dict[str, str]:
    """keyed hash -> request id of :func:`plaintext_needles` (for files, matched by keyed hash)."""
    plaintexts = plaintext_needles(resolutions)
    tokens = sorted(plaintexts)
    return {
        digest: plaintexts[token]
        for token, digest in zip(tokens, keyed_hashes(tokens), strict=True)
        if digest
    }


def suppress(
    connection: duckdb.DuckDBPyConnection, resolutions: Iterable[Resolution], at: datetime
) -> dict[str, int]:
    """Add the keyed hashes of every resolved identifier to the suppression list; new entries per request."""
    added: dict[str, int] = {}
    for resolution in resolutions:
        pairs = sorted(resolution.identifiers)
        hashes = keyed_hashes([value for _, value in pairs])
        connection.execute(
            "create or replace temp table _cx360_suppress (identifier_hash varchar, identifier_type varchar)"
        )
        if pairs:
            connection.executemany(
                "insert into _cx360_suppress values (?, ?)",
                [[digest, kind] for (kind, _), digest in zip(pairs, hashes, strict=True)],
            )
        before = connection.execute("select count(*) from privacy.suppressed_identifiers").fetchall()[0][0]
        connection.execute(
            """
            insert into privacy.suppressed_identifiers
            select distinct identifier_hash, identifier_type, ?, ?
            from _cx360_suppress
            where identifier_hash not in (select identifier_hash from privacy.suppressed_identifiers)
            """,
            [resolution.request.request_id, at],
        )
        after = connection.execute("select count(*) from privacy.suppressed_identifiers").fetchall()[0][0]
        added[resolution.request.request_id] = after - before
        connection.execute("drop table _cx360_suppress")
    return added


def scrub_tables(
    connection: duckdb.DuckDBPyConnection,
    tables: Iterable[TableRef],
    since_by_table: Mapping[TableRef, Since] | None = None,
    *,
    plaintext: bool = False,
) -> Counter:
    """Delete the rows holding a needle; (request_id, table) -> rows removed.

    ``plaintext``: the needles were loaded with :func:`load_plain_needles` (a request being executed: plain
    joins, no hashing); else with ``load_needles``/``load_suppression_needles`` (keyed hashes). All the
    tables are scanned together (:func:`cx_pipeline.privacy.scan.scan_tables`), then the matches deleted.
    """
    removed: Counter = Counter()
    matches = scan_tables(connection, list(tables), since_by_table, plaintext=plaintext)
    for table, rows in matches.items():
        delete_rows(connection, table, rows)
        for request_id in rows.values():
            removed[(request_id or "", str(table))] += 1
    return removed


def scrubbable_tables(connection: duckdb.DuckDBPyConnection) -> list[TableRef]:
    # The erasure step's own identity graph (``*_erasure`` schemas) is dropped by the step itself.
    return [
        table
        for table in base_tables(connection, exclude_schemas=[PRIVACY_SCHEMA])
        if (table.schema, table.name) not in SKIPPED_TABLES
        and not table.name.startswith("_cx360")
        and not table.schema.endswith(RESOLUTION_SCHEMA_SUFFIX)
    ]


def scrub_files(root: Path, needles: Mapping[str, str | None], *, label: str) -> Counter:
    """Delete every file under ``root`` that holds a needle (quarantined copies of unreadable files)."""
    removed: Counter = Counter()
    if not root.exists():
        return removed
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        hits = text_hits(file_text(path), needles)
        if hits:
            path.unlink()
            request_id = sorted(v or "" for v in hits.values())[0]
            removed[(request_id, f"{label}/{path.relative_to(root).as_posix()}")] += 1
    return removed


def scrub_exports(exports_dir: Path, needles: Mapping[str, str | None]) -> Counter:
    """Remove matching rows from every export folder (rewritten atomically, manifest updated)."""
    removed: Counter = Counter()
    if not exports_dir.exists():
        return removed
    for folder in sorted(p for p in exports_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for request_id, rows in scrub_export_dir(folder, needles).items():
            removed[(request_id or "", f"exports/{folder.name}")] += rows
    return removed


@contextmanager
def _scan_transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around a scrub: its deletes and bookkeeping commit together or not at all, and the
    scan's temporary tables go either way."""
    connection.execute("begin transaction")
    try:
        yield
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    finally:
        end_scan(connection)


def execute_erasure_requests(
    connection: duckdb.DuckDBPyConnection,
    *,
    exports_dir: Path | None = None,
    quarantine_dir: Path | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
    country_code: str = "1",
    rebuilt: Collection[TableRef] = (),
    window: timedelta = timedelta(0),
    current: TableRef | None = None,
) -> ErasureReport:
    """Execute every pending request (steps 1-5 of the module doc) and scrub re-delivered rows.

    ``current``: this run's identity graph (:mod:`resolution_graph`), when the step built one. Requests are
    resolved through it as well as through the previous run's map, and people erased earlier whose new
    identifiers it links to a suppressed one are erased again, under their request (logged in the audit).

    ``rebuilt``: the tables the dbt build of the same run replaces as a whole (:mod:`deferral`); they are
    not scrubbed here but left to the build, and recorded for the post-build verification. Empty (the
    default): every table is scrubbed now.

    ``window``: requests loaded less than this long before ``now`` wait for a later run (batching). They are
    removed from the export files at once; the audiences exclude them anyway (``has_erasure_request``).
    """
    executed_at = now or datetime.now(UTC)
    rebuilt = set(rebuilt)
    ensure_privacy_tables(connection)
    register_scan_functions(connection, country_code)
    report = ErasureReport(executed_at=executed_at)
    cutoff = executed_at - window if window > timedelta(0) else None
    requests = pending_requests(connection, country_code, loaded_before=cutoff)
    if cutoff is not None:
        report.waiting = pending_requests(connection, country_code, loaded_since=cutoff)
    # First the rows loaded since the previous run, against the suppression list as it was: the requests
    # below then scan every row (those just loaded included) for their own people.
    report.redelivered_rows_removed = scrub_new_raw_rows(
        connection, run_id=run_id, now=executed_at, country_code=country_code
    )
    # Tables an earlier run left to a build that did not complete, and that this run does not rebuild.
    report.outstanding_rows_removed = scrub_outstanding_tables(
        connection, rebuilt, run_id=run_id, now=executed_at, country_code=country_code
    )
    report.late = resolve_suppressed_people(connection, current) if current is not None else []
    if requests or report.late:
        report.requests = resolve(connection, requests, current)
        resolutions = [*report.requests, *report.late]
        plaintexts = plaintext_needles(resolutions)
        needles = _needles_of(resolutions)
        tables = scrubbable_tables(connection)
        report.deferred_tables = [table for table in tables if table in rebuilt]
        with _scan_transaction(connection):
            added = suppress(connection, resolutions, executed_at)
            load_plain_needles(connection, plaintexts)
            now_tables = [table for table in tables if table not in rebuilt]
            report.removed.update(scrub_tables(connection, now_tables, plaintext=True))
            if report.deferred_tables:
                record_deferral(connection, report.deferred_tables, needles, run_id=run_id, at=executed_at)
            _log(connection, report, added, run_id)
        # Files after the commit: a failed database step leaves them for the next try.
        file_removed: Counter = Counter()
        if exports_dir is not None:
            file_removed.update(scrub_exports(exports_dir, needles))
        if quarantine_dir is not None:
            file_removed.update(scrub_files(quarantine_dir, needles, label="quarantine_files"))
        if file_removed:
            report.removed.update(file_removed)
            _audit(connection, file_removed, executed_at, run_id)
    if report.waiting and exports_dir is not None:
        held_back = scrub_exports(exports_dir, _needles_of(resolve(connection, report.waiting, current)))
        report.export_rows_held_back = sum(held_back.values())
    report.suppression_list_size = connection.execute(
        "select count(*) from privacy.suppressed_identifiers"
    ).fetchall()[0][0]
    return report


def _audit(connection: duckdb.DuckDBPyConnection, removed: Counter, at: datetime, run_id: str | None) -> None:
    rows = [[request_id, at, run_id, place, count] for (request_id, place), count in sorted(removed.items())]
    if rows:
        connection.executemany("insert into privacy.erasure_audit values (?, ?, ?, ?, ?)", rows)


def _log(
    connection: duckdb.DuckDBPyConnection, report: ErasureReport, added: Mapping[str, int], run_id: str | None
) -> None:
    per_request: defaultdict[str, int] = defaultdict(int)
    for (request_id, _), rows in report.removed.items():
        per_request[request_id] += rows
    for resolution in report.requests:
        request = resolution.request
        connection.execute(
            "insert into privacy.erasure_log values (?, ?, ?, ?, ?, ?, ?)",
            [
                request.request_id,
                request.requested_at,
                report.executed_at,
                run_id,
                len(resolution.customer_ids),
                added.get(request.request_id, 0),
                per_request.get(request.request_id, 0),
            ],
        )
    _audit(connection, report.removed, report.executed_at, run_id)


def scrub_outstanding_tables(
    connection: duckdb.DuckDBPyConnection,
    rebuilt: Collection[TableRef],
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    country_code: str = "1",
) -> int:
    """Scrub the tables an earlier run left to its build (that then failed) and this run does not rebuild.

    They are searched for the keyed hashes recorded with the deferral (identifiers, customer ids, bi
    pseudonyms), and forgotten as deferred tables; the hashes stay for the next verification.
    """
    at = now or datetime.now(UTC)
    existing = set(scrubbable_tables(connection))
    tables = sorted((outstanding_tables(connection) - set(rebuilt)) & existing, key=str)
    if not tables:
        return 0
    register_scan_functions(connection, country_code)
    with _scan_transaction(connection):
        load_needles(connection, deferred_needles(connection))
        removed = scrub_tables(connection, tables)
        _audit(connection, removed, at, run_id)
        connection.execute(
            "delete from privacy.deferred_tables where table_name in (select unnest($names))",
            {"names": [str(table) for table in tables]},
        )
    return sum(removed.values())


def current_graph_for_erasure(
    open_connection: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    warehouse: Path,
    log_dir: Path,
    country_code: str = "1",
) -> TableRef | None:
    """Build this run's identity graph for the erasure step when it has something to resolve; its map.

    Drops a graph a killed run left first. ``open_connection`` opens the warehouse (closed again before
    dbt runs: one writer). The caller passes the map to :func:`execute_erasure_requests` and drops the
    graph afterwards (:func:`drop_resolution_graph`).
    """
    with open_connection() as connection:
        drop_resolution_graph(connection)
        if not needs_current_graph(connection, country_code):
            return None
    build_resolution_graph(warehouse, log_dir)
    return RESOLUTION_MAP


def needs_current_graph(
    connection: duckdb.DuckDBPyConnection, country_code: str = "1", *, now: datetime | None = None
) -> bool:
    """Whether the erasure step must resolve through this run's identity graph (resolution_graph.py):
    requests are pending, or rows loaded since the previous scan hold a suppressed identifier (an erased
    person's late or re-delivered records, which may tie new identifiers to them)."""
    ensure_privacy_tables(connection)
    if pending_requests(connection, country_code):
        return True
    tables, since = _new_raw_tables(connection)
    if not tables or load_suppression_needles(connection) == 0:
        end_scan(connection)
        return False
    register_scan_functions(connection, country_code)
    try:
        return any(scan_tables(connection, tables, since).values())
    finally:
        end_scan(connection)


def _new_raw_tables(connection: duckdb.DuckDBPyConnection) -> tuple[list[TableRef], dict[TableRef, Since]]:
    """The raw and quarantine tables, each limited to the rows loaded since the previous suppression scan."""
    previous = connection.execute("select max(scanned_at) from privacy.suppression_scans").fetchall()[0][0]
    tables: list[TableRef] = []
    since: dict[TableRef, Since] = {}
    for table in scrubbable_tables(connection):
        if table.schema != "raw":
            continue
        for column in ("_loaded_at", "quarantined_at"):
            if has_column(connection, table, column):
                tables.append(table)
                if previous is not None:
                    since[table] = Since(column, previous)
                break
    return tables, since


def scrub_new_raw_rows(
    connection: duckdb.DuckDBPyConnection,
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    country_code: str = "1",
) -> int:
    """Delete raw and quarantine rows loaded since the previous scan that match the suppression list.

    A late or re-delivered file of an erased person is loaded by ingestion like any other; this removes it
    from raw again (staging never shows it either way). Rows loaded before the previous scan were checked
    then, or by the full scan of the request that suppressed them. :func:`execute_erasure_requests` calls
    this *before* executing new requests, whose own scan covers every row; so on a first run (no previous
    scan, empty list) there is nothing to do. Without a previous scan but with a list (a warehouse from
    before this bookkeeping), every raw row is scanned.
    """
    scanned_at = now or datetime.now(UTC)
    ensure_privacy_tables(connection)
    if load_suppression_needles(connection) == 0:
        end_scan(connection)
        connection.execute("insert into privacy.suppression_scans values (?, ?, 0)", [scanned_at, run_id])
        return 0
    register_scan_functions(connection, country_code)
    tables, since = _new_raw_tables(connection)
    with _scan_transaction(connection):
        removed = scrub_tables(connection, tables, since)
        _audit(connection, removed, scanned_at, run_id)
        total = sum(removed.values())
        connection.execute(
            "insert into privacy.suppression_scans values (?, ?, ?)", [scanned_at, run_id, total]
        )
    return total
