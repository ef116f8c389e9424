"""Erasure (right to be forgotten) and the post-build privacy verification, as Dagster assets.

The asset graph stays acyclic although erasure both reads what dbt builds (the identity map) and changes
what dbt reads (raw):

    raw/* (ingestion) -> privacy/suppressed_identifiers + privacy/erasure_log (this module: erasure)
        -> staging ... marts, marketing, bi (dbt; staging filters on the suppression list)
        -> exports/marketing_audiences, serving/cx360_bi
        -> privacy/erasure_verification (this module: checks, then one compaction)

Erasure reads the identity map the *previous* run built without declaring it as a dependency; a request
whose person is not in that map yet still erases every direct match. When the same run rebuilds dbt models
(and publishes the serving copy and verifies afterwards), the erasure leaves the tables those models replace
to the build instead of scrubbing them first (cx_pipeline/privacy/deferral.py). See docs/privacy.md.
"""

import functools
import time
from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from cx_pipeline.defs.dbt.assets import cx360_dbt_assets, dbt_asset_keys_in_schemas
from cx_pipeline.defs.dbt.project import dbt_manifest_nodes
from cx_pipeline.defs.dbt.translator import dbt_node_asset_key
from cx_pipeline.defs.exports import EXPORTS_KEY
from cx_pipeline.defs.ingestion import RAW_ASSET_KEYS
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.defs.serving import SERVING_KEY
from cx_pipeline.privacy.deferral import rebuilt_relations
from cx_pipeline.privacy.erasure import current_graph_for_erasure, execute_erasure_requests
from cx_pipeline.privacy.maintenance import (
    compact_database,
    remove_stale_compaction_copies,
    verify_after_build,
)
from cx_pipeline.privacy.resolution_graph import drop_resolution_graph
from cx_pipeline.privacy.scan import TableRef
from cx_pipeline.settings import ERASURE_WINDOW_HOURS, Paths

SUPPRESSION_KEY = dg.AssetKey(["privacy", "suppressed_identifiers"])
ERASURE_LOG_KEY = dg.AssetKey(["privacy", "erasure_log"])
VERIFICATION_KEY = dg.AssetKey(["privacy", "erasure_verification"])
# The verification runs after every model of these schemas: the ones exported or served.
_POST_BUILD_SCHEMAS = ("marketing", "bi")


def _republish_serving(connection, paths: Paths, context: dg.AssetExecutionContext) -> bool:
    """Replace the published BI copy from the scrubbed warehouse, if one was published before."""
    try:
        from cx_pipeline.serving import publish_serving_copy, serving_file
    except ImportError:  # pragma: no cover - the serving module is part of the project
        return False
    if not serving_file(paths.serving).exists():
        return False
    publish_serving_copy(connection, paths.serving, source_label=paths.warehouse.name)
    context.log.info("Republished the BI serving copy without the erased people.")
    return True


def run_asset_keys(context: dg.AssetExecutionContext) -> set[dg.AssetKey]:
    """The asset keys this run materializes: its asset selection, else (a whole job: the selection is
    empty or None) every asset the job selects."""
    selection = context.run.asset_selection
    if not selection:
        selection = context.job_def.asset_layer.selected_asset_keys
    return set(selection)


def _steps_run(context: dg.AssetExecutionContext, *op_names: str) -> bool:
    """False when the run executes only some steps (a re-execution) and one of ``op_names`` is not among
    them."""
    step_keys = context.run.step_keys_to_execute
    return step_keys is None or all(name in step_keys for name in op_names)


def deferral_plan(context: dg.AssetExecutionContext) -> tuple[set[TableRef], str]:
    """The tables this run's dbt build replaces, which the erasure may leave to it; and why (not).

    Only when the run also materializes the verification (which checks for the deferred values and then
    compacts) and the serving copy (republished after the build); otherwise nothing is deferred and the
    erasure scrubs every table, republishes the serving copy and compacts, as a run without dbt needs.
    Which models are rebuilt is read from the dbt manifest at run time (materialization ``table`` or
    ``view``, selected in this run), never listed here.
    """
    keys = run_asset_keys(context)
    missing = [key.to_user_string() for key in (VERIFICATION_KEY, SERVING_KEY) if key not in keys]
    if missing:
        return set(), "not in this run: " + ", ".join(missing)
    if not _steps_run(context, cx360_dbt_assets().op.name, erasure_verification_asset().op.name):
        return set(), "re-execution without the dbt or verification step"
    rebuilt = rebuilt_relations(dbt_manifest_nodes(), lambda node: dbt_node_asset_key(node) in keys)
    if not rebuilt:
        return set(), "no dbt model rebuilt in this run"
    return rebuilt, "rebuilt by dbt in this run"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SUPPRESSION_KEY,
            deps=RAW_ASSET_KEYS,
            description=(
                "Keyed hashes (HMAC-SHA256) of every identifier of every erased person. Staging drops "
                "matching records, so re-delivered files never bring them back."
            ),
            kinds={"duckdb"},
        ),
        dg.AssetSpec(
            ERASURE_LOG_KEY,
            deps=RAW_ASSET_KEYS,
            description="privacy.erasure_log and erasure_audit: executed requests, rows removed per table.",
            kinds={"duckdb"},
        ),
    ],
    # The erasure runs on what was just ingested, before staging reads it: the flow's first group.
    group_name="ingestion",
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def erasure(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """Execute pending erasure requests, before dbt.

    Deletes the people from every table the run's dbt build does not replace (raw, the quarantine,
    incremental models, anything dbt does not write; every table when the run has no build), from exports and
    quarantined files, and scrubs rows loaded since the previous run against the suppression list. The tables
    the build replaces are left to it and checked by the verification after the build, which also compacts
    the file. Without a build and verification in the run, this step republishes the serving copy and
    compacts itself. Metadata carries counts only, never an identifier.
    """
    paths = Paths.from_env()
    # A killed compaction leaves a whole copy of the warehouse beside it: never kept, never left unerased.
    for copy in remove_stale_compaction_copies(paths.warehouse):
        context.log.warning(
            f"Removed {copy.name}, a copy of the warehouse left by an interrupted compaction."
        )
    rebuilt, plan = deferral_plan(context)
    started = time.monotonic()
    # This run's identity graph, when there is someone to resolve: a request delivered with the person's
    # data, or late records tying new identifiers to someone erased earlier (resolution_graph.py).
    current = current_graph_for_erasure(
        duckdb.get_connection, paths.warehouse, paths.warehouse.parent / "logs" / "erasure_graph"
    )
    graph_seconds = time.monotonic() - started
    with duckdb.get_connection() as connection:
        try:
            report = execute_erasure_requests(
                connection,
                exports_dir=paths.exports,
                quarantine_dir=paths.quarantine,
                run_id=context.run_id,
                now=datetime.now(UTC),
                rebuilt=rebuilt,
                window=ERASURE_WINDOW_HOURS.read(),
                current=current,
            )
        finally:
            drop_resolution_graph(connection)
        scan_seconds = time.monotonic() - started - graph_seconds
        scrubbed_served = report.requests or report.late or report.outstanding_rows_removed
        republished = False
        if scrubbed_served and not rebuilt:
            republished = _republish_serving(connection, paths, context)
    compaction = None
    deleted = (
        report.requests or report.late or report.redelivered_rows_removed or report.outstanding_rows_removed
    )
    # One compaction per run: here, unless tables were left to the build (then their old blocks have to
    # leave the file as well, and the verification, in this run whenever anything is deferred, compacts
    # after the build).
    if deleted and not report.deferred_tables:
        compaction = compact_database(paths.warehouse)
    metadata = {
        "requests_executed": dg.MetadataValue.int(len(report.requests)),
        "request_ids": dg.MetadataValue.json([r.request.request_id for r in report.requests]),
        "rows_removed": dg.MetadataValue.int(report.rows_removed),
        "rows_removed_by_table": dg.MetadataValue.json(report.removed_by_place()),
        "redelivered_rows_removed": dg.MetadataValue.int(report.redelivered_rows_removed),
        "outstanding_rows_removed": dg.MetadataValue.int(report.outstanding_rows_removed),
        "tables_left_to_dbt": dg.MetadataValue.int(len(report.deferred_tables)),
        "deferral": dg.MetadataValue.text(plan),
        "requests_waiting": dg.MetadataValue.int(len(report.waiting)),
        "export_rows_held_back": dg.MetadataValue.int(report.export_rows_held_back),
        "suppression_list_size": dg.MetadataValue.int(report.suppression_list_size),
        "serving_copy_republished": dg.MetadataValue.bool(republished),
        "warehouse_compacted": dg.MetadataValue.bool(compaction is not None),
        "scan_seconds": dg.MetadataValue.float(round(scan_seconds, 2)),
        "identity_graph_built": dg.MetadataValue.bool(current is not None),
        "identity_graph_seconds": dg.MetadataValue.float(round(graph_seconds, 2)),
        "erased_earlier_people_found_again": dg.MetadataValue.int(len(report.late)),
    }
    if compaction is not None:
        metadata["compaction_seconds"] = dg.MetadataValue.float(round(compaction.seconds, 2))
    yield dg.MaterializeResult(asset_key=SUPPRESSION_KEY, metadata=metadata)
    yield dg.MaterializeResult(asset_key=ERASURE_LOG_KEY, metadata={"rows_removed": report.rows_removed})


@functools.cache
def erasure_verification_asset() -> dg.AssetsDefinition:
    """The verification as an asset. Its deps are read from the dbt manifest, so it is built on first use
    (when the code location loads), not on import."""
    return dg.asset(
        key=VERIFICATION_KEY,
        # After the serving copy too: it is published from the state this step verifies.
        deps=[*dbt_asset_keys_in_schemas(_POST_BUILD_SCHEMAS), EXPORTS_KEY, SERVING_KEY],
        # The flow's last step: it proves what was served and exported.
        group_name="serving",
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
    )(verify_erasure)


# load_from_defs_folder takes only this function's Definitions from a module that has one: list
# every asset of this module here.
@dg.definitions
def privacy_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[erasure, erasure_verification_asset()])


def verify_erasure(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """After dbt, the exports and the serving copy: when anything was erased, scrubbed or left to the build
    since the last check, prove that no erased value is left in any table, then compact the file once (the
    erasure's deletes and the tables dbt rebuilt leave old bytes in free blocks). In forensic mode
    (uncompressed storage) the compacted file's bytes are scanned too. Fails the run if anything is found;
    the next run then verifies again."""
    paths = Paths.from_env()
    result = verify_after_build(duckdb.get_connection, paths.warehouse, run_id=context.run_id)
    if result.reason:
        return dg.MaterializeResult(metadata={"verified": False, "reason": result.reason})
    if not result.clean:
        raise dg.Failure(
            description="Erased people's values are still in the warehouse after erasure.",
            metadata={
                "rows_left_by_table": dg.MetadataValue.json(result.leftovers),
                "identifiers_in_file_bytes": dg.MetadataValue.int(len(result.byte_hits)),
            },
        )
    metadata: dict[str, object] = {
        "verified": True,
        "suppressed_identifiers": result.needles,
        "warehouse_compacted": result.compaction is not None,
        "verify_seconds": round(result.verify_seconds, 2),
        "byte_scan": result.byte_scan_seconds is not None,
    }
    if result.byte_scan_seconds is not None:
        metadata["byte_scan_seconds"] = round(result.byte_scan_seconds, 2)
    if result.compaction is not None:
        metadata.update(
            {
                "bytes_before_compaction": result.compaction.bytes_before,
                "bytes_after_compaction": result.compaction.bytes_after,
                "compaction_seconds": round(result.compaction.seconds, 2),
            }
        )
    return dg.MaterializeResult(metadata=metadata)
