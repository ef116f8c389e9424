"""dbt models as Dagster assets: raw sources -> staging -> intermediate -> marts in one lineage graph."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from cx_pipeline.defs.dbt_project import cx360_dbt_project, prepare_dbt_manifest
from cx_pipeline.defs.resources import WAREHOUSE_POOL

# Without a manifest there is nothing to load; parse once (about 4 s) rather than fail on a fresh clone.
prepare_dbt_manifest()

_NODE_TYPES_KEYED_BY_SCHEMA = {"model", "seed", "snapshot"}


class Cx360DbtTranslator(DagsterDbtTranslator):
    """Keys models by ``[schema, name]`` (``["marts", "dim_customers"]``) and groups them by layer."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in _NODE_TYPES_KEYED_BY_SCHEMA:
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in _NODE_TYPES_KEYED_BY_SCHEMA:
            return dbt_resource_props["schema"]
        return super().get_group_name(dbt_resource_props)


class DbtBuildConfig(dg.Config):
    """Run-time options for the dbt build, settable in the launchpad."""

    full_refresh: bool = False
    vars: dict[str, Any] = {}


@dbt_assets(
    manifest=cx360_dbt_project.manifest_path,
    project=cx360_dbt_project,
    dagster_dbt_translator=Cx360DbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
    pool=WAREHOUSE_POOL,
)
def cx360_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
) -> Iterator[Any]:
    # dbt unit tests check model logic on hand-made inputs; they belong to the test suite
    # (tests/test_dbt_unit_tests.py), not to every production run.
    args = ["build", "--exclude-resource-type", "unit_test"]
    if config.full_refresh:
        args.append("--full-refresh")
    if config.vars:
        args += ["--vars", json.dumps(config.vars)]
    yield from dbt.cli(args, context=context).stream()
