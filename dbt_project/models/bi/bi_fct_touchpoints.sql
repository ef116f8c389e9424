{#-
    Pseudonymised touchpoints for BI (relation bi.fct_touchpoints). Keys are keyed hashes: customer_key
    (joins bi.dim_customers), touchpoint_key and order_key (an order number can be looked up in the shop
    and leads to the buyer, so it is personal). Left out: source_record_id (message, event, ticket ids that
    lead back to the source systems). Product, channel, campaign, revenue and stage stay. docs/privacy.md.
-#}

with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

final as (
    select
        {{ pseudonymise('touchpoint_id', 'touchpoint') }} as touchpoint_key,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key,
        occurred_at,
        source_system,
        touchpoint_type,
        event_detail,
        channel,
        product_id,
        {{ pseudonymise('order_id', 'order') }} as order_key,
        campaign_source,
        campaign_medium,
        campaign_name,
        revenue,
        journey_stage,
        is_anonymous_at_time,
        attribution_rule,
    from touchpoints
)

select * from final
