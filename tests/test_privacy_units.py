"""Fast tests of the privacy building blocks: key handling, keyed hashes, identifier matching, compaction."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.privacy import keys
from cx_pipeline.privacy.identifiers import candidates, extract_emails, normalize_email, normalize_phone
from cx_pipeline.privacy.keys import keyed_hash, keyed_hashes, load_key, register_udfs


@pytest.fixture
def key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(keys.KEY_ENV, raising=False)
    key_file = tmp_path / "secrets" / "cx360.key"
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(key_file))
    return key_file


def test_key_file_is_created_once_with_private_permissions(key_env: Path) -> None:
    assert not key_env.exists()
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(load_key())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results[0]) == 64  # every racer reads the winner's key
    assert (key_env.stat().st_mode & 0o777) == 0o600
    assert not [p for p in key_env.parent.iterdir() if p.name != key_env.name]  # no temp files left


def test_environment_key_wins_and_short_keys_are_refused(key_env: Path, monkeypatch) -> None:
    monkeypatch.setenv(keys.KEY_ENV, "k" * 32)
    assert load_key() == b"k" * 32
    assert not key_env.exists()
    monkeypatch.setenv(keys.KEY_ENV, "short")
    with pytest.raises(keys.PseudonymisationKeyError):
        load_key()


def test_keyed_hash_is_hmac_sha256_and_key_dependent(monkeypatch) -> None:
    import hashlib
    import hmac

    monkeypatch.setenv(keys.KEY_ENV, "a" * 32)
    expected = hmac.new(b"a" * 32, b"jo@example.com", hashlib.sha256).hexdigest()
    assert keyed_hash("jo@example.com") == expected
    assert keyed_hashes(["jo@example.com", None]) == [expected, None]
    monkeypatch.setenv(keys.KEY_ENV, "b" * 32)
    assert keyed_hash("jo@example.com") != expected


def test_sql_udf_matches_python_and_key_stays_out_of_sql(monkeypatch) -> None:
    monkeypatch.setenv(keys.KEY_ENV, "c" * 32)
    connection = duckdb.connect()
    try:
        register_udfs(connection)
        register_udfs(connection)  # idempotent
        rows = connection.execute("select cx360_keyed_hash('x'), cx360_keyed_hash(null)").fetchall()
        assert rows == [(keyed_hash("x"), None)]
        assert connection.cursor().execute("select cx360_keyed_hash('x')").fetchall() == [(keyed_hash("x"),)]
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(555) 123-4567", "+15551234567"),
        ("555.123.4567 x12", "+15551234567"),
        ("1-555-123-4567", "+15551234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("12345", None),
        ("  ", None),
    ],
)
def test_phone_normalisation_follows_the_staging_macro(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_sql_phone_macro_agrees_with_python() -> None:
    from cx_pipeline.privacy.scan import PHONE_MACRO, register_scan_functions

    samples = [
        "(555) 123-4567",
        "555.123.4567 x12",
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "12345",
        "+1 (555)",
    ]
    connection = duckdb.connect()
    try:
        os.environ.setdefault(keys.KEY_ENV, "d" * 32)
        register_scan_functions(connection)
        got = [connection.execute(f"select {PHONE_MACRO}(?)", [s]).fetchall()[0][0] for s in samples]
    finally:
        connection.close()
    assert got == [normalize_phone(s) for s in samples]


def test_candidates_find_identifiers_in_free_text() -> None:
    text = '{"traits": {"email": " Jo.Doe@Mail.COM "}, "note": "call +1 (555) 123-4567 x9, user U12345678"}'
    found = candidates(text)
    assert {"jo.doe@mail.com", "+15551234567", "U12345678"} <= found
    assert normalize_email("  A@B.Co ") == "a@b.co"
    # Linear on binary-looking input (the naive email regex is quadratic on long runs).
    assert extract_emails("a" * 200_000) == []


def test_compaction_removes_deleted_bytes(tmp_path: Path, monkeypatch) -> None:
    from cx_pipeline.privacy.maintenance import compact_database

    monkeypatch.setenv("CX360_DUCKDB_FORCE_COMPRESSION", "uncompressed")
    path = tmp_path / "w.duckdb"
    config = {"force_compression": "uncompressed", "autoinstall_known_extensions": False}
    connection = duckdb.connect(str(path), config=config)
    connection.execute(
        "create table t as select 'person' || i || '@example.com' as email from range(5000) as r(i)"
    )
    connection.execute("create view v as select * from t")
    connection.execute("checkpoint")
    connection.execute("delete from t where email = 'person42@example.com'")
    connection.execute("checkpoint")
    connection.close()
    assert b"person42@example.com" in path.read_bytes()  # deleted, still in the file
    result = compact_database(path, {"autoinstall_known_extensions": False})
    data = path.read_bytes()
    assert b"person42@example.com" not in data and b"person43@example.com" in data
    assert result.compaction_id
    connection = duckdb.connect(str(path))
    try:
        assert connection.execute("select count(*) from v").fetchall() == [(4999,)]
    finally:
        connection.close()


def test_erasure_scan_matches_tokens_not_substrings(tmp_path: Path, monkeypatch) -> None:
    from cx_pipeline.privacy.scan import TableRef, load_needles, register_scan_functions, scan_table

    monkeypatch.setenv(keys.KEY_ENV, "e" * 32)
    connection = duckdb.connect()
    try:
        register_scan_functions(connection)
        connection.execute("create schema s")
        connection.execute(
            """
            create table s.t as select * from (values
                (1, 'U12345678', null),
                (2, 'U123456789', null),
                (3, null, '{"email": "JO@EXAMPLE.COM"}'::json),
                (4, 'call (555) 123-4567', null),
                (5, 'jo@example.community', null)
            ) as v(id, a, j)
            """
        )
        load_needles(
            connection, {keyed_hash(v): "R1" for v in ("U12345678", "jo@example.com", "+15551234567")}
        )
        matches = scan_table(connection, TableRef("s", "t"))
        ids = sorted(
            connection.execute(
                "select id from s.t where rowid in (select unnest(?))", [list(matches)]
            ).fetchall()
        )
    finally:
        connection.close()
    assert ids == [(1,), (3,), (4,)]


@pytest.mark.slow
def test_privacy_assets_sit_between_ingestion_dbt_and_exports() -> None:
    """erasure after raw, before dbt; verification after the marketing/bi models and the exports; acyclic."""
    import dagster as dg

    from cx_pipeline.defs.dbt_project import prepare_dbt_manifest

    prepare_dbt_manifest(force=True)
    from cx_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()  # raises on a cycle
    suppression = dg.AssetKey(["privacy", "suppressed_identifiers"])
    verification = dg.AssetKey(["privacy", "erasure_verification"])
    exports = dg.AssetKey(["exports", "marketing_audiences"])
    assert dg.AssetKey(["raw", "erasure_requests"]) in graph.get(suppression).parent_keys
    downstream = set(graph.get(suppression).child_keys)
    assert dg.AssetKey(["intermediate", "int_consent_events_attributed"]) in downstream
    assert exports in graph.get(verification).parent_keys
    assert dg.AssetKey(["marketing", "audience_win_back"]) in graph.get(exports).parent_keys
    assert verification not in set(graph.upstream_key_iterator(suppression))
