-- One row per GDPR erasure request: first delivery wins. Any one identifier is enough to act on it.
with source as (
    select * from {{ source('privacy', 'erasure_requests') }}
),

first_delivery as (
    select *
    from source
    where not coalesce(_is_duplicate, false)
    qualify row_number() over (partition by request_id order by _loaded_at, _source_file, _source_line) = 1
),

final as materialized (
    select
        {{ nullif_blank('request_id') }} as request_id,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone,
        {{ nullif_blank('user_id') }} as user_id,
        requested_at,
        _source_file,
        _source_line,
        _loaded_at
    from first_delivery
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['email', 'phone', 'user_id']) }}
