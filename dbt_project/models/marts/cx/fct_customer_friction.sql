{#-
    Friction per customer up to `as_of` (definitions: docs/cx_measures.md): abandoned carts, product
    rejections by type with the top reasons, and support contacts with the poorly rated and high-effort
    ones. One row per customer with at least one friction event.
-#}
{%- set recent_days = var('cx_recent_days', 90) | int -%}
{%- set top_reasons = var('cx_top_rejection_reasons', 3) | int -%}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

rejections as (
    select * from {{ ref('stg_shop__product_rejections') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

friction_touchpoints as (
    select
        attributed.customer_id,
        attributed.touchpoint_type,
        attributed.source_system,
        attributed.source_record_id,
        attributed.occurred_at,
        attributed.occurred_at > {{ dbt.dateadd('day', -recent_days, 'as_of.as_of_at') }} as is_recent
    from attributed
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.touchpoint_type in ('cart_abandoned', 'return', 'rejection', 'support_ticket')
),

customer_rejections as (
    select
        friction_touchpoints.customer_id,
        rejections.rejection_type,
        coalesce(rejections.reason, 'unknown') as reason
    from friction_touchpoints
    inner join rejections on friction_touchpoints.source_record_id = rejections.rejection_id
    where
        friction_touchpoints.source_system = 'shop'
        and friction_touchpoints.touchpoint_type in ('return', 'rejection')
),

reason_counts as (
    select
        customer_id,
        reason,
        count(*) as rejections
    from customer_rejections
    group by customer_id, reason
),

top_reasons as (
    select
        customer_id,
        list(reason order by rejections desc, reason asc)[1:{{ top_reasons }}] as top_rejection_reasons
    from reason_counts
    group by customer_id
),

rejection_summary as (
    select
        customer_id,
        count(*) as rejections,
        count(*) filter (where rejection_type = 'returned') as returns,
        count(*) filter (where rejection_type = 'order_cancelled') as cancellations,
        count(*) filter (where rejection_type = 'removed_from_cart') as removed_from_cart,
        count(*) filter (where rejection_type = 'recommendation_dismissed') as recommendations_dismissed
    from customer_rejections
    group by customer_id
),

support_summary as (
    select
        friction_touchpoints.customer_id,
        count(*) as support_contacts,
        count(*) filter (where tickets.status in ('new', 'open', 'pending', 'hold')) as open_support_contacts,
        count(*) filter (where tickets.csat_score <= 2) as poorly_rated_contacts,
        count(*) filter (where {{ cx_is_high_effort('tickets.ces_score') }}) as high_effort_contacts
    from friction_touchpoints
    inner join tickets on friction_touchpoints.source_record_id = tickets.ticket_id
    where friction_touchpoints.source_system = 'support'
    group by friction_touchpoints.customer_id
),

event_summary as (
    select
        customer_id,
        count(*) filter (where touchpoint_type = 'cart_abandoned') as abandoned_carts,
        count(*) as friction_events,
        count(*) filter (where is_recent) as recent_friction_events,
        max(occurred_at) as last_friction_at
    from friction_touchpoints
    group by customer_id
),

final as (
    select
        event_summary.customer_id,
        event_summary.abandoned_carts,
        coalesce(rejection_summary.rejections, 0) as rejections,
        coalesce(rejection_summary.returns, 0) as returns,
        coalesce(rejection_summary.cancellations, 0) as cancellations,
        coalesce(rejection_summary.removed_from_cart, 0) as removed_from_cart,
        coalesce(rejection_summary.recommendations_dismissed, 0) as recommendations_dismissed,
        coalesce(top_reasons.top_rejection_reasons, []) as top_rejection_reasons,
        top_reasons.top_rejection_reasons[1] as top_rejection_reason,
        coalesce(support_summary.support_contacts, 0) as support_contacts,
        coalesce(support_summary.open_support_contacts, 0) as open_support_contacts,
        coalesce(support_summary.poorly_rated_contacts, 0) as poorly_rated_contacts,
        coalesce(support_summary.high_effort_contacts, 0) as high_effort_contacts,
        event_summary.friction_events,
        event_summary.recent_friction_events,
        event_summary.last_friction_at
    from event_summary
    left join rejection_summary on event_summary.customer_id = rejection_summary.customer_id
    left join top_reasons on event_summary.customer_id = top_reasons.customer_id
    left join support_summary on event_summary.customer_id = support_summary.customer_id
)

select * from final
