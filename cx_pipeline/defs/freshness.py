"""Freshness checks on the customer profile marts: each must have been rebuilt within ``PROFILE_MAX_AGE``.

The daily schedule (``automation.daily_full_pipeline``) rebuilds them at 04:00 UTC; 26 hours leave two hours
for the run itself before a missed or failed day shows as a failed check (severity ERROR: the profile
consumers read is more than a day old). The checks run at the end of every full run, and
``freshness_checks_sensor`` re-evaluates them between runs; it is STOPPED by default like the schedule,
and switched on with it where the pipeline runs unattended (otherwise a development machine that builds
now and then would fail them every day).

(Dagster 1.12+ also offers freshness policies on the asset spec; they are in preview and need
``freshness: enabled: true`` in ``dagster.yaml``, so the checks are what this project relies on.)
"""

from datetime import timedelta

import dagster as dg

from cx_pipeline.defs.dbt.translator import dbt_asset_key

PROFILE_MAX_AGE = timedelta(hours=26)

# The profile and the tables it is read with: the mart, its identity map and histories, and the copies
# marketing tools (consent-gated) and BI tools (pseudonymised) read.
PROFILE_MART_KEYS: tuple[dg.AssetKey, ...] = (
    dbt_asset_key("marts", "dim_customers"),
    dbt_asset_key("marts", "customer_identity_map"),
    dbt_asset_key("marts", "fct_touchpoints"),
    dbt_asset_key("marts", "fct_journey_stage_history"),
    dbt_asset_key("marketing", "customer_profiles"),
    dbt_asset_key("bi", "dim_customers"),
)

PROFILE_FRESHNESS_CHECKS: list[dg.AssetChecksDefinition] = list(
    dg.build_last_update_freshness_checks(
        assets=list(PROFILE_MART_KEYS),
        lower_bound_delta=PROFILE_MAX_AGE,
        severity=dg.AssetCheckSeverity.ERROR,
    )
)

freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=PROFILE_FRESHNESS_CHECKS,
    name="freshness_checks_sensor",
    # The checks have a 26-hour window: every 5 minutes is plenty, and spares a 2-core box the ticks.
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)


# load_from_defs_folder takes only this function's Definitions from a module that has one: list
# everything of this module here.
@dg.definitions
def freshness_definitions() -> dg.Definitions:
    return dg.Definitions(asset_checks=PROFILE_FRESHNESS_CHECKS, sensors=[freshness_checks_sensor])
