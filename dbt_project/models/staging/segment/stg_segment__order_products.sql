-- One row per item of a Segment Order Completed (`properties.products`, Segment e-commerce spec): a buyer
-- known only through Segment has purchased products too. Items without a product_id or sku are left out;
-- a `products` value that is not a list yields no rows.
with deliveries as (
    select * from {{ ref('stg_segment__event_deliveries') }}
),

orders as (
    select
        message_id,
        order_id,
        occurred_at,
        currency,
        json_extract(properties, '$.products[*]') as items
    from deliveries
    where event_name = 'Order Completed'
),

items as (
    select
        orders.message_id,
        orders.order_id,
        orders.occurred_at,
        orders.currency,
        item.position as item_position,
        item.value as item
    from orders
    cross join unnest(orders.items) with ordinality as item (value, position)
),

final as (
    select
        message_id,
        order_id,
        item_position,
        occurred_at,
        coalesce({{ nullif_blank("item ->> '$.product_id'") }}, {{ nullif_blank("item ->> '$.sku'") }}) as product_id,
        {{ nullif_blank("item ->> '$.name'") }} as product_name,
        {{ nullif_blank("item ->> '$.category'") }} as category,
        try_cast(item ->> '$.price' as decimal(18, 4)) as unit_price,
        try_cast(item ->> '$.quantity' as bigint) as quantity,
        currency
    from items
)

select * from final
where product_id is not null
