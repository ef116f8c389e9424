"""Nothing lost: every hand-written bad file is accounted for line by line (tests/fixtures/landing_bad)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from ingestion_fixtures import BAD_LANDING, connect, copy_landing, manifest, quarantine_rows

from cx_pipeline.ingestion.loader import SourceLoadResult, load_source
from cx_pipeline.sql import compose, qualified_name

# file -> (status, rows_read, rows_loaded, rows_quarantined, {line: error_type} in raw.quarantine)
EXPECTED: dict[str, tuple[str, int, int, int, dict[int | None, str]]] = {
    "cart_events/01_empty.csv": ("empty", 0, 0, 0, {}),
    "cart_events/02_header_only.csv": ("loaded", 0, 0, 0, {}),
    "cart_events/03_semicolon.csv": ("rejected", 2, 0, 2, {2: "file_rejected", 3: "file_rejected"}),
    "cart_events/04_latin1.csv": ("loaded", 3, 1, 2, {2: "invalid_encoding", 4: "invalid_encoding"}),
    "cart_events/05_binary.csv": ("rejected", 1, 0, 1, {None: "unreadable_file"}),
    "cart_events/06_missing_columns.csv": ("rejected", 2, 0, 2, {2: "file_rejected", 3: "file_rejected"}),
    "cart_events/07_short_rows.csv": (
        "loaded",
        5,
        2,
        3,
        {3: "wrong_column_count", 4: "wrong_column_count", 5: "wrong_column_count"},
    ),
    "cart_events/08_contract_violations.csv": (
        "loaded",
        10,
        1,
        9,
        {
            2: "out_of_range",
            3: "invalid_enum",
            4: "invalid_timestamp",
            5: "no_identifier",
            6: "missing_required",
            7: "bad_quoting",
            8: "out_of_range",
            9: "blank_line",
            10: "invalid_integer",
        },
    ),
    "crm_contacts/01_bom_crlf.csv": ("loaded", 1, 1, 0, {}),
    "crm_contacts/03_undecodable_header.csv": ("rejected", 1, 0, 1, {2: "file_rejected"}),
    "nps_responses/01_bad_scores.csv": (
        "loaded",
        4,
        1,
        3,
        {2: "out_of_range", 3: "invalid_integer", 4: "invalid_enum"},
    ),
    "support_interactions/01_bad_scores.jsonl": (
        "loaded",
        5,
        1,
        4,
        {1: "out_of_range", 2: "out_of_range", 3: "invalid_enum", 4: "invalid_integer"},
    ),
    "web_events/01_bad_lines.jsonl": (
        "loaded",
        11,
        2,
        9,
        {
            2: "not_an_object",
            3: "invalid_json",
            4: "not_an_object",
            5: "missing_required",
            6: "invalid_enum",
            7: "invalid_timestamp",
            8: "no_identifier",
            9: "invalid_json_field",
            10: "blank_line",
        },
    ),
}
SOURCES = sorted({path.split("/")[0] for path in EXPECTED})


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, Path, dict]:
    root = tmp_path_factory.mktemp("bad")
    landing = copy_landing(BAD_LANDING, root / "landing")
    conn = connect()
    results: dict[str, SourceLoadResult] = {
        source: load_source(conn, source, landing, root / "quarantine") for source in SOURCES
    }
    return conn, root, results


def test_fixture_list_is_complete() -> None:
    on_disk = {p.relative_to(BAD_LANDING).as_posix() for p in BAD_LANDING.rglob("*") if p.is_file()}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("file_path", sorted(EXPECTED))
def test_every_line_is_loaded_or_quarantined(loaded, file_path: str) -> None:
    conn, _, _ = loaded
    status, read, loaded_rows, quarantined, lines = EXPECTED[file_path]
    source = file_path.split("/")[0]
    (entry,) = [m for m in manifest(conn, source) if m["file_path"] == file_path]
    assert (entry["status"], entry["rows_read"], entry["rows_loaded"], entry["rows_quarantined"]) == (
        status,
        read,
        loaded_rows,
        quarantined,
    )
    assert entry["rows_read"] == entry["rows_loaded"] + entry["rows_quarantined"]
    in_quarantine = quarantine_rows(conn, file_path)
    assert {q["source_line"]: q["error_type"] for q in in_quarantine} == lines
    assert all(q["reason"] and q["source"] == source for q in in_quarantine)
    in_raw = conn.execute(
        compose(
            "SELECT _source_line FROM {table} WHERE _source_file = ? ORDER BY 1",
            table=qualified_name("raw", source),
        ),
        [file_path],
    ).fetchall()
    assert len(in_raw) == loaded_rows
    assert not {line for (line,) in in_raw} & set(lines), "a line is both loaded and quarantined"


def test_quarantine_keeps_the_raw_text(loaded) -> None:
    conn, _, _ = loaded
    rows = {(q["source_file"], q["source_line"]): q for q in quarantine_rows(conn)}
    latin = rows[("cart_events/04_latin1.csv", 2)]
    assert "Caf\\xe9 Mug" in latin["raw_record"] and "0xe9" in latin["reason"]
    semicolon = rows[("cart_events/03_semicolon.csv", 2)]
    assert semicolon["raw_record"].startswith("E100001;CART-1;")
    assert "semicolon-separated" in semicolon["reason"]
    array = rows[("web_events/01_bad_lines.jsonl", 2)]
    assert array["raw_record"] == '["type","track","messageId","bad-0002"]'
    assert array["reason"] == "line is a JSON array, expected an object"
    negative = rows[("cart_events/08_contract_violations.csv", 2)]
    assert negative["reason"] == "quantity is negative (-2)" and negative["error_field"] == "quantity"
    blank = rows[("web_events/01_bad_lines.jsonl", 10)]
    assert blank["raw_record"] == ""


def test_unreadable_file_is_copied_to_the_quarantine_folder(loaded) -> None:
    conn, root, results = loaded
    (binary,) = [f for f in results["cart_events"].files if f.file_path.endswith("05_binary.csv")]
    copy = Path(binary.quarantine_copy)
    assert copy.parent == root / "quarantine" / "cart_events"
    assert copy.read_bytes() == (BAD_LANDING / "cart_events" / "05_binary.csv").read_bytes()
    (row,) = quarantine_rows(conn, "cart_events/05_binary.csv")
    assert row["source_line"] is None and "binary" in row["reason"] and str(copy) in row["reason"]


def test_rejected_files_are_reported_and_not_retried(loaded) -> None:
    conn, root, results = loaded
    rejected = {f.file_path for f in results["cart_events"].rejected}
    assert rejected == {
        "cart_events/03_semicolon.csv",
        "cart_events/05_binary.csv",
        "cart_events/06_missing_columns.csv",
    }
    again = load_source(conn, "cart_events", root / "landing", root / "quarantine")
    assert again.rejected == []
    assert {f.file_path for f in again.still_rejected} == rejected
    assert {f.action for f in again.files} == {"skipped"}


def test_valid_neighbours_of_bad_lines_load_with_their_values(loaded) -> None:
    conn, _, _ = loaded
    assert conn.execute(
        "SELECT response_id, comment, _source_line FROM raw.nps_responses WHERE _source_file LIKE '%bad%'"
    ).fetchall() == [("NPS10004", 'Bad "really" bad', 5)]
    assert conn.execute(
        "SELECT message_id, _source_line FROM raw.web_events ORDER BY _source_line"
    ).fetchall() == [("bad-0001", 1), ("bad-0011", 11)]
    assert conn.execute("SELECT contact_id, _source_line FROM raw.crm_contacts").fetchall() == [
        ("C0000901", 2)
    ]
