"""Every landing file is either loaded or named with the reason it was not (issues #21.3 and #21.4)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from ingestion_fixtures import GOOD_LANDING, copy_landing

from cx_pipeline.defs.ingestion import LANDING_FOLDER_KEY, landing_folder, source_check_results
from cx_pipeline.ingestion.landing import files_outside_sources, list_landing_files
from cx_pipeline.ingestion.loader import load_source
from cx_pipeline.ingestion.watch import source_of


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CX360_LANDING_SETTLE_SECONDS", "0")
    return copy_landing(GOOD_LANDING, tmp_path / "landing")


def test_files_a_source_does_not_read_are_named_with_the_reason(landing: Path) -> None:
    folder = landing / "cart_events"
    (folder / "2025-03.txt").write_text("event_id\n")
    (folder / "2025-04.csv.gz").write_bytes(b"\x1f\x8b\x08\x00")
    (folder / "2025-05.zip").write_bytes(b"PK\x03\x04")
    (folder / "README").write_text("what these are")
    (folder / ".2025-06.csv.swp").write_text("")
    (folder / "2025-07.csv.part").write_text("event_id\n")
    files, unread = list_landing_files(landing, "cart_events")
    reasons = {f.relative_path: f.reason for f in unread}
    assert [f.relative_path for f in files] == ["cart_events/2025-01.csv"]
    assert reasons["cart_events/2025-03.txt"] == "unsupported format ('.txt'): cart_events reads *.csv"
    assert "compressed or archived" in reasons["cart_events/2025-04.csv.gz"]
    assert "compressed or archived" in reasons["cart_events/2025-05.zip"]
    assert reasons["cart_events/README"] == "unsupported format (no file extension): cart_events reads *.csv"
    assert "hidden or temporary" in reasons["cart_events/.2025-06.csv.swp"]
    assert "still being delivered" in reasons["cart_events/2025-07.csv.part"]


def test_a_source_folder_matches_case_insensitively(landing: Path) -> None:
    (landing / "cart_events").rename(landing / "Cart_Events")
    files, _ = list_landing_files(landing, "cart_events")
    assert [f.relative_path for f in files] == ["Cart_Events/2025-01.csv"]
    assert source_of("Cart_Events/2025-01.csv") == "cart_events"
    assert files_outside_sources(landing) == []


def test_files_outside_source_folders_are_named(landing: Path) -> None:
    (landing / "orders.csv").write_text("order_id\n")
    (landing / "cart_event").mkdir()
    (landing / "cart_event" / "2025-01.csv").write_text("event_id\n")
    unread = {f.relative_path: f.reason for f in files_outside_sources(landing)}
    assert set(unread) == {"orders.csv", "cart_event/2025-01.csv"}
    assert unread["orders.csv"].startswith("not in a source folder")
    assert unread["cart_event/2025-01.csv"].startswith("'cart_event/' is no source folder; the sources are: ")


def test_the_landing_folder_asset_warns_about_them(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX360_LANDING_DIR", str(landing))
    (landing / "Tickets").mkdir()
    (landing / "Tickets" / "2025-01.csv").write_text("ticket_id\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize([landing_folder], instance=instance, raise_on_error=False)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.asset_key == LANDING_FOLDER_KEY and not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "Tickets/2025-01.csv: 'Tickets/' is no source folder" in evaluation.description
    metadata = result.asset_materializations_for_node("raw__landing_folder")[0].metadata
    assert metadata["files_outside_sources"].value == 1


def test_unread_files_fail_the_sources_warning_check(landing: Path, tmp_path: Path) -> None:
    (landing / "cart_events" / "2025-03.txt").write_text("event_id\n")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        result = load_source(conn, "cart_events", landing, tmp_path / "quarantine")
    checks = {check.check_name: check for check in source_check_results("cart_events", result)}
    assert checks["no_rejected_files"].passed
    unread = checks["every_file_read"]
    assert not unread.passed and unread.severity == dg.AssetCheckSeverity.WARN
    assert "cart_events/2025-03.txt: unsupported format" in unread.description


def test_a_file_modified_within_the_settle_time_waits_for_the_next_run(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CX360_LANDING_SETTLE_SECONDS", "60")
    fresh = landing / "cart_events" / "2025-02.csv"
    shutil.copy(landing / "cart_events" / "2025-01.csv", fresh)
    _age(landing / "cart_events" / "2025-01.csv", 3600)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        first = load_source(conn, "cart_events", landing, tmp_path / "quarantine")
        assert [f.file_path for f in first.deferred] == ["cart_events/2025-02.csv"]
        assert "may still be written" in (first.deferred[0].reason or "")
        assert [f.file_path for f in first.loaded] == ["cart_events/2025-01.csv"]
        assert not source_check_results("cart_events", first)[1].passed
        manifest = conn.execute("select file_path from raw.loaded_files order by 1").fetchall()
        assert manifest == [("cart_events/2025-01.csv",)]  # nothing of the fresh file was recorded

        _age(fresh, 3600)  # it settled: the next run loads it
        second = load_source(conn, "cart_events", landing, tmp_path / "quarantine")
    assert [f.file_path for f in second.loaded] == ["cart_events/2025-02.csv"]
    assert second.deferred == []


def test_a_file_growing_while_it_is_read_is_left_whole_for_the_next_run(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer appends while the loader reads: the half-read version (e.g. a truncated last line that
    parses as a wrong but valid value, 1199.00 read as 11.00) must not be committed."""
    path = landing / "cart_events" / "2025-01.csv"
    import cx_pipeline.ingestion.loader as loader

    real = loader.read_physical_lines

    def read_then_the_writer_appends(conn, file_path):
        lines = real(conn, file_path)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("late,line\n")
        return lines

    monkeypatch.setattr(loader, "read_physical_lines", read_then_the_writer_appends)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        result = load_source(conn, "cart_events", landing, tmp_path / "quarantine")
        assert [f.file_path for f in result.deferred] == ["cart_events/2025-01.csv"]
        assert "changed while it was read" in (result.deferred[0].reason or "")
        assert conn.execute("select count(*) from raw.cart_events").fetchone() == (0,)
        assert conn.execute("select count(*) from raw.loaded_files").fetchone() == (0,)
        assert conn.execute("select count(*) from raw.quarantine").fetchone() == (0,)
