"""One Dagster asset per source: ``raw/<source>`` loads ``<landing>/<source>/`` into ``raw.<source>``.

Thin glue: the work is ``cx_pipeline.ingestion.loader.load_source`` (see docs/ingestion.md). A file that
cannot be read at all is quarantined and named by the warning check ``no_rejected_files``; the source's good
files are committed and the run goes on (erasure, dbt, exports and serving are not held back by one bad
delivery). Files left unread (unsupported format, still being written) are named by ``every_file_read``.
``raw/landing_folder`` does the same for the files outside any source folder.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from cx_pipeline.contracts import SOURCE_NAMES, raw_table_columns
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.ingestion.landing import files_outside_sources
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
        "files_deferred": len(result.deferred),
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


REJECTED_FILES_CHECK = "no_rejected_files"
UNREAD_FILES_CHECK = "every_file_read"


def _unread_list(entries: list[tuple[str, str]]) -> str:
    return "\n".join(f"- {path}: {reason}" for path, reason in entries)


def source_check_results(source: str, result: SourceLoadResult) -> list[dg.AssetCheckResult]:
    """The warning checks of one source's load: rejected files, and files not read (with the reasons)."""
    key = raw_asset_key(source)
    rejected = [(f.file_path, f.reason or "") for f in result.rejected]
    unread = [(f.relative_path, f.reason) for f in result.ignored_files]
    unread += [(f.file_path, f.reason or "") for f in result.deferred]
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name=REJECTED_FILES_CHECK,
            passed=not rejected,
            severity=dg.AssetCheckSeverity.WARN,
            description=failure_message(result) if rejected else "No file was rejected in this run.",
            metadata={"files_rejected": len(rejected)},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name=UNREAD_FILES_CHECK,
            passed=not unread,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(unread)} file(s) in {source}'s folder were not read:\n{_unread_list(unread)}"
                if unread
                else f"Every file in {source}'s folder was read."
            ),
            metadata={"files_not_read": len(unread)},
        ),
    ]


def build_raw_asset(source: str) -> dg.AssetsDefinition:
    key = raw_asset_key(source)

    @dg.asset(
        key=key,
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description=source_description(source),
        metadata={
            "dagster/column_schema": column_schema(source),
            "dagster/table_name": f"raw.{source}",
        },
        check_specs=[
            dg.AssetCheckSpec(
                REJECTED_FILES_CHECK,
                asset=key,
                description="No landing file of this source was rejected as unreadable in this run "
                "(warning).",
            ),
            dg.AssetCheckSpec(
                UNREAD_FILES_CHECK,
                asset=key,
                description="Every file in this source's folder was read, none left for its format or "
                "because it was still being written (warning).",
            ),
        ],
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
        checks = source_check_results(source, result)
        for check in checks:
            if not check.passed:
                context.log.warning(check.description)
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return _raw_asset


LANDING_FOLDER_KEY = dg.AssetKey(["raw", "landing_folder"])
OUTSIDE_SOURCES_CHECK = "every_landing_file_is_read"


@dg.asset(
    key=LANDING_FOLDER_KEY,
    group_name=INGESTION_GROUP,
    kinds={"file"},
    description="The landing folder as delivered: its files outside any source folder (at the root, or in a "
    "folder that is no source: a typo, a new system) are named with the reason, never skipped silently. "
    "Source folders match case-insensitively. Reads no file and touches no table.",
    check_specs=[
        dg.AssetCheckSpec(
            OUTSIDE_SOURCES_CHECK,
            asset=LANDING_FOLDER_KEY,
            description="Every file of the landing folder is in a source folder (warning).",
        )
    ],
)
def landing_folder(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    landing = require_landing_dir(Paths.from_env().landing)
    outside = files_outside_sources(landing)
    entries = [(f.relative_path, f.reason) for f in outside]
    check = dg.AssetCheckResult(
        passed=not outside,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(outside)} file(s) of {landing} are in no source folder and were not read:\n"
            + _unread_list(entries)
            if outside
            else "Every file is in a source folder."
        ),
        metadata={"files_outside_sources": len(outside)},
    )
    if outside:
        context.log.warning(check.description)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(landing)),
            "files_outside_sources": len(outside),
            "not_read": dg.MetadataValue.md(
                markdown_table(["file", "reason"], entries) if entries else "none"
            ),
        },
        check_results=[check],
    )


RAW_ASSETS: list[dg.AssetsDefinition] = [build_raw_asset(source) for source in SOURCE_NAMES]
INGESTION_ASSETS: list[dg.AssetsDefinition] = [*RAW_ASSETS, landing_folder]


@dg.definitions
def ingestion_definitions() -> dg.Definitions:
    return dg.Definitions(assets=INGESTION_ASSETS)
