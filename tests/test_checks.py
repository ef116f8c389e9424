"""Great Expectations checks on the raw tables: each passes on good data and fails on bad data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from ingestion_fixtures import GOOD_LANDING, connect, copy_landing

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.ingestion import quality
from cx_pipeline.ingestion.loader import load_source
from cx_pipeline.ingestion.quality import (
    QUARANTINE_CHECK,
    SAMPLE_SEED,
    ExpectationSpec,
    _to_pandas,
    check_plan,
    evaluate_checks,
    fetch_check_frame,
    run_expectations,
)
from cx_pipeline.sql import compose, identifiers, qualified_name

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    root = tmp_path_factory.mktemp("checks")
    landing = copy_landing(GOOD_LANDING, root / "landing")
    conn = connect()
    for source in SOURCE_NAMES:
        load_source(conn, source, landing, root / "quarantine")
    return conn


@pytest.fixture
def bad_cart(good: duckdb.DuckDBPyConnection):
    """raw.cart_events with rows that only a broken loader (or a manual insert) could produce."""
    conn = good.cursor()
    conn.execute("BEGIN")
    conn.execute(
        """
        INSERT INTO raw.cart_events (event_id, cart_id, user_id, event_type, channel, quantity, unit_price,
                                     occurred_at, _source_file, _source_line, _is_duplicate)
        VALUES ('E000001', 'C9', 'U9', 'item_added', 'web', 1, 1, '2025-01-01T00:00:00Z', 'x', 1, false),
               ('E900002', NULL, 'U9', 'teleported', 'web', -3, 1, '2025-01-01T00:00:00Z', 'x', 2, false),
               ('E900003', 'C9', 'U9', 'item_added', 'web', 1, 1, '2027-06-01T00:00:00Z', 'x', 3, false),
               ('E900004', 'C9', 'U9', 'item_added', 'web', 1, 1, '2025-01-01T00:00:00Z', 'x', 4, true)
        """
    )
    conn.execute(
        """
        INSERT INTO raw.loaded_files (source, file_path, rows_read, rows_loaded, rows_quarantined, status)
        VALUES ('cart_events', 'cart_events/x.csv', 100, 80, 20, 'loaded')
        """
    )
    yield conn
    conn.execute("ROLLBACK")


def _by_name(verdicts) -> dict:
    return {v.name: v for v in verdicts}


@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_every_check_passes_on_good_data(good, source: str) -> None:
    verdicts = evaluate_checks(good.cursor(), source, now=NOW)
    assert [v.name for v in verdicts] == [p.name for p in check_plan(source, NOW)]
    failed = {v.name: v.description for v in verdicts if not v.passed}
    assert not failed
    for verdict in verdicts:
        if verdict.name != QUARANTINE_CHECK:
            assert verdict.metadata["rows_checked"] > 0 and verdict.metadata["sampled"] is False


def test_every_check_fails_on_bad_data(bad_cart) -> None:
    verdicts = _by_name(evaluate_checks(bad_cart, "cart_events", now=NOW))
    assert {name for name, v in verdicts.items() if not v.passed} == {
        "required_fields_not_null",
        "record_key_unique",
        "enum_values_allowed",
        "timestamps_plausible",
        "values_in_range",
        QUARANTINE_CHECK,
    }
    enums = verdicts["enum_values_allowed"]
    assert enums.blocking and "teleported" in enums.description
    (event_type,) = [e for e in enums.metadata["expectations"] if e["columns"] == ["event_type"]]
    assert event_type["unexpected_count"] == 1 and event_type["unexpected_values"] == ["teleported"]
    key = verdicts["record_key_unique"]
    assert key.metadata["unexpected_count"] == 2 and "E000001" in key.description
    assert verdicts["timestamps_plausible"].blocking is False
    assert "2027-06-01" in verdicts["timestamps_plausible"].description
    assert verdicts["values_in_range"].metadata["expectations"][0]["unexpected_values"] == ["-3"]
    share = verdicts[QUARANTINE_CHECK]
    assert share.metadata["rows_quarantined"] == 20 and share.metadata["quarantine_share"] > 0.05


def test_duplicates_are_not_validated(good) -> None:
    """A re-delivery flagged _is_duplicate does not break key uniqueness."""
    conn = good.cursor()
    assert conn.execute("SELECT count(*) FROM raw.cart_events WHERE _is_duplicate").fetchall() == [(1,)]
    assert _by_name(evaluate_checks(conn, "cart_events", {"record_key_unique"}, now=NOW))[
        "record_key_unique"
    ].passed


def test_large_tables_are_sampled_and_say_so(good) -> None:
    verdicts = evaluate_checks(good.cursor(), "web_events", {"required_fields_not_null"}, max_rows=3, now=NOW)
    (verdict,) = verdicts
    assert verdict.metadata["sampled"] is True and verdict.metadata["rows_checked"] == 3
    assert "sample of 3 of 5" in verdict.metadata["sample_note"]


def test_future_tolerance_is_one_day(good) -> None:
    conn = good.cursor()
    latest = conn.execute("SELECT max(occurred_at) FROM raw.cart_events").fetchall()[0][0]
    just_fine = _by_name(evaluate_checks(conn, "cart_events", {"timestamps_plausible"}, now=latest))
    assert just_fine["timestamps_plausible"].passed
    too_far = latest - timedelta(days=1, seconds=1)
    assert not _by_name(evaluate_checks(conn, "cart_events", {"timestamps_plausible"}, now=too_far))[
        "timestamps_plausible"
    ].passed


def test_gx_glue_reports_counts_and_values_in_order() -> None:
    frame = pd.DataFrame({"a": ["x", "y", "z", None], "b": [1, 2, 3, 4]})
    outcomes = run_expectations(
        frame,
        [
            ExpectationSpec("ExpectColumnValuesToBeInSet", {"column": "a", "value_set": ["x", "y"]}),
            ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "b"}),
            ExpectationSpec("ExpectColumnValuesToBeBetween", {"column": "b", "max_value": 2}),
        ],
    )
    assert [(o.success, o.unexpected_count) for o in outcomes] == [(False, 1), (True, 0), (False, 2)]
    assert outcomes[0].unexpected_values == ("z",)
    assert outcomes[2].unexpected_values == ("3", "4")
    assert run_expectations(frame, []) == []


def test_check_plan_follows_the_contracts() -> None:
    names = {source: [p.name for p in check_plan(source)] for source in SOURCE_NAMES}
    assert "enum_values_allowed" not in names["erasure_requests"]
    assert "values_in_range" in names["nps_responses"] and "values_in_range" not in names["crm_contacts"]
    blocking = {p.name for p in check_plan("cart_events") if p.blocking}
    assert blocking == {"required_fields_not_null", "record_key_unique", "enum_values_allowed"}
    (key,) = [p for p in check_plan("crm_contacts") if p.name == "record_key_unique"]
    assert key.expectations[0].kwargs == {"column_list": ["contact_id", "updated_at"]}


def test_checks_on_an_empty_warehouse_pass(tmp_path: Path) -> None:
    conn = connect()
    verdicts = evaluate_checks(conn, "nps_responses", now=NOW)
    assert all(v.passed for v in verdicts)


def test_failing_blocking_check_stops_downstream_assets(tmp_path: Path, monkeypatch) -> None:
    """Through Dagster: a blocking check failing with ERROR severity keeps downstream assets from running."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from cx_pipeline.defs.checks import build_raw_checks
    from cx_pipeline.defs.ingestion import build_raw_asset, raw_asset_key
    from cx_pipeline.ingestion.schema import ensure_raw_schema

    landing = tmp_path / "landing"
    (landing / "erasure_requests").mkdir(parents=True)
    (landing / "erasure_requests" / "a.csv").write_text(
        "request_id,email,phone,user_id,requested_at\nR1,a@example.com,,,2025-01-01T00:00:00Z\n"
    )
    monkeypatch.setenv("CX360_LANDING_DIR", str(landing))
    monkeypatch.setenv("CX360_QUARANTINE_DIR", str(tmp_path / "quarantine"))
    database = tmp_path / "warehouse.duckdb"
    with connect(database) as conn:
        ensure_raw_schema(conn)
        conn.execute(
            "INSERT INTO raw.erasure_requests (request_id, requested_at, _is_duplicate) "
            "VALUES (NULL, now(), false)"
        )

    @dg.asset(deps=[raw_asset_key("erasure_requests")])
    def downstream() -> None:
        raise AssertionError("must not run after a failed blocking check")

    result = dg.materialize(
        [build_raw_asset("erasure_requests"), build_raw_checks("erasure_requests"), downstream],
        resources={"duckdb": DuckDBResource(database=str(database))},
        raise_on_error=False,
    )
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["required_fields_not_null"].passed
    assert evaluations["required_fields_not_null"].severity == dg.AssetCheckSeverity.ERROR
    assert evaluations["timestamps_plausible"].passed
    assert dg.AssetKey("downstream") not in {e.asset_key for e in result.get_asset_materialization_events()}


@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_check_frame_is_what_duckdb_df_gives(good, source: str) -> None:
    """The Arrow-based fetch gives the frame (values and dtypes) DuckDB's slower ``.df()`` gives."""
    conn = good.cursor()
    columns = list(dict.fromkeys(c for p in check_plan(source) for e in p.expectations for c in e.columns))
    fetched = fetch_check_frame(conn, source, columns).frame
    expected = conn.execute(
        compose(
            "SELECT {columns} FROM {table} WHERE NOT _is_duplicate",
            columns=identifiers(columns),
            table=qualified_name("raw", source),
        )
    ).df()
    pd.testing.assert_frame_equal(fetched, expected)


def test_arrow_conversion_matches_df_on_nulls_decimals_and_integers() -> None:
    conn = connect()
    conn.execute(
        """
        CREATE TABLE t AS SELECT * FROM (VALUES
            (1::BIGINT, NULL::BIGINT, 12.3456::DECIMAL(18,4), 'a', TIMESTAMPTZ '2025-01-01 10:00:00+02'),
            (2, 5, NULL, NULL, NULL),
            (3, -7, 111.99, 'é', TIMESTAMPTZ '1999-12-31 23:59:59.123456Z')
        ) v(a, b, c, d, e)
        """
    )
    expected = conn.execute("SELECT a, b, c, d, e FROM t").df()
    converted = _to_pandas(conn.sql("SELECT a, b, CAST(c AS DOUBLE) AS c, d, e FROM t").to_arrow_table())
    pd.testing.assert_frame_equal(converted, expected)


def test_sample_is_reproducible_and_exact(good) -> None:
    conn = good.cursor()
    first = fetch_check_frame(conn, "web_events", ["message_id", "type"], max_rows=3)
    again = fetch_check_frame(conn, "web_events", ["message_id", "type"], max_rows=3)
    assert first.sampled and len(first.frame) == 3 and first.rows_in_table == 5
    pd.testing.assert_frame_equal(first.frame, again.frame)
    # The sample is the rows with the smallest seeded key hash, whichever way it is computed.
    smallest = conn.execute(
        "SELECT message_id FROM raw.web_events WHERE NOT _is_duplicate "
        "ORDER BY hash(message_id, ?), _source_file, _source_line LIMIT 3",
        [SAMPLE_SEED],
    ).fetchall()
    assert first.frame["message_id"].tolist() == [m for (m,) in smallest]


def test_repeated_key_deliveries_are_sampled_together(good) -> None:
    """Two non-duplicate rows with one key (what record_key_unique looks for) are in or out together."""
    conn = good.cursor()
    conn.execute("BEGIN")
    try:
        conn.execute(
            "INSERT INTO raw.web_events SELECT * REPLACE (_source_line + 1000 AS _source_line) "
            "FROM raw.web_events WHERE NOT _is_duplicate"
        )
        total = conn.execute("SELECT count(*) FROM raw.web_events WHERE NOT _is_duplicate").fetchall()[0][0]
        for max_rows in range(2, total, 2):
            frame = fetch_check_frame(conn, "web_events", ["message_id"], max_rows=max_rows).frame
            counts = frame["message_id"].value_counts()
            assert (counts == 2).all(), (max_rows, counts)
    finally:
        conn.execute("ROLLBACK")


@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_every_source_can_be_sampled(good, source: str) -> None:
    """The key-hash sample works for every record key (compound keys, timestamps in keys)."""
    conn = good.cursor()
    rows = conn.execute(
        compose("SELECT count(*) FROM {table} WHERE NOT _is_duplicate", table=qualified_name("raw", source))
    ).fetchall()[0][0]
    if rows < 2:
        pytest.skip(f"{source} has {rows} row(s) in the fixture")
    verdicts = evaluate_checks(conn, source, max_rows=rows - 1, now=NOW)
    assert all(v.passed for v in verdicts), [v.description for v in verdicts if not v.passed]
    sampled = [v for v in verdicts if v.name != QUARANTINE_CHECK]
    assert all(v.metadata["sampled"] and v.metadata["rows_checked"] == rows - 1 for v in sampled)


def test_sample_without_enough_rows_under_the_prefilter_falls_back(good, monkeypatch) -> None:
    conn = good.cursor()
    expected = fetch_check_frame(conn, "web_events", ["message_id"], max_rows=3).frame
    monkeypatch.setattr(quality, "_sample_hash_bound", lambda max_rows, rows: 0)
    fallback = fetch_check_frame(conn, "web_events", ["message_id"], max_rows=3).frame
    pd.testing.assert_frame_equal(fallback, expected)
