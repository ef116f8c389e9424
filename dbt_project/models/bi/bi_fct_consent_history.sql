{#-
    Pseudonymised consent history for BI (relation bi.fct_consent_history): consent versions per customer and
    purpose with customer_key (keyed hash); the consent log's own event ids are left out. docs/privacy.md.
-#}

with consent_history as not materialized (
    select * from {{ ref('fct_consent_history') }}
),

customer_keys as (
    select
        customer_id,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key
    from consent_history
    where customer_id is not null
    group by customer_id
),

final as (
    select
        {{ row_pseudonym('consent_history.consent_version_id', 'consent_version') }} as consent_version_key,
        customer_keys.customer_key,
        consent_history.purpose,
        consent_history.version_number,
        consent_history.status,
        consent_history.is_granted,
        consent_history.previous_status,
        consent_history.lawful_basis,
        consent_history.consent_source,
        consent_history.policy_version,
        consent_history.attributed_by,
        consent_history.valid_from,
        {{ utc_date('consent_history.valid_from') }} as valid_from_date_utc,
        consent_history.valid_to,
        consent_history.is_current,
    from consent_history
    left join customer_keys on consent_history.customer_id = customer_keys.customer_id
)

select * from final
