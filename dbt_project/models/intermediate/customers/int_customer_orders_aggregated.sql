{#-
    Per-customer orders and revenue, up to `as_of`. An order is an `order` touchpoint (shop order lines, or a
    Segment "Order Completed" the shop never recorded); gross revenue is the sum of their amounts. Returns and
    cancellations (product rejections of type returned / order_cancelled) refund the matching order line
    (same order_id and product_id, each line at most once): net revenue = gross - refunded.
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
        product_id,
        occurred_at,
        coalesce(revenue, 0) as amount,
    from touchpoints
    where touchpoint_type = 'order'
),

orders as (
    select
        customer_id,
        order_key,
        min(occurred_at) as ordered_at,
        sum(amount) as order_amount,
    from order_lines
    group by customer_id, order_key
),

rejections as (
    select
        touchpoints.customer_id,
        touchpoints.order_id,
        touchpoints.product_id,
        touchpoints.event_detail as rejection_type,
    from touchpoints
    where
        touchpoints.source_system = 'shop'
        and touchpoints.touchpoint_type in ('return', 'rejection')
        and touchpoints.event_detail in ('returned', 'order_cancelled')
),

-- Each (order, product) line is refunded at most once, however many rejection records point at it.
refunded_lines as (
    select distinct
        rejections.customer_id,
        rejections.order_id,
        rejections.product_id,
    from rejections
    where rejections.order_id is not null
),

line_amounts as (
    select
        order_key,
        product_id,
        sum(amount) as amount,
    from order_lines
    group by order_key, product_id
),

refunds as (
    select
        refunded_lines.customer_id,
        sum(line_amounts.amount) as refunded_amount,
    from refunded_lines
    inner join line_amounts
        on
            refunded_lines.order_id = line_amounts.order_key
            and refunded_lines.product_id is not distinct from line_amounts.product_id
    group by refunded_lines.customer_id
),

order_totals as (
    select
        customer_id,
        count(*) as order_count,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        sum(order_amount) as gross_revenue,
    from orders
    group by customer_id
),

rejection_counts as (
    select
        customer_id,
        count(*) filter (where rejection_type = 'returned') as return_count,
        count(*) filter (where rejection_type = 'order_cancelled') as cancellation_count,
    from rejections
    group by customer_id
),

customers as (
    select customer_id from order_totals
    union
    select customer_id from rejection_counts
),

final as (
    select
        customers.customer_id,
        coalesce(order_totals.order_count, 0) as order_count,
        order_totals.first_order_at,
        order_totals.last_order_at,
        cast(coalesce(order_totals.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
        cast(coalesce(refunds.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        cast(
            coalesce(order_totals.gross_revenue, 0) - coalesce(refunds.refunded_amount, 0) as decimal(18, 2)
        ) as net_revenue,
        cast(
            order_totals.gross_revenue / nullif(order_totals.order_count, 0) as decimal(18, 2)
        ) as average_order_value,
        coalesce(rejection_counts.return_count, 0) as return_count,
        coalesce(rejection_counts.cancellation_count, 0) as cancellation_count,
    from customers
    left join order_totals on customers.customer_id = order_totals.customer_id
    left join refunds on customers.customer_id = refunds.customer_id
    left join rejection_counts on customers.customer_id = rejection_counts.customer_id
)

select * from final
