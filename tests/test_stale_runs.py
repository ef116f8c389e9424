"""A run whose process was killed must not keep the warehouse pool slot forever."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from cx_pipeline.operations import release_runs_of_dead_processes


@dg.op(pool="duckdb_warehouse")
def _touch_warehouse() -> None:
    return None


@dg.job
def _pooled_job() -> None:
    _touch_warehouse()


def test_runs_of_dead_processes_are_failed_and_their_slots_freed() -> None:
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(_pooled_job)
        dead_process = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_process.wait()
        instance.handle_new_event(
            dg.EventLogEntry(
                error_info=None,
                level="DEBUG",
                user_message="",
                run_id=run.run_id,
                timestamp=0.0,
                dagster_event=dg.DagsterEvent(
                    event_type_value="PIPELINE_START", job_name=run.job_name, pid=dead_process.pid
                ),
            )
        )
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

        released = release_runs_of_dead_processes(instance)

        assert released == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert release_runs_of_dead_processes(instance) == []
