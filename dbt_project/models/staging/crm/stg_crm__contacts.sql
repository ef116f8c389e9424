-- One row per CRM contact: the latest export wins (by updated_at, then the latest load).
-- Every version stays available in stg_crm__contact_versions (the identity graph uses the history).
with versions as (
    select * from {{ ref('stg_crm__contact_versions') }}
),

final as (
    select
        contact_id,
        email,
        phone,
        first_name,
        last_name,
        company,
        city,
        country,
        crm_lifecycle_stage,
        created_at,
        updated_at,
        _source_file,
        _loaded_at
    from versions
    qualify row_number() over (
        partition by contact_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_line desc
    ) = 1
)

select * from final
