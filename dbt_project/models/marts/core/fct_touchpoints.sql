{#-
    Touchpoint history: one row per interaction from every source, attributed to a customer (null for
    visitors never identified) and stamped with the journey stage the customer was in at that moment.
    Rules: docs/journey.md.

    Incremental (docs/operations.md, "Incremental dbt models"): attribution is re-resolved for every
    touchpoint upstream (int_touchpoints_attributed) and compared with the table on touchpoint_id. Rewritten
    (delete+insert on touchpoint_id): every touchpoint that is new or differs in any column but the stage
    (a late event, a re-attribution by retroactive stitching or a merge, a record replaced upstream, also one
    that became unattributed), and every touchpoint of an affected customer, the old and the new customer of
    those touchpoints, whose stages may have moved. A touchpoint gone upstream is deleted by the post-hook.
    `as_of` moving on (unset, it is the latest touchpoint) changes no stage of a touchpoint already built: a
    lapse it adds or removes starts after the previous `as_of`, i.e. after every touchpoint built then
    (fct_journey_stage_history rewrites those customers' spells). A changed `as_of` var, a changed journey var
    or a new pseudonymisation key need `--full-refresh`. `--full-refresh` rebuilds everything.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='touchpoint_id',
        on_schema_change='fail',
        post_hook=[
            "{{ incremental_delete_missing('touchpoint_id', ref('int_touchpoints_attributed')) }}",
        ],
    )
}}
{%- set compared_columns = [
    'customer_id', 'occurred_at', 'source_system', 'source_record_id', 'touchpoint_type', 'event_detail',
    'channel', 'product_id', 'order_id', 'campaign_source', 'campaign_medium', 'campaign_name', 'revenue',
    'is_anonymous_at_time', 'attribution_rule',
] -%}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

stage_history as (
    select
        customer_id,
        valid_from,
        journey_stage,
    from {{ ref('fct_journey_stage_history') }}
),

-- The touchpoint as the table holds it, without the stage.
touchpoints as (
    select
        touchpoint_id,
        customer_id,
        occurred_at,
        source_system,
        source_record_id,
        touchpoint_type,
        event_detail,
        channel,
        product_id,
        order_id,
        campaign_source,
        campaign_medium,
        campaign_name,
        cast(revenue as decimal(18, 2)) as revenue,
        is_anonymous_at_time,
        attribution_rule,
    from attributed
),

{%- if is_incremental() %}

built as (
    select * exclude (journey_stage) from {{ this }}
),

-- New, changed or gone touchpoints, with their customer before and after.
changed_touchpoints as (
    select
        touchpoints.touchpoint_id,
        touchpoints.customer_id,
        built.customer_id as built_customer_id,
    from touchpoints
    full outer join built on touchpoints.touchpoint_id = built.touchpoint_id
    where
        touchpoints.touchpoint_id is null
        or built.touchpoint_id is null
        or {{ columns_differ('touchpoints', 'built', compared_columns) }}
),

affected_customers as (
    select customer_id from changed_touchpoints where customer_id is not null
    union
    select built_customer_id from changed_touchpoints where built_customer_id is not null
),
{%- endif %}

in_scope as (
    select touchpoints.*
    from touchpoints
    {%- if is_incremental() %}
        where
            touchpoints.customer_id in (select affected_customers.customer_id from affected_customers)
            or touchpoints.touchpoint_id in (
                select changed_touchpoints.touchpoint_id
                from changed_touchpoints
                where changed_touchpoints.touchpoint_id is not null
            )
    {%- endif %}
),

-- The spell that started last at or before the touchpoint (an ASOF join: one ordered merge per customer
-- rather than a range join). Touchpoints after `as_of` or of ignored types still get the stage in force.
staged as (
    select
        in_scope.*,
        stage_history.journey_stage,
    from in_scope
    asof left join stage_history
        on
            in_scope.customer_id = stage_history.customer_id
            and in_scope.occurred_at >= stage_history.valid_from
),

final as (
    select
        touchpoint_id,
        customer_id,
        occurred_at,
        source_system,
        source_record_id,
        touchpoint_type,
        event_detail,
        channel,
        product_id,
        order_id,
        campaign_source,
        campaign_medium,
        campaign_name,
        revenue,
        journey_stage,
        is_anonymous_at_time,
        attribution_rule,
    from staged
)

select * from final
