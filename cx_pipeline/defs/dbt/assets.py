"""dbt models as Dagster assets: raw sources -> staging -> intermediate -> marts in one lineage graph.

``@dbt_assets`` reads the manifest when it is applied, so the definition is built on first use
(``cx360_dbt_assets()``, when the code location loads), not when this module is imported.
"""

import functools
import json
import logging
from collections.abc import Collection, Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from cx_pipeline.defs.dbt.project import cx360_dbt_project, dbt_manifest_nodes
from cx_pipeline.defs.dbt.translator import Cx360DbtTranslator, dbt_node_asset_key
from cx_pipeline.defs.resources import WAREHOUSE_POOL


class DbtBuildConfig(dg.Config):
    """Run-time options for the dbt build, settable in the launchpad."""

    full_refresh: bool = False
    vars: dict[str, Any] = {}
    # Column lineage is parsed from every model's compiled SQL after the build: about 100 s of CPU for the
    # whole project on 2 busy cores, whatever the data size. Off: column schemas and row counts only.
    column_lineage: bool = True


@functools.cache
def cx360_dbt_assets() -> dg.AssetsDefinition:
    """Every model, seed and snapshot of the dbt project as one multi-asset, with dbt tests as checks."""
    project = cx360_dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=Cx360DbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=True)
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
        # Row counts (tables; views are not counted) and column schema + lineage on every materialization.
        # On DuckDB dagster-dbt collects them once dbt has exited and released the single-writer lock,
        # through a read-only adapter that closes afterwards (Cx360DbtCliResource): the step's events,
        # materializations included, are therefore reported when the build ends rather than model by model.
        # sqlglot, which derives the lineage, warns about dialect details (EXTRACT from TIMESTAMPTZ) on
        # stderr, where a quiet `cx360 run` would print them between its progress lines.
        logging.getLogger("sqlglot").setLevel(logging.ERROR)
        invocation = dbt.cli(args, context=context)
        yield from (
            invocation.stream()
            .fetch_row_counts()
            .fetch_column_metadata(with_column_lineage=config.column_lineage)
        )

    return cx360_dbt_models


def dbt_asset_keys_in_schemas(schemas: Collection[str]) -> list[dg.AssetKey]:
    """The keys of the dbt build's assets that write to ``schemas``, sorted; read from the manifest."""
    keys = {
        key
        for node in dbt_manifest_nodes().values()
        if (key := dbt_node_asset_key(node)) is not None and node["schema"] in schemas
    }
    return sorted(keys, key=lambda key: key.to_user_string())


@dg.definitions
def dbt_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[cx360_dbt_assets()])
