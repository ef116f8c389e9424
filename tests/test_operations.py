"""Operational faults end in errors that name the file and the fix, not in bare OS or DuckDB errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.operations import (
    FileVanishedError,
    LandingDirMissingError,
    is_disk_full,
    read_bytes_or_explain,
    require_landing_dir,
)
from cx_pipeline.serving import ServedRelation, publish_from_warehouse
from cx_pipeline.warehouse import WarehouseLockedError, connect, locked_error

# Holds a write connection until its stdin closes, like a pipeline run or a notebook would.
_HOLD_WRITE_CONNECTION = """
import sys
import duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held_warehouse(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as connection:
        connection.execute("CREATE SCHEMA bi; CREATE TABLE bi.dim_customers AS SELECT 1 AS customer_key")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_CONNECTION, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield warehouse, holder
    finally:
        holder.communicate(timeout=30)  # closes stdin: the holder lets go and exits


def test_a_locked_warehouse_names_the_file_the_holder_and_the_fix(
    held_warehouse: tuple[Path, subprocess.Popen],
) -> None:
    warehouse, holder = held_warehouse
    with pytest.raises(WarehouseLockedError) as raised:
        connect(warehouse, read_only=True)

    error = raised.value
    assert error.path == warehouse
    assert error.pid == holder.pid
    message = str(error)
    assert str(warehouse) in message
    assert f"process {holder.pid} (" in message
    assert f"ps -o pid,args -p {holder.pid}" in message
    assert "serving copy" in message


def test_publishing_from_a_locked_warehouse_raises_the_same_explained_error(
    held_warehouse: tuple[Path, subprocess.Popen], tmp_path: Path
) -> None:
    warehouse, holder = held_warehouse
    with pytest.raises(WarehouseLockedError, match=f"locked by process {holder.pid}"):
        publish_from_warehouse(
            warehouse, tmp_path / "serving", relations=[ServedRelation("bi", "dim_customers")]
        )
    assert not (tmp_path / "serving" / "cx360_bi.duckdb").exists()


def test_lock_errors_are_recognised_by_word_not_by_substring(tmp_path: Path) -> None:
    assert locked_error(tmp_path, duckdb.IOException("Could not read block 12 of the file")) is None
    without_pid = locked_error(tmp_path, duckdb.IOException('Could not set lock on file "x"'))
    assert without_pid is not None and without_pid.pid is None
    assert "locked by another process" in str(without_pid)


def test_a_missing_landing_folder_says_how_to_get_one(tmp_path: Path) -> None:
    missing = tmp_path / "landing"
    with pytest.raises(LandingDirMissingError) as raised:
        require_landing_dir(missing)
    message = str(raised.value)
    assert str(missing) in message and "does not exist" in message
    assert "cx360 generate" in message and "CX360_LANDING_DIR" in message
    assert isinstance(raised.value, FileNotFoundError)  # callers catching the OS error keep working


def test_a_landing_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "landing"
    not_a_folder.write_text("oops")
    with pytest.raises(LandingDirMissingError, match="is not a folder"):
        require_landing_dir(not_a_folder)


def test_an_existing_landing_folder_is_returned(tmp_path: Path) -> None:
    assert require_landing_dir(str(tmp_path)) == tmp_path


def test_a_file_deleted_between_listing_and_reading_is_explained(tmp_path: Path) -> None:
    (tmp_path / "crm_contacts").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "crm_contacts" / name).write_text(f"contact_id\n{name}\n")
    listed = sorted((tmp_path / "crm_contacts").glob("*.csv"))
    listed[1].unlink()  # an upstream sync removes it mid-run

    assert read_bytes_or_explain(listed[0]) == b"contact_id\na.csv\n"
    with pytest.raises(FileVanishedError) as raised:
        read_bytes_or_explain(listed[1])
    message = str(raised.value)
    assert str(listed[1]) in message and "Re-run" in message
    assert raised.value.path == listed[1]
    assert isinstance(raised.value, FileNotFoundError)


def test_disk_full_is_recognised_from_os_and_duckdb_errors() -> None:
    assert is_disk_full(OSError(28, "No space left on device"))
    assert is_disk_full(duckdb.IOException('Could not write file "x": No space left on device'))
    assert not is_disk_full(OSError(13, "Permission denied"))
