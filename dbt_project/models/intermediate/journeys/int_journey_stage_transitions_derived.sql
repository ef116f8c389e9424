{#-
    One row per journey-stage change of a customer, derived from the attributed touchpoint stream
    (rules and vars: docs/journey.md).

    Forward stages: each touchpoint implies a stage level (1 discovery: any activity, 2 consideration,
    3 decision, 4 loyalty); a customer's stage is the highest level reached so far, entered at the first
    touchpoint reaching it. Only the first touchpoint per level matters, so the stream is reduced by one
    group-by before anything is ordered.
    Loyalty means the relationship goes on after a purchase that stuck: a repeat order (any order after the
    first), or after-sales service (`loyalty_after_sales_types`: a support ticket) after a purchase the
    customer kept, i.e. an order not wholly returned or cancelled (as known up to `as_of`; the refund rule of
    macro order_refund_ctes). An NPS answer, or the return of one's only purchase, is not loyalty.
    Lapse: a customer with an order whose activity stops for `lapse_after_days` is lapsed from the last
    activity + that window (up to `as_of`); the next activity brings them back, to loyalty.
-#}
{%- set consideration_types = var('journey_consideration_types') -%}
{%- set decision_types = var('journey_decision_types') -%}
{%- set after_sales_types = var('loyalty_after_sales_types') -%}
{%- set ignored_types = var('journey_ignored_touchpoint_types') -%}
{%- set lapse_ignored_types = var('lapse_ignored_touchpoint_types') -%}
{%- set lapse_after_days = var('lapse_after_days') | int -%}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

touchpoints as (
    select
        attributed.customer_id,
        attributed.touchpoint_id,
        attributed.touchpoint_type,
        attributed.occurred_at,
    from attributed
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.touchpoint_type not in ({{ sql_value_list(ignored_types) }})
),

first_orders as (
    select
        customer_id,
        min(occurred_at) as first_order_at,
    from touchpoints
    where touchpoint_type = 'order'
    group by customer_id
),

-- Orders and their refunds (returns, cancellations), for "a purchase the customer kept".
order_touchpoints as (
    select attributed.*
    from attributed
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.touchpoint_type in ('order', 'return', 'rejection')
),

{{ order_refund_ctes('order_touchpoints') }},

-- The first moment each customer held a purchase that stuck: the first order with a line not refunded.
first_kept_orders as (
    select
        order_lines.customer_id,
        min(order_lines.occurred_at) as first_kept_order_at,
    from order_lines
    left join refunded_lines
        on
            order_lines.order_key = refunded_lines.order_id
            and order_lines.product_id is not distinct from refunded_lines.product_id
    where refunded_lines.order_id is null
    group by order_lines.customer_id
),

leveled as (
    select
        touchpoints.customer_id,
        touchpoints.touchpoint_id,
        touchpoints.touchpoint_type,
        touchpoints.occurred_at,
        case
            -- a repeat purchase
            when touchpoints.touchpoint_type = 'order' and touchpoints.occurred_at > first_orders.first_order_at
                then 4
            -- after-sales service on a purchase that stuck
            when
                touchpoints.touchpoint_type in ({{ sql_value_list(after_sales_types) }})
                and touchpoints.occurred_at > first_kept_orders.first_kept_order_at
                then 4
            when touchpoints.touchpoint_type in ({{ sql_value_list(decision_types) }}) then 3
            when touchpoints.touchpoint_type in ({{ sql_value_list(consideration_types) }}) then 2
            else 1
        end as stage_order,
    from touchpoints
    left join first_orders on touchpoints.customer_id = first_orders.customer_id
    left join first_kept_orders on touchpoints.customer_id = first_kept_orders.customer_id
),

-- The first touchpoint at each level (ties on time broken by touchpoint_id, so reruns agree).
level_entries as (
    select
        customer_id,
        stage_order,
        min(occurred_at) as entered_at,
        arg_min(touchpoint_id, (occurred_at, touchpoint_id)) as touchpoint_id,
        arg_min(touchpoint_type, (occurred_at, touchpoint_id)) as touchpoint_type,
    from leveled
    group by customer_id, stage_order
),

-- Only entries that raise the stage count (a first CRM record after an in-store order does not), so no
-- entry can fall inside a lapse without ending it.
forward_entries as (
    select *
    from level_entries
    qualify stage_order > coalesce(
        max(stage_order) over (
            partition by customer_id
            order by entered_at, stage_order
            rows between unbounded preceding and 1 preceding
        ),
        0
    )
),

-- Activity from the first order on, each with the next one: a long enough silence is a lapse.
buyer_activity as (
    select
        touchpoints.customer_id,
        touchpoints.occurred_at,
        lead(touchpoints.occurred_at) over next_activity as next_occurred_at,
        lead(touchpoints.touchpoint_id) over next_activity as next_touchpoint_id,
        lead(touchpoints.touchpoint_type) over next_activity as next_touchpoint_type,
    from touchpoints
    inner join first_orders on touchpoints.customer_id = first_orders.customer_id
    where
        touchpoints.occurred_at >= first_orders.first_order_at
        and touchpoints.touchpoint_type not in ({{ sql_value_list(lapse_ignored_types) }})
    window next_activity as (
        partition by touchpoints.customer_id
        order by touchpoints.occurred_at, touchpoints.touchpoint_id
    )
),

lapses as (
    select
        buyer_activity.customer_id,
        {{ dbt.dateadd('day', lapse_after_days, 'buyer_activity.occurred_at') }} as lapsed_at,
        buyer_activity.next_occurred_at,
        buyer_activity.next_touchpoint_id,
        buyer_activity.next_touchpoint_type,
    from buyer_activity
    cross join as_of
    where
        {{ dbt.dateadd('day', lapse_after_days, 'buyer_activity.occurred_at') }}
        < coalesce(buyer_activity.next_occurred_at, as_of.as_of_at + interval 1 microsecond)
),

events as (
    select
        customer_id,
        entered_at,
        stage_order,
        touchpoint_id,
        touchpoint_type,
        'touchpoint' as transition_reason,
    from forward_entries
    union all
    select
        customer_id,
        lapsed_at as entered_at,
        5 as stage_order,
        cast(null as varchar) as touchpoint_id,
        cast(null as varchar) as touchpoint_type,
        'inactivity' as transition_reason,
    from lapses
    union all
    select
        customer_id,
        next_occurred_at as entered_at,
        4 as stage_order,
        next_touchpoint_id as touchpoint_id,
        next_touchpoint_type as touchpoint_type,
        'return_from_lapse' as transition_reason,
    from lapses
    where next_occurred_at is not null
),

-- Several levels reached at the same instant (an in-store order as the very first touchpoint): the
-- highest one is the stage entered.
instants as (
    select *
    from events
    qualify row_number() over (
        partition by customer_id, entered_at
        order by stage_order desc, transition_reason asc
    ) = 1
),

staged as (
    select
        *,
        case
            when stage_order = 5 then 5
            else max(case when stage_order < 5 then stage_order end) over (
                partition by customer_id
                order by entered_at
                rows between unbounded preceding and current row
            )
        end as effective_stage_order,
    from instants
),

changes as (
    select
        *,
        lag(effective_stage_order) over (partition by customer_id order by entered_at) as previous_stage_order,
    from staged
),

final as (
    select
        customer_id,
        case effective_stage_order
            when 1 then 'discovery'
            when 2 then 'consideration'
            when 3 then 'decision'
            when 4 then 'loyalty'
            when 5 then 'lapsed'
        end as journey_stage,
        effective_stage_order as stage_order,
        entered_at,
        touchpoint_id as entered_by_touchpoint_id,
        touchpoint_type as entered_by_touchpoint_type,
        transition_reason,
        case previous_stage_order
            when 1 then 'discovery'
            when 2 then 'consideration'
            when 3 then 'decision'
            when 4 then 'loyalty'
            when 5 then 'lapsed'
        end as previous_stage,
    from changes
    where previous_stage_order is distinct from effective_stage_order
)

select * from final
