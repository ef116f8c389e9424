-- One row per shop cart/order event: the first delivery of each event_id wins.
{#- A table, not a view like the rest of staging: about ten models and eight data tests read it, and each
    read of a view would rank every delivery again. -#}
{{ config(materialized='table') }}
with source as (
    select * from {{ source('shop', 'cart_events') }}
),

first_delivery as (
    select *
    from source
    where not coalesce(_is_duplicate, false)
    qualify row_number() over (partition by event_id order by _loaded_at, _source_file, _source_line) = 1
),

final as materialized (
    select
        {{ nullif_blank('event_id') }} as event_id,
        {{ nullif_blank('cart_id') }} as cart_id,
        {{ nullif_blank('user_id') }} as user_id,
        {{ normalize_email('email') }} as email,
        {{ nullif_blank('anonymous_id') }} as anonymous_id,
        lower({{ nullif_blank('event_type') }}) as event_type,
        {{ nullif_blank('product_id') }} as product_id,
        {{ nullif_blank('product_name') }} as product_name,
        {{ nullif_blank('category') }} as category,
        quantity,
        unit_price,
        cast(quantity * unit_price as decimal(18, 4)) as line_amount,
        upper({{ nullif_blank('currency') }}) as currency,
        {{ nullif_blank('order_id') }} as order_id,
        lower({{ nullif_blank('channel') }}) as channel,
        occurred_at,
        _source_file,
        _source_line,
        _loaded_at
    from first_delivery
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['user_id', 'email', 'anonymous_id']) }}
