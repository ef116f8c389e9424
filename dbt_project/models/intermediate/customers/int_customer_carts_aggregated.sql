{#-
    The customer's open abandoned cart, up to `as_of`: a shop cart whose last event is item_added,
    checkout_started or cart_abandoned, that never became an order, and whose last event came after the
    customer's last order. Items = net quantity per product (added - removed, kept when > 0), valued at the
    latest added unit price. When several carts qualify the most recent one is kept.
-#}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

cart_events as (
    select * from {{ ref('stg_shop__cart_events') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

events as (
    select
        attributed.customer_id,
        cart_events.cart_id,
        cart_events.event_id,
        cart_events.event_type,
        cart_events.product_id,
        cart_events.quantity,
        cart_events.unit_price,
        cart_events.occurred_at,
    from cart_events
    inner join attributed
        on
            attributed.source_system = 'shop'
            and attributed.touchpoint_id = 'shop:' || cart_events.event_id
    cross join as_of
    where cart_events.occurred_at <= as_of.as_of_at and cart_events.cart_id is not null
),

-- A cart belongs to the customer of its latest attributed event (a cart filled anonymously and
-- checked out after login is the logged-in customer's).
carts as (
    select
        cart_id,
        arg_max(customer_id, (occurred_at, event_id)) filter (where customer_id is not null) as customer_id,
        arg_max(event_type, (occurred_at, event_id)) as last_event_type,
        max(occurred_at) as last_event_at,
        bool_or(event_type = 'order_placed') as has_order,
    from events
    group by cart_id
),

last_orders as (
    select
        customer_id,
        max(occurred_at) as last_order_at,
    from events
    where event_type = 'order_placed' and customer_id is not null
    group by customer_id
),

open_carts as (
    select carts.*
    from carts
    left join last_orders on carts.customer_id = last_orders.customer_id
    where
        carts.customer_id is not null
        and not carts.has_order
        and carts.last_event_type in ('item_added', 'checkout_started', 'cart_abandoned')
        and (last_orders.last_order_at is null or carts.last_event_at > last_orders.last_order_at)
    qualify row_number() over (
        partition by carts.customer_id order by carts.last_event_at desc, carts.cart_id desc
    ) = 1
),

cart_items as (
    select
        events.cart_id,
        events.product_id,
        sum(
            case events.event_type
                when 'item_added' then coalesce(events.quantity, 1)
                when 'item_removed' then -coalesce(events.quantity, 1)
                else 0
            end
        ) as net_quantity,
        arg_max(events.unit_price, (events.occurred_at, events.event_id))
        filter (where events.event_type = 'item_added') as unit_price,
    from events
    inner join open_carts on events.cart_id = open_carts.cart_id
    where events.product_id is not null and events.event_type in ('item_added', 'item_removed')
    group by events.cart_id, events.product_id
),

cart_values as (
    select
        cart_id,
        sum(net_quantity) as item_count,
        count(*) as product_count,
        sum(net_quantity * coalesce(unit_price, 0)) as cart_value,
    from cart_items
    where net_quantity > 0
    group by cart_id
),

final as (
    select
        open_carts.customer_id,
        open_carts.cart_id as open_cart_id,
        open_carts.last_event_type as open_cart_last_event_type,
        open_carts.last_event_at as open_cart_last_event_at,
        cast(coalesce(cart_values.item_count, 0) as bigint) as open_cart_item_count,
        coalesce(cart_values.product_count, 0) as open_cart_product_count,
        cast(coalesce(cart_values.cart_value, 0) as decimal(18, 2)) as open_cart_value,
    from open_carts
    left join cart_values on open_carts.cart_id = cart_values.cart_id
)

select * from final
