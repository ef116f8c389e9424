"""Fast tests of the privacy building blocks: key handling, keyed hashes, identifier matching, compaction."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.privacy import keys
from cx_pipeline.privacy.identifiers import candidates, extract_emails, normalize_email, normalize_phone
from cx_pipeline.privacy.keys import keyed_hash, keyed_hashes, load_key, register_udfs
from cx_pipeline.settings import PRIVACY_SCAN_VALUES_PER_PASS
from cx_pipeline.sql import compose, plain_identifier, qualified_name


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
        # A cursor is a new DuckDB connection: it needs its own registration (docs/privacy.md).
        cursor = connection.cursor()
        register_udfs(cursor)
        assert cursor.execute("select cx360_keyed_hash('x')").fetchall() == [(keyed_hash("x"),)]
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
        phone = compose("select {macro}(?)", macro=plain_identifier(PHONE_MACRO))
        got = [connection.execute(phone, [s]).fetchall()[0][0] for s in samples]
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

    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

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


# ------------------------------------------------------------------------------------------ linear scans


@pytest.fixture
def scan_db(monkeypatch: pytest.MonkeyPatch):
    from cx_pipeline.privacy.scan import register_scan_functions

    monkeypatch.setenv(keys.KEY_ENV, "f" * 32)
    connection = duckdb.connect()
    register_scan_functions(connection)
    yield connection
    connection.close()


_UUID = "0b7f6a52-3c1e-4c2a-9d8e-5f1a2b3c4d5e"


def _nps_table(connection) -> None:
    connection.execute("create schema if not exists raw")
    connection.execute(
        """
        create table raw.nps_responses as select * from (values
            ('R1', null, 'Great, but write to Jo.Doe@Mail.COM next time', 3, 'post_purchase', null),
            ('R2', 'other@example.com', 'fine', 9, 'relationship', null),
            ('R3', null, 'Great, but write to Jo.Doe@Mail.COM next time', 4, 'onboarding', null),
            (?, null, 'the record key is a UUID', 5, 'onboarding', null),
            ('R5', null, null, 6, 'onboarding', '{"traits": {"email": " JO.DOE@mail.com"}}'::json)
        ) as v(response_id, email, comment, score, touchpoint, _extra)
        """,
        [_UUID],
    )


def _ids_of(connection, table: str, rowids) -> list[str]:
    return sorted(
        r
        for (r,) in connection.execute(
            compose(
                "select response_id from {table} where rowid in (select unnest(?))",
                table=qualified_name(*table.split(".")),
            ),
            [sorted(rowids)],
        ).fetchall()
    )


def test_scan_finds_an_email_in_free_text_and_json_but_skips_record_keys_and_enums(scan_db) -> None:
    from cx_pipeline.privacy.scan import (
        TableRef,
        end_scan,
        load_needles,
        load_plain_needles,
        scan_columns,
        scan_table,
        scan_table_plain,
    )

    _nps_table(scan_db)
    table = TableRef("raw", "nps_responses")
    # The UUID record key and the enum are never read; numbers neither.
    assert scan_columns(scan_db, table) == ["email", "comment", "_extra"]

    load_needles(scan_db, {keyed_hash("jo.doe@mail.com"): "ER-1", keyed_hash(_UUID): "ER-2"})
    hashed = scan_table(scan_db, table)
    # Both rows with the same comment (one distinct value, joined back to every row) and the JSON row.
    assert _ids_of(scan_db, "raw.nps_responses", hashed) == ["R1", "R3", "R5"]
    assert set(hashed.values()) == {"ER-1"}
    # hash(_UUID) is a needle, yet R4 is not found: its record key column is never read.
    end_scan(scan_db)
    temp = scan_db.execute("select count(*) from duckdb_tables() where temporary").fetchall()[0][0]
    assert temp == 0  # no plaintext left behind

    # The same rows by plain joins (a request being executed: no hashing at all).
    load_plain_needles(scan_db, {"jo.doe@mail.com": "ER-1", _UUID: "ER-2"})
    assert scan_table_plain(scan_db, table) == hashed
    end_scan(scan_db)


def test_all_tables_are_scanned_at_once_and_each_gets_its_own_rows(scan_db) -> None:
    from cx_pipeline.privacy.scan import TableRef, load_needles, scan_table, scan_tables

    scan_db.execute("create schema s")
    scan_db.execute(
        "create table s.a as select * from (values ('U12345678'), ('x'), ('U12345678')) v(user_id)"
    )
    scan_db.execute(
        "create table s.b as select * from (values ('x', 'crm:U12345678:new'), ('U7', 'y')) v(user_id, tp)"
    )
    scan_db.execute("create table s.c as select * from (values ('nothing here')) v(note)")
    a, b, c = TableRef("s", "a"), TableRef("s", "b"), TableRef("s", "c")
    load_needles(scan_db, {keyed_hash("U99999999"): "ER-1"})
    assert scan_tables(scan_db, [a, b, c]) == {}
    load_needles(scan_db, {keyed_hash("U12345678"): "ER-2"})
    found = scan_tables(scan_db, [a, b, c])
    assert set(found) == {a, b}
    assert sorted(found[a]) == [0, 2] and list(found[b]) == [0]
    assert set(found[a].values()) == {"ER-2"}
    assert scan_table(scan_db, b) == found[b]


def test_a_scan_in_several_passes_finds_what_one_pass_finds(scan_db, monkeypatch) -> None:
    """Large scans split the values by hash into passes (memory); every pass's matches are kept."""
    from cx_pipeline.privacy import scan

    _nps_table(scan_db)
    scan_db.execute("create schema s")
    scan_db.execute(
        "create table s.b as select * from (values ('x', 'crm:U12345678:new'), ('U7', 'y')) v(email, tp)"
    )
    tables = [scan.TableRef("raw", "nps_responses"), scan.TableRef("s", "b")]
    needles = {keyed_hash("jo.doe@mail.com"): "ER-1", keyed_hash("U12345678"): "ER-2"}
    scan.load_needles(scan_db, needles)
    single = scan.scan_tables(scan_db, tables)
    assert len(single) == 2  # both tables hold a needle

    monkeypatch.setenv(PRIVACY_SCAN_VALUES_PER_PASS.name, "2")
    units = [(table, scan.scan_columns(scan_db, table)) for table in tables]
    passes = scan.scan_passes(scan_db, units)
    # One family per column name, never split between passes unless it alone exceeds one: email (as large
    # as its largest column, 5 rows) in 3 hash parts holding both tables; tp (2 rows) fills one pass; each
    # other nps column in 3.
    by_columns = {}
    for scan_pass in passes:
        columns = tuple(sorted({c for _, cs in scan_pass.units for c in cs}))
        by_columns.setdefault(columns, []).append(scan_pass)
    assert [p.part for p in by_columns[("email",)]] == [0, 1, 2]
    assert {t for p in by_columns[("email",)] for t, _ in p.units} == set(tables)
    assert len(by_columns[("tp",)]) == 1 and by_columns[("tp",)][0].parts == 1
    nps_columns = [c for c in units[0][1] if c != "email"]
    assert all(len(by_columns[(c,)]) == 3 for c in nps_columns)
    assert len(passes) == 3 + 1 + 3 * len(nps_columns)
    scan.load_needles(scan_db, needles)
    assert scan.scan_tables(scan_db, tables) == single
    plain = {"jo.doe@mail.com": "ER-1", "U12345678": "ER-2"}
    scan.load_plain_needles(scan_db, plain)
    assert scan.scan_tables(scan_db, tables, plaintext=True) == single
    scan.end_scan(scan_db)


def test_large_tables_are_sampled_so_only_high_cardinality_families_get_passes_of_their_own(
    scan_db, monkeypatch
) -> None:
    """A touchpoint-grain table holds a few near-unique columns among many of a handful of values: the
    sample tells them apart, so the low-cardinality columns share one pass and are read once."""
    from cx_pipeline.privacy import scan

    scan_db.execute("create schema s")
    scan_db.execute(
        "create table s.big as select 'tp:' || i as touchpoint_id, 'src' || (i % 5) as source_system, "
        "'c' || (i % 3) as campaign_name from range(1000000) r(i)"
    )
    scan_db.execute("create table s.small as select 'tp:' || i as touchpoint_id from range(1000) r(i)")
    big, small = scan.TableRef("s", "big"), scan.TableRef("s", "small")
    monkeypatch.setattr(scan, "SAMPLED_FROM_ROWS", 10_000)
    units = [(big, scan.scan_columns(scan_db, big)), (small, ["touchpoint_id"])]
    estimates = {(str(t), c): n for t, c, n in scan._column_values(scan_db, units, {})}
    assert estimates[("s.big", "touchpoint_id")] > 500_000
    assert estimates[("s.big", "source_system")] < 10_000 and estimates[("s.big", "campaign_name")] < 10_000
    assert estimates[("s.small", "touchpoint_id")] == 1000  # not sampled: its rows

    monkeypatch.setenv(PRIVACY_SCAN_VALUES_PER_PASS.name, "100000")
    passes = scan.scan_passes(scan_db, units)
    low = [p for p in passes if p.units == ((big, ("campaign_name", "source_system")),)]
    assert len(low) == 1 and low[0].parts == 1
    touchpoints = [p for p in passes if p not in low]
    assert len(touchpoints) == touchpoints[0].parts > 5
    assert all(p.units == ((big, ("touchpoint_id",)), (small, ("touchpoint_id",))) for p in touchpoints)


def test_redelivered_rows_are_scrubbed_and_only_rows_loaded_since_the_last_scan_are_read(scan_db) -> None:
    from datetime import UTC, datetime, timedelta

    from cx_pipeline.privacy.erasure import ensure_privacy_tables, scrub_new_raw_rows

    t0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
    ensure_privacy_tables(scan_db)
    # First run: nothing suppressed yet, nothing to read; the scan is recorded.
    assert scrub_new_raw_rows(scan_db, run_id="r0", now=t0) == 0
    scan_db.execute(
        "insert into privacy.suppressed_identifiers values (?, 'email', 'ER-1', ?)",
        [keyed_hash("jo@example.com"), t0],
    )
    scan_db.execute("create schema raw")
    scan_db.execute(
        """
        create table raw.crm_contacts as select * from (values
            ('C1', 'ann@example.com', ?::timestamptz),
            ('C2', ' JO@example.com ', ?::timestamptz),
            ('C3', 'ann@example.com', ?::timestamptz)
        ) as v(contact_id, email, _loaded_at)
        """,
        [t0 - timedelta(hours=1), t0 + timedelta(hours=1), t0 + timedelta(hours=1)],
    )
    scan_db.execute(
        """
        create table raw.quarantine as select * from (values
            ('crm_contacts', 'C4,jo@example.com,not-a-date', ?::timestamptz)
        ) as v(source, raw_record, quarantined_at)
        """,
        [t0 + timedelta(hours=1)],
    )
    # A row loaded before the previous scan is not read again: it was checked then.
    scan_db.execute("update raw.crm_contacts set email = 'jo@example.com' where contact_id = 'C1'")

    assert scrub_new_raw_rows(scan_db, run_id="r1", now=t0 + timedelta(hours=2)) == 2
    left = scan_db.execute("select contact_id from raw.crm_contacts order by 1").fetchall()
    assert left == [("C1",), ("C3",)]
    assert scan_db.execute("select count(*) from raw.quarantine").fetchall() == [(0,)]
    audit = scan_db.execute(
        "select request_id, table_name, rows_removed from privacy.erasure_audit order by 2"
    ).fetchall()
    assert audit == [("ER-1", "raw.crm_contacts", 1), ("ER-1", "raw.quarantine", 1)]
    # Next run: nothing new since.
    assert scrub_new_raw_rows(scan_db, run_id="r2", now=t0 + timedelta(hours=3)) == 0
    assert scan_db.execute("select count(*) from privacy.suppression_scans").fetchall() == [(3,)]


def test_erasure_request_deletes_the_whole_person_by_plain_joins(scan_db, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cx_pipeline.privacy.erasure import execute_erasure_requests

    at = datetime(2026, 11, 2, tzinfo=UTC)
    scan_db.execute("create schema raw")
    scan_db.execute("create schema marts")
    scan_db.execute(
        """
        create table raw.erasure_requests as select * from (values
            ('ER-9', '  Jo@Example.com ', null, null, ?::timestamptz, 'f.csv', 2, ?::timestamptz)
        ) as v(request_id, email, phone, user_id, requested_at, _source_file, _source_line, _loaded_at)
        """,
        [at, at],
    )
    scan_db.execute(
        """
        create table marts.customer_identity_map as select * from (values
            ('email', 'jo@example.com', 'cx_1'), ('phone', '+15551234567', 'cx_1'),
            ('user_id', 'U1', 'cx_1'), ('email', 'ann@example.com', 'cx_2')
        ) as v(identifier_type, identifier_value, customer_id)
        """
    )
    scan_db.execute(
        """
        create table marts.fct_touchpoints as select * from (values
            ('segment:m1', 'cx_1', 'page', null),
            ('support:t1', null, 'ticket', 'Customer (555) 123-4567 called'),
            ('segment:m2', 'cx_2', 'page', null)
        ) as v(touchpoint_id, customer_id, type, detail)
        """
    )
    report = execute_erasure_requests(scan_db, run_id="r", now=at)
    assert [r.request.request_id for r in report.requests] == ["ER-9"]
    assert report.removed_by_place() == {
        "marts.customer_identity_map": 3,
        "marts.fct_touchpoints": 2,
        "raw.erasure_requests": 1,
    }
    left = scan_db.execute("select touchpoint_id from marts.fct_touchpoints").fetchall()
    assert left == [("segment:m2",)]
    suppressed = dict(
        scan_db.execute(
            "select identifier_hash, identifier_type from privacy.suppressed_identifiers"
        ).fetchall()
    )
    assert suppressed == {
        keyed_hash("jo@example.com"): "email",
        keyed_hash("+15551234567"): "phone",
        keyed_hash("U1"): "user_id",
    }
    assert scan_db.execute("select count(*) from duckdb_tables() where temporary").fetchall() == [(0,)]


def test_byte_scan_finds_a_formatted_phone_and_an_email_in_binary(tmp_path: Path, monkeypatch) -> None:
    from cx_pipeline.privacy.file_scan import file_byte_hits

    monkeypatch.setenv(keys.KEY_ENV, "g" * 32)
    path = tmp_path / "blob.bin"
    path.write_bytes(
        os.urandom(5000) + b"\x00call ((555) 123-4567 x12\x01" + os.urandom(5000) + b"\x02JO@EXAMPLE.COM\x03"
    )
    needles = {keyed_hash("+15551234567"): "ER-1", keyed_hash("jo@example.com"): "ER-2"}
    assert file_byte_hits(path, needles) == {"+15551234567", "jo@example.com"}


def test_requests_read_phones_with_the_configured_country_code(scan_db) -> None:
    """The re-delivery scrub runs first and must not leave its own phone rules behind for the requests."""
    from datetime import UTC, datetime

    from cx_pipeline.privacy.erasure import ensure_privacy_tables, execute_erasure_requests

    at = datetime(2026, 11, 3, tzinfo=UTC)
    ensure_privacy_tables(scan_db)
    scan_db.execute(
        "insert into privacy.suppressed_identifiers values (?, 'email', 'ER-0', ?)",
        [keyed_hash("x@y.zz"), at],
    )
    scan_db.execute("create schema raw")
    scan_db.execute(
        """
        create table raw.erasure_requests as select * from (values
            ('ER-44', null, '+44 7946 095812', null, ?::timestamptz, 'f.csv', 2, ?::timestamptz)
        ) as v(request_id, email, phone, user_id, requested_at, _source_file, _source_line, _loaded_at)
        """,
        [at, at],
    )
    scan_db.execute(
        "create table raw.support_interactions as select * from (values "
        "('T1', 'call me on 7946 095 812 please', ?::timestamptz), ('T2', 'no phone', ?::timestamptz)"
        ") as v(ticket_id, subject, _loaded_at)",
        [at, at],
    )
    report = execute_erasure_requests(scan_db, run_id="r", now=at, country_code="44")
    assert report.removed_by_place() == {"raw.erasure_requests": 1, "raw.support_interactions": 1}
    assert scan_db.execute("select ticket_id from raw.support_interactions").fetchall() == [("T2",)]


# ------------------------------------------------------------------------------------------ left to the build


def _model(schema: str, name: str, materialized: str, **extra) -> dict:
    return {
        "resource_type": "model",
        "schema": schema,
        "name": name,
        "config": {"materialized": materialized, "enabled": True},
        **extra,
    }


def test_rebuilt_relations_are_selected_table_and_view_models_only() -> None:
    from cx_pipeline.privacy.deferral import rebuilt_relations
    from cx_pipeline.privacy.scan import TableRef

    nodes = {
        "model.a": _model("marts", "dim_customers", "table"),
        "model.b": _model("intermediate", "int_touchpoints_unioned", "incremental"),
        "model.c": _model("staging", "stg_x", "view"),
        "model.d": _model("marts", "not_selected", "table"),
        "model.e": _model("marts", "aliased_model", "table", alias="served_name"),
        "model.f": {
            **_model("marts", "disabled", "table"),
            "config": {"materialized": "table", "enabled": False},
        },
        "seed.g": {"resource_type": "seed", "schema": "seeds", "name": "journey_stages", "config": {}},
        "snapshot.h": {"resource_type": "snapshot", "schema": "snap", "name": "s", "config": {}},
        "model.i": _model("marts", "fct_micro", "microbatch"),
    }
    rebuilt = rebuilt_relations(nodes, lambda node: node["name"] != "not_selected")
    assert rebuilt == {
        TableRef("marts", "dim_customers"),
        TableRef("staging", "stg_x"),
        TableRef("marts", "served_name"),
    }


@pytest.mark.slow
def test_the_runs_deferral_follows_the_manifest_and_the_run_selection() -> None:
    """Derived from the manifest, never a fixed list: every incremental model is scrubbed, every selected
    table model is left to dbt; without the verification or the serving copy in the run nothing is."""
    import json
    from types import SimpleNamespace

    from cx_pipeline.defs.dbt.project import cx360_dbt_project, prepare_dbt_manifest

    prepare_dbt_manifest()
    from cx_pipeline.definitions import defs
    from cx_pipeline.defs.privacy import SERVING_KEY, VERIFICATION_KEY, deferral_plan
    from cx_pipeline.privacy.scan import TableRef

    every_key = set(defs().resolve_asset_graph().get_all_asset_keys())

    def context(keys, step_keys=None):
        run = SimpleNamespace(asset_selection=frozenset(keys), step_keys_to_execute=step_keys)
        return SimpleNamespace(run=run)

    nodes = json.loads(Path(cx360_dbt_project().manifest_path).read_text())["nodes"]
    by_materialization: dict[str, set[TableRef]] = {}
    for node in nodes.values():
        if node["resource_type"] == "model":
            relation = TableRef(node["schema"], node.get("alias") or node["name"])
            by_materialization.setdefault(node["config"]["materialized"], set()).add(relation)
    rebuilt, _ = deferral_plan(context(every_key))
    # A whole job (no asset selection on the run): the job's own selection counts.
    whole_job = SimpleNamespace(
        run=SimpleNamespace(asset_selection=frozenset(), step_keys_to_execute=None),
        job_def=SimpleNamespace(asset_layer=SimpleNamespace(selected_asset_keys=every_key)),
    )
    assert deferral_plan(whole_job)[0] == rebuilt
    assert by_materialization["incremental"] and not rebuilt & by_materialization["incremental"]
    assert TableRef("intermediate", "int_touchpoints_unioned") not in rebuilt
    assert by_materialization["table"] <= rebuilt
    assert not [t for t in rebuilt if t.schema == "raw"]
    assert deferral_plan(context(every_key - {VERIFICATION_KEY}))[0] == set()
    assert deferral_plan(context(every_key - {SERVING_KEY}))[0] == set()
    assert deferral_plan(context(every_key, step_keys=["erasure"]))[0] == set()  # a re-execution
    without_marts = {key for key in every_key if key.path[0] != "marts"}
    assert not [t for t in deferral_plan(context(without_marts))[0] if t.schema == "marts"]


def _small_warehouse(connection, at) -> None:
    """A request for Jo, the previous run's identity map, a raw table and two 'dbt-built' marts."""
    connection.execute("create schema raw")
    connection.execute("create schema marts")
    connection.execute(
        """
        create table raw.erasure_requests as select * from (values
            ('ER-9', 'jo@example.com', null, null, ?::timestamptz, 'f.csv', 2, ?::timestamptz)
        ) as v(request_id, email, phone, user_id, requested_at, _source_file, _source_line, _loaded_at)
        """,
        [at, at],
    )
    connection.execute(
        "create table raw.crm_contacts as select * from (values "
        "('C1', 'jo@example.com', ?::timestamptz), ('C2', 'ann@example.com', ?::timestamptz)"
        ") as v(contact_id, email, _loaded_at)",
        [at, at],
    )
    connection.execute(
        """
        create table marts.customer_identity_map as select * from (values
            ('email', 'jo@example.com', 'cx_1'), ('crm_contact_id', 'C1', 'cx_1'),
            ('email', 'ann@example.com', 'cx_2')
        ) as v(identifier_type, identifier_value, customer_id)
        """
    )
    # Rows that hold only Jo's customer id: the suppression list (identifiers) alone would not see them.
    connection.execute(
        "create table marts.fct_touchpoints as select * from (values "
        "('segment:m1', 'cx_1'), ('segment:m2', 'cx_2')) as v(touchpoint_id, customer_id)"
    )


def test_rebuilt_tables_are_left_to_the_build_and_checked_after_it(tmp_path: Path, monkeypatch) -> None:
    """The erasure scrubs raw only; a build that did not replace the marts fails the verification (Jo's
    customer id is found, through the deferral's hashes); once they are rebuilt it passes, compacts and
    forgets the deferral."""
    from datetime import UTC, datetime

    from cx_pipeline.privacy.deferral import has_deferrals, outstanding_tables
    from cx_pipeline.privacy.erasure import execute_erasure_requests
    from cx_pipeline.privacy.maintenance import verify_after_build
    from cx_pipeline.privacy.scan import TableRef

    monkeypatch.setenv(keys.KEY_ENV, "h" * 32)
    path = tmp_path / "w.duckdb"
    at = datetime(2026, 11, 4, tzinfo=UTC)
    connection = duckdb.connect(str(path), config={"force_compression": "uncompressed"})
    try:
        _small_warehouse(connection, at)
        rebuilt = {TableRef("marts", "customer_identity_map"), TableRef("marts", "fct_touchpoints")}
        report = execute_erasure_requests(connection, run_id="r1", now=at, rebuilt=rebuilt)
        assert report.removed_by_place() == {"raw.crm_contacts": 1, "raw.erasure_requests": 1}
        assert set(report.deferred_tables) == rebuilt
        assert outstanding_tables(connection) == rebuilt
        # Not scrubbed: left to the build.
        assert connection.execute("select count(*) from marts.fct_touchpoints").fetchall() == [(2,)]
    finally:
        connection.close()

    def open_connection():
        return contextlib.closing(duckdb.connect(str(path)))

    # The build failed (nothing was rebuilt): the verification finds Jo and records nothing.
    failed = verify_after_build(open_connection, path, run_id="r1", byte_scan=False)
    assert not failed.verified
    assert failed.leftovers == {"marts.customer_identity_map": 2, "marts.fct_touchpoints": 1}
    # The next run's build replaces the marts from the scrubbed raw tables.
    with open_connection() as connection:
        assert has_deferrals(connection)
        connection.execute(
            "create or replace table marts.customer_identity_map as "
            "select 'email' as identifier_type, 'ann@example.com' as identifier_value, "
            "'cx_2' as customer_id"
        )
        connection.execute(
            "create or replace table marts.fct_touchpoints as "
            "select 'segment:m2' as touchpoint_id, 'cx_2' as customer_id"
        )
        connection.execute("checkpoint")
    assert b"jo@example.com" in path.read_bytes()  # freed and deleted blocks keep the old bytes
    passed = verify_after_build(open_connection, path, run_id="r2", byte_scan=True)
    assert passed.verified and passed.clean and passed.compaction is not None
    assert b"jo@example.com" not in path.read_bytes()
    with open_connection() as connection:
        assert not has_deferrals(connection)
        assert connection.execute("select count(*) from privacy.erasure_verifications").fetchall() == [(1,)]
    # Nothing new since: no scan, no compaction.
    assert verify_after_build(open_connection, path, run_id="r3").reason


def test_a_run_without_dbt_scrubs_the_tables_a_failed_build_left(tmp_path: Path, monkeypatch) -> None:
    from datetime import UTC, datetime, timedelta

    from cx_pipeline.privacy.deferral import outstanding_tables
    from cx_pipeline.privacy.erasure import execute_erasure_requests
    from cx_pipeline.privacy.scan import TableRef

    monkeypatch.setenv(keys.KEY_ENV, "i" * 32)
    at = datetime(2026, 11, 5, tzinfo=UTC)
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        _small_warehouse(connection, at)
        rebuilt = {TableRef("marts", "customer_identity_map"), TableRef("marts", "fct_touchpoints")}
        execute_erasure_requests(connection, run_id="r1", now=at, rebuilt=rebuilt)
        # The build failed; the next run has no dbt: it scrubs the left tables itself, by keyed hashes.
        report = execute_erasure_requests(connection, run_id="r2", now=at + timedelta(hours=1))
        assert report.outstanding_rows_removed == 3
        assert connection.execute("select touchpoint_id from marts.fct_touchpoints").fetchall() == [
            ("segment:m2",)
        ]
        assert outstanding_tables(connection) == set()
    finally:
        connection.close()


@pytest.mark.slow
def test_the_verification_asset_fails_the_run_on_a_planted_leftover(tmp_path: Path, monkeypatch) -> None:
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest
    from cx_pipeline.privacy.erasure import ensure_privacy_tables

    monkeypatch.setenv(keys.KEY_ENV, "j" * 32)
    monkeypatch.delenv("CX360_DUCKDB_FORCE_COMPRESSION", raising=False)
    prepare_dbt_manifest()
    from cx_pipeline.defs.privacy import erasure_verification_asset

    erasure_verification = erasure_verification_asset()

    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("CX360_WAREHOUSE", str(path))  # the file the step compacts
    connection = duckdb.connect(str(path))
    try:
        ensure_privacy_tables(connection)
        connection.execute(
            "insert into privacy.suppressed_identifiers values (?, 'email', 'ER-1', now())",
            [keyed_hash("jo@example.com")],
        )
        connection.execute("insert into privacy.erasure_audit values ('ER-1', now(), 'r0', 'raw.x', 1)")
        connection.execute("create schema marts")
        connection.execute("create table marts.planted as select 'Write to JO@example.com' as note")
    finally:
        connection.close()
    resources = {"duckdb": DuckDBResource(database=str(path))}
    result = dg.materialize([erasure_verification], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "still in the warehouse" in str(failure.event_specific_data.error)
    # Removed: the next run passes.
    with contextlib.closing(duckdb.connect(str(path))) as connection:
        connection.execute("drop table marts.planted")
    result = dg.materialize([erasure_verification], resources=resources)
    metadata = result.asset_materializations_for_node("privacy__erasure_verification")[0].metadata
    assert metadata["verified"].value is True and metadata["warehouse_compacted"].value is True
    assert metadata["byte_scan"].value is False  # not in forensic mode


def test_requests_within_the_execution_window_wait_but_leave_the_exports_at_once(
    tmp_path: Path, monkeypatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from cx_pipeline.privacy.erasure import execute_erasure_requests
    from cx_pipeline.settings import ERASURE_WINDOW_HOURS

    monkeypatch.setenv(keys.KEY_ENV, "k" * 32)
    monkeypatch.delenv(ERASURE_WINDOW_HOURS.name, raising=False)
    assert ERASURE_WINDOW_HOURS.read() == timedelta(0)  # default: executed on the next run, as before
    monkeypatch.setenv(ERASURE_WINDOW_HOURS.name, "48")
    assert ERASURE_WINDOW_HOURS.read() == timedelta(hours=48)
    for bad in ("-1", "soon", str(24 * 40)):
        monkeypatch.setenv(ERASURE_WINDOW_HOURS.name, bad)
        with pytest.raises(ValueError, match=ERASURE_WINDOW_HOURS.name):
            ERASURE_WINDOW_HOURS.read()

    at = datetime(2026, 11, 6, tzinfo=UTC)
    exports = tmp_path / "exports"
    (exports / "audience_x").mkdir(parents=True)
    (exports / "audience_x" / "audience_x.csv").write_text("email\njo@example.com\n")
    (exports / "audience_y").mkdir()
    (exports / "audience_y" / "audience_y.csv").write_text("email\nann@example.com\n")
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        _small_warehouse(connection, at)
        waiting = execute_erasure_requests(
            connection, exports_dir=exports, now=at + timedelta(hours=1), window=timedelta(hours=24)
        )
        assert waiting.requests == [] and [r.request_id for r in waiting.waiting] == ["ER-9"]
        assert waiting.export_rows_held_back == 1
        assert not (exports / "audience_x" / "audience_x.csv").exists()
        assert (exports / "audience_y" / "audience_y.csv").exists()
        assert connection.execute("select count(*) from raw.crm_contacts").fetchall() == [(2,)]
        assert connection.execute("select count(*) from privacy.erasure_log").fetchall() == [(0,)]
        # Once the window has passed, the next run executes it.
        due = execute_erasure_requests(
            connection, exports_dir=exports, now=at + timedelta(hours=25), window=timedelta(hours=24)
        )
        assert [r.request.request_id for r in due.requests] == ["ER-9"] and due.waiting == []
        assert connection.execute("select count(*) from raw.crm_contacts").fetchall() == [(1,)]
    finally:
        connection.close()


def test_nothing_left_to_the_build_means_one_compaction_before_it(tmp_path: Path, monkeypatch) -> None:
    """A run with nothing to leave to dbt compacts in the erasure step (the asset does), so the verification
    scans but does not rewrite the file again."""
    from datetime import UTC, datetime

    from cx_pipeline.privacy.erasure import execute_erasure_requests
    from cx_pipeline.privacy.maintenance import compact_database, verify_after_build

    monkeypatch.setenv(keys.KEY_ENV, "l" * 32)
    path = tmp_path / "w.duckdb"
    at = datetime(2026, 11, 7, tzinfo=UTC)
    connection = duckdb.connect(str(path))
    try:
        _small_warehouse(connection, at)
        report = execute_erasure_requests(connection, run_id="r1", now=at)
        assert report.deferred_tables == [] and report.rows_removed == 5
    finally:
        connection.close()
    compact_database(path)
    result = verify_after_build(
        lambda: contextlib.closing(duckdb.connect(str(path))), path, run_id="r1", byte_scan=False
    )
    assert result.verified and result.compaction is None
