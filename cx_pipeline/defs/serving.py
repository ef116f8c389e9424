"""The read-only serving copy for BI tools, published after the bi and aggregate mart models."""

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from duckdb import IOException as DuckDBIOException

from cx_pipeline.defs.dbt.project import dbt_manifest_nodes
from cx_pipeline.defs.dbt.translator import dbt_asset_key, dbt_node_asset_key
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.serving import SERVED_RELATIONS, PublishResult, ServedRelation, publish_serving_copy
from cx_pipeline.settings import Paths
from cx_pipeline.warehouse import locked_error

SERVING_KEY = dg.AssetKey(["serving", "cx360_bi"])


def served_asset_keys(
    relations: Sequence[ServedRelation], manifest_nodes: Mapping[str, Mapping[str, Any]]
) -> list[dg.AssetKey]:
    """The asset keys of the dbt models that build ``relations``, matched by the relation they write.

    A model's relation is ``schema.alias``, and its alias may differ from its name (the key's last part),
    so look the relation up in the manifest; relations no model builds (yet) get the key a model named
    like the relation would have.
    """
    key_by_relation = {
        (node["schema"], node.get("alias") or node["name"]): key
        for node in manifest_nodes.values()
        if (key := dbt_node_asset_key(node)) is not None
    }
    return [
        key_by_relation.get((relation.schema, relation.name), dbt_asset_key(relation.schema, relation.name))
        for relation in relations
    ]


@functools.cache
def cx360_bi_asset() -> dg.AssetsDefinition:
    """The serving copy as an asset. Its deps are read from the dbt manifest, so it is built on first use
    (when the code location loads), not on import."""
    return dg.asset(
        key=SERVING_KEY,
        group_name="serving",
        deps=served_asset_keys(SERVED_RELATIONS, dbt_manifest_nodes()),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description=(
            "Read-only DuckDB copy of the pseudonymised `bi` schema and the aggregate marts for BI tools "
            "(data/serving/cx360_bi.duckdb, readable by DuckDB 1.4+), replaced atomically on every run. "
            "See docs/serving.md."
        ),
    )(publish_cx360_bi)


# load_from_defs_folder takes only this function's Definitions from a module that has one: list
# every asset of this module here.
@dg.definitions
def serving_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[cx360_bi_asset()])


def publish_cx360_bi(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    paths = Paths.from_env()
    try:
        # The run's own warehouse connection: the snapshot is read through the same DuckDB instance as
        # every other step of this process, in one transaction.
        with duckdb.get_connection() as connection:
            result = publish_serving_copy(connection, paths.serving, source_label=paths.warehouse.name)
    except DuckDBIOException as error:
        locked = locked_error(paths.warehouse, error)
        if locked is None:
            raise
        raise locked from error
    if result.skipped:
        context.log.warning(
            "Not in the warehouse yet, so not served: " + ", ".join(result.skipped) + ". Published the rest."
        )
    if result.unlisted_bi_relations:
        context.log.warning(
            "bi relations not in SERVED_RELATIONS, so not served: " + ", ".join(result.unlisted_bi_relations)
        )
    return dg.MaterializeResult(metadata=publish_metadata(result))


def publish_metadata(result: PublishResult) -> dict[str, dg.MetadataValue]:
    table_rows = [
        dg.TableRecord({"relation": relation, "rows": rows}) for relation, rows in result.row_counts.items()
    ]
    return {
        "path": dg.MetadataValue.path(str(result.path)),
        "size_bytes": dg.MetadataValue.int(result.size_bytes),
        "size_mib": dg.MetadataValue.float(round(result.size_bytes / 2**20, 2)),
        "tables": dg.MetadataValue.table(
            table_rows,
            schema=dg.TableSchema(
                columns=[dg.TableColumn("relation", "string"), dg.TableColumn("rows", "int")]
            ),
        ),
        "row_counts": dg.MetadataValue.json(result.row_counts),
        "dagster/row_count": dg.MetadataValue.int(sum(result.row_counts.values())),
        "publish_seconds": dg.MetadataValue.float(round(result.duration_seconds, 3)),
        "published_at": dg.MetadataValue.timestamp(result.published_at),
        "skipped_missing_relations": dg.MetadataValue.json(list(result.skipped)),
        "warning": dg.MetadataValue.text(
            "Not in the warehouse yet, so not served: " + ", ".join(result.skipped)
            if result.skipped
            else "none"
        ),
        "unlisted_bi_relations": dg.MetadataValue.json(list(result.unlisted_bi_relations)),
        "removed_stale_temp_files": dg.MetadataValue.json([str(path) for path in result.removed_temp_files]),
    }
