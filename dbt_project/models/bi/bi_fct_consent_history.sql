{#-
    Pseudonymised consent history for BI (relation bi.fct_consent_history): consent versions per customer and
    purpose with customer_key (keyed hash); the consent log's own event ids are left out. docs/privacy.md.
-#}

with consent_history as (
    select * from {{ ref('fct_consent_history') }}
),

final as (
    select
        {{ pseudonymise('consent_version_id', 'consent_version') }} as consent_version_key,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key,
        purpose,
        version_number,
        status,
        is_granted,
        previous_status,
        lawful_basis,
        consent_source,
        policy_version,
        attributed_by,
        valid_from,
        valid_to,
        is_current,
    from consent_history
)

select * from final
