-- One row per support ticket. A ticket can be exported again as it progresses (same ticket_id, later
-- status): the latest load wins, so status, solved_at and the scores are the newest known.
with source as (
    select * from {{ source('support', 'support_interactions') }}
),

latest_export as (
    select *
    from source
    qualify row_number() over (
        partition by ticket_id
        order by _loaded_at desc, _source_file desc, _source_line desc
    ) = 1
),

final as materialized (
    select
        {{ nullif_blank('ticket_id') }} as ticket_id,
        {{ normalize_email('requester_email') }} as requester_email,
        {{ normalize_phone('requester_phone') }} as requester_phone,
        lower({{ nullif_blank('channel') }}) as channel,
        {{ nullif_blank('category') }} as category,
        {{ nullif_blank('subject') }} as subject,
        lower({{ nullif_blank('status') }}) as status,
        lower({{ nullif_blank('priority') }}) as priority,
        created_at,
        first_response_at,
        solved_at,
        csat_score,
        ces_score,
        -- Elapsed minutes (not minute boundaries crossed, which is what datediff counts).
        round(extract(epoch from first_response_at - created_at) / 60.0, 2) as first_response_minutes,
        round(extract(epoch from solved_at - created_at) / 60.0, 2) as resolution_minutes,
        _source_file,
        _source_line,
        _loaded_at
    from latest_export
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['requester_email', 'requester_phone']) }}
