"""Erasure (right to be forgotten) and the post-build privacy verification, as Dagster assets.

The asset graph stays acyclic although erasure both reads what dbt builds (the identity map) and changes
what dbt reads (raw):

    raw/* (ingestion) -> privacy/suppressed_identifiers + privacy/erasure_log (this module: erasure)
        -> staging ... marts, marketing, bi (dbt; staging filters on the suppression list)
        -> exports/marketing_audiences -> privacy/erasure_verification (this module: compaction + checks)

Erasure reads the identity map the *previous* run built without declaring it as a dependency; a request
whose person is not in that map yet still erases every direct match. See docs/privacy.md.
"""

import time
from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.defs.dbt_models import cx360_dbt_models
from cx_pipeline.defs.exports import EXPORTS_KEY
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.privacy.erasure import execute_erasure_requests
from cx_pipeline.privacy.maintenance import (
    compact_database,
    suppression_needles,
    verify_erased,
    verify_file_bytes,
)
from cx_pipeline.settings import Paths

SUPPRESSION_KEY = dg.AssetKey(["privacy", "suppressed_identifiers"])
ERASURE_LOG_KEY = dg.AssetKey(["privacy", "erasure_log"])
VERIFICATION_KEY = dg.AssetKey(["privacy", "erasure_verification"])
RAW_KEYS = [dg.AssetKey(["raw", source]) for source in SOURCE_NAMES]


def _republish_serving(connection, paths: Paths, context: dg.AssetExecutionContext) -> bool:
    """Replace the published BI copy from the scrubbed warehouse, if one was published before."""
    try:
        from cx_pipeline.serving import publish_serving_copy, serving_file
    except ImportError:  # pragma: no cover - the serving module is part of the project
        return False
    if not serving_file(paths.serving).exists():
        return False
    publish_serving_copy(connection, paths.serving, source_label=str(paths.warehouse))
    context.log.info("Republished the BI serving copy without the erased people.")
    return True


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SUPPRESSION_KEY,
            deps=RAW_KEYS,
            description=(
                "Keyed hashes (HMAC-SHA256) of every identifier of every erased person. Staging drops "
                "matching records, so re-delivered files never bring them back."
            ),
            kinds={"duckdb"},
        ),
        dg.AssetSpec(
            ERASURE_LOG_KEY,
            deps=RAW_KEYS,
            description="privacy.erasure_log and erasure_audit: executed requests, rows removed per table.",
            kinds={"duckdb"},
        ),
    ],
    group_name="privacy",
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def erasure(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """Execute pending erasure requests everywhere, then compact the warehouse file.

    Runs right after ingestion and before dbt: deletes the people from every schema, the quarantine,
    exports and the serving copy, and scrubs rows loaded since the previous run against the suppression
    list. Metadata carries counts only, never an identifier.
    """
    paths = Paths.from_env()
    started = time.monotonic()
    with duckdb.get_connection() as connection:
        report = execute_erasure_requests(
            connection,
            exports_dir=paths.exports,
            quarantine_dir=paths.quarantine,
            run_id=context.run_id,
            now=datetime.now(UTC),
        )
        scan_seconds = time.monotonic() - started
        republished = _republish_serving(connection, paths, context) if report.requests else False
    compaction = None
    if report.requests or report.redelivered_rows_removed:
        compaction = compact_database(paths.warehouse)
    metadata = {
        "requests_executed": dg.MetadataValue.int(len(report.requests)),
        "request_ids": dg.MetadataValue.json([r.request.request_id for r in report.requests]),
        "rows_removed": dg.MetadataValue.int(report.rows_removed),
        "rows_removed_by_table": dg.MetadataValue.json(report.removed_by_place()),
        "redelivered_rows_removed": dg.MetadataValue.int(report.redelivered_rows_removed),
        "suppression_list_size": dg.MetadataValue.int(report.suppression_list_size),
        "serving_copy_republished": dg.MetadataValue.bool(republished),
        "warehouse_compacted": dg.MetadataValue.bool(compaction is not None),
        "scan_seconds": dg.MetadataValue.float(round(scan_seconds, 2)),
    }
    if compaction is not None:
        metadata["compaction_seconds"] = dg.MetadataValue.float(round(compaction.seconds, 2))
    yield dg.MaterializeResult(asset_key=SUPPRESSION_KEY, metadata=metadata)
    yield dg.MaterializeResult(asset_key=ERASURE_LOG_KEY, metadata={"rows_removed": report.rows_removed})


def _post_build_deps() -> list[dg.AssetKey]:
    keys = [key for key in cx360_dbt_models.keys if key.path[0] in ("marketing", "bi")]
    return [*sorted(keys, key=lambda k: k.to_user_string()), EXPORTS_KEY]


@dg.asset(
    key=VERIFICATION_KEY,
    deps=_post_build_deps(),
    group_name="privacy",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
)
def erasure_verification(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """After dbt and the exports: when anything was erased since the last check, prove that no suppressed
    identifier is left in any table or in the file's bytes. Fails the run if one is.

    The erasure step already rewrote the file after scrubbing every schema, so the blocks dbt's rebuilt tables
    free hold scrubbed data only and the file is normally clean as it stands. Should the byte scan still find
    an identifier (free space of an older table, say), the file is compacted and scanned again: the check is
    what guarantees the bytes are gone, the compaction only runs when it is needed."""
    paths = Paths.from_env()
    with duckdb.get_connection() as connection:
        connection.execute(
            "create table if not exists privacy.erasure_verifications "
            "(verified_at timestamptz, run_id varchar)"
        )
        last = connection.execute("select max(verified_at) from privacy.erasure_verifications").fetchall()[0][
            0
        ]
        changed = connection.execute(
            """
            select count(*) from privacy.erasure_audit
            where ? is null or executed_at > ?
            """,
            [last, last],
        ).fetchall()[0][0]
        if not changed:
            return dg.MaterializeResult(
                metadata={"verified": False, "reason": "nothing erased since last check"}
            )
        started = time.monotonic()
        leftovers = verify_erased(connection)
        verify_seconds = time.monotonic() - started
        needles = suppression_needles(connection)
        connection.execute("checkpoint")  # the byte scan reads the file, not the write-ahead log
    started = time.monotonic()
    byte_hits = verify_file_bytes(paths.warehouse, needles)
    compaction = None
    if byte_hits:
        compaction = compact_database(paths.warehouse)
        byte_hits = verify_file_bytes(paths.warehouse, needles)
    byte_scan_seconds = time.monotonic() - started
    if leftovers or byte_hits:
        raise dg.Failure(
            description="Suppressed identifiers are still in the warehouse after erasure.",
            metadata={
                "rows_left_by_table": dg.MetadataValue.json(leftovers),
                "identifiers_in_file_bytes": dg.MetadataValue.int(len(byte_hits)),
            },
        )
    with duckdb.get_connection() as connection:
        connection.execute(
            "insert into privacy.erasure_verifications values (?, ?)", [datetime.now(UTC), context.run_id]
        )
    return dg.MaterializeResult(
        metadata={
            "verified": True,
            "suppressed_identifiers": len(needles),
            "warehouse_compacted": compaction is not None,
            "verify_seconds": round(verify_seconds, 2),
            "byte_scan_seconds": round(byte_scan_seconds, 2),
            **(
                {
                    "bytes_before_compaction": compaction.bytes_before,
                    "bytes_after_compaction": compaction.bytes_after,
                    "compaction_seconds": round(compaction.seconds, 2),
                }
                if compaction is not None
                else {}
            ),
        }
    )
