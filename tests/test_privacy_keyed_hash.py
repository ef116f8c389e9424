"""The keyed hash in SQL: native DuckDB HMAC-SHA256 (macro + connection variables), equal to the Python one.

Fast: in-memory or tmp-path databases only, no pipeline run.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.privacy import keys
from cx_pipeline.privacy.keys import (
    MISSING_KEY_MESSAGE,
    install_persistent_macro,
    keyed_hash,
    keyed_hashes,
    register_udfs,
)

VALUES = [
    "jo@example.com",
    "+15551234567",
    "U12345678",
    "",
    " spaces inside and around ",
    "Ünïcødé ✓ 日本語 🙂",
    "customer:C-000042",
    "x" * 1000,  # longer than a SHA-256 block
    "quote ' and backslash \\",
]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    value = "n" * 40
    monkeypatch.setenv(keys.KEY_ENV, value)
    return value.encode()


def _sql_hashes(connection, values: list[str | None]) -> list[str | None]:
    connection.execute("create or replace temp table probe (i integer, v varchar)")
    connection.executemany("insert into probe values (?, ?)", list(enumerate(values)))
    rows = connection.execute("select cx360_keyed_hash(v) from probe order by i").fetchall()
    return [row[0] for row in rows]


@pytest.mark.parametrize("key_bytes", [b"k" * 16, b"0123456789abcdef" * 4, b"L" * 64, b"z" * 65, b"q" * 200])
def test_native_macro_is_hmac_sha256_for_every_key_length(key_bytes: bytes) -> None:
    """Keys up to the 64-byte block are zero-padded; longer ones are pre-hashed (RFC 2104)."""
    connection = duckdb.connect()
    try:
        register_udfs(connection, key_bytes)
        got = _sql_hashes(connection, [*VALUES, None])
    finally:
        connection.close()
    expected = [hmac.new(key_bytes, v.encode(), hashlib.sha256).hexdigest() for v in VALUES]
    assert got == [*expected, None]
    assert got[:-1] == keyed_hashes(VALUES, key_bytes)


def test_register_udfs_reads_the_configured_key_and_is_idempotent(key: bytes) -> None:
    connection = duckdb.connect()
    try:
        register_udfs(connection)
        register_udfs(connection)
        assert connection.execute("select cx360_keyed_hash('x'), cx360_keyed_hash(null)").fetchall() == [
            (keyed_hash("x"), None)
        ]
        # Any type is hashed as its text, like the former UDF's cast(... as varchar).
        assert connection.execute("select cx360_keyed_hash(42)").fetchone()[0] == keyed_hash("42")
    finally:
        connection.close()


def test_cursors_need_their_own_registration(key: bytes) -> None:
    """DuckDB keeps variables and temp macros per connection; a cursor is a new connection."""
    connection = duckdb.connect()
    try:
        register_udfs(connection)
        cursor = connection.cursor()
        with pytest.raises(duckdb.CatalogException):
            cursor.execute("select cx360_keyed_hash('x')").fetchall()
        register_udfs(cursor)
        assert cursor.execute("select cx360_keyed_hash('x')").fetchall() == [(keyed_hash("x"),)]
    finally:
        connection.close()


def test_read_only_connections_can_hash(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    connection = duckdb.connect(str(path), read_only=True)
    try:
        register_udfs(connection)
        assert connection.execute("select cx360_keyed_hash('jo@example.com')").fetchone()[0] == keyed_hash(
            "jo@example.com"
        )
    finally:
        connection.close()


def test_keyless_connection_fails_loudly_and_the_file_holds_no_key(tmp_path: Path, key: bytes) -> None:
    """The persistent macro binds anywhere; without the key variables it raises, never returns nulls."""
    path = tmp_path / "w.duckdb"
    connection = duckdb.connect(str(path))
    try:
        register_udfs(connection)
        install_persistent_macro(connection)
        connection.execute("create table ids as select 'jo@example.com' as v")
        connection.execute("create view hashed as select cx360_keyed_hash(v) as h from ids")
        assert connection.execute("select h from hashed").fetchone()[0] == keyed_hash("jo@example.com")
        connection.execute("checkpoint")
    finally:
        connection.close()

    keyless = duckdb.connect(str(path))
    try:
        with pytest.raises(duckdb.InvalidInputException) as caught:
            keyless.execute("select h from hashed").fetchall()
        assert MISSING_KEY_MESSAGE in str(caught.value) and "register_udfs" in str(caught.value)
        with pytest.raises(duckdb.InvalidInputException):
            keyless.execute("select cx360_keyed_hash('x')").fetchall()
        definition = keyless.execute(
            "select macro_definition from duckdb_functions() where function_name = 'cx360_keyed_hash'"
        ).fetchall()
        assert definition and "getvariable" in definition[0][0]
        register_udfs(keyless)  # the fix the message names
        assert keyless.execute("select h from hashed").fetchone()[0] == keyed_hash("jo@example.com")
    finally:
        keyless.close()

    ipad, opad = keys.hmac_pads(key)
    data = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("w.duckdb.wal"))
    assert b"cx360_hmac_ipad" in data  # positive control: the macro's text (variable names only) is stored
    for secret in (key, ipad, opad, ipad.hex().encode(), opad.hex().encode()):
        assert secret not in data
    for secret in (key.decode(), ipad.hex(), opad.hex()):
        assert secret not in definition[0][0]


def test_dbt_plugin_configures_the_connection_and_every_cursor(tmp_path: Path, key: bytes) -> None:
    from cx_pipeline.privacy.dbt_plugin import Plugin

    plugin = Plugin.__new__(Plugin)
    plugin.initialize({})
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        plugin.configure_connection(connection)
        cursor = connection.cursor()
        plugin.configure_cursor(cursor)
        assert cursor.execute("select cx360_keyed_hash('x')").fetchone()[0] == keyed_hash("x")
        persistent = connection.execute(
            "select schema_name from duckdb_functions() "
            "where function_name = 'cx360_keyed_hash' and database_name = 'w'"
        ).fetchall()
        assert persistent == [("main",)]
    finally:
        connection.close()
