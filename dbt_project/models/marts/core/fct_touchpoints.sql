{#-
    Touchpoint history: one row per interaction from every source, attributed to a customer (null for
    visitors never identified) and stamped with the journey stage the customer was in at that moment.
    Rules: docs/journey.md.
-#}

with touchpoints as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

stage_history as (
    select
        customer_id,
        valid_from,
        journey_stage,
    from {{ ref('fct_journey_stage_history') }}
),

-- The spell that started last at or before the touchpoint (an ASOF join: one ordered merge per customer
-- rather than a range join). Touchpoints after `as_of` or of ignored types still get the stage in force.
staged as (
    select
        touchpoints.*,
        stage_history.journey_stage,
    from touchpoints
    asof left join stage_history
        on
            touchpoints.customer_id = stage_history.customer_id
            and touchpoints.occurred_at >= stage_history.valid_from
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
        cast(revenue as decimal(18, 2)) as revenue,
        journey_stage,
        is_anonymous_at_time,
        attribution_rule,
    from staged
)

select * from final
