{#-
    Pseudonymised touchpoints for BI (relation bi.fct_touchpoints). Keys are keyed hashes: customer_key
    (joins bi.dim_customers), touchpoint_key and order_key (an order number can be looked up in the shop
    and leads to the buyer, so it is personal). Left out: source_record_id (message, event, ticket ids that
    lead back to the source systems). Product, channel, campaign, revenue and stage stay. docs/privacy.md.

    Cost: customer_key and order_key are HMACs of each distinct customer and order (joined back), not one
    per row; touchpoint_key is row_pseudonym (one SHA-256 with a key-derived secret, macros/privacy.sql).
-#}

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

final as (
    select
        {{ row_pseudonym('touchpoints.touchpoint_id', 'touchpoint') }} as touchpoint_key,
        customer_keys.customer_key,
        touchpoints.occurred_at,
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
)

select * from final
