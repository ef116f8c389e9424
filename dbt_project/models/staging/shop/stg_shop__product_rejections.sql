-- One row per product rejection (removed, returned, dismissed, cancelled): first delivery wins.
with source as (
    select * from {{ source('shop', 'product_rejections') }}
),

first_delivery as (
    select *
    from source
    where not coalesce(_is_duplicate, false)
    qualify row_number() over (partition by rejection_id order by _loaded_at, _source_file, _source_line) = 1
),

final as materialized (
    select
        {{ nullif_blank('rejection_id') }} as rejection_id,
        {{ nullif_blank('user_id') }} as user_id,
        {{ normalize_email('email') }} as email,
        {{ nullif_blank('product_id') }} as product_id,
        {{ nullif_blank('order_id') }} as order_id,
        lower({{ nullif_blank('rejection_type') }}) as rejection_type,
        {{ nullif_blank('reason') }} as reason,
        occurred_at,
        _source_file,
        _source_line,
        _loaded_at
    from first_delivery
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['user_id', 'email']) }}
