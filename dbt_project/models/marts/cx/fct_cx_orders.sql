{#-
    One row per order of a resolved customer up to `as_of`, with its net revenue after returns and
    cancellations: the order history every CX measure shares (retention, churn, RFM, churn risk, CLV).

    Same rules as the profile (int_customer_orders_aggregated), so revenue here adds up to dim_customers:
    an order is the set of `order` touchpoints with one order_id (a Segment-only order without an id is its
    own order); gross revenue is the sum of its line amounts; a return or cancellation (product rejection of
    type returned / order_cancelled, known up to `as_of`) refunds the matching (order_id, product_id) line
    once, however many rejection records point at it. Definitions: docs/cx_measures.md.
-#}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

touchpoints as (
    select attributed.*
    from attributed
    cross join as_of
    where attributed.customer_id is not null and attributed.occurred_at <= as_of.as_of_at
),

order_lines as (
    select
        customer_id,
        coalesce(order_id, touchpoint_id) as order_key,
        order_id,
        product_id,
        occurred_at,
        channel,
        source_system,
        touchpoint_id,
        coalesce(revenue, 0) as amount
    from touchpoints
    where touchpoint_type = 'order'
),

rejections as (
    select
        order_id,
        product_id,
        event_detail as rejection_type
    from touchpoints
    where
        source_system = 'shop'
        and touchpoint_type in ('return', 'rejection')
        and event_detail in ('returned', 'order_cancelled')
        and order_id is not null
),

-- Each (order, product) line is refunded at most once, however many rejection records point at it.
refunded_lines as (
    select
        order_id,
        product_id,
        bool_or(rejection_type = 'returned') as is_returned,
        bool_or(rejection_type = 'order_cancelled') as is_cancelled
    from rejections
    group by order_id, product_id
),

line_amounts as (
    select
        customer_id,
        order_key,
        product_id,
        sum(amount) as amount
    from order_lines
    group by customer_id, order_key, product_id
),

refunds as (
    select
        line_amounts.customer_id,
        line_amounts.order_key,
        sum(line_amounts.amount) as refunded_amount,
        bool_or(refunded_lines.is_returned) as has_return,
        bool_or(refunded_lines.is_cancelled) as has_cancellation
    from line_amounts
    inner join refunded_lines
        on
            line_amounts.order_key = refunded_lines.order_id
            and line_amounts.product_id is not distinct from refunded_lines.product_id
    group by line_amounts.customer_id, line_amounts.order_key
),

orders as (
    select
        customer_id,
        order_key,
        any_value(order_id) as order_id,
        min(occurred_at) as ordered_at,
        arg_min(channel, (occurred_at, touchpoint_id)) as channel,
        arg_min(source_system, (occurred_at, touchpoint_id)) as source_system,
        count(*) as line_count,
        sum(amount) as gross_revenue
    from order_lines
    group by customer_id, order_key
),

final as (
    select
        orders.order_key,
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        cast({{ dbt.date_trunc('month', 'orders.ordered_at') }} as date) as order_month,
        orders.channel,
        orders.source_system,
        orders.line_count,
        cast(orders.gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(coalesce(refunds.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        cast(orders.gross_revenue - coalesce(refunds.refunded_amount, 0) as decimal(18, 2)) as net_revenue,
        coalesce(refunds.has_return, false) as has_return,
        coalesce(refunds.has_cancellation, false) as has_cancellation,
        row_number() over customer_orders as customer_order_number,
        {{ dbt.datediff('lag(orders.ordered_at) over customer_orders', 'orders.ordered_at', 'day') }}
            as days_since_previous_order
    from orders
    left join refunds
        on orders.customer_id = refunds.customer_id and orders.order_key = refunds.order_key
    window customer_orders as (partition by orders.customer_id order by orders.ordered_at, orders.order_key)
)

select * from final
