"""Great Expectations asset checks on every raw table (one multi-asset check op per source).

The checks and their GX expectations come from ``cx_pipeline.ingestion.quality.check_plan``; this module
only maps verdicts to ``dg.AssetCheckResult``. Blocking checks (required fields, key uniqueness, enums)
fail with ERROR severity and stop downstream models; the others warn.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.defs.ingestion import raw_asset_key
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.ingestion.quality import CheckVerdict, check_plan, evaluate_checks


def _result(asset_key: dg.AssetKey, verdict: CheckVerdict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=verdict.name,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR if verdict.blocking else dg.AssetCheckSeverity.WARN,
        description=verdict.description,
        metadata=verdict.metadata,
    )


def build_raw_checks(source: str) -> dg.AssetChecksDefinition:
    asset_key = raw_asset_key(source)
    specs = [
        dg.AssetCheckSpec(
            name=plan.name, asset=asset_key, description=plan.description, blocking=plan.blocking
        )
        for plan in check_plan(source)
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"raw_{source}_checks",
        description=f"Great Expectations checks on raw.{source}",
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def _checks(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource):
        selected = {key.name for key in context.selected_asset_check_keys}
        with duckdb.get_connection() as conn:
            verdicts = evaluate_checks(conn, source, selected)
        for verdict in verdicts:
            yield _result(asset_key, verdict)

    return _checks


RAW_CHECKS: list[dg.AssetChecksDefinition] = [build_raw_checks(source) for source in SOURCE_NAMES]


@dg.definitions
def check_definitions() -> dg.Definitions:
    return dg.Definitions(asset_checks=RAW_CHECKS)
