-- One row per consent log entry (grant, denial or withdrawal of one purpose): first delivery wins.
{#- A table, not a view like the rest of staging: about ten models and eight data tests read it, and each
    read of a view would rank every delivery again. -#}
{{ config(materialized='table') }}
with source as (
    select * from {{ source('privacy', 'gdpr_consents') }}
),

first_delivery as (
    select *
    from source
    where not coalesce(_is_duplicate, false)
    qualify row_number() over (
        partition by consent_event_id
        order by _loaded_at, _source_file, _source_line
    ) = 1
),

final as materialized (
    select
        {{ nullif_blank('consent_event_id') }} as consent_event_id,
        {{ normalize_email('email') }} as email,
        {{ nullif_blank('user_id') }} as user_id,
        lower({{ nullif_blank('purpose') }}) as purpose,
        lower({{ nullif_blank('status') }}) as status,
        lower({{ nullif_blank('lawful_basis') }}) as lawful_basis,
        {{ nullif_blank('source') }} as consent_source,
        {{ nullif_blank('policy_version') }} as policy_version,
        recorded_at,
        _source_file,
        _source_line,
        _loaded_at
    from first_delivery
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['email', 'user_id']) }}
