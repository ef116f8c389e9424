"""Marketing audience exports: one folder per audience under CX360_EXPORTS_DIR (default data/exports)."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from cx_pipeline.defs.dbt.translator import dbt_asset_key
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.privacy.exports import export_audience, remove_stale_temp_dirs
from cx_pipeline.settings import Paths
from cx_pipeline.sql import compose, qualified_name

EXPORTS_KEY = dg.AssetKey(["exports", "marketing_audiences"])
# The audiences (dbt models in schema marketing) that are exported; each has a row in audience_catalog.
AUDIENCES = (
    "audience_abandoned_cart",
    "audience_viewed_not_bought",
    "audience_win_back",
    "audience_detractor_follow_up",
)
# Exported like the audiences, for the messaging tool's suppression list (keyed hashes only).
SUPPRESSION_EXPORT = "suppression_list"
EXPORTED = (*AUDIENCES, SUPPRESSION_EXPORT)
CATALOG = "marketing.audience_catalog"


@dg.asset(
    key=EXPORTS_KEY,
    deps=[dbt_asset_key("marketing", name) for name in (*EXPORTED, "audience_catalog")],
    group_name="exports",
    pool=WAREHOUSE_POOL,
    kinds={"csv", "parquet"},
    description=(
        "Each marketing audience as CSV + Parquet + manifest.json (row count, purpose, lawful basis, consent "
        "rule, generated_at, source snapshot) in <exports>/<audience>/, replaced atomically. docs/privacy.md."
    ),
)
def marketing_audiences(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    paths = Paths.from_env()
    generated_at = datetime.now(UTC)
    results = {}
    with duckdb.get_connection() as connection:
        catalog = {
            row[0]: dict(zip([d[0] for d in connection.description], row, strict=True))
            for row in connection.execute(
                compose("select * from {catalog}", catalog=qualified_name(*CATALOG.split(".")))
            ).fetchall()
        }
        removed = remove_stale_temp_dirs(paths.exports)
        for audience in EXPORTED:
            entry = catalog.get(audience)
            if entry is None:
                raise dg.Failure(f"{audience} has no row in {CATALOG}: add it before exporting it.")
            manifest = {
                "purpose": entry["purpose"],
                "lawful_basis": entry["lawful_basis"],
                "consent_rule": entry["consent_rule"],
                "selection_rule": entry["selection_rule"],
                "source_snapshot": {
                    "relation": f"marketing.{audience}",
                    "warehouse": str(paths.warehouse),
                    "rules_as_of": entry["audience_as_of"],
                    "dbt_invocation_id": entry["dbt_invocation_id"],
                    "dbt_built_at": entry["built_at"],
                    "dagster_run_id": context.run_id,
                },
            }
            result = export_audience(
                connection,
                paths.exports,
                audience,
                relation=f"marketing.{audience}",
                manifest=manifest,
                generated_at=generated_at,
            )
            results[audience] = result.row_count
    if removed:
        context.log.warning(f"Removed {len(removed)} temp folder(s) left by an interrupted export.")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(paths.exports)),
            "row_counts": dg.MetadataValue.json(results),
            "dagster/row_count": dg.MetadataValue.int(sum(results.values())),
            "generated_at": dg.MetadataValue.timestamp(generated_at),
        }
    )
