{#-
    Per-customer products: viewed, carted, rejected (with the top reasons) and purchased, up to `as_of`.
    Counts are of distinct products; lists hold the `profile_list_limit` most recent distinct products.
-#}
{%- set list_limit = var('profile_list_limit') | int -%}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

rejection_records as (
    select * from {{ ref('stg_shop__product_rejections') }}
),

segment_order_products as (
    select * from {{ ref('stg_segment__order_products') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

product_touchpoints as (
    select
        attributed.customer_id,
        attributed.product_id,
        attributed.occurred_at,
        attributed.source_record_id,
        case
            when attributed.touchpoint_type = 'product_view' then 'viewed'
            when attributed.touchpoint_type = 'cart_add' then 'carted'
            when attributed.touchpoint_type = 'order' then 'purchased'
            when attributed.source_system = 'shop' and attributed.touchpoint_type in ('return', 'rejection')
                then 'rejected'
        end as relation,
    from attributed
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.product_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.touchpoint_type in ('product_view', 'cart_add', 'order', 'return', 'rejection')

    union all

    -- A Segment Order Completed is one touchpoint for the whole order: its items are in `products`.
    select
        attributed.customer_id,
        segment_order_products.product_id,
        attributed.occurred_at,
        attributed.source_record_id,
        'purchased' as relation,
    from attributed
    inner join segment_order_products on attributed.source_record_id = segment_order_products.message_id
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.source_system = 'segment'
        and attributed.touchpoint_type = 'order'
        and attributed.occurred_at <= as_of.as_of_at
),

customer_products as (
    select
        customer_id,
        relation,
        product_id,
        max(occurred_at) as last_at,
    from product_touchpoints
    where relation is not null
    group by customer_id, relation, product_id
),

product_lists as (
    select
        customer_id,
        count(*) filter (where relation = 'viewed') as products_viewed_count,
        count(*) filter (where relation = 'carted') as products_carted_count,
        count(*) filter (where relation = 'rejected') as products_rejected_count,
        count(*) filter (where relation = 'purchased') as products_purchased_count,
        list(product_id order by last_at desc, product_id asc) filter (where relation = 'viewed') as viewed,
        list(product_id order by last_at desc, product_id asc) filter (where relation = 'carted') as carted,
        list(product_id order by last_at desc, product_id asc) filter (where relation = 'rejected') as rejected,
        list(product_id order by last_at desc, product_id asc) filter (where relation = 'purchased') as purchased,
    from customer_products
    group by customer_id
),

reasons as (
    select
        product_touchpoints.customer_id,
        coalesce(rejection_records.reason, 'unknown') as reason,
        count(*) as reason_count,
        max(product_touchpoints.occurred_at) as last_at,
    from product_touchpoints
    inner join rejection_records on product_touchpoints.source_record_id = rejection_records.rejection_id
    where product_touchpoints.relation = 'rejected'
    group by product_touchpoints.customer_id, coalesce(rejection_records.reason, 'unknown')
),

top_reasons as (
    select
        customer_id,
        list(reason order by reason_count desc, last_at desc, reason asc)[1:3] as top_rejection_reasons,
    from reasons
    group by customer_id
),

final as (
    select
        product_lists.customer_id,
        product_lists.products_viewed_count,
        coalesce(product_lists.viewed[1:{{ list_limit }}], []) as products_viewed,
        product_lists.products_carted_count,
        coalesce(product_lists.carted[1:{{ list_limit }}], []) as products_carted,
        product_lists.products_rejected_count,
        coalesce(product_lists.rejected[1:{{ list_limit }}], []) as products_rejected,
        coalesce(top_reasons.top_rejection_reasons, []) as top_rejection_reasons,
        product_lists.products_purchased_count,
        coalesce(product_lists.purchased[1:{{ list_limit }}], []) as products_purchased,
    from product_lists
    left join top_reasons on product_lists.customer_id = top_reasons.customer_id
)

select * from final
