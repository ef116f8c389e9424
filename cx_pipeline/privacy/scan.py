"""Finding a person's identifiers in the warehouse's tables (files and raw bytes: :mod:`.file_scan`).

A *needle* is a normalised identifier of a person being erased (see :mod:`cx_pipeline.privacy.identifiers`):
as plaintext while its request is executed, and afterwards only as its keyed hash (the suppression list). A
row matches when any candidate token of any of its personal columns (:func:`scan_columns`: every text-like
column, JSON and free text included, but not record keys, enums and references) is a needle. Candidates of a
value: the trimmed whole value (and lower-cased), every email, every id-like token and every phone-like run of
digits, normalised. So an email in a JSON blob or a comment, a formatted phone in a quarantined CSV line and a
contact id inside a composite key all match.

The work is linear in the rows and independent of the number of needles (:func:`scan_tables`):

- the *distinct* values of the personal columns are collected per pass (:func:`scan_passes`: columns of the
  same name scanned together), so a value held by several tables (``touchpoint_id`` is in five) is
  tokenised once;
- plaintext needles (a request being executed) are hash-joined with those tokens: no keyed hash at all;
- hashed needles (the suppression list: re-delivered rows, verification) need the keyed hash of each
  distinct token, computed once per pass;
- only when some value matched are the tables' rows looked up, by equality joins on the matched values.

Plaintext only ever sits in temp tables of the scanning connection, dropped by :func:`end_scan`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb

from cx_pipeline.privacy.identifiers import (
    EMAIL_PATTERN,
    ID_PATTERN,
    PHONE_PATTERN,
    WHOLE_VALUE_MAX_LENGTH,
)
from cx_pipeline.privacy.keys import register_udfs
from cx_pipeline.settings import PRIVACY_SCAN_VALUES_PER_PASS
from cx_pipeline.sql import (
    Sql,
    compose,
    join,
    plain_identifier,
    qualified_name,
    quote_identifier,
    quote_literal,
)

NEEDLES_TABLE = "_cx360_needles"  # identifier_hash, request_id
PLAIN_TABLE = "_cx360_plain_needles"  # token, request_id (plaintext)
_MATCHED_TOKENS = "_cx360_matched_tokens"
_MATCHED_VALUES = "_cx360_matched_values"
_PLAINTEXT_TABLES = (PLAIN_TABLE, _MATCHED_TOKENS, _MATCHED_VALUES)
_NEEDLES, _MATCHED = quote_identifier(NEEDLES_TABLE), quote_identifier(_MATCHED_VALUES)
PHONE_MACRO = "cx360_normalize_phone"
# Column types that cannot hold an identifier as text.
_NON_TEXT_TYPES = re.compile(
    r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"DECIMAL.*|DOUBLE|FLOAT|REAL|DATE|TIME.*|TIMESTAMP.*|INTERVAL|BLOB|BIT|VARINT|BIGNUM)$"
)
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Tables larger than this have the distinct share of their columns estimated from a sample.
SAMPLED_FROM_ROWS = 5_000_000


def _phone_sql(x: Sql, country_code: str) -> Sql:
    """The normalize_phone dbt macro as a DuckDB expression over ``x``."""
    if not country_code.isdigit():
        raise ValueError(f"country code must be digits, got {country_code!r}")
    no_ext = compose(r"regexp_replace({x}, '\s*(ext\.?|x|#)\s*[0-9]{{1,6}}\s*$', '', 'i')", x=x)
    digits = compose("regexp_replace({no_ext}, '[^0-9]', '', 'g')", no_ext=no_ext)
    intl = compose("regexp_replace({digits}, '^00', '')", digits=digits)
    return compose(
        """case
        when regexp_matches({no_ext}, '^[^0-9]*[+]')
            then case when regexp_matches({digits}, '^[1-9][0-9]{{7,14}}$') then '+' || {digits} end
        when regexp_matches({digits}, '^00')
            then case when regexp_matches({intl}, '^[1-9][0-9]{{7,14}}$') then '+' || {intl} end
        when length({digits}) = 10 then {plus_country_code} || {digits}
        when length({digits}) = {full_length} and starts_with({digits}, {country_code})
            then '+' || {digits}
    end""",
        no_ext=no_ext,
        digits=digits,
        intl=intl,
        plus_country_code=quote_literal(f"+{country_code}"),
        full_length=len(country_code) + 10,
        country_code=quote_literal(country_code),
    )


def register_scan_functions(connection: duckdb.DuckDBPyConnection, country_code: str = "1") -> None:
    """The keyed-hash UDF and a temporary phone-normalising macro on ``connection``."""
    register_udfs(connection)
    connection.execute(
        compose(
            "create or replace temp macro {macro}(x) as ({body})",
            macro=plain_identifier(PHONE_MACRO),
            body=_phone_sql(Sql("x"), country_code),
        )
    )


def tokens_sql(value: Sql) -> Sql:
    """A VARCHAR[] of the candidate tokens of the VARCHAR expression ``value`` (nulls inside are harmless)."""
    return compose(
        """list_concat(
        case when length(trim({value})) <= {whole_value_max_length}
            then [trim({value}), lower(trim({value}))] else [] end,
        regexp_extract_all(lower({value}), {email_pattern}),
        regexp_extract_all({value}, {id_pattern}),
        list_transform(regexp_extract_all({value}, {phone_pattern}), lambda p: {phone_macro}(p))
    )""",
        value=value,
        whole_value_max_length=WHOLE_VALUE_MAX_LENGTH,
        email_pattern=quote_literal(EMAIL_PATTERN),
        id_pattern=quote_literal(ID_PATTERN),
        phone_pattern=quote_literal(PHONE_PATTERN),
        phone_macro=plain_identifier(PHONE_MACRO),
    )


def _non_personal_columns() -> frozenset[str]:
    """Column names that never hold personal data: source record keys, enums, references, other keys."""
    from cx_pipeline.contracts import CONTRACTS

    names: set[str] = set(NON_PERSONAL_EXTRA_COLUMNS)
    for contract in CONTRACTS.values():
        personal = {contract.field(name).column for name in contract.identifier_fields}
        for contract_field in contract.fields:
            column = contract_field.column
            if column in personal or column in PERSON_RECORD_KEYS or contract_field.type != "string":
                continue
            if contract_field.name in contract.record_key or contract_field.allowed is not None:
                names.add(column)
    return frozenset(names)


# Record keys that *are* person identifiers (a CRM contact is a person): always scanned.
PERSON_RECORD_KEYS = frozenset({"contact_id"})
# Besides the contracts' record keys and enums: shop references, keys derived from record keys only, keyed
# hashes of non-person domains (never equal to a needle: the bi customer pseudonym has its own domain) and
# dbt bookkeeping. Composite keys that can embed a person id (touchpoint_id 'crm:<contact_id>:...',
# source_record_id, record_id, stage_spell_id, consent_version_id) are *not* listed: they are scanned.
NON_PERSONAL_EXTRA_COLUMNS = frozenset(
    {
        "answer_id",
        "answer_source_id",
        "cart_id",
        "consent_version_key",
        "dbt_invocation_id",
        "entered_by_touchpoint_key",
        "invocation_id",
        "mirror_cart_id",
        "mirror_order_id",
        "open_cart_id",
        "order_id",
        "order_key",
        "product_id",
        "stage_spell_key",
        "touchpoint_key",
    }
)
NON_PERSONAL_COLUMNS = _non_personal_columns()


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    @property
    def qualified(self) -> Sql:
        return qualified_name(self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Since:
    """Only rows whose ``column`` (a load timestamp) is at or after ``at``; bound, never pasted."""

    column: str
    at: object

    def condition(self, relation: str | None = None) -> Sql:
        """``"column" >= $since`` (``"relation"."column"`` when a relation alias is given)."""
        column = qualified_name(relation, self.column) if relation else quote_identifier(self.column)
        return compose("{column} >= $since", column=column)

    def params(self) -> dict[str, object]:
        return {"since": self.at}


def base_tables(connection: duckdb.DuckDBPyConnection, exclude_schemas: Iterable[str] = ()) -> list[TableRef]:
    """Every base table of the current database (views hold no data of their own)."""
    excluded = {s.lower() for s in exclude_schemas}
    rows = connection.execute(
        """
        select table_schema, table_name
        from information_schema.tables
        where table_catalog = current_database() and table_type = 'BASE TABLE'
        order by table_schema, table_name
        """
    ).fetchall()
    return [TableRef(schema, name) for schema, name in rows if schema.lower() not in excluded]


def text_columns(connection: duckdb.DuckDBPyConnection, table: TableRef) -> list[str]:
    """The columns of ``table`` whose type can hold text (VARCHAR, JSON, UUID, lists, structs, maps)."""
    rows = connection.execute(
        """
        select column_name, data_type
        from information_schema.columns
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        order by ordinal_position
        """,
        [table.schema, table.name],
    ).fetchall()
    return [name for name, data_type in rows if not _NON_TEXT_TYPES.match(data_type.upper())]


def scan_columns(connection: duckdb.DuckDBPyConnection, table: TableRef) -> list[str]:
    """The columns erasure and verification search: text-like and not a known non-personal column.

    Record keys (message, event, ticket ids...), enums and references are left out; identifier columns, names,
    free text (comments, subjects, reasons), JSON (traits, properties, context, ``_extra``), quarantined raw
    lines, composite keys and every column this module does not know are searched.
    """
    skipped = NON_PERSONAL_COLUMNS
    return [c for c in text_columns(connection, table) if c.lower() not in skipped]


def has_column(connection: duckdb.DuckDBPyConnection, table: TableRef, column: str) -> bool:
    return column in {
        name
        for (name,) in connection.execute(
            """
            select column_name from information_schema.columns
            where table_catalog = current_database() and table_schema = ? and table_name = ?
            """,
            [table.schema, table.name],
        ).fetchall()
    }


# ------------------------------------------------------------------------------------------ needles


def load_needles(connection: duckdb.DuckDBPyConnection, needles: Mapping[str, str | None]) -> None:
    """Replace the temp needle table with ``{identifier_hash: request_id}``."""
    connection.execute(
        compose(
            "create or replace temp table {needles} (identifier_hash varchar, request_id varchar)",
            needles=_NEEDLES,
        )
    )
    if needles:
        hashes = list(needles)
        connection.execute(
            compose("insert into {needles} select unnest($hashes), unnest($requests)", needles=_NEEDLES),
            {"hashes": hashes, "requests": [needles[h] for h in hashes]},
        )


def load_suppression_needles(connection: duckdb.DuckDBPyConnection) -> int:
    """The whole suppression list as needles; returns how many."""
    connection.execute(
        compose(
            """
            create or replace temp table {needles} as
            select identifier_hash, min(request_id) as request_id
            from privacy.suppressed_identifiers
            group by identifier_hash
            """,
            needles=_NEEDLES,
        )
    )
    return connection.execute(compose("select count(*) from {needles}", needles=_NEEDLES)).fetchall()[0][0]


def load_plain_needles(connection: duckdb.DuckDBPyConnection, tokens: Mapping[str, str | None]) -> None:
    """Replace the temp table of plaintext needles ``{token: request_id}`` (dropped by :func:`end_scan`)."""
    _load_tokens(connection, PLAIN_TABLE, tokens)


def _load_tokens(connection: duckdb.DuckDBPyConnection, name: str, tokens: Mapping[str, str | None]) -> None:
    table = quote_identifier(name)
    connection.execute(
        compose("create or replace temp table {table} (token varchar, request_id varchar)", table=table)
    )
    if tokens:
        values = list(tokens)
        connection.execute(
            compose("insert into {table} select unnest($tokens), unnest($requests)", table=table),
            {"tokens": values, "requests": [tokens[t] for t in values]},
        )


def end_scan(connection: duckdb.DuckDBPyConnection) -> None:
    """Drop every temp table that holds plaintext (values, tokens, plaintext needles, matches) and needles."""
    for name in (*_PLAINTEXT_TABLES, NEEDLES_TABLE):
        connection.execute(compose("drop table if exists {table}", table=qualified_name("temp", name)))


# ------------------------------------------------------------------------------------------ matching


def _values_sql(tables: list[tuple[TableRef, list[str]]], since_by_table: Mapping[TableRef, Since]) -> Sql:
    """(value): every non-null value of every listed column of every listed table, as text."""
    parts = []
    for table, columns in tables:
        since = since_by_table.get(table)
        condition = compose("and {condition}", condition=since.condition()) if since else Sql("")
        parts.extend(
            compose(
                "select cast({column} as varchar) as value from {table} "
                "where {column} is not null {condition}",
                column=quote_identifier(column),
                table=table.qualified,
                condition=condition,
            )
            for column in columns
        )
    return join(parts, "\nunion all\n")


def value_tokens_sql(values: Sql) -> Sql:
    """(value, token): the candidate tokens of each row of the relation ``values`` (column ``value``)."""
    return compose(
        """
        select value, token
        from (select value, unnest({tokens}) as token from {values})
        where token is not null
        """,
        tokens=tokens_sql(Sql("value")),
        values=values,
    )


def _since_params(since_by_table: Mapping[TableRef, Since]) -> dict[str, object] | None:
    moments = {since.at for since in since_by_table.values()}
    if len(moments) > 1:
        raise ValueError("one scan takes one 'since' moment for all its tables")
    return {"since": moments.pop()} if moments else None


@dataclass(frozen=True)
class ScanPass:
    """The values one pass of a scan collects: some columns of some tables, and of those only the values whose
    hash falls in ``part`` of ``parts`` (all of them when ``parts`` is 1)."""

    units: tuple[tuple[TableRef, tuple[str, ...]], ...]
    part: int = 0
    parts: int = 1


def _column_values(
    connection: duckdb.DuckDBPyConnection,
    tables: Iterable[tuple[TableRef, list[str]]],
    since_by_table: Mapping[TableRef, Since],
) -> list[tuple[TableRef, str, int]]:
    """(table, column, values): about how many distinct values each scanned column holds.

    The rows (DuckDB's estimate, or counted for a table limited to the rows loaded since a moment); for a
    table of more than ``SAMPLED_FROM_ROWS`` rows, the rows times the share of distinct values in a 1 %
    sample of its row groups: most columns of a touchpoint-grain table hold a handful of values, a few
    (``touchpoint_id``) one per row, and only those need passes of their own.
    """
    estimated = {
        (schema, name): rows
        for schema, name, rows in connection.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() "
            "where database_name = current_database()"
        ).fetchall()
    }
    values = []
    for table, columns in tables:
        since = since_by_table.get(table)
        if since is None:
            rows = estimated.get((table.schema, table.name), 0)
        else:
            rows = connection.execute(
                compose(
                    "select count(*) from {table} where {condition}",
                    table=table.qualified,
                    condition=since.condition(),
                ),
                since.params(),
            ).fetchall()[0][0]
        shares = [1.0] * len(columns)
        if since is None and rows > SAMPLED_FROM_ROWS:
            distinct = join(
                compose("approx_count_distinct({column})", column=quote_identifier(column))
                for column in columns
            )
            sampled, *counts = connection.execute(
                compose(
                    "select count(*), {distinct} from {table} using sample 1 percent (system)",
                    distinct=distinct,
                    table=table.qualified,
                )
            ).fetchall()[0]
            if sampled:
                shares = [min(1.0, count / sampled) for count in counts]
        values.extend(
            (table, column, math.ceil(rows * share)) for column, share in zip(columns, shares, strict=True)
        )
    return values


def scan_passes(
    connection: duckdb.DuckDBPyConnection,
    tables: Iterable[tuple[TableRef, list[str]]],
    since_by_table: Mapping[TableRef, Since] | None = None,
) -> list[ScanPass]:
    """The passes of a scan of ``tables``, each of at most about ``CX360_PRIVACY_SCAN_VALUES_PER_PASS``
    values (cx_pipeline.settings), so that the distinct values of one pass fit in memory: the distinct
    values and tokens of one pass are held in memory at once. The raw tables of 100k customers take 5
    passes of the default 20 M; at 1M customers one family of 50 M touchpoint ids in one pass ran out of
    DuckDB's 3.7 GiB, and so did every column of the warehouse at once.

    Columns of the same name (``touchpoint_id`` is in five tables, ``email`` in ten) are one *family*, always
    scanned in the same pass, so a value they share is tokenised and hashed once. A family counts as many
    values as its largest column holds (:func:`_column_values`; its columns mostly hold the same values: the
    same touchpoints in five tables). Families are packed into passes whole, in name order; a family larger
    than a pass gets passes of its own, split by a hash of the value. Every column is read by one pass only
    (or by the passes of its family's split): splitting every value of the warehouse by hash instead re-read
    the whole warehouse once per pass (20 times at 1M customers).
    """
    values_per_pass = PRIVACY_SCAN_VALUES_PER_PASS.read()
    families: dict[str, list[tuple[TableRef, str, int]]] = {}
    for table, column, distinct in _column_values(connection, tables, since_by_table or {}):
        families.setdefault(column.lower(), []).append((table, column, distinct))
    passes: list[ScanPass] = []
    packed: list[tuple[TableRef, str, int]] = []
    packed_values = 0
    for name in sorted(families):
        family = families[name]
        size = max(distinct for _, _, distinct in family)
        if size > values_per_pass:
            parts = math.ceil(size / values_per_pass)
            passes.extend(ScanPass(_units(family), part, parts) for part in range(parts))
            continue
        if packed and packed_values + size > values_per_pass:
            passes.append(ScanPass(_units(packed)))
            packed, packed_values = [], 0
        packed.extend(family)
        packed_values += size
    if packed:
        passes.append(ScanPass(_units(packed)))
    return passes


def _units(columns: Iterable[tuple[TableRef, str, int]]) -> tuple[tuple[TableRef, tuple[str, ...]], ...]:
    by_table: dict[TableRef, list[str]] = {}
    for table, column, _ in columns:
        by_table.setdefault(table, []).append(column)
    return tuple((table, tuple(names)) for table, names in by_table.items())


def _pass_values_sql(
    scan_pass: ScanPass, since_by_table: Mapping[TableRef, Since]
) -> tuple[Sql, dict[str, object] | None]:
    """(value): the distinct values of the columns of ``scan_pass`` (of its hash part, if split), and the
    parameters to bind. A value that several of its columns hold is tokenised once.

    A query, not a table: the values of a pass are streamed into the distinct and tokenised; a temp table
    of them held memory that the next pass needed (out of memory at 1M customers).
    """
    units = [(table, list(columns)) for table, columns in scan_pass.units]
    scanned = {table for table, _ in units}
    used_since = {table: since for table, since in since_by_table.items() if table in scanned}
    params = _since_params(used_since)
    partition = Sql("")
    if scan_pass.parts > 1:
        params = dict(params or {}, part=scan_pass.part, parts=scan_pass.parts)
        partition = Sql("where hash(value) % $parts = $part")
    values = _values_sql(units, used_since)
    return compose(
        "(select distinct value from ({values}) {partition})", values=values, partition=partition
    ), params


def _match_values(
    connection: duckdb.DuckDBPyConnection, values: Sql, params: dict[str, object] | None, needles: str
) -> None:
    """Adds to ``_MATCHED_VALUES`` (value, request_id) the values of the relation ``values`` holding a token
    of ``needles`` (token, request_id: plaintext), by one hash join."""
    connection.execute(
        compose(
            """
            insert into {matched}
            select value, min(needles.request_id) as request_id
            from ({tokens}) as tokens
            inner join {needles} as needles using (token)
            group by value
            """,
            matched=_MATCHED,
            tokens=value_tokens_sql(values),
            needles=quote_identifier(needles),
        ),
        params,
    )


def _hash_matches(
    connection: duckdb.DuckDBPyConnection, values: Sql, params: dict[str, object] | None
) -> dict[str, str | None]:
    """Tokens of the relation ``values`` whose keyed hash is in ``NEEDLES_TABLE`` -> request id (each
    distinct token of the pass is hashed once)."""
    rows = connection.execute(
        compose(
            """
            with tokens as (
                select distinct token from ({tokens})
            ),
            hashed as (
                select token, cx360_keyed_hash(token) as identifier_hash from tokens
            )
            select hashed.token, min(needles.request_id)
            from hashed
            inner join {needles} as needles on hashed.identifier_hash = needles.identifier_hash
            group by hashed.token
            """,
            tokens=value_tokens_sql(values),
            needles=_NEEDLES,
        ),
        params,
    ).fetchall()
    return dict(rows)


def _matched_rows(
    connection: duckdb.DuckDBPyConnection, table: TableRef, columns: list[str], since: Since | None
) -> dict[int, str | None]:
    """rowid -> request id of the rows of ``table`` holding a ``_MATCHED_VALUES`` value."""
    condition = compose("and {condition}", condition=since.condition("rows")) if since else Sql("")
    per_column = join(
        (
            compose(
                "select rows.rowid as rid, matched.request_id from {table} as rows "
                "inner join {matched} as matched on cast(rows.{column} as varchar) = matched.value "
                "where true {condition}",
                table=table.qualified,
                matched=_MATCHED,
                column=quote_identifier(column),
                condition=condition,
            )
            for column in columns
        ),
        "\nunion all\n",
    )
    rows = connection.execute(
        compose("select rid, min(request_id) from ({per_column}) group by rid", per_column=per_column),
        since.params() if since else None,
    ).fetchall()
    return dict(rows)


def _drop_scan_state(connection: duckdb.DuckDBPyConnection) -> None:
    for name in (_MATCHED_TOKENS, _MATCHED_VALUES):
        connection.execute(compose("drop table if exists {table}", table=qualified_name("temp", name)))


def scan_tables(
    connection: duckdb.DuckDBPyConnection,
    tables: Iterable[TableRef],
    since_by_table: Mapping[TableRef, Since] | None = None,
    *,
    plaintext: bool = False,
) -> dict[TableRef, dict[int, str | None]]:
    """For each table, rowid -> request id of its rows that hold a needle (tables without any left out).

    ``plaintext``: the needles are plaintext tokens (:func:`load_plain_needles`, a request being executed);
    they are hash-joined with the tokens and no keyed hash is computed. Else they are keyed hashes
    (:func:`load_needles`, :func:`load_suppression_needles`): each distinct token of a pass is hashed once.

    Linear in the rows and independent of the number of needles: the distinct values of the personal columns
    (:func:`scan_columns`) are collected and tokenised pass by pass (:func:`scan_passes`: columns of one name
    in the same pass, each column read by one pass, so the distinct values of a pass fit in memory); only
    when some value matched are the tables' rows looked up, by equality joins on those values.
    ``since_by_table`` limits a table to the rows loaded at or after one moment (the same for every table,
    bound as ``$since``).
    """
    since_by_table = dict(since_by_table or {})
    units = [(table, scan_columns(connection, table)) for table in tables]
    units = [(table, columns) for table, columns in units if columns]
    if not units:
        return {}
    try:
        connection.execute(
            compose(
                "create or replace temp table {matched} (value varchar, request_id varchar)", matched=_MATCHED
            )
        )
        for scan_pass in scan_passes(connection, units, since_by_table):
            values, params = _pass_values_sql(scan_pass, since_by_table)
            if plaintext:
                _match_values(connection, values, params, PLAIN_TABLE)
            else:
                # The pass's values are read again only when a token matched (never, in a clean verification).
                tokens = _hash_matches(connection, values, params)
                if tokens:
                    _load_tokens(connection, _MATCHED_TOKENS, tokens)
                    _match_values(connection, values, params, _MATCHED_TOKENS)
        found = connection.execute(compose("select count(*) from {matched}", matched=_MATCHED)).fetchall()[0][
            0
        ]
        if not found:
            return {}
        matches = {}
        for table, columns in units:
            rows = _matched_rows(connection, table, columns, since_by_table.get(table))
            if rows:
                matches[table] = rows
        return matches
    finally:
        _drop_scan_state(connection)


def scan_table(
    connection: duckdb.DuckDBPyConnection, table: TableRef, since: Since | None = None
) -> dict[int, str | None]:
    """rowid -> request id of every row of ``table`` holding a needle (hashed needles loaded beforehand)."""
    return scan_tables(connection, [table], {table: since} if since else None).get(table, {})


def scan_table_plain(
    connection: duckdb.DuckDBPyConnection, table: TableRef, since: Since | None = None
) -> dict[int, str | None]:
    """rowid -> request id of the rows of ``table`` holding a plaintext needle (see load_plain_needles)."""
    return scan_tables(connection, [table], {table: since} if since else None, plaintext=True).get(table, {})


def delete_rows(connection: duckdb.DuckDBPyConnection, table: TableRef, rowids: Iterable[int]) -> int:
    ids = sorted(set(rowids))
    if not ids:
        return 0
    connection.execute(
        compose("delete from {table} where rowid in (select unnest($ids))", table=table.qualified),
        {"ids": ids},
    )
    return len(ids)
