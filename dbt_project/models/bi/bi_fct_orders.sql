{#-
    Pseudonymised orders for BI (relation bi.fct_orders), one row per order, with the one revenue definition
    (doc revenue_definition): gross = the order's line amounts, excluding shipping and tax; net = gross less
    the lines returned or cancelled. customer_key joins bi.dim_customers; order_key joins
    bi.fct_touchpoints.order_key (the same keyed hash of the order number; an order known only from Segment
    without a number has its own key there and none on the touchpoints). UTC day and month columns to bucket
    by. docs/privacy.md, docs/cx_measures.md.
-#}

with orders as not materialized (
    select * from {{ ref('fct_cx_orders') }}
),

customer_keys as (
    select
        customer_id,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key
    from orders
    group by customer_id
),

final as (
    select
        {{ pseudonymise('coalesce(orders.order_id, orders.order_key)', 'order') }} as order_key,
        customer_keys.customer_key,
        orders.ordered_at,
        {{ utc_date('orders.ordered_at') }} as ordered_date_utc,
        {{ utc_month('orders.ordered_at') }} as ordered_month_utc,
        orders.channel,
        orders.source_system,
        orders.line_count,
        orders.gross_revenue,
        orders.refunded_amount,
        orders.net_revenue,
        orders.has_return,
        orders.has_cancellation,
        orders.customer_order_number,
        orders.days_since_previous_order,
    from orders
    left join customer_keys on orders.customer_id = customer_keys.customer_id
)

select * from final
