-- Every version of every CRM contact, typed and normalised: one row per contact_id + updated_at (a
-- re-delivery of the same version replaces it: the latest load wins). stg_crm__contacts keeps the
-- latest version; the identity graph uses them all, so an email a contact had before still links.
with source as (
    select * from {{ source('crm', 'crm_contacts') }}
),

cleaned as (
    select
        {{ nullif_blank('contact_id') }} as contact_id,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone,
        {{ nullif_blank('first_name') }} as first_name,
        {{ nullif_blank('last_name') }} as last_name,
        {{ nullif_blank('company') }} as company,
        {{ nullif_blank('city') }} as city,
        upper({{ nullif_blank('country') }}) as country,
        lower({{ nullif_blank('crm_lifecycle_stage') }}) as crm_lifecycle_stage,
        created_at,
        updated_at,
        _is_duplicate,
        _source_file,
        _source_line,
        _loaded_at
    from source
),

final as materialized (
    select * exclude (_is_duplicate)
    from cleaned
    where contact_id is not null
    qualify row_number() over (
        partition by contact_id, updated_at
        order by _loaded_at desc, _source_file desc, _source_line desc
    ) = 1
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: materialized, the window runs once.
select * from final
where {{ exclude_suppressed(['contact_id', 'email', 'phone']) }}
