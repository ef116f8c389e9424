-- One row per NPS answer: first delivery wins. nps_class follows the standard NPS bands.
with source as (
    select * from {{ source('surveys', 'nps_responses') }}
),

first_delivery as (
    select *
    from source
    where not coalesce(_is_duplicate, false)
    qualify row_number() over (partition by response_id order by _loaded_at, _source_file, _source_line) = 1
),

final as materialized (
    select
        {{ nullif_blank('response_id') }} as response_id,
        {{ normalize_email('email') }} as email,
        {{ nullif_blank('user_id') }} as user_id,
        score,
        case
            when score between 9 and 10 then 'promoter'
            when score between 7 and 8 then 'passive'
            when score between 0 and 6 then 'detractor'
        end as nps_class,
        {{ nullif_blank('comment') }} as comment,
        lower({{ nullif_blank('touchpoint') }}) as touchpoint,
        lower({{ nullif_blank('channel') }}) as channel,
        responded_at,
        _source_file,
        _source_line,
        _loaded_at
    from first_delivery
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['email', 'user_id']) }}
