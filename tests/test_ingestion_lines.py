"""Reading files as numbered physical lines, and the SQL that splits and validates them."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest
from ingestion_fixtures import conn_fixture, landing_fixture, quarantine_dir_fixture, write_file  # noqa: F401

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.ingestion.csv_format import FileRejectedError, parse_header
from cx_pipeline.ingestion.landing import sniff_unreadable
from cx_pipeline.ingestion.lines import LINES_VIEW, read_physical_lines
from cx_pipeline.ingestion.parse import CsvLayout, csv_values_sql, parsed_select_sql
from cx_pipeline.ingestion.schema import ensure_raw_schema
from cx_pipeline.sql import compose, quote_identifier


def _lines(conn: duckdb.DuckDBPyConnection) -> dict[int, str | None]:
    return dict(
        conn.execute(
            compose("SELECT n, line FROM {lines} ORDER BY n", lines=quote_identifier(LINES_VIEW))
        ).fetchall()
    )


def test_every_physical_line_is_numbered_once(conn, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b'head\n  spaced  \n\n\xe9t\xe9\na\x00b\nquote " here\nback\\0slash\nlast')
    lines = read_physical_lines(conn, path)
    assert _lines(conn) == {
        1: "head",
        2: "  spaced  ",
        3: None,  # blank line
        6: 'quote " here',
        7: "back\\0slash",  # a literal backslash-zero is text, not the NUL delimiter
        8: "last",
    }
    bad = {b.line: b for b in lines.bad_lines}
    assert set(bad) == {4, 5}
    assert bad[4].error_type == "invalid_encoding" and bad[4].raw_record == "\\xe9t\\xe9"
    assert "0xe9 at position 1" in bad[4].reason
    assert bad[5].error_type == "nul_byte" and bad[5].raw_record == "a\\x00b"
    assert lines.total == 8


def test_crlf_and_bom_are_stripped(conn, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\r\n1,2\r\n")
    read_physical_lines(conn, path)
    assert _lines(conn) == {1: "a,b", 2: "1,2"}


def test_numbering_survives_many_rejects_in_a_large_parallel_read(conn, tmp_path: Path) -> None:
    rng = random.Random(7)
    total = 120_000
    bad_lines = set(rng.sample(range(1, total + 1), 300)) | {1, 2, total}
    with (tmp_path / "big.txt").open("wb") as handle:
        for n in range(1, total + 1):
            handle.write(b"\xff%d\n" % n if n in bad_lines else b"line %d\n" % n)
    lines = read_physical_lines(conn, tmp_path / "big.txt")
    assert {b.line for b in lines.bad_lines} == bad_lines
    mismatched = conn.execute(
        compose("SELECT count(*) FROM {lines} WHERE line <> 'line ' || n", lines=quote_identifier(LINES_VIEW))
    ).fetchall()[0][0]
    assert mismatched == 0
    assert lines.accepted == total - len(bad_lines)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x1f\x8b\x08\x00rest", "gzip"),
        (b"PK\x03\x04zip", "ZIP"),
        (b"\xff\xfea\x00b\x00", "UTF-16"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"a,b\n1,2\n", None),
        (b"", None),
    ],
)
def test_sniff_unreadable(tmp_path: Path, content: bytes, expected: str | None) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    reason = sniff_unreadable(path)
    assert (reason is None) if expected is None else (expected in reason)


def test_header_mapping_and_rejections() -> None:
    contract = CONTRACTS["erasure_requests"]
    layout = parse_header("request_id, email ,user_id,requested_at,ticket_ref", contract)
    assert layout.positions == {"request_id": 1, "email": 2, "user_id": 3, "requested_at": 4}
    assert layout.extra == (("ticket_ref", 5),)
    with pytest.raises(FileRejectedError, match="semicolon-separated"):
        parse_header("request_id;email;phone;user_id;requested_at", contract)
    with pytest.raises(FileRejectedError, match=r"lacks required column.*requested_at"):
        parse_header("request_id,email", contract)
    with pytest.raises(FileRejectedError, match="repeats"):
        parse_header("request_id,email,email,requested_at", contract)
    with pytest.raises(FileRejectedError, match="empty"):
        parse_header("", contract)


def _parse_csv(conn, source: str, lines: list[str]) -> list[dict]:
    """Run the CSV split + validation SQL over in-memory lines (header = contract order)."""
    contract = CONTRACTS[source]
    ensure_raw_schema(conn, [source])
    conn.execute("CREATE OR REPLACE TEMP TABLE t_lines (n BIGINT, line VARCHAR)")
    conn.executemany("INSERT INTO t_lines VALUES (?, ?)", [(i + 2, line) for i, line in enumerate(lines)])
    layout = CsvLayout(
        header=contract.field_names,
        positions={name: i + 1 for i, name in enumerate(contract.field_names)},
        extra=(),
    )
    values, params = csv_values_sql(contract, layout, quote_identifier("t_lines"))
    relation = conn.execute(
        compose("{parsed} ORDER BY _q_n", parsed=parsed_select_sql(contract, values)), params
    )
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def test_csv_fields_quotes_and_empties(conn) -> None:
    rows = _parse_csv(
        conn,
        "erasure_requests",
        [
            'R1,"a,b@example.com",,U1,2025-01-01T00:00:00Z',
            'R2,"say ""hi""",+49 1,,2025-01-01T00:00:00Z',
            'R3,"",,U3,2025-01-01T00:00:00Z',
            ",x@example.com,,,2025-01-01T00:00:00Z",
            'R5,"unterminated,,U5,2025-01-01T00:00:00Z',
            'R6,a"b,,U6,2025-01-01T00:00:00Z',
            "R7,x@example.com,,U7",
            "   ",
        ],
    )
    first, second, third, fourth, fifth, sixth, seventh, eighth = rows
    assert (first["email"], first["phone"], first["_q_reason"]) == ("a,b@example.com", None, None)
    assert second["email"] == 'say "hi"' and second["phone"] == "+49 1"
    assert third["email"] is None and third["_q_reason"] is None
    assert fourth["_q_error_type"] == "missing_required" and fourth["_q_error_field"] == "request_id"
    assert fifth["_q_error_type"] == "bad_quoting"
    assert sixth["_q_error_type"] == "bad_quoting"
    assert seventh["_q_error_type"] == "wrong_column_count"
    assert seventh["_q_reason"] == "expected 5 columns as in the header, found 4"
    assert eighth["_q_error_type"] == "blank_line"
    assert fifth["_q_raw_record"] == 'R5,"unterminated,,U5,2025-01-01T00:00:00Z'


@pytest.mark.parametrize(
    ("value", "accepted", "utc"),
    [
        ("2025-03-01T10:00:00Z", True, "2025-03-01 10:00:00"),
        ("2025-03-01T10:00:00.123456Z", True, "2025-03-01 10:00:00.123456"),
        ("2025-03-01T10:00:00.5+02:00", True, "2025-03-01 08:00:00.5"),
        ("2025-03-01T10:00:00-0530", True, "2025-03-01 15:30:00"),
        ("2025-03-01 10:00:00", True, "2025-03-01 10:00:00"),
        ("2025-03-01T10:00Z", True, "2025-03-01 10:00:00"),
        (" 2025-03-01T10:00:00Z ", True, "2025-03-01 10:00:00"),
        ("2025-03-01", False, None),
        ("31/02/2026", False, None),
        ("not-a-date", False, None),
        ("2026-13-45T25:61:00Z", False, None),
        ("2025-02-30T10:00:00Z", False, None),
        ("0000-00-00 00:00:00", False, None),
        ("2025-03-01T10:00:00+25:00", False, None),
        ("2025-03-01T24:00:00Z", False, None),
        ("1736071320", False, None),
    ],
)
def test_timestamp_formats(conn, value: str, accepted: bool, utc: str | None) -> None:
    (row,) = _parse_csv(conn, "erasure_requests", [f'R1,a@example.com,,,"{value}"'])
    if accepted:
        assert row["_q_reason"] is None, row["_q_reason"]
        got = conn.execute("SELECT strftime(?::TIMESTAMPTZ, '%Y-%m-%d %H:%M:%S.%f')", [row["requested_at"]])
        assert got.fetchall()[0][0].rstrip("0").rstrip(".") == utc
    else:
        assert row["_q_error_type"] == "invalid_timestamp"
        assert row["_q_reason"] == f"requested_at is not an ISO-8601 timestamp ('{value.strip()[:60]}')" or (
            row["_q_reason"].startswith("requested_at is not an ISO-8601 timestamp")
        )


@pytest.mark.parametrize(
    ("quantity", "price", "error"),
    [
        ("2", "19.99", None),
        ("5.0", "0", None),
        ("-2", "19.99", "quantity is negative (-2)"),
        ("1", "-0.5", "unit_price is negative (-0.5)"),
        ("two", "19.99", "quantity is not an integer ('two')"),
        ("1.5", "19.99", "quantity is not an integer ('1.5')"),
        ("1", "1e3", "unit_price is not a decimal number ('1e3')"),
        ("", "", None),
    ],
)
def test_numbers(conn, quantity: str, price: str, error: str | None) -> None:
    line = f"E1,C1,U1,,,item_added,P1,Shoe,shoes,{quantity},{price},EUR,,web,2025-01-01T00:00:00Z"
    (row,) = _parse_csv(conn, "cart_events", [line])
    assert row["_q_reason"] == error


def test_reason_lists_every_problem_and_type_names_the_first(conn) -> None:
    (row,) = _parse_csv(conn, "cart_events", ["E1,C1,,,,teleported,P1,Shoe,shoes,-1,1,EUR,,fax,soon"])
    assert row["_q_error_type"] == "invalid_enum" and row["_q_error_field"] == "event_type"
    assert row["_q_reason"] == (
        "event_type has an unknown value 'teleported' (allowed: item_added, item_removed, "
        "checkout_started, order_placed, cart_abandoned); quantity is negative (-1); channel has an "
        "unknown value 'fax' (allowed: web, app, store); occurred_at is not an ISO-8601 timestamp "
        "('soon'); no identifier: user_id, email and anonymous_id are all empty"
    )


def test_multiline_quoted_field_is_one_record(conn, landing, quarantine_dir) -> None:
    from cx_pipeline.ingestion.loader import load_source

    write_file(
        landing,
        "nps_responses/2025-01.csv",
        "response_id,email,user_id,score,comment,touchpoint,channel,responded_at\n"
        'N1,a@example.com,,9,"line one\n\nline three",post_purchase,email,2025-01-01T00:00:00Z\n'
        'N2,b@example.com,,3,"never closed,post_support,web,2025-01-01T00:00:00Z\n'
        "N3,c@example.com,,7,ok,relationship,,2025-01-01T00:00:00Z\n",
    )
    result = load_source(conn, "nps_responses", landing, quarantine_dir)
    (file_result,) = result.files
    assert (file_result.rows_read, file_result.rows_loaded, file_result.rows_quarantined) == (3, 2, 1)
    loaded = conn.execute("SELECT response_id, _source_line, comment FROM raw.nps_responses ORDER BY 2")
    assert loaded.fetchall() == [("N1", 2, "line one\n\nline three"), ("N3", 6, "ok")]
    bad = conn.execute("SELECT source_line, error_type FROM raw.quarantine").fetchall()
    assert bad == [(5, "bad_quoting")]


def test_mixed_line_endings_fall_back_to_the_arrow_reader(conn, tmp_path: Path) -> None:
    path = tmp_path / "mixed_endings.jsonl"
    # DuckDB's strict CSV reader refuses the whole file (a CRLF line and a bare CR in an LF file).
    path.write_bytes(b'{"a":1}\n{"a":2}\r\n{"a":"x\ry"}\n\n\xe9\n{"a":6}')
    lines = read_physical_lines(conn, path)
    assert lines.reader == "fallback"
    assert _lines(conn) == {1: '{"a":1}', 2: '{"a":2}', 3: '{"a":"x\ry"}', 4: None, 6: '{"a":6}'}
    assert [(b.line, b.error_type) for b in lines.bad_lines] == [(5, "invalid_encoding")]


def test_glob_characters_in_file_names_are_literal(conn, tmp_path: Path) -> None:
    (tmp_path / "export1.csv").write_text("wrong file\n")
    (tmp_path / "export[1].csv").write_text("right file\n")
    (tmp_path / "what?.csv").write_text("question\n")
    read_physical_lines(conn, tmp_path / "export[1].csv")
    assert _lines(conn) == {1: "right file"}
    read_physical_lines(conn, tmp_path / "what?.csv")
    assert _lines(conn) == {1: "question"}
