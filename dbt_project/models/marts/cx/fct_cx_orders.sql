{#-
    One row per order of a resolved customer up to `as_of`, with its net revenue after returns and
    cancellations: the order history every CX measure shares (retention, churn, RFM, churn risk, CLV).

    The order and refund rule is the macro order_refund_ctes, shared with the profile
    (int_customer_orders_aggregated), so revenue here adds up to dim_customers: gross revenue is the sum of
    an order's line amounts; a return or cancellation known up to `as_of` refunds the matching
    (order_id, product_id) line once. Definitions: docs/cx_measures.md.
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
    left join order_refunds as refunds
        on orders.customer_id = refunds.customer_id and orders.order_key = refunds.order_key
    window customer_orders as (partition by orders.customer_id order by orders.ordered_at, orders.order_key)
)

select * from final
