"""`cx360 run` tells what it does while it works and never lets two runs share a warehouse (issue #22.7)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from ingestion_fixtures import GOOD_LANDING, copy_landing

from cx_pipeline import cli
from cx_pipeline.operations import (
    RUN_PID_TAG,
    RunInProgressError,
    hold_run_lock,
    release_runs_of_dead_processes,
    run_lock_path,
)
from cx_pipeline.progress import ProgressPrinter, format_elapsed

# Takes the run lock of the warehouse named in argv[1] and holds it until its stdin closes.
_HOLD_RUN_LOCK = """
import sys
from pathlib import Path
from cx_pipeline.operations import hold_run_lock
with hold_run_lock(Path(sys.argv[1])):
    print("holding", flush=True)
    sys.stdin.read()
"""


@dg.asset
def small_table() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 1234})


@dg.asset_check(asset=small_table)
def small_table_has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset_check(asset=small_table)
def small_table_is_fresh() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.WARN, description="2 file(s) not read:\n- a.txt: format"
    )


@dg.asset(deps=[small_table])
def broken_table() -> None:
    raise ValueError("the file was truncated\nsecond line of detail")


def test_progress_prints_a_line_per_step_with_rows_and_the_failure_reason() -> None:
    job = dg.Definitions(
        assets=[small_table, broken_table],
        asset_checks=[small_table_has_rows, small_table_is_fresh],
        jobs=[dg.define_asset_job("both", selection="*")],
    ).resolve_job_def("both")
    out = io.StringIO()
    run_id = "0f0f0f0f-0000-4000-8000-000000000001"
    with (
        dg.instance_for_test() as instance,
        ProgressPrinter(instance, run_id, out, poll_seconds=0.05),
    ):
        result = job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False)
    assert not result.success
    lines = out.getvalue().splitlines()
    assert all(line.startswith("[0:00:") for line in lines), lines
    text = "\n".join(lines)
    assert "small_table: started" in text
    assert "small_table: done in" in text and "(1 asset, 1,234 rows)" in text
    assert "checks passed" in text and "1 FAILED" in text
    assert "check small_table_is_fresh on small_table failed (warning)" in text
    assert "    - a.txt: format" in text
    assert "broken_table: FAILED after" in text and "the file was truncated" in text
    assert "second line of detail" not in text  # one line per event, no traceback


def test_elapsed_time_reads_hours_minutes_seconds() -> None:
    assert format_elapsed(0.4) == "0:00:00"
    assert format_elapsed(3723.9) == "1:02:03"


def test_an_unknown_job_is_one_line_listing_the_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CX360_LANDING_DIR", str(copy_landing(GOOD_LANDING, tmp_path / "landing")))
    monkeypatch.setenv("CX360_WAREHOUSE", str(tmp_path / "cx360.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert cli.main(["run", "--job", "nope", "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert error.startswith("cx360 run: no job named 'nope'; the jobs are: ")
    assert "full_pipeline" in error
    assert not (tmp_path / "cx360.duckdb").exists()


@pytest.fixture
def held_lock(tmp_path: Path):
    warehouse = tmp_path / "cx360.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_RUN_LOCK, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    try:
        yield warehouse, holder
    finally:
        if holder.stdin is not None and not holder.stdin.closed:
            holder.stdin.close()  # the holder lets go and exits
        holder.wait(timeout=30)


def test_a_second_run_refuses_at_once_when_asked_not_to_wait(held_lock) -> None:
    warehouse, holder = held_lock
    with (
        pytest.raises(RunInProgressError, match=f"process {holder.pid}, started ") as raised,
        hold_run_lock(warehouse, wait=False),
    ):
        pass
    assert str(warehouse) in str(raised.value)


def test_a_second_run_says_it_waits_and_runs_after_the_first(held_lock) -> None:
    warehouse, holder = held_lock
    said: list[str] = []

    def let_the_first_finish(message: str) -> None:
        said.append(message)
        holder.stdin.close()  # the first run ends; the lock is ours once its process lets go

    started = time.monotonic()
    with hold_run_lock(warehouse, on_wait=let_the_first_finish):
        assert run_lock_path(warehouse).read_text().startswith(f"process {os.getpid()}, started ")
    assert said == [f"Another cx360 run (process {holder.pid}, started " + said[0].split(", started ")[1]]
    assert "waiting for it to finish" in said[0]
    assert time.monotonic() - started < 30


def test_a_killed_holder_never_blocks_the_next_run(tmp_path: Path) -> None:
    warehouse = tmp_path / "cx360.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_RUN_LOCK, str(warehouse)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
    holder.kill()
    holder.wait(timeout=30)
    with hold_run_lock(warehouse, wait=False):
        pass


def test_a_run_killed_before_its_first_step_is_marked_failed(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    job = dg.Definitions(assets=[small_table], jobs=[dg.define_asset_job("one")]).resolve_job_def("one")
    with dg.instance_for_test() as instance:
        dead = instance.create_run_for_job(job, tags={RUN_PID_TAG: str(gone.pid)})
        alive = instance.create_run_for_job(job, tags={RUN_PID_TAG: str(os.getpid())})
        untagged = instance.create_run_for_job(job)  # e.g. queued from the UI: not ours to judge
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.NOT_STARTED

        assert release_runs_of_dead_processes(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        assert instance.get_run_by_id(untagged.run_id).status == dg.DagsterRunStatus.NOT_STARTED
