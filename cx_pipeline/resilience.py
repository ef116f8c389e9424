"""Pure helpers to check that pipeline runs are idempotent, incremental-equals-full and crash-safe.

``table_fingerprints`` hashes the content of every table and view in the given schemas, in DuckDB, over the
rows in a canonical order and without the volatile columns (``VOLATILE_COLUMNS``: load times, run ids,
durations), so two warehouses built from the same inputs compare equal however and whenever they were built.
``half_loaded_files`` checks the ingestion's per-file transaction from the outside: every current manifest
row must account for exactly its rows in ``raw.<source>`` and ``raw.quarantine``. See docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb

from cx_pipeline.sql import Sql, compose, join, placeholders, plain_identifier, qualified_name, quote_literal

# Columns whose values depend on when or by which run a row was written, never on the inputs. The one place
# that lists them: fingerprints leave them out (wherever they appear, in every schema).
VOLATILE_COLUMNS: frozenset[str] = frozenset(
    {
        "_loaded_at",
        "loaded_at",
        "generated_at",
        "published_at",
        "quarantined_at",
        "superseded_at",
        "run_id",
        "duration_seconds",
        "modified_at",
        "built_at",
        "dbt_invocation_id",
    }
)

# Every schema the pipeline writes, in build order.
PIPELINE_SCHEMAS: tuple[str, ...] = ("raw", "staging", "intermediate", "marts", "marketing", "bi")
# The schemas dbt derives from raw: equal inputs must give equal tables here whatever the load history.
DERIVED_SCHEMAS: tuple[str, ...] = ("staging", "intermediate", "marts", "marketing", "bi")

# Floating-point aggregates computed in parallel may differ in the last bits between runs: fingerprints
# round DOUBLE/FLOAT/REAL values (also inside lists and structs, via the text form) to this many decimals.
FLOAT_DECIMALS = 6


def _is_plain(name: str) -> bool:
    try:
        plain_identifier(name)
    except ValueError:
        return False
    return True


_FLOAT_TYPES = frozenset({"DOUBLE", "FLOAT", "REAL"})


def list_relations(connection: duckdb.DuckDBPyConnection, schemas: Iterable[str]) -> list[tuple[str, str]]:
    """(schema, name) of every table and view in ``schemas`` of the current database, sorted."""
    wanted = sorted(set(schemas))
    if not wanted:
        return []
    sql = compose(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema IN ({schemas}) ORDER BY 1, 2",
        schemas=placeholders(len(wanted)),
    )
    rows = connection.execute(sql, wanted).fetchall()
    return [(schema, name) for schema, name in rows]


def _columns(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> list[tuple[str, str]]:
    return [
        (column, str(type_))
        for column, type_ in connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
    ]


def fingerprint_sql(
    schema: str,
    name: str,
    columns: list[tuple[str, str]],
    *,
    exclude: Iterable[str] = VOLATILE_COLUMNS,
    float_decimals: int = FLOAT_DECIMALS,
) -> Sql:
    """SQL returning (rows, md5) of one relation: the md5 of the sorted per-row md5s of the kept columns.

    Columns are taken by name in sorted order (column order does not matter, names do); NULLs hash as a
    marker distinct from the text 'NULL'. Duplicate rows count: the multiset of rows is hashed.
    """
    excluded = {column.lower() for column in exclude}
    kept = sorted((column, type_) for column, type_ in columns if column.lower() not in excluded)
    relation = compose("{schema}.{name}", schema=plain_identifier(schema), name=plain_identifier(name))
    parts = []
    for column, type_ in kept:
        value = plain_identifier(column)
        if type_.upper() in _FLOAT_TYPES:
            value = compose("round({value}, {decimals})", value=value, decimals=int(float_decimals))
        parts.append(compose("coalesce(({value})::varchar, '\\N')", value=value))
    row_text = join(parts, " || chr(31) || ") or Sql("''")
    return compose(
        "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), md5('')) "
        "FROM (SELECT md5({row_text}) AS h FROM {relation})",
        row_text=row_text,
        relation=relation,
    )


def table_fingerprints(
    connection: duckdb.DuckDBPyConnection,
    schemas: Iterable[str] = PIPELINE_SCHEMAS,
    *,
    exclude: Iterable[str] = VOLATILE_COLUMNS,
    float_decimals: int = FLOAT_DECIMALS,
) -> dict[str, str]:
    """``{"schema.table": "<rows> rows <md5>"}`` for every table and view in ``schemas``.

    Equal fingerprints mean the same multiset of rows over the same (non-volatile) column names.
    """
    exclude = frozenset(exclude)
    result: dict[str, str] = {}
    for schema, name in list_relations(connection, schemas):
        sql = fingerprint_sql(
            schema, name, _columns(connection, schema, name), exclude=exclude, float_decimals=float_decimals
        )
        rows, digest = connection.execute(sql).fetchall()[0]
        result[f"{schema}.{name}"] = f"{rows} rows {digest}"
    return result


def fingerprint_differences(left: Mapping[str, str], right: Mapping[str, str]) -> list[str]:
    """Readable lines for every relation missing on one side or whose fingerprint differs."""
    lines = []
    for relation in sorted(set(left) | set(right)):
        a, b = left.get(relation), right.get(relation)
        if a != b:
            lines.append(f"{relation}: {a or 'missing'} != {b or 'missing'}")
    return lines


def _erased_rows(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows the privacy erasure removed per table (``privacy.erasure_audit``), e.g. {"raw.web_events": 3}."""
    if ("privacy", "erasure_audit") not in set(list_relations(connection, ["privacy"])):
        return {}
    rows = connection.execute(
        "SELECT table_name, sum(rows_removed) FROM privacy.erasure_audit GROUP BY ALL"
    ).fetchall()
    return {str(name): int(removed) for name, removed in rows}


def half_loaded_files(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Files whose rows in raw + quarantine do not add up to their current manifest row, and rows of files
    without a current manifest row. Empty when every file is either fully loaded or not loaded at all.

    The GDPR erasure deletes rows after loading and logs only per table how many (``privacy.erasure_audit``):
    for a source with erased rows a file may hold fewer rows than it loaded, and the shortfall summed over
    the source's files must equal the erased count (likewise for ``raw.quarantine``).
    """
    sources = [
        row[0]
        for row in connection.execute(
            "SELECT DISTINCT source FROM raw.loaded_files WHERE superseded_at IS NULL ORDER BY 1"
        ).fetchall()
    ]
    raw_tables = {name for schema, name in list_relations(connection, ["raw"]) if schema == "raw"}
    counts = []
    for source in sources:
        if not _is_plain(source) or source not in raw_tables:
            continue
        counts.append(
            compose(
                "SELECT {source} AS source, _source_file AS file_path, count(*) AS n "
                "FROM {table} GROUP BY ALL",
                source=quote_literal(source),
                table=qualified_name("raw", source),
            )
        )
    raw_counts = join(counts, " UNION ALL ") or Sql("SELECT NULL, NULL, 0 WHERE false")
    files = connection.execute(
        compose(
            """
        WITH raw_rows AS ({raw_counts}),
        quarantined AS (
            SELECT source, source_file AS file_path, content_sha256, count(*) AS n
            FROM raw.quarantine GROUP BY ALL
        ),
        manifest AS (
            SELECT source, file_path, content_sha256, rows_read, rows_loaded, rows_quarantined
            FROM raw.loaded_files WHERE superseded_at IS NULL
        )
        SELECT coalesce(m.source, r.source, q.source) AS source,
               coalesce(m.file_path, r.file_path, q.file_path) AS file_path,
               m.rows_read, m.rows_loaded, m.rows_quarantined,
               coalesce(r.n, 0) AS raw_rows, coalesce(q.n, 0) AS quarantine_rows
        FROM manifest m
        FULL JOIN raw_rows r ON r.source = m.source AND r.file_path = m.file_path
        FULL JOIN quarantined q
            ON q.source = m.source AND q.file_path = m.file_path AND q.content_sha256 = m.content_sha256
        ORDER BY 1, 2
        """,
            raw_counts=raw_counts,
        )
    ).fetchall()
    erased = _erased_rows(connection)
    problems: list[str] = []
    raw_shortfall: dict[str, int] = {}
    quarantine_shortfall = 0
    for source, path, read, loaded, quarantined, raw, in_quarantine in files:
        where = f"{source}/{path}: manifest rows_read {read}, raw {raw}, quarantine {in_quarantine}"
        if read is None:
            problems.append(f"{where} (rows without a current manifest row)")
            continue
        if raw > loaded or in_quarantine > quarantined or loaded + quarantined != read:
            problems.append(where)
            continue
        raw_shortfall[source] = raw_shortfall.get(source, 0) + loaded - raw
        quarantine_shortfall += quarantined - in_quarantine
        if (loaded - raw and not erased.get(f"raw.{source}")) or (
            quarantined - in_quarantine and not erased.get("raw.quarantine")
        ):
            problems.append(where)
    for source, shortfall in sorted(raw_shortfall.items()):
        if shortfall and shortfall != erased.get(f"raw.{source}", 0):
            problems.append(
                f"{source}: {shortfall} loaded rows missing but the erasure removed "
                f"{erased.get(f'raw.{source}', 0)}"
            )
    if quarantine_shortfall and quarantine_shortfall != erased.get("raw.quarantine", 0):
        problems.append(
            f"raw.quarantine: {quarantine_shortfall} rows missing but the erasure removed "
            f"{erased.get('raw.quarantine', 0)}"
        )
    return problems


def rows_per_day(
    connection: duckdb.DuckDBPyConnection, schema: str, table: str, column: str
) -> dict[str, int]:
    """``{"YYYY-MM-DD": rows}`` of ``schema.table`` by the UTC day of ``column``."""
    rows = connection.execute(
        compose(
            "SELECT strftime(date_trunc('day', {column}), '%Y-%m-%d') AS day, count(*) "
            "FROM {schema}.{table} GROUP BY ALL ORDER BY 1",
            column=plain_identifier(column),
            schema=plain_identifier(schema),
            table=plain_identifier(table),
        )
    ).fetchall()
    return {str(day): int(count) for day, count in rows}
