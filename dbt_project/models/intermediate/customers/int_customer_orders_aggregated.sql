{#-
    Per-customer orders and revenue, up to `as_of`. An order is an `order` touchpoint (shop order lines, or a
    Segment "Order Completed" the shop never recorded); gross revenue is the sum of their amounts. Returns and
    cancellations refund the matching order line once (macro order_refund_ctes, shared with fct_cx_orders):
    net revenue = gross - refunded.
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

{{ order_refund_ctes('touchpoints') }},

orders as (
    select
        customer_id,
        order_key,
        min(occurred_at) as ordered_at,
        sum(amount) as order_amount,
    from order_lines
    group by customer_id, order_key
),

refunds as (
    select
        customer_id,
        sum(refunded_amount) as refunded_amount,
    from order_refunds
    group by customer_id
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
    from order_rejections
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
