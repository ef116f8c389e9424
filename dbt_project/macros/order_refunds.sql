{#-
    The order and refund rule, in one place for the profile (int_customer_orders_aggregated) and the CX order
    history (fct_cx_orders), so their revenue adds up. Emits CTEs (follow with a comma and more CTEs, or a
    select) over `touchpoints`, a CTE of attributed touchpoints of resolved customers up to `as_of`:

    - order_lines: `order` touchpoints (shop order lines, or a Segment "Order Completed" the shop never
      recorded); an order is the lines with one order_id (a Segment-only order without an id is its own
      order: order_key = touchpoint_id); amount = revenue (0 if none).
    - order_rejections: shop returns and cancellations (product rejections of type returned /
      order_cancelled), with the customer who made them; order_id may be null.
    - order_refunds: one row per order with a refund: a return or cancellation refunds the matching
      (order_id, product_id) line of the order once, however many rejection records point at it; the refund
      belongs to the order's customer.
-#}
{% macro order_refund_ctes(touchpoints='touchpoints') -%}
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
    from {{ touchpoints }}
    where touchpoint_type = 'order'
),

order_rejections as (
    select
        customer_id,
        order_id,
        product_id,
        event_detail as rejection_type
    from {{ touchpoints }}
    where
        source_system = 'shop'
        and touchpoint_type in ('return', 'rejection')
        and event_detail in ('returned', 'order_cancelled')
),

-- Each (order, product) line is refunded at most once, however many rejection records point at it.
refunded_lines as (
    select
        order_id,
        product_id,
        bool_or(rejection_type = 'returned') as is_returned,
        bool_or(rejection_type = 'order_cancelled') as is_cancelled
    from order_rejections
    where order_id is not null
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

order_refunds as (
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
)
{%- endmacro %}
