"""The landing sensor and the daily schedule."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest
from ingestion_fixtures import GOOD_LANDING, copy_landing

from cx_pipeline.defs.automation import daily_full_pipeline, full_pipeline_job, landing_files_sensor
from cx_pipeline.defs.ingestion import raw_asset_key
from cx_pipeline.ingestion.watch import SETTLE_SECONDS, detect_changes, landing_snapshot, load_cursor

OLD = time.time_ns() - 3_600 * 10**9


def _age(root: Path) -> None:
    """Make every file look written an hour ago (settled)."""
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(OLD, OLD))


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_landing(GOOD_LANDING, tmp_path / "landing", ["cart_events", "nps_responses"])
    _age(root)
    monkeypatch.setenv("CX360_LANDING_DIR", str(root))
    return root


def _tick(cursor: str | None = None) -> dg.SensorResult:
    return landing_files_sensor(dg.build_sensor_context(cursor=cursor))


def test_detect_changes() -> None:
    now = 10_000 * 10**9
    old, fresh = now - 60 * 10**9, now - 1 * 10**9
    previous = {"cart_events/a.csv": [10, old], "web_events/a.jsonl": [5, old], "gone/x.csv": [1, old]}
    current = {
        "cart_events/a.csv": [10, old],  # unchanged
        "web_events/a.jsonl": [6, old],  # changed
        "nps_responses/new.csv": [3, old],  # new
        "crm_contacts/writing.csv": [1, fresh],  # still being written
    }
    changes = detect_changes(previous, current, now_ns=now)
    assert changes.sources == ["web_events", "nps_responses"]
    assert changes.changed_files == ["nps_responses/new.csv", "web_events/a.jsonl"]
    assert changes.unsettled_files == ["crm_contacts/writing.csv"]
    assert "crm_contacts/writing.csv" not in changes.cursor and "gone/x.csv" not in changes.cursor
    later = detect_changes(changes.cursor, current, now_ns=now + int(SETTLE_SECONDS * 1e9))
    assert later.sources == ["crm_contacts"]


def test_sensor_requests_only_sources_with_new_or_changed_files(landing: Path) -> None:
    first = _tick()
    (request,) = first.run_requests
    assert set(request.asset_selection) == {raw_asset_key("cart_events"), raw_asset_key("nps_responses")}
    assert set(load_cursor(first.cursor)) == {"cart_events/2025-01.csv", "nps_responses/2025-01.csv"}

    quiet = _tick(first.cursor)
    assert not quiet.run_requests and "no new or changed files" in quiet.skip_reason.skip_message

    changed = landing / "nps_responses" / "2025-01.csv"
    changed.write_text(changed.read_text() + "NPS00004,x@example.com,,8,,onboarding,,2025-01-30T00:00:00Z\n")
    _age(landing)
    (request,) = _tick(quiet.cursor).run_requests
    assert request.asset_selection == [raw_asset_key("nps_responses")]
    assert {key.asset_key for key in request.asset_check_keys} == {raw_asset_key("nps_responses")}
    assert dg.AssetCheckKey(raw_asset_key("nps_responses"), "values_in_range") in request.asset_check_keys
    assert request.run_key != first.run_requests[0].run_key


def test_sensor_on_a_missing_landing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX360_LANDING_DIR", str(tmp_path / "nowhere"))
    result = _tick()
    assert not result.run_requests and load_cursor(result.cursor) == {}


def test_snapshot_ignores_foreign_and_in_progress_files(landing: Path) -> None:
    (landing / "cart_events" / "notes.txt").write_text("not data")
    (landing / "cart_events" / "2025-02.csv.tmp").write_text("half")
    (landing / "cart_events" / ".hidden.csv").write_text("x")
    assert set(landing_snapshot(landing)) == {"cart_events/2025-01.csv", "nps_responses/2025-01.csv"}


def test_schedule_and_job() -> None:
    assert full_pipeline_job.name == "full_pipeline"
    assert daily_full_pipeline.cron_schedule == "0 4 * * *"
    assert daily_full_pipeline.execution_timezone == "UTC"
    assert daily_full_pipeline.default_status == dg.DefaultScheduleStatus.STOPPED
    assert landing_files_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert landing_files_sensor.minimum_interval_seconds == 60
