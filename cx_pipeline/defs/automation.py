"""When things run: a sensor on the landing folder and a daily schedule for the whole pipeline.

- ``landing_files_sensor`` lists the landing folder every minute and requests one run materializing only
  the raw assets (with their checks) of sources that have new or changed files. Its cursor holds the
  size and mtime of every file it has seen, so it never opens the warehouse (DuckDB admits one process).
  Default status STOPPED: started automatically it would load whatever sits in ``data/landing`` the
  moment ``dagster dev`` starts and take the warehouse's single-writer lock while a developer may be
  running dbt, tests or a notebook on it. Turn it on in the UI (Automation) for unattended operation;
  downstream models then follow via the daily schedule or a manual run.
- ``daily_full_pipeline`` runs the ``full_pipeline`` job (every asset) at 04:00 UTC. Default STOPPED too:
  a deployment decision, switched on where the pipeline runs unattended.
"""

import dagster as dg

from cx_pipeline.defs.ingestion import (
    RAW_ASSET_KEYS,
    REJECTED_FILES_CHECK,
    UNREAD_FILES_CHECK,
    raw_asset_key,
)
from cx_pipeline.ingestion.quality import check_plan
from cx_pipeline.ingestion.watch import detect_changes, dump_cursor, landing_snapshot, load_cursor
from cx_pipeline.settings import Paths

full_pipeline_job = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Every asset: raw ingestion, dbt models, exports.",
)

daily_full_pipeline = dg.ScheduleDefinition(
    name="daily_full_pipeline",
    job=full_pipeline_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily build of the whole pipeline at 04:00 UTC.",
)


@dg.sensor(
    name="landing_files_sensor",
    target=dg.AssetSelection.assets(*RAW_ASSET_KEYS),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Materializes raw/<source> for sources with new or changed landing files.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    landing = Paths.from_env().landing
    changes = detect_changes(load_cursor(context.cursor), landing_snapshot(landing))
    if changes.unsettled_files:
        context.log.info(f"waiting for files still being written: {', '.join(changes.unsettled_files)}")
    if not changes.sources:
        return dg.SensorResult(
            skip_reason=f"no new or changed files under {landing}", cursor=dump_cursor(changes.cursor)
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=changes.run_key,
                asset_selection=[raw_asset_key(source) for source in changes.sources],
                # Only these sources' checks (by default a run request launches every check of the target).
                asset_check_keys=[
                    dg.AssetCheckKey(raw_asset_key(source), name)
                    for source in changes.sources
                    for name in (
                        *(plan.name for plan in check_plan(source)),
                        REJECTED_FILES_CHECK,
                        UNREAD_FILES_CHECK,
                    )
                ],
                tags={"cx360/trigger": "landing_files_sensor"},
            )
        ],
        cursor=dump_cursor(changes.cursor),
    )


@dg.definitions
def automation_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[full_pipeline_job], schedules=[daily_full_pipeline], sensors=[landing_files_sensor]
    )
