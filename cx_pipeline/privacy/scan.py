"""Finding a person's identifiers anywhere in the warehouse, in files and in raw bytes, by keyed hash.

A *needle* is the keyed hash of a normalised identifier (see :mod:`cx_pipeline.privacy.identifiers`). A row
matches when any candidate token of any of its text-like columns (VARCHAR, JSON, lists, structs, UUIDs: all
cast to text) hashes to a needle. Candidates of a value: the trimmed whole value (and lower-cased, and read
as a phone), every email, every id-like token and every phone-like run of digits, normalised. So an email in
a JSON blob, a formatted phone in a quarantined CSV line and a customer id inside a composite key all match.

Two passes per table keep it cheap: (1) the distinct candidate tokens of the table are hashed (one keyed
hash per distinct token, not per row) and compared with the needles; (2) only when some token matched, the
rows holding those tokens are found by plain list membership against that short list of plaintext tokens.
"""

from __future__ import annotations

import contextlib
import gzip
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cx_pipeline.privacy.identifiers import (
    EMAIL_PATTERN,
    ID_PATTERN,
    PHONE_PATTERN,
    WHOLE_VALUE_MAX_LENGTH,
    candidates,
    extract_emails_from_bytes,
    normalize_phone,
)
from cx_pipeline.privacy.keys import keyed_hashes, register_udfs

NEEDLES_TABLE = "_cx360_needles"
PHONE_MACRO = "cx360_normalize_phone"
# Column types that cannot hold an identifier as text.
_NON_TEXT_TYPES = re.compile(
    r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"DECIMAL.*|DOUBLE|FLOAT|REAL|DATE|TIME.*|TIMESTAMP.*|INTERVAL|BLOB|BIT|VARINT|BIGNUM)$"
)
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _phone_sql(x: str, country_code: str) -> str:
    """The normalize_phone dbt macro as a DuckDB expression over ``x``."""
    if not country_code.isdigit():
        raise ValueError(f"country code must be digits, got {country_code!r}")
    no_ext = rf"regexp_replace({x}, '\s*(ext\.?|x|#)\s*[0-9]{{1,6}}\s*$', '', 'i')"
    digits = f"regexp_replace({no_ext}, '[^0-9]', '', 'g')"
    intl = f"regexp_replace({digits}, '^00', '')"
    return f"""case
        when regexp_matches({no_ext}, '^[^0-9]*[+]')
            then case when regexp_matches({digits}, '^[1-9][0-9]{{7,14}}$') then '+' || {digits} end
        when regexp_matches({digits}, '^00')
            then case when regexp_matches({intl}, '^[1-9][0-9]{{7,14}}$') then '+' || {intl} end
        when length({digits}) = 10 then '+{country_code}' || {digits}
        when length({digits}) = {len(country_code) + 10} and starts_with({digits}, '{country_code}')
            then '+' || {digits}
    end"""


def register_scan_functions(connection: duckdb.DuckDBPyConnection, country_code: str = "1") -> None:
    """The keyed-hash UDF and a temporary phone-normalising macro on ``connection``."""
    register_udfs(connection)
    connection.execute(f"create or replace temp macro {PHONE_MACRO}(x) as ({_phone_sql('x', country_code)})")


def tokens_sql(value: str) -> str:
    """A VARCHAR[] of the candidate tokens of the VARCHAR expression ``value`` (nulls inside are harmless)."""
    return f"""list_concat(
        case when length(trim({value})) <= {WHOLE_VALUE_MAX_LENGTH}
            then [trim({value}), lower(trim({value}))] else [] end,
        regexp_extract_all(lower({value}), {sql_string(EMAIL_PATTERN)}),
        regexp_extract_all({value}, {sql_string(ID_PATTERN)}),
        list_transform(regexp_extract_all({value}, {sql_string(PHONE_PATTERN)}), lambda p: {PHONE_MACRO}(p))
    )"""


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


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


def load_needles(connection: duckdb.DuckDBPyConnection, needles: Mapping[str, str | None]) -> None:
    """Replace the temp needle table with ``{identifier_hash: request_id}``."""
    connection.execute(
        "create or replace temp table _cx360_needles (identifier_hash varchar, request_id varchar)"
    )
    if needles:
        connection.executemany(
            "insert into _cx360_needles values (?, ?)", [[h, r] for h, r in needles.items()]
        )


def load_suppression_needles(connection: duckdb.DuckDBPyConnection) -> int:
    """The whole suppression list as needles; returns how many."""
    connection.execute(
        """
        create or replace temp table _cx360_needles as
        select identifier_hash, min(request_id) as request_id
        from privacy.suppressed_identifiers
        group by identifier_hash
        """
    )
    return connection.execute("select count(*) from _cx360_needles").fetchall()[0][0]


def matching_tokens(
    connection: duckdb.DuckDBPyConnection, table: TableRef, columns: list[str], where: str | None = None
) -> dict[str, str | None]:
    """Pass 1: the plaintext tokens of ``table`` whose keyed hash is a needle -> the needle's request id."""
    if not columns:
        return {}
    condition = f"where {where}" if where else ""
    token_lists = ", ".join(tokens_sql(f"cast({quote(c)} as varchar)") for c in columns)
    rows = connection.execute(
        f"""
        with tokens as (
            select distinct token
            from (
                select unnest(flatten([{token_lists}])) as token
                from {table.qualified} {condition}
            )
            where token is not null
        ),
        hashed as (
            select token, cx360_keyed_hash(token) as identifier_hash from tokens
        )
        select hashed.token, {NEEDLES_TABLE}.request_id
        from hashed
        inner join {NEEDLES_TABLE} on hashed.identifier_hash = {NEEDLES_TABLE}.identifier_hash
        """  # noqa: S608 - identifiers are quoted, values are bound or fixed patterns
    ).fetchall()
    return dict(rows)


def matching_rows(
    connection: duckdb.DuckDBPyConnection,
    table: TableRef,
    columns: list[str],
    tokens: Iterable[str],
    where: str | None = None,
) -> dict[int, str]:
    """Pass 2: rowid -> one matched token, for the rows of ``table`` holding any of ``tokens``."""
    token_list = sorted(set(tokens))
    if not token_list or not columns:
        return {}
    per_column = ", ".join(
        f"list_intersect({tokens_sql(f'cast({quote(c)} as varchar)')}, $tokens)" for c in columns
    )
    condition = f"and ({where})" if where else ""
    rows = connection.execute(
        f"""
        select rid, hits[1] as token
        from (
            select rowid as rid, flatten([{per_column}]) as hits
            from {table.qualified}
            where true {condition}
        )
        where len(hits) > 0
        """,  # noqa: S608
        {"tokens": token_list},
    ).fetchall()
    return dict(rows)


def scan_table(
    connection: duckdb.DuckDBPyConnection, table: TableRef, where: str | None = None
) -> dict[int, str | None]:
    """rowid -> request id of every row of ``table`` holding a needle (needles loaded beforehand)."""
    columns = text_columns(connection, table)
    tokens = matching_tokens(connection, table, columns, where)
    if not tokens:
        return {}
    rows = matching_rows(connection, table, columns, tokens, where)
    return {rid: tokens[token] for rid, token in rows.items()}


def delete_rows(connection: duckdb.DuckDBPyConnection, table: TableRef, rowids: Iterable[int]) -> int:
    ids = sorted(set(rowids))
    if not ids:
        return 0
    connection.execute("create or replace temp table _cx360_rowids (rid bigint)")
    connection.executemany("insert into _cx360_rowids values (?)", [[i] for i in ids])
    connection.execute(
        f"delete from {table.qualified} where rowid in (select rid from _cx360_rowids)"  # noqa: S608
    )
    connection.execute("drop table _cx360_rowids")
    return len(ids)


# ---------------------------------------------------------------------------------------------- files


def file_text(path: Path) -> str:
    """A file's content as text for scanning: gzip is opened, anything else read as UTF-8 with replacement."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def text_hits(text: str, needles: Mapping[str, str | None]) -> dict[str, str | None]:
    """Tokens of ``text`` whose keyed hash is a needle -> request id."""
    tokens = sorted(candidates(text))
    hashes = keyed_hashes(tokens)
    return {token: needles[h] for token, h in zip(tokens, hashes, strict=True) if h in needles}


def line_hits(lines: Iterable[str], needles: Mapping[str, str | None]) -> list[int]:
    """Indexes of the lines holding a needle."""
    cache: dict[str, bool] = {}
    hits = []
    for index, line in enumerate(lines):
        tokens = candidates(line)
        unknown = [t for t in tokens if t not in cache]
        for token, digest in zip(unknown, keyed_hashes(unknown), strict=True):
            cache[token] = digest in needles
        if any(cache[t] for t in tokens):
            hits.append(index)
    return hits


_BYTE_IDS = re.compile(rb"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")
_BYTE_PHONES = re.compile(rb"[+(]?[0-9][0-9 ().-]{6,24}[0-9]")


def file_byte_hits(path: Path, needles: Mapping[str, str | None], chunk_bytes: int = 1 << 24) -> set[str]:
    """Needle tokens found in the raw bytes of ``path`` (e.g. a database file: free blocks included).

    Only strings stored as plain bytes can be found; DuckDB compresses most strings (dictionary, FSST), so
    this proves absence only for a file written with ``force_compression='uncompressed'``; see the tests.
    """
    tokens: set[str] = set()
    phones: set[bytes] = set()
    overlap = 256
    with path.open("rb") as handle:
        tail = b""
        while True:
            chunk = handle.read(chunk_bytes)
            if not chunk:
                break
            data = tail + chunk
            tail = data[-overlap:]
            tokens.update(extract_emails_from_bytes(data.lower()))
            tokens.update(m.decode("ascii") for m in _BYTE_IDS.findall(data))
            phones.update(_BYTE_PHONES.findall(data))
    for raw_phone in phones:
        phone = normalize_phone(raw_phone.decode("ascii"))
        if phone:
            tokens.add(phone)
    ordered = sorted(tokens)
    return {token for token, digest in zip(ordered, keyed_hashes(ordered), strict=True) if digest in needles}
