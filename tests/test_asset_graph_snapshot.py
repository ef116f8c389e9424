"""The whole Dagster asset graph, compared with a committed snapshot so every change to it shows in review.

The snapshot (tests/snapshots/asset_graph.json) lists every asset key with its group, kinds, owners, pools,
upstream keys and asset check names, every job with the asset keys it selects, every schedule and every
sensor. A change to the graph fails this test until the snapshot is regenerated and the diff reviewed:

    CX360_UPDATE_SNAPSHOTS=1 .venv/bin/pytest -p no:xdist tests/test_asset_graph_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
UPDATE_ENV = "CX360_UPDATE_SNAPSHOTS"
REGENERATE = f"{UPDATE_ENV}=1 .venv/bin/pytest -p no:xdist tests/test_asset_graph_snapshot.py"


def _keys(keys: Any) -> list[str]:
    return sorted(key.to_user_string() for key in keys)


def _asset_entry(graph: Any, key: dg.AssetKey) -> dict[str, Any]:
    node = graph.get(key)
    entry: dict[str, Any] = {
        "group": node.group_name,
        "execution": node.execution_type.value,
        "deps": _keys(node.parent_keys),
        "checks": sorted(check.name for check in node.check_keys),
    }
    optional = {"kinds": sorted(node.kinds), "owners": sorted(node.owners), "pools": sorted(node.pools or ())}
    entry.update({name: values for name, values in optional.items() if values})
    return entry


def _job_entry(definitions: dg.Definitions, name: str) -> dict[str, Any]:
    job = definitions.resolve_job_def(name)
    return {"assets": _keys(job.asset_layer.selected_asset_keys)}


def _is_implicit_job(name: str) -> bool:
    """Dagster's own jobs (``__ASSET_JOB``, a sensor's anonymous job for an asset selection)."""
    return name.startswith("__")


def _sensor_asset_keys(sensor: dg.SensorDefinition, repository: Any, graph: Any) -> list[str]:
    """The assets a sensor targets directly (an asset selection, run through an anonymous job)."""
    keys = set(sensor.asset_selection.resolve(graph)) if sensor.asset_selection else set()
    for target in sensor.targets:
        if _is_implicit_job(target.job_name):
            keys |= repository.get_job(target.job_name).asset_layer.selected_asset_keys
    return _keys(keys)


def asset_graph_snapshot(definitions: dg.Definitions) -> dict[str, Any]:
    """The graph as plain, sorted data: keys as ``schema/name`` strings, lists sorted."""
    graph = definitions.resolve_asset_graph()
    repository = definitions.get_repository_def()
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in repository.schedule_defs
    }
    sensors = {
        sensor.name: {
            "assets": _sensor_asset_keys(sensor, repository, graph),
            "jobs": sorted(t.job_name for t in sensor.targets if not _is_implicit_job(t.job_name)),
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in repository.sensor_defs
    }
    jobs = {
        job.name: _job_entry(definitions, job.name)
        for job in definitions.resolve_all_job_defs()
        if not _is_implicit_job(job.name)
    }
    return {
        "assets": {
            key.to_user_string(): _asset_entry(graph, key)
            for key in sorted(graph.get_all_asset_keys(), key=lambda key: key.to_user_string())
        },
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": dict(sorted(sensors.items())),
    }


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()
    from cx_pipeline.definitions import defs

    return defs()


def test_the_asset_graph_matches_the_committed_snapshot(definitions: dg.Definitions) -> None:
    current = render(asset_graph_snapshot(definitions))
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current, encoding="utf-8")
    committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if current != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile=f"{SNAPSHOT.name} (committed)",
                tofile=f"{SNAPSHOT.name} (current code)",
            )
        )
        pytest.fail(
            f"The asset graph differs from {SNAPSHOT}. If the change is intended, regenerate the snapshot "
            f"with `{REGENERATE}` and commit it with the change.\n{diff}"
        )


def test_the_snapshot_records_keys_groups_deps_checks_jobs_schedules_and_sensors() -> None:
    @dg.asset(key=["raw", "a"], group_name="ingestion", kinds={"duckdb"}, owners=["team:data"], pool="p")
    def a() -> None: ...

    @dg.asset(key=["marts", "b"], deps=[a, dg.AssetKey(["elsewhere", "c"])])
    def b() -> None: ...

    @dg.asset_check(asset=b, name="not_empty")
    def b_not_empty() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    job = dg.define_asset_job("only_b", selection=[b.key])

    @dg.sensor(target=dg.AssetSelection.assets(a), minimum_interval_seconds=60)
    def watch() -> None: ...

    snapshot = asset_graph_snapshot(
        dg.Definitions(
            assets=[b, a],
            asset_checks=[b_not_empty],
            jobs=[job],
            schedules=[dg.ScheduleDefinition(name="nightly", job=job, cron_schedule="0 4 * * *")],
            sensors=[watch],
        )
    )
    assert list(snapshot["assets"]) == ["elsewhere/c", "marts/b", "raw/a"]
    assert snapshot["assets"]["raw/a"] == {
        "group": "ingestion",
        "execution": "MATERIALIZATION",
        "deps": [],
        "checks": [],
        "kinds": ["duckdb"],
        "owners": ["team:data"],
        "pools": ["p"],
    }
    assert snapshot["assets"]["marts/b"]["deps"] == ["elsewhere/c", "raw/a"]
    assert snapshot["assets"]["marts/b"]["checks"] == ["not_empty"]
    assert snapshot["assets"]["elsewhere/c"]["execution"] == "UNEXECUTABLE"
    assert snapshot["jobs"] == {"only_b": {"assets": ["marts/b"]}}
    assert snapshot["schedules"]["nightly"]["cron"] == "0 4 * * *"
    assert snapshot["sensors"]["watch"]["assets"] == ["raw/a"]


def test_the_group_graph_reads_in_the_order_of_the_flow(definitions: dg.Definitions) -> None:
    """Issue #22.5: collapsed to groups, the lineage reads ingestion -> staging -> intermediate -> marts ->
    bi / marketing -> exports / serving with no cycle (before, `privacy` held the start and the end of the
    flow and drew `bi` at the far left)."""
    from cx_pipeline.defs.dbt.translator import FLOW_GROUPS

    graph = definitions.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    groups = {key: graph.get(key).group_name for key in keys}
    assert set(groups.values()) == set(FLOW_GROUPS)
    rank = {group: position for position, group in enumerate(FLOW_GROUPS)}
    backwards = sorted(
        (parent.to_user_string(), key.to_user_string())
        for key in keys
        for parent in graph.get(key).parent_keys
        if parent in groups and rank[groups[parent]] > rank[groups[key]]
    )
    assert backwards == [], "dependencies going against the flow of groups"
    group_edges = {
        (groups[parent], groups[key])
        for key in keys
        for parent in graph.get(key).parent_keys
        if parent in groups and groups[parent] != groups[key]
    }
    assert ("ingestion", "staging") in group_edges and ("marts", "bi") in group_edges
    assert ("bi", "serving") in group_edges and ("marketing", "exports") in group_edges


def test_bi_assets_are_keyed_by_the_table_they_write(definitions: dg.Definitions) -> None:
    keys = {key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()}
    assert {"bi/dim_customers", "bi/fct_touchpoints", "bi/fct_journey_stage_history"} <= keys
    assert not {key for key in keys if key.startswith("bi/bi_")}
