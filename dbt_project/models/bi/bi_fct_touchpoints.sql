{#-
    Pseudonymised touchpoints for BI (relation bi.fct_touchpoints). Keys are keyed hashes: customer_key
    (joins bi.dim_customers), touchpoint_key and order_key (an order number can be looked up in the shop
    and leads to the buyer, so it is personal). Left out: source_record_id (message, event, ticket ids that
    lead back to the source systems). Product, channel, campaign, revenue and stage stay. docs/privacy.md.

    Cost: customer_key and order_key are HMACs of each distinct customer and order (joined back), not one
    per row; touchpoint_key is row_pseudonym (one SHA-256 with a key-derived secret, macros/privacy.sql).

    Incremental (docs/operations.md, "Incremental dbt models"): every row is derived (cheap: hashes, no
    writes) and compared with the table on touchpoint_key; only new and changed rows are written
    (delete+insert on touchpoint_key), and the post-hook deletes the keys whose touchpoint is gone. Writing
    the table is what costs, and a daily drop changes few rows. A new key changes every pseudonym, so the
    comparison then rewrites every row by itself. `--full-refresh` rebuilds everything.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='touchpoint_key',
        on_schema_change='fail',
        post_hook=[
            "{{ bi_touchpoints_delete_missing() }}",
        ],
    )
}}
{%- set compared_columns = [
    'customer_key', 'occurred_at', 'source_system', 'touchpoint_type', 'event_detail', 'channel',
    'product_id', 'order_key', 'campaign_source', 'campaign_medium', 'campaign_name', 'revenue',
    'journey_stage', 'is_anonymous_at_time', 'attribution_rule',
] -%}

with touchpoints as not materialized (
    select * from {{ ref('fct_touchpoints') }}
),

customer_keys as (
    select
        customer_id,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key
    from touchpoints
    where customer_id is not null
    group by customer_id
),

order_keys as (
    select
        order_id,
        {{ pseudonymise('order_id', 'order') }} as order_key
    from touchpoints
    where order_id is not null
    group by order_id
),

pseudonymised as (
    select
        {{ row_pseudonym('touchpoints.touchpoint_id', 'touchpoint') }} as touchpoint_key,
        customer_keys.customer_key,
        touchpoints.occurred_at,
        {{ utc_date('touchpoints.occurred_at') }} as occurred_date_utc,
        {{ utc_month('touchpoints.occurred_at') }} as occurred_month_utc,
        touchpoints.source_system,
        touchpoints.touchpoint_type,
        touchpoints.event_detail,
        touchpoints.channel,
        touchpoints.product_id,
        order_keys.order_key,
        touchpoints.campaign_source,
        touchpoints.campaign_medium,
        touchpoints.campaign_name,
        touchpoints.revenue,
        touchpoints.journey_stage,
        touchpoints.is_anonymous_at_time,
        touchpoints.attribution_rule,
    from touchpoints
    left join customer_keys on touchpoints.customer_id = customer_keys.customer_id
    left join order_keys on touchpoints.order_id = order_keys.order_id
),

{%- if is_incremental() %}

built as (
    select * from {{ this }}
),
{%- endif %}

-- On an incremental build: new rows and rows whose content changed (re-attributed, restaged, replaced).
final as (
    select pseudonymised.*
    from pseudonymised
    {%- if is_incremental() %}
        left join built on pseudonymised.touchpoint_key = built.touchpoint_key
        where
            built.touchpoint_key is null
            or {{ columns_differ('pseudonymised', 'built', compared_columns) }}
    {%- endif %}
)

select * from final
