"""One Dagster asset per source: ``raw/<source>`` loads ``<landing>/<source>/`` into ``raw.<source>``.

Thin glue: the work is ``cx_pipeline.ingestion.loader.load_source`` (see docs/ingestion.md). A file that
cannot be read at all fails the asset with ``dg.Failure`` after the source's good files were committed;
other sources are separate assets and are not affected.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from cx_pipeline.contracts import SOURCE_NAMES, raw_table_columns
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.ingestion.loader import SourceLoadResult, load_source
from cx_pipeline.ingestion.reporting import (
    failure_message,
    files_markdown,
    markdown_table,
    preview_rows,
    source_description,
    table_counts,
)
from cx_pipeline.operations import require_landing_dir
from cx_pipeline.settings import Paths

INGESTION_GROUP = "ingestion"


def raw_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source])


RAW_ASSET_KEYS: list[dg.AssetKey] = [raw_asset_key(source) for source in SOURCE_NAMES]


def column_schema(source: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, type_.lower()) for name, type_ in raw_table_columns(source).items()]
    )


def _metadata(conn, source: str, result: SourceLoadResult) -> dict[str, object]:
    counts = table_counts(conn, source)
    newest = next((f.file_path for f in reversed(result.loaded)), None)
    columns, rows = preview_rows(conn, source, newest)
    return {
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "rows_duplicate": result.rows_duplicate,
        "files_loaded": len(result.loaded),
        "files_replaced": len(result.replaced),
        "files_skipped": len(result.skipped),
        "files_rejected": len(result.rejected),
        "files_still_rejected": len(result.still_rejected),
        "files_ignored": len(result.ignored_files),
        "files": dg.MetadataValue.md(files_markdown(result)),
        "table_rows_duplicate": counts.duplicates,
        "table_files": counts.files,
        "dagster/row_count": counts.rows,
        "dagster/column_schema": column_schema(source),
        "dagster/table_name": f"raw.{source}",
        "preview": dg.MetadataValue.md(
            (f"Rows of {newest}:\n\n" if newest else "First rows of the table:\n\n")
            + markdown_table(columns, rows)
        ),
    }


def build_raw_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(source),
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description=source_description(source),
        metadata={
            "dagster/column_schema": column_schema(source),
            "dagster/table_name": f"raw.{source}",
        },
    )
    def _raw_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        paths = Paths.from_env()
        # A missing folder (a typo, an unmounted share) fails here, before the warehouse is touched.
        require_landing_dir(paths.landing)
        with duckdb.get_connection() as conn:
            result = load_source(
                conn,
                source,
                paths.landing,
                paths.quarantine,
                run_id=context.run_id,
                log=context.log.info,
            )
            metadata = _metadata(conn, source, result)
        for still in result.still_rejected:
            context.log.warning(
                f"{still.file_path} was rejected earlier and has not changed since: {still.reason}"
            )
        if result.rejected:
            raise dg.Failure(description=failure_message(result), metadata=metadata, allow_retries=False)
        return dg.MaterializeResult(metadata=metadata)

    return _raw_asset


RAW_ASSETS: list[dg.AssetsDefinition] = [build_raw_asset(source) for source in SOURCE_NAMES]


@dg.definitions
def ingestion_definitions() -> dg.Definitions:
    return dg.Definitions(assets=RAW_ASSETS)
